package sip

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestScheduler_CoalesceAndPace(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	type step struct {
		at   int      // ms after t0
		add  []string // phones changed at this time
		want []string // phones take returns at this time
	}
	for _, tc := range []struct {
		name  string
		rate  int
		steps []step
	}{
		{"single edit goes at once", 50, []step{{0, []string{"a"}, []string{"a"}}}},
		{"burst coalesces into one trailing notify", 50, []step{
			{0, []string{"a"}, []string{"a"}},
			{100, []string{"a"}, nil},
			{200, []string{"a"}, nil},
			{499, nil, nil},
			{500, nil, []string{"a"}},
			{600, nil, nil},
		}},
		{"edit after the window goes at once", 50, []step{
			{0, []string{"a"}, []string{"a"}},
			{600, []string{"a"}, []string{"a"}},
		}},
		{"pacing spaces starts by 1/rate", 10, []step{ // 100 ms apart
			{0, []string{"a", "b", "c"}, []string{"a"}},
			{50, nil, nil},
			{100, nil, []string{"b"}},
			{200, nil, []string{"c"}},
		}},
		{"no burst credit after idle", 10, []step{
			{0, []string{"a"}, []string{"a"}},
			{5000, []string{"b", "c"}, []string{"b"}},
			{5100, nil, []string{"c"}},
		}},
		{"a late wake-up catches up", 10, []step{
			{0, []string{"a", "b", "c"}, []string{"a"}},
			{250, nil, []string{"b", "c"}}, // b was due at 100, c at 200
			{300, []string{"d"}, []string{"d"}},
		}},
		{"high rate sends many at once", 1000, []step{
			{0, []string{"a", "b"}, []string{"a"}},
			{1, nil, []string{"b"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScheduler(ms(500), tc.rate, 1000)
			for _, st := range tc.steps {
				for _, m := range st.add {
					s.add(m, at(st.at), false)
				}
				got, _ := s.take(at(st.at), nil)
				if !reflect.DeepEqual(got, st.want) {
					t.Fatalf("at %d ms: got %v want %v", st.at, got, st.want)
				}
			}
		})
	}
}

func TestScheduler_NextAndForce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newScheduler(ms(500), 50, 1000)
	if _, ok := s.next(); ok {
		t.Fatal("idle scheduler has work")
	}
	s.add("a", t0, false)
	s.take(t0, nil)
	s.add("a", t0.Add(ms(10)), true)
	if n, ok := s.next(); !ok || !n.Equal(t0.Add(ms(500))) {
		t.Fatalf("next %v %v", n, ok)
	}
	macs, force := s.take(t0.Add(ms(500)), nil)
	if len(macs) != 1 || !force[0] {
		t.Fatalf("%v %v", macs, force)
	}
}

// 1,000 phones at 50/s take 20 s of starts; at 1000/s one second.
func TestScheduler_BulkDuration(t *testing.T) {
	for _, rate := range []int{50, 1000} {
		t0 := time.Unix(1000, 0)
		s := newScheduler(ms(500), rate, 1000)
		for i := 0; i < 1000; i++ {
			s.add(fmt.Sprint(i), t0, false)
		}
		sent, now := 0, t0
		for sent < 1000 {
			got, _ := s.take(now, nil)
			sent += len(got)
			next, ok := s.next()
			if !ok {
				break
			}
			now = next
		}
		want := time.Duration(999) * time.Second / time.Duration(rate)
		if d := now.Sub(t0); d != want {
			t.Errorf("rate %d: last start after %v, want %v", rate, d, want)
		}
	}
}

// Phones that need no NOTIFY cost neither a pacing slot nor a window.
func TestScheduler_SkippedPhonesCostNothing(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newScheduler(ms(500), 10, 1000) // 100 ms apart
	for i := 0; i < 100; i++ {
		s.add(fmt.Sprint("new", i), t0, false)
	}
	s.add("real", t0, false)
	got, _ := s.take(t0, func(mac string, _ bool) bool { return mac == "real" })
	if !reflect.DeepEqual(got, []string{"real"}) {
		t.Fatalf("got %v", got)
	}
	// A skipped phone changed again is sent at once, no window held.
	s.add("new1", t0.Add(ms(200)), false)
	if got, _ := s.take(t0.Add(ms(200)), nil); !reflect.DeepEqual(got, []string{"new1"}) {
		t.Fatalf("after skip: %v", got)
	}
}

// TestScheduler_ToldWindow: at most limit phones told and not fetched;
// a fetch (release) or the timeout frees a place.
func TestScheduler_ToldWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newScheduler(ms(500), 1000, 2) // starts 1 ms apart
	for _, m := range []string{"a", "b", "c", "d"} {
		s.add(m, t0, false)
	}
	for _, st := range []struct {
		at      time.Duration
		release []string
		want    []string
		telling int
	}{
		{0, nil, []string{"a"}, 1},
		{ms(1), nil, []string{"b"}, 2},
		{ms(2), nil, nil, 2}, // full
		{ms(3), []string{"a"}, []string{"c"}, 2},
		{ms(4), []string{"x"}, nil, 2},               // not told: frees nothing
		{toldTimeout + ms(1), nil, []string{"d"}, 2}, // b timed out; c was told at 3 ms
		{toldTimeout + ms(3), nil, nil, 1},
	} {
		for _, m := range st.release {
			s.release(m)
		}
		got, _ := s.take(t0.Add(st.at), nil)
		if !reflect.DeepEqual(got, st.want) || s.telling() != st.telling {
			t.Fatalf("at %v: got %v (telling %d), want %v (%d)", st.at, got, s.telling(), st.want, st.telling)
		}
	}
	if n, ok := s.next(); ok {
		t.Fatalf("nothing due, next %v", n)
	}
}
