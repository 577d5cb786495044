package sip

import (
	"net/netip"
	"sync"
	"time"
)

// Plug-and-play limits, modelled on Kamailio's pike module: a SUBSCRIBE
// that would pass one of them is dropped, unanswered, before anything is
// sent or written. The defaults apply when the Server's field is zero.
const (
	// DefaultPnPPerSource is how many SUBSCRIBEs one source IP gets
	// answered a minute. A Yealink repeats its PnP SUBSCRIBE a few times
	// as it boots.
	DefaultPnPPerSource = 5
	// DefaultPnPRate is how many SUBSCRIBEs, from all sources together,
	// are answered a second (also the burst).
	DefaultPnPRate = 20
	// DefaultPnPInFlight is how many PnP NOTIFYs may wait for their
	// answer at once. A phone answers at once; a forged source never does,
	// and keeps its place until NotifyTimeout ends the NOTIFY's
	// transaction.
	DefaultPnPInFlight = 32
	// DefaultPnPSources is how many source addresses the per-source limit
	// remembers at most; past it, SUBSCRIBEs from addresses it does not
	// remember are dropped until the older ones are forgotten.
	DefaultPnPSources = 10000
)

// pnpWindow is the per-source window: PnPPerSource answers per window.
const pnpWindow = time.Minute

// Why a PnP SUBSCRIBE was dropped (the log's "reason").
const (
	dropContact  = "contact"   // its Contact host is not the packet's source address
	dropSource   = "source"    // this source's answers for the minute are used up
	dropBusy     = "busy"      // this source's last NOTIFY is still unanswered
	dropTotal    = "total"     // this second's answers (all sources) are used up
	dropInFlight = "in_flight" // PnPInFlight NOTIFYs are unanswered
	dropSources  = "sources"   // PnPSources addresses are remembered already
)

// pnpLimiter decides which PnP SUBSCRIBEs are answered: a token bucket
// per source IP (perSource a minute), one for all sources (rate a second),
// and a cap on NOTIFYs waiting for an answer (inFlight in total, one per
// source). Only answered SUBSCRIBEs create a source's entry, so with the
// defaults it holds at most about rate × a minute of them; maxSources caps
// it in any case, and entries idle for a window are forgotten.
type pnpLimiter struct {
	perSource  float64 // tokens per source (refilled over pnpWindow)
	rate       float64 // tokens a second, in total (and the bucket's size)
	inFlight   int
	maxSources int
	now        func() time.Time

	mu        sync.Mutex
	sources   map[netip.Addr]*pnpBucket
	tokens    float64   // the total bucket
	last      time.Time // of the total bucket's last refill
	flying    int
	lastPrune time.Time
	dropped   map[string]uint64 // by reason, since start
}

type pnpBucket struct {
	tokens float64
	last   time.Time // of the last refill
	flying int       // NOTIFYs unanswered (0 or 1)
}

func newPnPLimiter(perSource, rate, inFlight, maxSources int, now func() time.Time) *pnpLimiter {
	t := now()
	return &pnpLimiter{
		perSource: float64(perSource), rate: float64(rate), inFlight: inFlight, maxSources: maxSources, now: now,
		sources: map[netip.Addr]*pnpBucket{}, tokens: float64(rate), last: t, lastPrune: t, dropped: map[string]uint64{},
	}
}

// pnpLimits fills in the Server's zero limits with the defaults and makes
// its limiter.
func (s *Server) pnpLimits() *pnpLimiter {
	if s.PnPPerSource <= 0 {
		s.PnPPerSource = DefaultPnPPerSource
	}
	if s.PnPRate <= 0 {
		s.PnPRate = DefaultPnPRate
	}
	if s.PnPInFlight <= 0 {
		s.PnPInFlight = DefaultPnPInFlight
	}
	if s.PnPSources <= 0 {
		s.PnPSources = DefaultPnPSources
	}
	return newPnPLimiter(s.PnPPerSource, s.PnPRate, s.PnPInFlight, s.PnPSources, time.Now)
}

// acquire takes an answer for a SUBSCRIBE from ip: a token of its own, one
// of the total, and a place for its NOTIFY. It returns the function that
// gives the place back once the NOTIFY's transaction has ended (safe to
// call more than once) or, when a limit is reached, nil and the limit's
// reason (counted).
func (l *pnpLimiter) acquire(ip netip.Addr) (release func(), reason string) {
	ip = ip.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.lastPrune) >= pnpWindow {
		l.prune(now)
	}
	src := l.sources[ip]
	if src != nil {
		src.refill(now, l.perSource)
		switch {
		case src.tokens < 1:
			return nil, l.drop(dropSource)
		case src.flying > 0:
			return nil, l.drop(dropBusy)
		}
	}
	if el := now.Sub(l.last); el > 0 {
		l.tokens = min(l.rate, l.tokens+el.Seconds()*l.rate)
		l.last = now
	}
	if l.tokens < 1 {
		return nil, l.drop(dropTotal)
	}
	if l.flying >= l.inFlight {
		return nil, l.drop(dropInFlight)
	}
	if src == nil {
		if len(l.sources) >= l.maxSources && now.Sub(l.lastPrune) >= time.Second {
			l.prune(now)
		}
		if len(l.sources) >= l.maxSources {
			return nil, l.drop(dropSources)
		}
		src = &pnpBucket{tokens: l.perSource, last: now}
		l.sources[ip] = src
	}
	src.tokens--
	l.tokens--
	src.flying++
	l.flying++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			src.flying--
			l.flying--
			l.mu.Unlock()
		})
	}, ""
}

// refill adds the tokens earned since the last refill, up to size.
func (s *pnpBucket) refill(now time.Time, size float64) {
	if el := now.Sub(s.last); el > 0 {
		s.tokens = min(size, s.tokens+float64(el)/float64(pnpWindow)*size)
		s.last = now
	}
}

// prune forgets the sources whose bucket is full again and that wait for
// no answer: they are as good as new.
func (l *pnpLimiter) prune(now time.Time) {
	l.lastPrune = now
	for ip, s := range l.sources {
		if s.flying == 0 && now.Sub(s.last) >= pnpWindow {
			delete(l.sources, ip)
		}
	}
}

// drop counts a SUBSCRIBE dropped for reason; call with l.mu held.
func (l *pnpLimiter) drop(reason string) string {
	l.dropped[reason]++
	return reason
}

// dropForged counts a SUBSCRIBE dropped because its Contact is not its
// source, and returns how many were since start.
func (l *pnpLimiter) dropForged() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop(dropContact)
	return l.dropped[dropContact]
}

// count returns how many SUBSCRIBEs were dropped for reason since start.
func (l *pnpLimiter) count(reason string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped[reason]
}

// tracked returns how many sources are remembered, and the NOTIFYs
// unanswered.
func (l *pnpLimiter) tracked() (sources, flying int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources), l.flying
}
