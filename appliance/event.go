package appliance

import (
	"log/slog"
	"sync"
)

// Event types.
const (
	// EventPhonesChanged: the config of MACs changed (committed); the sync
	// loop notifies them.
	EventPhonesChanged = "phones_changed"
	// EventResync: an admin asked for MACs to be notified now.
	EventResync = "resync"
	// EventAddressLearned: the SIP address of MACs, which wait for a
	// NOTIFY, became known.
	EventAddressLearned = "address_learned"
	// EventAccessChanged: what a fetch of MACs' configs gets changed,
	// with no new version yet: a claim window opened, or a change
	// committed whose versions are being computed (EventPhonesChanged
	// follows). File caches drop the MACs; nothing is sent.
	EventAccessChanged = "access_changed"
	// EventFetched: MACs fetched their config (any version); the sync
	// loop frees their place in its window.
	EventFetched = "fetched"
	// EventStuck: MACs did not report in time after a trigger.
	EventStuck = "stuck"
)

// Event is published after a commit.
type Event struct {
	Type string
	MACs []string
}

// EventBus is a small in-process publish/subscribe bus. Publish never
// blocks: a subscriber whose buffer is full loses the event and the drop is
// logged and counted (the sync loop recovers from the stored state).
type EventBus struct {
	Logger *slog.Logger

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	hooks   map[int]func(Event)
	nextID  int
	dropped uint64
}

// Subscription receives events on C until Close.
type Subscription struct {
	C     <-chan Event
	c     chan Event
	bus   *EventBus
	types map[string]bool // nil: every type
}

// NewEventBus returns a bus that logs drops to logger.
func NewEventBus(logger *slog.Logger) *EventBus {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &EventBus{Logger: logger, subs: map[*Subscription]struct{}{}}
}

// Subscribe returns a subscription with a buffer of n events, of the given
// types only (all types when none is given): a subscriber that cares about
// few events is not flooded by the others (one EventFetched per fetch).
func (b *EventBus) Subscribe(n int, types ...string) *Subscription {
	c := make(chan Event, n)
	s := &Subscription{C: c, c: c, bus: b}
	if len(types) > 0 {
		s.types = map[string]bool{}
		for _, t := range types {
			s.types[t] = true
		}
	}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Close unsubscribes and closes C.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.c)
	}
}

// Hook registers f to run synchronously inside Publish, before any
// subscriber gets the event: for caches that must be invalid by the time
// anyone acts on a change (a phone told to re-fetch must not get the old
// file). f must be quick and must not publish. The returned func removes it.
func (b *EventBus) Hook(f func(Event)) (remove func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hooks == nil {
		b.hooks = map[int]func(Event){}
	}
	id := b.nextID
	b.nextID++
	b.hooks[id] = f
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.hooks, id)
	}
}

// Publish runs the hooks, then hands e to every subscriber without
// blocking.
func (b *EventBus) Publish(e Event) {
	if b == nil || len(e.MACs) == 0 && e.Type == EventPhonesChanged {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.hooks {
		h(e)
	}
	for s := range b.subs {
		if s.types != nil && !s.types[e.Type] {
			continue
		}
		select {
		case s.c <- e:
		default:
			b.dropped++
			b.Logger.Warn("event dropped: subscriber is slow", "type", e.Type, "phones", len(e.MACs))
		}
	}
}

// Dropped returns how many deliveries were dropped.
func (b *EventBus) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
