package appliance

import (
	"fmt"
	"testing"
	"time"
)

func TestRecent(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	type step struct {
		key  string
		at   time.Duration // after t0
		want bool
	}
	for _, tc := range []struct {
		name  string
		max   int
		steps []step
	}{
		{"once per interval", 10, []step{{"a", 0, true}, {"a", 5 * time.Second, false}, {"b", 5 * time.Second, true}, {"a", 10 * time.Second, true}, {"a", 19 * time.Second, false}}},
		{"full: the expired go first", 2, []step{{"a", 0, true}, {"b", 8 * time.Second, true}, {"c", 12 * time.Second, true}, {"b", 13 * time.Second, false}}},
		{"full of fresh keys: all go", 2, []step{{"a", 0, true}, {"b", time.Second, true}, {"c", 2 * time.Second, true}, {"a", 3 * time.Second, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRecent(10*time.Second, tc.max)
			for i, s := range tc.steps {
				if got := r.First(s.key, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d (%s at %v): %v, want %v", i, s.key, s.at, got, s.want)
				}
			}
		})
	}
	r := NewRecent(time.Minute, 100)
	for i := range 1000 {
		r.First(fmt.Sprint(i), t0)
	}
	if n := len(r.at); n > 100 {
		t.Fatalf("%d keys held, at most 100", n)
	}
}
