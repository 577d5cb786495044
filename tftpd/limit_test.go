package tftpd

import (
	"testing"
	"time"
)

func TestLogLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type call struct {
		at         time.Duration
		kind       string
		n          int   // calls
		written    int   // of which let through
		last       bool  // the last let through is the window's last
		suppressed int64 // reported by the first let through
	}
	for _, tc := range []struct {
		name  string
		calls []call
	}{
		{"under the burst", []call{{at: 0, kind: "a", n: 4, written: 4}}},
		{"a flood is cut at the burst", []call{{at: 0, kind: "a", n: 1000, written: 5, last: true}}},
		{"kinds are counted apart", []call{
			{at: 0, kind: "a", n: 100, written: 5, last: true},
			{at: time.Second, kind: "b", n: 100, written: 5, last: true},
		}},
		{"the next window reports what was dropped", []call{
			{at: 0, kind: "a", n: 1000, written: 5, last: true},
			{at: 30 * time.Second, kind: "a", n: 10},
			{at: time.Minute, kind: "a", n: 1, written: 1, suppressed: 1005},
			{at: time.Minute + time.Second, kind: "a", n: 1, written: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			l := newLogLimiter(time.Minute)
			l.now = func() time.Time { return now }
			for i, c := range tc.calls {
				now = t0.Add(c.at)
				written, first := 0, true
				var last bool
				for range c.n {
					ok, isLast, suppressed := l.allow(c.kind, 5)
					if !ok {
						continue
					}
					if first && suppressed != c.suppressed {
						t.Errorf("call %d: suppressed %d, want %d", i, suppressed, c.suppressed)
					}
					if !first && suppressed != 0 {
						t.Errorf("call %d: suppressed %d reported twice", i, suppressed)
					}
					first = false
					written++
					last = isLast
				}
				if written != c.written || last != c.last {
					t.Errorf("call %d: %d written (last %v), want %d (last %v)", i, written, last, c.written, c.last)
				}
			}
		})
	}
}
