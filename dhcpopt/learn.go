package dhcpopt

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/provbox/provbox/appliance"
)

// learnEvery bounds the store writes a client's leases cause: the same
// MAC at the same address is told to the sync loop (or recorded under
// Discovered) at most once per learnEvery.
const learnEvery = 10 * time.Minute

// learnItem is one ACKed lease to tell the rest of provbox about.
type learnItem struct {
	mac, ip string
	vendor  string // phone vendor (MAC prefix or option 60), "" for other clients
	phone   string // name of the provisioned phone with this MAC, "" if none
}

// learner tells the store of phones' leases (SyncService.Sighted: a known
// phone's address learned, an unknown one discovered), off the packet
// path: a bounded queue (full: dropped, the next lease tells again) and one
// goroutine.
type learner struct {
	s    *Server
	c    chan learnItem
	seen map[string]learnSeen // only the run goroutine touches it
	wg   sync.WaitGroup
}

type learnSeen struct {
	ip string
	at time.Time
}

func newLearner(s *Server) *learner {
	return &learner{s: s, c: make(chan learnItem, 1024), seen: map[string]learnSeen{}}
}

func (l *learner) add(it learnItem) {
	if it.phone == "" && it.vendor == "" {
		return // neither a known phone nor a phone at all
	}
	select {
	case l.c <- it:
	default:
	}
}

func (l *learner) run(ctx context.Context) {
	l.wg.Add(1)
	defer l.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-l.c:
			l.tell(ctx, it)
		}
	}
}

func (l *learner) wait() { l.wg.Wait() }

func (l *learner) tell(ctx context.Context, it learnItem) {
	now := l.s.Now()
	if prev, ok := l.seen[it.mac]; ok && prev.ip == it.ip && now.Sub(prev.at) < learnEvery {
		return
	}
	if len(l.seen) > 8192 {
		clear(l.seen)
	}
	l.seen[it.mac] = learnSeen{ip: it.ip, at: now}
	if l.s.Services.Sync == nil {
		return
	}
	// The store decides: a known phone learns its address (the lease is
	// proof enough, SPEC §6), an unknown one is discovered.
	err := l.s.Services.Sync.Sighted(ctx, appliance.Sighting{MAC: it.mac, IP: it.ip, Vendor: it.vendor, Source: appliance.SourceDHCP})
	if err != nil && ctx.Err() == nil {
		l.s.Logger.Warn("dhcp: cannot record a phone's lease", "mac", appliance.FormatMAC(it.mac), "ip", it.ip, "err", err)
	}
}

// limiter rate-limits log lines by key: each key logs at most once per
// limitEvery, so a chatty client cannot flood the log.
type limiter struct {
	now  func() time.Time
	mu   sync.Mutex
	last map[string]time.Time
}

const limitEvery = 5 * time.Minute

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, last: map[string]time.Time{}}
}

func (l *limiter) allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < limitEvery {
		return false
	}
	if len(l.last) > 4096 {
		clear(l.last)
	}
	l.last[key] = now
	return true
}

func (l *limiter) info(logger *slog.Logger, key, msg string, args ...any) {
	if l.allow(key) {
		logger.Info(msg, args...)
	}
}

func (l *limiter) warn(logger *slog.Logger, key, msg string, args ...any) {
	if l.allow(key) {
		logger.Warn(msg, args...)
	}
}
