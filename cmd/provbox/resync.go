package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/provbox/provbox/appliance"
	sipserver "github.com/provbox/provbox/sip"
)

// cmdResync sends check-sync NOTIFYs now, from an ephemeral port of this
// process (the phones accept them from anyone: sip.trust_ctrl = 0), records
// each result like the daemon does, and prints one line per phone.
func cmdResync(ctx context.Context, g globalFlags, all bool, macs []string, stdout, stderr io.Writer) error {
	if all == (len(macs) > 0) {
		return usagef("usage: provbox resync MAC... | --all")
	}
	db, err := openStore(g, stderr, true)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := db.Services()
	if all {
		phones, err := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{})
		if err != nil {
			return err
		}
		for _, p := range phones {
			macs = append(macs, p.MAC)
		}
	}
	// Every MAC is checked before anything is sent; what is read here is
	// what the Notifier sends with, as the sync loop does.
	targets := make([]*appliance.SyncTarget, len(macs))
	for i, m := range macs {
		if targets[i], err = svc.Sync.Target(ctx, m); err != nil {
			return err
		}
	}
	cfg := db.Config
	logger := newLogger(stderr, "error", true)
	n := &sipserver.Notifier{Sync: svc.Sync, Logger: logger, Trigger: trigger(cfg, db.DB, logger), Fallback: fallback(cfg, db.DB, logger)}
	if err := n.Open("0.0.0.0:0"); err != nil {
		return err
	}
	defer n.Close()
	lines, failed := resyncEach(ctx, n, svc.Sync, targets, all)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d phones did not answer 2xx", failed, len(macs))
	}
	return nil
}

// resyncEach tells each phone to sync, 64 at a time, and returns one line
// per phone (the result recorded and the phone's state after it) and how
// many failed. With all, a phone that never fetched its config (nothing
// may be sent to it) is passed over; named, it is a failure.
func resyncEach(ctx context.Context, n *sipserver.Notifier, store appliance.SyncService, targets []*appliance.SyncTarget, all bool) ([]string, int) {
	lines := make([]string, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var failed atomic.Int64
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := n.Notify(ctx, t)
			lines[i] = fmt.Sprintf("%s  %s", appliance.FormatMAC(t.MAC), res.Text())
			if err != nil {
				lines[i] = fmt.Sprintf("%s  error: %s", appliance.FormatMAC(t.MAC), appliance.ErrorMessage(err))
			}
			if now, err := store.Target(ctx, t.MAC); err == nil {
				lines[i] += "  (" + now.State + ")"
			}
			skipped := all && err == nil && res.Reason == sipserver.NotSentNeverFetched
			if !skipped && (err != nil || res.Status < 200 || res.Status >= 300) {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	return lines, int(failed.Load())
}
