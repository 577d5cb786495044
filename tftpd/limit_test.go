package tftpd

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	type step struct {
		op   string // "acquire" or "release" (of the n-th slot acquired, from 0)
		ip   string
		n    int    // release: which slot; acquire: how many times
		want string // acquire: "" (all granted), or the limit that refuses the last one
	}
	// clients returns acquire steps of each slots from n addresses.
	clients := func(prefix string, n, each int) []step {
		var out []step
		for i := range n {
			out = append(out, step{op: "acquire", ip: fmt.Sprintf("%s.%d", prefix, i), n: each})
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		steps  []step
		total  int // in flight at the end
		client map[string]int
	}{
		{
			name:   "8 per client",
			steps:  []step{{op: "acquire", ip: "10.0.0.1", n: 8}, {op: "acquire", ip: "10.0.0.1", n: 1, want: limitClient}, {op: "acquire", ip: "10.0.0.2", n: 1}},
			total:  9,
			client: map[string]int{"10.0.0.1": 8, "10.0.0.2": 1},
		},
		{
			name:   "200 in total",
			steps:  append(clients("10.0.1", 25, 8), step{op: "acquire", ip: "10.0.2.1", n: 1, want: limitTotal}),
			total:  200,
			client: map[string]int{"10.0.1.0": 8, "10.0.1.24": 8, "10.0.2.1": 0},
		},
		{
			name:   "a client at its limit is refused as such when the total is full too",
			steps:  append(clients("10.0.3", 192, 1), step{op: "acquire", ip: "10.0.4.1", n: 8}, step{op: "acquire", ip: "10.0.4.1", n: 1, want: limitClient}),
			total:  200,
			client: map[string]int{"10.0.4.1": 8},
		},
		{
			name: "release on completion or failure frees the slot",
			steps: []step{
				{op: "acquire", ip: "10.0.0.1", n: 8},
				{op: "release", n: 3}, // served
				{op: "release", n: 5}, // failed
				{op: "acquire", ip: "10.0.0.1", n: 2},
				{op: "acquire", ip: "10.0.0.1", n: 1, want: limitClient},
			},
			total:  8,
			client: map[string]int{"10.0.0.1": 8},
		},
		{
			name: "a second release does nothing",
			steps: []step{
				{op: "acquire", ip: "10.0.0.1", n: 2},
				{op: "release", n: 0},
				{op: "release", n: 0},
				{op: "release", n: 0},
			},
			total:  1,
			client: map[string]int{"10.0.0.1": 1},
		},
		{
			name: "freed total slots serve other clients",
			steps: append(clients("10.0.5", 200, 1), step{op: "acquire", ip: "10.0.6.1", n: 1, want: limitTotal},
				step{op: "release", n: 0}, step{op: "release", n: 1},
				step{op: "acquire", ip: "10.0.6.1", n: 2}, step{op: "acquire", ip: "10.0.6.2", n: 1, want: limitTotal}),
			total:  200,
			client: map[string]int{"10.0.6.1": 2, "10.0.5.0": 0, "10.0.5.2": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(200, 8)
			var held []func()
			for i, st := range tc.steps {
				switch st.op {
				case "acquire":
					for j := range st.n {
						release, by := l.acquire(st.ip)
						last := j == st.n-1
						if last && st.want != "" {
							if release != nil || by != st.want {
								t.Fatalf("step %d: acquire %s got %v %q, want refused by %q", i, st.ip, release != nil, by, st.want)
							}
							continue
						}
						if release == nil {
							t.Fatalf("step %d: acquire %s (%d of %d) refused by %q", i, st.ip, j+1, st.n, by)
						}
						held = append(held, release)
					}
				case "release":
					held[st.n]()
				}
			}
			total, _ := l.inFlight("")
			if total != tc.total {
				t.Errorf("total %d, want %d", total, tc.total)
			}
			for ip, want := range tc.client {
				if _, n := l.inFlight(ip); n != want {
					t.Errorf("%s: %d in flight, want %d", ip, n, want)
				}
			}
			for _, r := range held {
				r()
			}
			if total, _ := l.inFlight(""); total != 0 || len(l.byIP) != 0 {
				t.Errorf("after releasing all: total %d, %d addresses", total, len(l.byIP))
			}
		})
	}
}

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
