package sip

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLimited is a slog.Handler that passes at most burst records per
// message text per minute, so a flood of garbage datagrams (each logged by
// the SIP stack) cannot fill the journal.
type rateLimited struct {
	next  slog.Handler
	burst int
	now   func() time.Time
	state *rateState
}

type rateState struct {
	mu     sync.Mutex
	window time.Time
	counts map[string]int
}

func newRateLimited(next slog.Handler, burst int) *rateLimited {
	return &rateLimited{next: next, burst: burst, now: time.Now, state: &rateState{counts: map[string]int{}}}
}

func (h *rateLimited) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *rateLimited) Handle(ctx context.Context, r slog.Record) error {
	st := h.state
	st.mu.Lock()
	now := h.now()
	if now.Sub(st.window) >= time.Minute {
		st.window, st.counts = now, map[string]int{}
	}
	st.counts[r.Message]++
	n := st.counts[r.Message]
	st.mu.Unlock()
	switch {
	case n < h.burst:
		return h.next.Handle(ctx, r)
	case n == h.burst:
		r.AddAttrs(slog.String("note", "more lines like this one are dropped for a minute"))
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *rateLimited) WithAttrs(a []slog.Attr) slog.Handler {
	return &rateLimited{next: h.next.WithAttrs(a), burst: h.burst, now: h.now, state: h.state}
}

func (h *rateLimited) WithGroup(name string) slog.Handler {
	return &rateLimited{next: h.next.WithGroup(name), burst: h.burst, now: h.now, state: h.state}
}
