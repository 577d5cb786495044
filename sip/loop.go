package sip

import (
	"container/heap"
	"time"
)

// scheduler decides when each phone gets its check-sync NOTIFY. It has no
// clock of its own: callers pass the time, so it is tested with made-up
// times.
//
// Coalescing is a per-phone throttle with a window: a change to a phone
// that was not notified within the window is sent at once (an edit reaches
// the phone in milliseconds); changes arriving within the window after a
// NOTIFY are gathered into one more NOTIFY at the window's end.
//
// Pacing has two limits. The told window: at most `told` phones have been
// told to sync and not fetched yet (fetched releases a phone, so does a
// trigger that failed, and a phone silent for toldTimeout); a bulk change
// (one key on 1,000 phones) therefore never has more than that many phones
// fetching at once, however fast they answer. And a ceiling on the rate:
// trigger starts are at least 1/rate apart across all phones.
type scheduler struct {
	window   time.Duration // coalescing window (500 ms)
	interval time.Duration // 1/rate between trigger starts
	limit    int           // the told window: phones told and not fetched, at most

	lastSent map[string]time.Time // start of the last trigger per phone
	due      map[string]time.Time // phones waiting, with the earliest time they may go
	force    map[string]bool      // an admin's resync: send whatever the state
	told     map[string]time.Time // phones told and not fetched yet, since when
	nextSlot time.Time            // pacing: the earliest start of the next trigger
	queue    dueQueue             // due, earliest first; entries that no longer match due are skipped
}

// dueItem is one phone's due time in the queue.
type dueItem struct {
	at  time.Time
	mac string
}

// dueQueue is a min-heap of due items: earliest first, then by MAC.
type dueQueue []dueItem

func (q dueQueue) Len() int { return len(q) }
func (q dueQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].mac < q[j].mac
}
func (q dueQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *dueQueue) Push(x any)   { *q = append(*q, x.(dueItem)) }
func (q *dueQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// peek drops stale entries from the top and returns the earliest due one.
func (s *scheduler) peek() (dueItem, bool) {
	for len(s.queue) > 0 {
		it := s.queue[0]
		if at, ok := s.due[it.mac]; ok && at.Equal(it.at) {
			return it, true
		}
		heap.Pop(&s.queue)
	}
	return dueItem{}, false
}

// burstSlots is how many trigger slots a late wake-up of the loop may
// catch up (a busy machine wakes it a few ms late; without it the rate
// would fall below the ceiling). Later than that counts as idle, which
// earns no credit.
const burstSlots = 5

// toldTimeout frees the place of a phone that was told but neither
// fetched nor failed: it may have fetched over a path we did not see, or
// be slow; the store's stuck rule reports it.
const toldTimeout = 10 * time.Second

func newScheduler(window time.Duration, rate, told int) *scheduler {
	if rate <= 0 {
		rate = 500
	}
	if told <= 0 {
		told = 100
	}
	return &scheduler{
		window:   window,
		interval: time.Second / time.Duration(rate),
		limit:    told,
		lastSent: map[string]time.Time{},
		due:      map[string]time.Time{},
		force:    map[string]bool{},
		told:     map[string]time.Time{},
	}
}

// release frees mac's place in the told window: it fetched, or its
// trigger failed.
func (s *scheduler) release(mac string) { delete(s.told, mac) }

// telling is how many phones are told and not fetched.
func (s *scheduler) telling() int { return len(s.told) }

// add schedules a NOTIFY for mac.
func (s *scheduler) add(mac string, now time.Time, force bool) {
	at := now
	if last, ok := s.lastSent[mac]; ok && now.Sub(last) < s.window {
		at = last.Add(s.window)
	}
	if cur, ok := s.due[mac]; !ok || at.Before(cur) {
		s.due[mac] = at
		heap.Push(&s.queue, dueItem{at, mac})
	}
	if force {
		s.force[mac] = true
	}
}

// take returns the phones to notify now (oldest first), as pacing allows,
// and marks them sent. force tells which were admin resyncs. A due phone
// for which want says false (already synced, no address) is dropped
// without spending a pacing slot or opening a coalescing window. It costs
// O(log n) per phone taken, and nothing when pacing allows none: the loop
// calls it after every event.
func (s *scheduler) take(now time.Time, want func(mac string, force bool) bool) (macs []string, force []bool) {
	for mac, at := range s.told {
		if now.Sub(at) >= toldTimeout {
			delete(s.told, mac)
		}
	}
	for !s.nextSlot.After(now) && len(s.told) < s.limit {
		it, ok := s.peek()
		if !ok || it.at.After(now) {
			break
		}
		heap.Pop(&s.queue)
		mac, f := it.mac, s.force[it.mac]
		delete(s.due, mac)
		delete(s.force, mac)
		if want != nil && !want(mac, f) {
			continue
		}
		slot := s.nextSlot
		if slot.Before(now.Add(-burstSlots * s.interval)) {
			slot = now // idle: no burst credit
		} // else a wake-up late by a few slots catches them up
		s.nextSlot = slot.Add(s.interval)
		macs = append(macs, mac)
		force = append(force, f)
		s.lastSent[mac] = now
		s.told[mac] = now
	}
	s.forget(now)
	return macs, force
}

// next returns when take may have work next, and false when nothing waits.
// With the told window full, that is when its oldest place times out (a
// fetch or a failure, which frees one sooner, wakes the loop anyway).
func (s *scheduler) next() (time.Time, bool) {
	it, ok := s.peek()
	if !ok {
		return time.Time{}, false
	}
	first := it.at
	if s.nextSlot.After(first) {
		first = s.nextSlot
	}
	if len(s.told) >= s.limit {
		var oldest time.Time
		for _, at := range s.told {
			if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
		}
		if free := oldest.Add(toldTimeout); free.After(first) {
			first = free
		}
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
