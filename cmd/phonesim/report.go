package main

import (
	"context"
	"io"
	"strings"
	"time"
)

// reportVars are the values of an action URL's variables. Yealink's
// "Variable Values List" (T2/T4/T5 administrator's guide, Action URL:
// https://www.easymanua.ls/yealink/t21pe2/manual?p=450; CP860 guide p.216,
// https://mcgrp.ru/files/viewer/192007/228) names more; phonesim fills
// these five. For registered, unregistered and register_failed,
// $active_user is the user_name of the account the event is about; a
// setup_autop_finish carries no account, so it is empty
// (YFW 35534784267, CActionUrl::SendEvent).
type reportVars struct {
	mac        string // 12 lower-case hex digits (the firmware's case is UNVERIFIED)
	ip         string
	model      string // -model, e.g. T46U; whether a phone writes "SIP-T46U" is UNVERIFIED
	firmware   string
	activeUser string
}

// expandActionURL substitutes the variables into an action URL the way the
// firmware does: plain substring replacement, no escaping, and any other
// $word left as written (YFW 35534784267, CActionUrl::MyReplaceVar).
func expandActionURL(tmpl string, v reportVars) string {
	return strings.NewReplacer(
		"$mac", v.mac,
		"$ip", v.ip,
		"$model", v.model,
		"$firmware", v.firmware,
		"$active_user", v.activeUser,
	).Replace(tmpl)
}

// report sends the action URL of event name, if the phone has one: an HTTP
// GET (the guides: "An HTTP or HTTPS GET request") without credentials (no
// Action URL credential setting exists), from the phone's address with its
// User-Agent, over its provisioning transport: the firmware downloads it
// with the class auto provisioning uses, so the same trusted certificates
// apply (likely, UNVERIFIED; YFW 35458245315). account and user are
// the account the event is about (0 and "" for setup_autop_finish). With
// -max-reports N, a phone's reports after its Nth are lost: not sent,
// reported with "lost": true (a phone whose reports stop reaching provbox). A real phone sends it
// asynchronously and ignores the answer; phonesim waits for it, so that
// its report line follows the round's fetch line.
func (s *sim) report(p *phone, name string, account int, user string) {
	l := p.live.Load()
	tmpl := l.actionURLs[name]
	if tmpl == "" || s.ctx.Err() != nil {
		return
	}
	u := expandActionURL(tmpl, reportVars{mac: p.mac, ip: p.ip.String(), model: s.cfg.model, firmware: s.cfg.firmware,
		activeUser: user})
	ev := reportEvent{Event: "report", MAC: p.mac, Name: name, Account: account, URL: u}
	if s.cfg.maxReports > 0 && p.reportsSent.Add(1) > int64(s.cfg.maxReports) {
		s.reportsLost.Add(1)
		ev.At, ev.Lost = now(), true
		s.out.emit(ev, false)
		return
	}
	s.reports.Add(1)
	start := time.Now()
	status, err := s.get(p, l, u)
	ev.At, ev.Ms, ev.Status = now(), ms(time.Since(start)), status
	if err != nil {
		if s.ctx.Err() != nil {
			return // shutting down: not the server's failure
		}
		ev.Error = err.Error()
	}
	if err != nil || status < 200 || status > 299 {
		s.reportsFailed.Add(1)
	}
	s.out.emit(ev, false)
}

// get GETs u as the phone and returns the status; the body is read (to
// 64 KiB) and dropped.
func (s *sim) get(p *phone, l *live, u string) (int, error) {
	ctx, cancel := context.WithTimeout(s.ctx, httpTimeout)
	defer cancel()
	req, err := s.newRequest(ctx, p, u)
	if err != nil {
		return 0, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}
