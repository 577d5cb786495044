package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// TestLogBudget: a flood of one kind keeps perMinute lines of it, other
// kinds go on, the bytes stay under the budget, and the next minute says
// how many were dropped (SPEC §9).
func TestLogBudget(t *testing.T) {
	for _, text := range []bool{false, true} {
		now := time.Unix(1_800_000_000, 0)
		clock := func() time.Time { return now }
		var out bytes.Buffer
		w := &byteBudget{w: &out, max: 64 << 10, text: text, now: clock}
		var h slog.Handler = slog.NewJSONHandler(w, nil)
		if text {
			h = slog.NewTextHandler(w, nil)
		}
		log := slog.New(appliance.LogLimit(h, 50, clock))
		for i := range 10000 {
			log.Info("unknown or refused file", "i", i, "ip", "10.0.0.9")
		}
		log.Warn("refusing address for a while", "ip", "10.0.0.9")
		if n := strings.Count(out.String(), "unknown or refused file"); n != 50 {
			t.Errorf("text %v: %d lines of the flooded kind, want 50", text, n)
		}
		if !strings.Contains(out.String(), "refusing address") || !strings.Contains(out.String(), "more lines like this one are dropped") {
			t.Errorf("text %v: another kind or the note is missing:\n%.500s", text, out.String())
		}
		// Many kinds: the byte budget holds.
		for i := range 5000 {
			log.Info("kind "+strings.Repeat("x", i%977), "i", i)
		}
		if out.Len() > 64<<10 {
			t.Errorf("text %v: %d bytes in a minute, budget %d", text, out.Len(), 64<<10)
		}
		now = now.Add(time.Minute)
		before := out.Len()
		log.Info("next minute")
		tail := out.String()[before:]
		if !strings.Contains(tail, "over the log budget") || !strings.Contains(tail, "too many of one kind") || !strings.Contains(tail, "next minute") {
			t.Errorf("text %v: next minute:\n%s", text, tail)
		}
	}
}
