package main

import (
	"context"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

func TestAsCLI(t *testing.T) {
	t.Setenv("SUDO_USER", "alice")
	if got := appliance.ActorFrom(asCLI(context.Background())); got != "cli:alice" {
		t.Fatalf("actor %q", got)
	}
	t.Setenv("SUDO_USER", "")
	if got := appliance.ActorFrom(asCLI(context.Background())); !strings.HasPrefix(got, "cli") {
		t.Fatalf("actor %q", got)
	}
}
