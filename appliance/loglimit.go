package appliance

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LogLimit returns a slog.Handler passing at most perMinute records of one
// message (its kind) a minute to next: SPEC §9's "log lines caused by
// remote input are rate-limited per kind". The last record let through in
// a minute says that more are dropped; the first record after a minute
// with drops is preceded by a line counting them. For example, sip logs
// unparseable datagrams through LogLimit(h, 5, time.Now), and serve's
// whole log goes through LogLimit(h, 600, time.Now).
func LogLimit(next slog.Handler, perMinute int, now func() time.Time) slog.Handler {
	return &logLimit{next: next, perMinute: perMinute, now: now, st: &logLimitState{counts: map[string]int{}}}
}

type logLimit struct {
	next      slog.Handler
	perMinute int
	now       func() time.Time
	st        *logLimitState // shared by the handlers WithAttrs and WithGroup derive
}

type logLimitState struct {
	mu      sync.Mutex
	window  time.Time
	counts  map[string]int
	dropped int
}

func (h *logLimit) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logLimit) Handle(ctx context.Context, r slog.Record) error {
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

func (h *logLimit) WithAttrs(a []slog.Attr) slog.Handler {
	return &logLimit{next: h.next.WithAttrs(a), perMinute: h.perMinute, now: h.now, st: h.st}
}

func (h *logLimit) WithGroup(name string) slog.Handler {
	return &logLimit{next: h.next.WithGroup(name), perMinute: h.perMinute, now: h.now, st: h.st}
}
