package sip

import (
	"sort"
	"time"
)

// scheduler decides when each phone gets its check-sync NOTIFY. It has no
// clock of its own: callers pass the time, so it is tested with made-up
// times.
//
// Coalescing is a per-phone throttle with a window: a change to a phone
// that was not notified within the window is sent at once (an edit reaches
// the phone in milliseconds); changes arriving within the window after a
// NOTIFY are gathered into one more NOTIFY at the window's end. Pacing
// spaces NOTIFY starts at least 1/rate apart across all phones, so a bulk
// change (one key on 1,000 phones) never floods the LAN.
type scheduler struct {
	window   time.Duration // coalescing window (500 ms)
	interval time.Duration // 1/rate between NOTIFY starts

	lastSent map[string]time.Time // start of the last NOTIFY per phone
	due      map[string]time.Time // phones waiting, with the earliest time they may go
	force    map[string]bool      // an admin's resync: send whatever the state
	nextSlot time.Time            // pacing: the earliest start of the next NOTIFY
}

func newScheduler(window time.Duration, rate int) *scheduler {
	if rate <= 0 {
		rate = 50
	}
	return &scheduler{
		window:   window,
		interval: time.Second / time.Duration(rate),
		lastSent: map[string]time.Time{},
		due:      map[string]time.Time{},
		force:    map[string]bool{},
	}
}

// add schedules a NOTIFY for mac.
func (s *scheduler) add(mac string, now time.Time, force bool) {
	at := now
	if last, ok := s.lastSent[mac]; ok && now.Sub(last) < s.window {
		at = last.Add(s.window)
	}
	if cur, ok := s.due[mac]; !ok || at.Before(cur) {
		s.due[mac] = at
	}
	if force {
		s.force[mac] = true
	}
}

// take returns the phones to notify now (oldest first), as pacing allows,
// and marks them sent. force tells which were admin resyncs. A due phone
// for which want says false (already synced, no address) is dropped
// without spending a pacing slot or opening a coalescing window.
func (s *scheduler) take(now time.Time, want func(mac string, force bool) bool) (macs []string, force []bool) {
	var ready []string
	for mac, at := range s.due {
		if !at.After(now) {
			ready = append(ready, mac)
		}
	}
	sort.Slice(ready, func(i, j int) bool {
		a, b := s.due[ready[i]], s.due[ready[j]]
		if !a.Equal(b) {
			return a.Before(b)
		}
		return ready[i] < ready[j]
	})
	for _, mac := range ready {
		if s.nextSlot.After(now) {
			break
		}
		if want != nil && !want(mac, s.force[mac]) {
			delete(s.due, mac)
			delete(s.force, mac)
			continue
		}
		slot := s.nextSlot
		if slot.Before(now) {
			slot = now // no burst credit for idle time
		}
		s.nextSlot = slot.Add(s.interval)
		macs = append(macs, mac)
		force = append(force, s.force[mac])
		s.lastSent[mac] = now
		delete(s.due, mac)
		delete(s.force, mac)
	}
	s.forget(now)
	return macs, force
}

// next returns when take may have work next, and false when nothing waits.
func (s *scheduler) next() (time.Time, bool) {
	var first time.Time
	for _, at := range s.due {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		return first, false
	}
	if s.nextSlot.After(first) {
		first = s.nextSlot
	}
	return first, true
}

// forget drops send times older than the window, so memory stays bounded
// by the phones notified in the last window.
func (s *scheduler) forget(now time.Time) {
	if len(s.lastSent) < 1024 {
		return
	}
	for mac, t := range s.lastSent {
		if now.Sub(t) >= s.window {
			delete(s.lastSent, mac)
		}
	}
}
