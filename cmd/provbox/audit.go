package main

import (
	"context"
	"os"
	"os/user"

	"github.com/provbox/provbox/appliance"
)

// asCLI marks ctx as the command line's, for the audit trail: "cli:<the
// person at the console>" (the one behind sudo when there is one).
func asCLI(ctx context.Context) context.Context {
	name := os.Getenv("SUDO_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		return appliance.WithActor(ctx, "cli")
	}
	return appliance.WithActor(ctx, "cli:"+name)
}
