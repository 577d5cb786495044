package appliance_test

import (
	"fmt"
	"testing"

	"github.com/provbox/provbox/appliance"
)

func TestSlots(t *testing.T) {
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
			steps:  []step{{op: "acquire", ip: "10.0.0.1", n: 8}, {op: "acquire", ip: "10.0.0.1", n: 1, want: appliance.SlotsClient}, {op: "acquire", ip: "10.0.0.2", n: 1}},
			total:  9,
			client: map[string]int{"10.0.0.1": 8, "10.0.0.2": 1},
		},
		{
			name:   "200 in total",
			steps:  append(clients("10.0.1", 25, 8), step{op: "acquire", ip: "10.0.2.1", n: 1, want: appliance.SlotsTotal}),
			total:  200,
			client: map[string]int{"10.0.1.0": 8, "10.0.1.24": 8, "10.0.2.1": 0},
		},
		{
			name:   "a client at its limit is refused as such when the total is full too",
			steps:  append(clients("10.0.3", 192, 1), step{op: "acquire", ip: "10.0.4.1", n: 8}, step{op: "acquire", ip: "10.0.4.1", n: 1, want: appliance.SlotsClient}),
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
				{op: "acquire", ip: "10.0.0.1", n: 1, want: appliance.SlotsClient},
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
			steps: append(clients("10.0.5", 200, 1), step{op: "acquire", ip: "10.0.6.1", n: 1, want: appliance.SlotsTotal},
				step{op: "release", n: 0}, step{op: "release", n: 1},
				step{op: "acquire", ip: "10.0.6.1", n: 2}, step{op: "acquire", ip: "10.0.6.2", n: 1, want: appliance.SlotsTotal}),
			total:  200,
			client: map[string]int{"10.0.6.1": 2, "10.0.5.0": 0, "10.0.5.2": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := appliance.NewSlots(200, 8)
			var held []func()
			for i, st := range tc.steps {
				switch st.op {
				case "acquire":
					for j := range st.n {
						release, by := l.Take(st.ip)
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
			total, _ := l.InFlight("")
			if total != tc.total {
				t.Errorf("total %d, want %d", total, tc.total)
			}
			for ip, want := range tc.client {
				if _, n := l.InFlight(ip); n != want {
					t.Errorf("%s: %d in flight, want %d", ip, n, want)
				}
			}
			for _, r := range held {
				r()
			}
			if total, _ := l.InFlight(""); total != 0 || l.Clients() != 0 {
				t.Errorf("after releasing all: total %d, %d addresses", total, l.Clients())
			}
		})
	}
}
