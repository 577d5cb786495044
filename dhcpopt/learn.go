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
	seen *appliance.Recent // MAC and IP told within learnEvery
	wg   sync.WaitGroup
}

func newLearner(s *Server) *learner {
	return &learner{s: s, c: make(chan learnItem, 1024), seen: appliance.NewRecent(learnEvery, 8192)}
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
	if l.s.Services.Sync == nil || !l.seen.First(it.mac+" "+it.ip, l.s.Now()) {
		return
	}
	// The store decides: a known phone learns its address (the lease is
	// proof enough, SPEC §6), an unknown one is discovered.
	err := l.s.Services.Sync.Sighted(ctx, appliance.Sighting{MAC: it.mac, IP: it.ip, Vendor: it.vendor, Source: appliance.SourceDHCP})
	if err != nil && ctx.Err() == nil {
		l.s.Logger.Warn("dhcp: cannot record a phone's lease", "mac", appliance.FormatMAC(it.mac), "ip", it.ip, "err", err)
	}
}

// limiter rate-limits log lines by key (a client, a kind of failure): each
// key logs at most once per limitEvery, so a chatty client cannot flood
// the log.
type limiter struct {
	now  func() time.Time
	seen *appliance.Recent
}

const limitEvery = 5 * time.Minute

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, seen: appliance.NewRecent(limitEvery, 4096)}
}

func (l *limiter) allow(key string) bool { return l.seen.First(key, l.now()) }

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
