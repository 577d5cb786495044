package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// The serve log under abuse (SPEC §9): lines are rate-limited per kind
// (their message; appliance.LogLimit) and in bytes, so that no remote input — floods of
// guesses, TFTP requests, PnP packets, reports — makes the log grow
// faster than about 1 MB a minute. Dropped lines are counted and the count
// is logged when the minute is over.
const (
	logKindPerMinute  = 600     // lines of one message a minute
	logBytesPerMinute = 1 << 20 // bytes a minute, all lines
)

// byteBudget is the log's writer: at most max bytes a minute go through
// (slog writes one line per Write); past it lines are dropped and counted,
// and the first line of the next minute is preceded by a line saying how
// many were dropped, in the log's format.
type byteBudget struct {
	w    io.Writer
	max  int
	text bool
	now  func() time.Time

	mu      sync.Mutex
	window  time.Time
	used    int
	dropped int
}

func (b *byteBudget) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Sub(b.window) >= time.Minute {
		if b.dropped > 0 {
			b.w.Write(b.summary(now))
		}
		b.window, b.used, b.dropped = now, 0, 0
	}
	if b.used+len(p) > b.max {
		b.dropped++
		return len(p), nil
	}
	b.used += len(p)
	return b.w.Write(p)
}

func (b *byteBudget) summary(now time.Time) []byte {
	msg := "log lines dropped in the last minute: over the log budget"
	if b.text {
		return fmt.Appendf(nil, "time=%s level=WARN msg=%q dropped=%d bytes_per_minute=%d\n", now.Format(time.RFC3339Nano), msg, b.dropped, b.max)
	}
	return fmt.Appendf(nil, `{"time":%q,"level":"WARN","msg":%q,"dropped":%d,"bytes_per_minute":%d}`+"\n", now.Format(time.RFC3339Nano), msg, b.dropped, b.max)
}
