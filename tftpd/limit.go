package tftpd

import (
	"sync"
	"time"
)

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
