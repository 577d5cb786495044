package tftpd

import (
	"sync"
	"time"
)

// limiter bounds the transfers in flight, in total and per client address.
// A slot is taken in the read handler before the file is resolved and given
// back when the handler returns (pin/tftp's ReadFrom returns once the
// transfer has ended, served or failed).
type limiter struct {
	max, perClient int

	mu    sync.Mutex
	total int
	byIP  map[string]int // only addresses with a transfer in flight
}

func newLimiter(max, perClient int) *limiter {
	return &limiter{max: max, perClient: perClient, byIP: map[string]int{}}
}

// Which limit refused a request.
const (
	limitTotal  = "total"
	limitClient = "client"
)

// acquire takes a slot for ip. It returns a release function (safe to call
// more than once) or, when a limit is reached, nil and the limit's name.
func (l *limiter) acquire(ip string) (release func(), refusedBy string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byIP[ip] >= l.perClient {
		return nil, limitClient
	}
	if l.total >= l.max {
		return nil, limitTotal
	}
	l.total++
	l.byIP[ip]++
	var once sync.Once
	return func() { once.Do(func() { l.release(ip) }) }, ""
}

func (l *limiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

// inFlight returns the transfers in flight, in total and for ip.
func (l *limiter) inFlight(ip string) (total, client int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.byIP[ip]
}

// logLimiter lets through at most burst lines of each kind per window (a
// minute), so that no flood of requests can make the log grow with it. The
// lines it drops are counted; the next line of that kind written carries
// the count.
type logLimiter struct {
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	start      time.Time // of the current window
	written    int       // in the current window
	suppressed int64     // since the last line written
}

func newLogLimiter(window time.Duration) *logLimiter {
	return &logLimiter{window: window, now: time.Now, kinds: map[string]*logKind{}}
}

// allow reports whether a line of kind may be written now (at most burst
// a window), whether it is the last one of its window, and how many lines
// of kind were dropped since the last one written.
func (l *logLimiter) allow(kind string, burst int) (ok, last bool, suppressed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k := l.kinds[kind]
	if k == nil {
		k = &logKind{start: now}
		l.kinds[kind] = k
	}
	if now.Sub(k.start) >= l.window {
		k.start, k.written = now, 0
	}
	if k.written >= burst {
		k.suppressed++
		return false, false, 0
	}
	k.written++
	suppressed, k.suppressed = k.suppressed, 0
	return true, k.written == burst, suppressed
}
