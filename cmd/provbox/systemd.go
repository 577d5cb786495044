package main

// systemd integration for `provbox serve` under the unit in systemd/
// (Type=notify, WatchdogSec=): READY=1 once every listener is bound,
// WATCHDOG=1 pings while the process is healthy, STOPPING=1 on the way out.
// Outside systemd (no NOTIFY_SOCKET) every call here is a no-op.

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// sdNotify sends state to systemd's notify socket; false when there is
// none (not started by systemd, or Type= is not notify). The environment
// is kept: STOPPING=1 goes to the same socket at the end.
func sdNotify(logger *slog.Logger, state string) bool {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		logger.Warn("systemd notify failed", "state", firstLine(state), "err", err)
	}
	return sent
}

// notifySystemd reports readiness — status names what is served, for
// `systemctl status` — and, when the unit sets WatchdogSec=, pings the
// watchdog at half the interval while healthy answers nil. A process
// whose store hangs stops pinging and systemd restarts it. The returned
// function sends STOPPING=1; call it when shutdown begins.
func notifySystemd(ctx context.Context, logger *slog.Logger, status string, healthy func(context.Context) error) (stopping func()) {
	if sdNotify(logger, "READY=1\nSTATUS="+status) {
		logger.Debug("told systemd: ready")
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("systemd watchdog: bad WATCHDOG_USEC; not pinging", "err", err)
	}
	done := make(chan struct{})
	if interval > 0 {
		go pingWatchdog(ctx, done, logger, interval/2, healthy)
	}
	return func() {
		close(done)
		sdNotify(logger, "STOPPING=1")
	}
}

// pingWatchdog sends WATCHDOG=1 every period while healthy passes.
func pingWatchdog(ctx context.Context, done <-chan struct{}, logger *slog.Logger, period time.Duration, healthy func(context.Context) error) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
		}
		if healthy != nil {
			hctx, cancel := context.WithTimeout(ctx, period)
			err := healthy(hctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					logger.Error("health check failed; not pinging the systemd watchdog", "err", err)
				}
				continue
			}
		}
		sdNotify(logger, "WATCHDOG=1")
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
