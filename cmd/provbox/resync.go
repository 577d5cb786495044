package main

import (
	"context"
	"fmt"
	"io"
	"sync"

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
	for i, m := range macs { // check every MAC before sending anything
		p, err := svc.Phones.FindPhone(ctx, m)
		if err != nil {
			return err
		}
		macs[i] = p.MAC
	}
	cfg := db.Config
	s := &sipserver.Server{Addr: "0.0.0.0:0", Services: svc, Logger: newLogger(stderr, "error", true), NotifyRate: cfg.SIP.NotifyRate,
		Trigger: trigger(cfg, db.DB, newLogger(stderr, "error", true)), Fallback: fallback(cfg, db.DB, newLogger(stderr, "error", true))}
	if err := s.Open(); err != nil {
		return err
	}
	defer s.Close()
	results := make([]string, len(macs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	failed := 0
	var mu sync.Mutex
	for i, m := range macs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := s.Notify(ctx, m)
			line := fmt.Sprintf("%s  %s", appliance.FormatMAC(m), res.Text())
			if err != nil {
				line = fmt.Sprintf("%s  error: %s", appliance.FormatMAC(m), appliance.ErrorMessage(err))
			}
			if p, err := svc.Phones.FindPhone(ctx, m); err == nil {
				line += "  (" + p.Sync.State + ")"
			}
			mu.Lock()
			// --all passes over phones that never fetched their config
			// (nothing may be sent to them); naming one is a failure.
			skipped := all && err == nil && res.Reason == sipserver.NotSentNeverFetched
			if !skipped && (err != nil || res.Status < 200 || res.Status >= 300) {
				failed++
			}
			mu.Unlock()
			results[i] = line
		}()
	}
	wg.Wait()
	for _, l := range results {
		fmt.Fprintln(stdout, l)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d phones did not answer 2xx", failed, len(macs))
	}
	return nil
}
