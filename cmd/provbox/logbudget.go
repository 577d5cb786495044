package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The serve log under abuse (SPEC §9): lines are rate-limited per kind
// (their message) and in bytes, so that no remote input — floods of
// guesses, TFTP requests, PnP packets, reports — makes the log grow
// faster than about 1 MB a minute. Dropped lines are counted and the count
// is logged when the minute is over.
const (
	logKindPerMinute  = 600     // lines of one message a minute
	logBytesPerMinute = 1 << 20 // bytes a minute, all lines
)

// kindLimited is a slog.Handler passing at most perMinute records of one
// message a minute; the last one passed says more are dropped.
type kindLimited struct {
	next      slog.Handler
	perMinute int
	now       func() time.Time
	st        *kindState
}

type kindState struct {
	mu      sync.Mutex
	window  time.Time
	counts  map[string]int
	dropped int
}

func newKindLimited(next slog.Handler, perMinute int, now func() time.Time) *kindLimited {
	return &kindLimited{next: next, perMinute: perMinute, now: now, st: &kindState{counts: map[string]int{}}}
}

func (h *kindLimited) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *kindLimited) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	st.mu.Lock()
	now := h.now()
	var summary int
	if now.Sub(st.window) >= time.Minute {
		summary = st.dropped
		st.window, st.dropped = now, 0
		clear(st.counts)
	}
	if len(st.counts) > 10000 { // kinds are fixed strings; bound it anyway
		clear(st.counts)
	}
	st.counts[r.Message]++
	n := st.counts[r.Message]
	if n > h.perMinute {
		st.dropped++
	}
	st.mu.Unlock()
	if summary > 0 {
		s := slog.NewRecord(now, slog.LevelWarn, "log lines dropped in the last minute: too many of one kind", 0)
		s.AddAttrs(slog.Int("dropped", summary), slog.Int("per_kind_per_minute", h.perMinute))
		h.next.Handle(ctx, s)
	}
	switch {
	case n < h.perMinute:
		return h.next.Handle(ctx, r)
	case n == h.perMinute:
		r.AddAttrs(slog.String("note", "more lines like this one are dropped for the rest of the minute"))
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *kindLimited) WithAttrs(a []slog.Attr) slog.Handler {
	return &kindLimited{next: h.next.WithAttrs(a), perMinute: h.perMinute, now: h.now, st: h.st}
}

func (h *kindLimited) WithGroup(name string) slog.Handler {
	return &kindLimited{next: h.next.WithGroup(name), perMinute: h.perMinute, now: h.now, st: h.st}
}

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
