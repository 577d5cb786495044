package appliance

import "sync"

// Slots bounds what is held at once — TFTP transfers, HTTP connections —
// in all and per client address (SPEC §9: 200 TFTP transfers and 8 per
// client; HTTP connections under the descriptor limit and 256 per
// client), so that one client cannot take what the others need. For
// example:
//
//	release, by := slots.Take("10.0.0.9")
//	if release == nil { refuse: by is SlotsTotal or SlotsClient }
//	defer release()
type Slots struct {
	max, perClient int

	mu     sync.Mutex
	total  int
	byAddr map[string]int // only addresses holding a slot
}

// Which limit refused a Take.
const (
	SlotsTotal  = "total"
	SlotsClient = "client"
)

// NewSlots returns Slots with max in all and perClient per address.
func NewSlots(max, perClient int) *Slots {
	return &Slots{max: max, perClient: perClient, byAddr: map[string]int{}}
}

// Max returns the limits.
func (s *Slots) Max() (total, perClient int) { return s.max, s.perClient }

// Take takes a slot for addr. It returns a release function (safe to call
// more than once) or, when a limit is reached, nil and the limit's name
// (the client's first: a client at its own limit is told so even when all
// slots are taken).
func (s *Slots) Take(addr string) (release func(), refusedBy string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byAddr[addr] >= s.perClient {
		return nil, SlotsClient
	}
	if s.total >= s.max {
		return nil, SlotsTotal
	}
	s.total++
	s.byAddr[addr]++
	var once sync.Once
	return func() { once.Do(func() { s.give(addr) }) }, ""
}

func (s *Slots) give(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.byAddr[addr]--; s.byAddr[addr] <= 0 {
		delete(s.byAddr, addr)
	}
}

// InFlight returns the slots held, in all and by addr.
func (s *Slots) InFlight(addr string) (total, client int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.byAddr[addr]
}

// Clients returns how many addresses hold a slot (an address that gave
// all of them back is forgotten).
func (s *Slots) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byAddr)
}
