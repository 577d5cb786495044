package main

import (
	"fmt"
	"net/http"
	"time"
)

// Why a phone runs an auto-provisioning round.
const (
	triggerBoot      = "boot"       // power-on
	triggerCheckSync = "check-sync" // a NOTIFY, notify_reboot_enable 0 without reboot=true
	triggerActionURI = "action_uri" // GET /servlet?key=AutoP
	triggerReboot    = "reboot"     // the boot after a reboot
)

// roundCause is why a round runs and what caused it.
type roundCause struct {
	trigger string
	at      time.Time // when the NOTIFY or the request that caused it arrived; zero at power-on
	callID  string    // the check-sync's Call-ID, when a check-sync caused it (directly or by a reboot)
}

type roundResult int

const (
	roundOK      roundResult = iota // fetched with 200 and applied (or unchanged)
	roundFailed                     // no 200, or the config could not be taken in full
	roundAborted                    // shut down meanwhile
)

// round is one auto-provisioning round: fetch <mac>.cfg, apply it unless
// it is the file applied last time, reconcile the SIP registrations with
// the flash, and report setup_autop_finish. The caller holds roundMu.
// Registrations are reconciled even when the fetch failed: after a reboot
// the phone registers the accounts in its flash all the same.
func (s *sim) round(p *phone, c roundCause) roundResult {
	res := s.fetchAndApply(p, c)
	if res == roundAborted {
		return res
	}
	s.reconcile(p)
	if res == roundOK && s.reportsAutopFinish(c) {
		s.report(p, reportAutopFinish, 0, "")
	}
	return res
}

// reportsAutopFinish says whether a round of cause c ends with a
// setup_autop_finish report: only power-on rounds (boot, and the boot after
// a reboot). Yealink documents the event as "When the IP phone completes
// auto provisioning via power on" (T40G guide p.481,
// https://www.easymanua.ls/yealink/t40g/manual/289184?p=501), and a public
// copy of the firmware source sends it once per boot, at the end of
// power-on provisioning, and never after a check-sync or an AutoP round
// (SOURCES.md, YFW 35458245315, CAutopControlManager::OnTimer). This is
// the part that makes provbox's life harder: after a check-sync the phone
// confirms nothing unless its accounts re-register.
func (s *sim) reportsAutopFinish(c roundCause) bool {
	return c.trigger == triggerBoot || c.trigger == triggerReboot
}

// fetchAndApply fetches the phone's file and applies it unless unchanged.
//
// MD5: a Yealink compares each downloaded file with the previous one and
// does not apply an unchanged file: "The IP phone will complete the auto
// provisioning without repeated update" (auto-provisioning guide, T40G
// edition, p.49, https://easymanua.ls/yealink/sip-t40g/manual/11518?p=55;
// T52S edition, https://www.easymanua.ls/yealink/sip-t52s/manual/1035621?p=55;
// W52P guide, https://mcgrp.ru/files/viewer/192029/43; yealink.md §1).
// phonesim keeps the MD5 of the last applied body in flash; an equal body
// changes nothing (no setting, no REGISTER) and its fetch line says
// "applied": false. That such a round still reports setup_autop_finish is
// our reading: the guide calls it completed, and no source says a round
// without changes does not report. The MD5 is kept only when the apply
// succeeded, so a file whose certificates failed to download is applied
// again next time.
func (s *sim) fetchAndApply(p *phone, c roundCause) roundResult {
	r := s.fetch(p)
	if r.err != nil && s.ctx.Err() != nil {
		return roundAborted
	}
	stage := "fetch"
	if c.trigger == triggerBoot {
		stage = "boot"
	}
	if r.err != nil {
		s.fail(p, stage, r.err)
		return roundFailed
	}
	s.addFetch(r.dur)
	changed := r.status == http.StatusOK && (!p.flash.applied || r.md5 != p.flash.appliedMD5)
	if c.trigger == triggerBoot {
		s.out.emit(bootEvent{Event: "boot", MAC: p.mac, IP: p.ip.String(), At: now(), FetchMs: ms(r.dur),
			Status: r.status, ETag: r.etag, Bytes: r.bytes, URL: r.url, TLS: r.tls, Auth: r.auth, Applied: changed}, false)
	} else {
		after := time.Since(c.at)
		if c.callID != "" {
			s.statMu.Lock()
			s.notifyToFetchMs = append(s.notifyToFetchMs, ms(after))
			s.statMu.Unlock()
		}
		s.out.emit(fetchEvent{Event: "fetch", MAC: p.mac, At: now(), FetchMs: ms(r.dur), Status: r.status,
			ETag: r.etag, Bytes: r.bytes, AfterNotifyMs: ms(after), CallID: c.callID, URL: r.url, TLS: r.tls,
			Auth: r.auth, Trigger: c.trigger, Applied: changed}, false)
	}
	if r.status != http.StatusOK {
		s.fail(p, stage, fmt.Errorf("GET %s: HTTP %d", r.url, r.status))
		return roundFailed
	}
	p.etag = r.etag
	ok := true
	if changed {
		if ok = s.learn(p, r.url, r.cfg); ok {
			p.flash.applied, p.flash.appliedMD5 = true, r.md5
			s.applied.Add(1)
		}
	} else {
		s.skipped.Add(1)
	}
	s.publish(p)
	if !ok {
		if s.ctx.Err() != nil {
			return roundAborted
		}
		return roundFailed
	}
	return roundOK
}

// refetch runs a round under the phone's lock: after a check-sync, an
// Action URI AutoP or a reboot. A round that answers a check-sync
// (directly or after the reboot it caused) counts toward
// -exit-after-notifies; a check-sync the phone ignores
// (notify_reboot_enable = 2) does not.
func (s *sim) refetch(p *phone, c roundCause) {
	p.roundMu.Lock()
	defer p.roundMu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	res := s.round(p, c)
	if res == roundAborted || c.callID == "" {
		return
	}
	if res == roundFailed {
		s.refetchFailed.Add(1)
	}
	if n := s.refetches.Add(1); s.cfg.exitAfter > 0 && n >= int64(s.cfg.exitAfter) {
		s.cancel(errExitAfter)
	}
}

// reboot emulates a reboot: the phone hears nothing for -reboot-time (a
// real one takes about a minute), forgets its registrations and what its
// SIP stack remembered, then boots again: a round from the server URL in
// its flash (else the boot base), registrations, reports. Its SIP socket
// stays bound: the address and port are the same after a real reboot. A
// reboot caused by a check-sync counts as that check-sync's re-fetch.
//
// A round under way when the reboot begins runs to its end: a real
// phone would lose it, which no test depends on.
func (s *sim) reboot(p *phone, c roundCause) {
	if !p.down.CompareAndSwap(false, true) {
		return // rebooting already
	}
	s.reboots.Add(1)
	p.epoch.Add(1)
	p.regs.forget()
	s.out.emit(rebootEvent{Event: "reboot", MAC: p.mac, At: now(), Reason: c.trigger, CallID: c.callID}, false)
	c.trigger = triggerReboot
	started := s.spawn(func() {
		t := time.NewTimer(s.cfg.rebootTime)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
		p.down.Store(false)
		s.refetch(p, c)
	})
	if !started {
		p.down.Store(false)
	}
}
