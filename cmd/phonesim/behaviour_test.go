package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRegistrationsAndReports: phones boot, register (401 Digest challenge,
// then 200 or 403) and report registered, register_failed and
// setup_autop_finish to the provisioning server. Then check-syncs: an
// unchanged file is skipped (MD5), a changed one is applied and reported,
// and only a change of an account's settings registers it again; a
// disabled account is reported unregistered.
func TestRegistrationsAndReports(t *testing.T) {
	const m0, m1 = "001565c00000", "001565c00001"
	reg := startRegistrar(t, map[string]string{"1000": "pw0", "a1001": "pw1"}, false)
	fx := newProvFixture(t)
	m0Lines := func(extra ...string) []string {
		lines := append([]string{"sip.notify_reboot_enable = 0"}, fx.actionURLs()...)
		return append(lines, extra...)
	}
	fx.set(m0, m0Lines(accountLines(1, "1000", "", "pw0", reg.addr())...)...)
	fx.set(m1, append(m0Lines(accountLines(1, "1001", "a1001", "pw1", reg.addr())...),
		accountLines(2, "9999", "", "nope", reg.addr())...)...)

	r := startSim(t, fx, 2, m0, "-model", "T46U", "-firmware", "108.86.0.90", "-register-timeout", "3s")
	ev := r.ev
	const wait = 5 * time.Second

	// Boot: three REGISTER outcomes, five reports.
	for _, w := range []struct {
		mac     string
		account int
		user    string
		status  int
	}{{m0, 1, "1000", 200}, {m1, 1, "1001", 200}, {m1, 2, "9999", 403}} {
		ev.waitCount("register", wait, 1, where("event", "register", "mac", w.mac, "account", w.account, "user", w.user,
			"status", w.status))
	}
	for _, w := range []struct {
		mac, name string
		account   int
	}{{m0, reportAutopFinish, 0}, {m1, reportAutopFinish, 0}, {m0, reportRegistered, 1}, {m1, reportRegistered, 1},
		{m1, reportRegisterFailed, 2}} {
		e := ev.waitCount(w.name, wait, 1, where("event", "report", "mac", w.mac, "name", w.name))[0]
		if e.num("status") != 200 || e.num("account") != float64(w.account) || e["lost"] != nil {
			t.Errorf("report line %v", e)
		}
	}
	for i, mac := range []string{m0, m1} {
		b := ev.waitCount("boot", wait, 1, where("event", "boot", "mac", mac))[0]
		if b["applied"] != true {
			t.Errorf("boot line %v: not applied", b)
		}
		for _, w := range []struct {
			name, user string
		}{{reportAutopFinish, ""}, {reportRegistered, map[int]string{0: "1000", 1: "1001"}[i]}} {
			var found bool
			for _, rep := range fx.seenReports() {
				if rep.name != w.name || rep.query.Get("mac") != mac {
					continue
				}
				found = true
				q := rep.query
				if q.Get("ip") != r.ip(i) || q.Get("model") != "T46U" || q.Get("fw") != "108.86.0.90" || q.Get("user") != w.user ||
					rep.ip != r.ip(i) || rep.ua != httpUserAgent("T46U", "108.86.0.90", mac) || rep.auth {
					t.Errorf("%s report from %s: %+v", w.name, mac, rep)
				}
			}
			if !found {
				t.Errorf("no %s report from %s", w.name, mac)
			}
		}
	}
	// Each registration: without credentials, then the answer to the
	// challenge, from the phone's SIP socket.
	for i, w := range []struct{ user string }{{"1000"}, {"1001"}} {
		regs := reg.registers(w.user)
		if len(regs) != 2 || regs[0].authorized || !regs[1].authorized || regs[0].cseq != 1 || regs[1].cseq != 2 ||
			regs[0].callID != regs[1].callID {
			t.Fatalf("%s: REGISTERs %+v", w.user, regs)
		}
		phone := r.phone(i).String()
		for _, s := range regs {
			if s.from != phone || s.contact != "<sip:"+w.user+"@"+phone+">" || s.expires != "3600" ||
				s.ua != "Yealink SIP-T46U 108.86.0.90" || s.requestURI != "sip:"+reg.addr().String() ||
				s.to != "<sip:"+w.user+"@127.0.0.1>" {
				t.Errorf("REGISTER %+v", s)
			}
		}
	}

	// Check-syncs to m0; each step says what the re-fetch does.
	steps := []struct {
		name         string
		lines        []string // m0's new config; nil: unchanged
		password     string   // the registrar's new password for 1000
		applied      bool
		reregister   bool
		unregistered bool
	}{
		{name: "unchanged: skipped", applied: false},
		{name: "a label changed: applied, no REGISTER", applied: true,
			lines: m0Lines(append(accountLines(1, "1000", "", "pw0", reg.addr()), "account.1.label = Alice")...)},
		{name: "the password changed: registered again", applied: true, reregister: true, password: "pw0b",
			lines: m0Lines(append(accountLines(1, "1000", "", "pw0b", reg.addr()), "account.1.label = Alice")...)},
		{name: "the account disabled: unregistered", applied: true, unregistered: true,
			lines: m0Lines("account.1.enable = 0", "account.1.user_name = 1000")},
	}
	registered := 1
	for i, st := range steps {
		if st.lines != nil {
			fx.set(m0, st.lines...)
		}
		if st.password != "" {
			reg.setPassword("1000", st.password)
		}
		r.checkSync(0, fmt.Sprintf("reports-%d", i), "check-sync;reboot=false")
		f := ev.waitCount("fetch", wait, i+1, where("event", "fetch", "mac", m0))[i]
		if f["applied"] != st.applied || f.str("trigger") != "check-sync" || f.num("status") != 200 {
			t.Errorf("%s: fetch line %v", st.name, f)
		}
		if st.reregister {
			registered++
			ev.waitCount("register", wait, registered, where("event", "register", "mac", m0, "status", 200))
			ev.waitCount("registered", wait, registered, where("event", "report", "mac", m0, "name", reportRegistered))
		}
		if st.unregistered {
			u := ev.waitCount("unregistered", wait, 1, where("event", "report", "mac", m0, "name", reportUnregistered))[0]
			if u.num("account") != 1 || !strings.Contains(u.str("url"), "user=1000") {
				t.Errorf("unregistered line %v", u)
			}
		}
	}

	sum := r.stop()
	checkSummary(t, sum, map[string]float64{"registrations": 3, "register_failed": 1, "applied": 5, "skipped": 1,
		"reports":        7, // no setup_autop_finish after the 4 check-sync rounds
		"reports_failed": 0, "reports_lost": 0, "reboots": 0, "refetches": 4, "refused": 0})
	if n := len(reg.registers("1000")); n != 4 {
		t.Errorf("%d REGISTERs for 1000, want 4 (boot, and the password change)", n)
	}
	if n := ev.count(where("event", "register", "mac", m0)); n != 2 {
		t.Errorf("%d register lines for m0, want 2", n)
	}
}

// TestFactoryPhoneReboots: a phone whose config lacks
// sip.notify_reboot_enable keeps the factory 1: a check-sync (even with
// reboot=false) reboots it. It is silent while rebooting, then fetches
// again (the same file: skipped), registers again and reports.
func TestFactoryPhoneReboots(t *testing.T) {
	const mac = "001565c10000"
	reg := startRegistrar(t, map[string]string{"2000": "pw"}, false)
	fx := newProvFixture(t)
	fx.set(mac, append(fx.actionURLs(), accountLines(1, "2000", "", "pw", reg.addr())...)...)
	r := startSim(t, fx, 1, mac, "-reboot-time", "400ms")
	ev := r.ev
	const wait = 5 * time.Second
	ev.waitCount("register", wait, 1, where("event", "register", "status", 200))
	ev.waitCount("setup_autop_finish", wait, 1, where("event", "report", "name", reportAutopFinish))

	r.checkSync(0, "factory-1", "check-sync;reboot=false")
	n := ev.waitCount("notify", wait, 1, where("event", "notify", "call_id", "factory-1"))[0]
	if n.str("action") != "reboot" {
		t.Errorf("notify line %v", n)
	}
	rb := ev.waitCount("reboot", wait, 1, isEvent("reboot"))[0]
	if rb.str("reason") != "check-sync" || rb.str("call_id") != "factory-1" {
		t.Errorf("reboot line %v", rb)
	}
	if st := r.request(nil, 0, sipRequest{callID: "factory-2", event: "check-sync"}, 200*time.Millisecond); st != 0 {
		t.Errorf("a rebooting phone answered %d", st)
	}
	f := ev.waitCount("fetch", wait, 1, isEvent("fetch"))[0]
	if f.str("trigger") != "reboot" || f["applied"] != false || f.str("call_id") != "factory-1" || f.num("after_notify_ms") < 400 {
		t.Errorf("fetch line %v", f)
	}
	ev.waitCount("register", wait, 2, where("event", "register", "status", 200))
	ev.waitCount("registered", wait, 2, where("event", "report", "name", reportRegistered))
	ev.waitCount("setup_autop_finish", wait, 2, where("event", "report", "name", reportAutopFinish))
	if st := r.request(nil, 0, sipRequest{method: "OPTIONS", callID: "factory-3"}, 3*time.Second); st != 405 {
		t.Errorf("after the reboot OPTIONS answered %d", st)
	}
	sum := r.stop()
	checkSummary(t, sum, map[string]float64{"reboots": 1, "refetches": 1, "notifies": 1, "registrations": 2,
		"applied": 1, "skipped": 1, "fetches": 2})
	if n := len(reg.registers("2000")); n != 4 {
		t.Errorf("%d REGISTERs, want 4 (boot and after the reboot)", n)
	}
}

// TestNotifyRebootEnable: each value of sip.notify_reboot_enable with and
// without reboot=true, end to end.
func TestNotifyRebootEnable(t *testing.T) {
	const mac = "001565c20000"
	tests := []struct {
		setting string // "": the key left out
		event   string
		action  string
		trigger string // of the fetch that follows; "": none
	}{
		{"0", "check-sync;reboot=false", "refetch", "check-sync"},
		{"0", "check-sync", "refetch", "check-sync"},
		{"0", "check-sync;reboot=true", "reboot", "reboot"},
		{"1", "check-sync;reboot=false", "reboot", "reboot"},
		{"2", "check-sync;reboot=true", "ignore", ""},
		{"2", "check-sync", "ignore", ""},
		{"", "check-sync;reboot=false", "reboot", "reboot"},
		{nullValue, "check-sync;reboot=false", "reboot", "reboot"},
	}
	for _, tt := range tests {
		t.Run(tt.setting+" "+tt.event, func(t *testing.T) {
			fx := newProvFixture(t)
			var lines []string
			if tt.setting != "" {
				lines = append(lines, "sip.notify_reboot_enable = "+tt.setting)
			}
			fx.set(mac, lines...)
			r := startSim(t, fx, 1, mac, "-reboot-time", "50ms")
			r.checkSync(0, "nre-1", tt.event)
			n := r.ev.waitCount("notify", 3*time.Second, 1, isEvent("notify"))[0]
			if n.str("action") != tt.action {
				t.Errorf("notify line %v, want action %s", n, tt.action)
			}
			reboots, fetches := 0, 1
			if tt.trigger != "" {
				f := r.ev.waitCount("fetch", 3*time.Second, 1, isEvent("fetch"))[0]
				if f.str("trigger") != tt.trigger || f.str("call_id") != "nre-1" {
					t.Errorf("fetch line %v, want trigger %s", f, tt.trigger)
				}
				fetches = 2
			}
			if tt.action == "reboot" {
				reboots = 1
			}
			sum := r.stop()
			checkSummary(t, sum, map[string]float64{"reboots": float64(reboots), "fetches": float64(fetches),
				"refetches": float64(fetches - 1)})
		})
	}
}

// TestMD5Skip: the phone applies a fetched file only when it differs from
// the last one it applied; only a change of an account's settings
// registers it again.
func TestMD5Skip(t *testing.T) {
	const mac = "001565c30000"
	tests := []struct {
		name      string
		extra     [][]string // after the boot file, one re-fetched file per check-sync
		applied   []bool     // of the boot line, then of each fetch line
		registers int        // REGISTER outcomes
	}{
		{"unchanged", [][]string{nil, nil}, []bool{true, false, false}, 1},
		{"a comment changed", [][]string{{"# edited"}}, []bool{true, true}, 1},
		{"A, B, A: compared with the last applied only", [][]string{{"account.1.label = B"}, nil},
			[]bool{true, true, true}, 1},
		{"the registrar port changed", [][]string{{"account.1.sip_server.1.port = 5999"}}, []bool{true, true}, 2},
		{"the auth name changed", [][]string{{"account.1.auth_name = other"}}, []bool{true, true}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := startRegistrar(t, map[string]string{"3000": "pw"}, false)
			fx := newProvFixture(t)
			base := append([]string{"sip.notify_reboot_enable = 0"}, fx.actionURLs()...)
			base = append(base, accountLines(1, "3000", "", "pw", reg.addr())...)
			fx.set(mac, base...)
			r := startSim(t, fx, 1, mac, "-register-timeout", "1s")
			b := r.ev.waitCount("boot", 3*time.Second, 1, isEvent("boot"))[0]
			got := []bool{b["applied"] == true}
			// The boot registration first: a newer config would cancel it
			// unreported.
			r.ev.waitCount("register", 3*time.Second, 1, isEvent("register"))
			for i, extra := range tt.extra {
				fx.set(mac, append(append([]string(nil), base...), extra...)...)
				r.checkSync(0, fmt.Sprintf("md5-%d", i), "check-sync;reboot=false")
				f := r.ev.waitCount("fetch", 3*time.Second, i+1, isEvent("fetch"))[i]
				got = append(got, f["applied"] == true)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.applied) {
				t.Errorf("applied %v, want %v", got, tt.applied)
			}
			r.ev.waitCount("register", 3*time.Second, tt.registers, isEvent("register"))
			sum := r.stop()
			if n := r.ev.count(isEvent("register")); n != tt.registers {
				t.Errorf("%d register lines, want %d", n, tt.registers)
			}
			applied := 0
			for _, a := range tt.applied {
				if a {
					applied++
				}
			}
			checkSummary(t, sum, map[string]float64{"applied": float64(applied), "skipped": float64(len(tt.applied) - applied)})
		})
	}
}

// TestRegisterTimeout: a registrar that never answers gets the REGISTER
// retransmitted on timer E (0 s, 0.5 s within 1.2 s) until
// -register-timeout; then register_failed.
func TestRegisterTimeout(t *testing.T) {
	const mac = "001565c40000"
	reg := startRegistrar(t, map[string]string{}, true)
	fx := newProvFixture(t)
	fx.set(mac, append(fx.actionURLs(), accountLines(1, "4000", "", "pw", reg.addr())...)...)
	r := startSim(t, fx, 1, mac, "-register-timeout", "1200ms")
	e := r.ev.waitCount("register", 4*time.Second, 1, isEvent("register"))[0]
	if e.num("status") != 0 || !strings.Contains(e.str("error"), "no final response") || e.num("ms") < 1200 {
		t.Errorf("register line %v", e)
	}
	rep := r.ev.waitCount("register_failed", 3*time.Second, 1, where("event", "report", "name", reportRegisterFailed))[0]
	if !strings.Contains(rep.str("url"), "user=4000") {
		t.Errorf("report line %v", rep)
	}
	sum := r.stop()
	checkSummary(t, sum, map[string]float64{"registrations": 0, "register_failed": 1})
	all := reg.all()
	if len(all) != 2 || all[0].callID != all[1].callID || all[0].cseq != all[1].cseq {
		t.Errorf("REGISTERs %+v, want one sent twice", all)
	}
}

// TestTrustCtrl: with sip.trust_ctrl = 1 a phone takes requests only from
// its registrar's IP (any port); a stranger's check-sync, even
// reboot=true, is dropped unanswered. Without it anyone gets in.
func TestTrustCtrlRun(t *testing.T) {
	const m0 = "001565c50000"
	reg := startRegistrar(t, map[string]string{"5000": "pw"}, false)
	fx := newProvFixture(t)
	fx.set(m0, append([]string{"sip.trust_ctrl = 1", "sip.notify_reboot_enable = 0"},
		accountLines(1, "5000", "", "pw", reg.addr())...)...)
	fx.set("001565c50001", "sip.notify_reboot_enable = 0")
	r := startSim(t, fx, 2, m0, "-reboot-time", "50ms")
	stranger := r.stranger()
	tests := []struct {
		name   string
		conn   *net.UDPConn // nil: 127.0.0.1, the registrar's IP, another port
		phone  int
		req    sipRequest
		status int // 0: dropped
	}{
		{"registrar's IP, another port", nil, 0, sipRequest{method: "OPTIONS", callID: "tc-1"}, 405},
		{"registrar's IP: check-sync", nil, 0, sipRequest{callID: "tc-2", event: "check-sync"}, 200},
		{"stranger: check-sync reboot=true", stranger, 0, sipRequest{callID: "tc-3", event: "check-sync;reboot=true"}, 0},
		{"stranger: OPTIONS", stranger, 0, sipRequest{method: "OPTIONS", callID: "tc-4"}, 0},
		{"trust_ctrl 0: stranger", stranger, 1, sipRequest{method: "OPTIONS", callID: "tc-5"}, 405},
	}
	for _, tt := range tests {
		wait := 3 * time.Second
		if tt.status == 0 {
			wait = 300 * time.Millisecond
		}
		if got := r.request(tt.conn, tt.phone, tt.req, wait); got != tt.status {
			t.Errorf("%s: answered %d, want %d", tt.name, got, tt.status)
		}
	}
	ref := r.ev.waitCount("refused", 3*time.Second, 2, isEvent("refused"))
	if ref[0].str("method") != "NOTIFY" || ref[0].str("reason") != "trust_ctrl" || ref[0].str("mac") != m0 ||
		!strings.HasPrefix(ref[0].str("from"), stranger.LocalAddr().(*net.UDPAddr).IP.String()+":") {
		t.Errorf("refused line %v", ref[0])
	}
	r.ev.waitCount("fetch", 3*time.Second, 1, isEvent("fetch"))
	sum := r.stop()
	checkSummary(t, sum, map[string]float64{"refused": 2, "reboots": 0, "notifies": 1, "refetches": 1})
}

// TestActionURIRun: -web-port gives each phone an HTTPS server; a GET
// /servlet?key=AutoP from an allowed address with the admin credentials
// makes it auto-provision, key=Reboot reboots it; the checks answer
// 403/401/400 as decideActionURI says.
func TestActionURIRun(t *testing.T) {
	const m0, m1 = "001565c60000", "001565c60001"
	fx := newProvFixture(t)
	fx.set(m0, append([]string{"sip.notify_reboot_enable = 0", "features.action_uri_limit_ip = 127.0.0.1",
		"features.show_action_uri_option = 0", "static.security.user_password = admin:s3cret"}, fx.actionURLs()...)...)
	fx.set(m1, "sip.notify_reboot_enable = 0") // factory Action URI settings: blank limit_ip
	r := startSim(t, fx, 2, m0, "-web-port", webPortFree, "-reboot-time", "400ms")
	stranger := r.stranger().LocalAddr().(*net.UDPAddr).IP

	get := func(from net.IP, phone int, path, user, pass string) (int, http.Header, error) {
		client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the phone's self-signed certificate
			DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}).DialContext,
		}}
		defer client.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(context.Background(), "GET",
			fmt.Sprintf("https://%s%s", net.JoinHostPort(r.ip(phone), strconv.Itoa(r.webPort)), path), nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		resp.Body.Close()
		if resp.TLS == nil {
			return 0, nil, errors.New("not TLS")
		}
		return resp.StatusCode, resp.Header, nil
	}
	local := net.IPv4(127, 0, 0, 1)
	tests := []struct {
		name       string
		from       net.IP
		phone      int
		path       string
		user, pass string
		status     int
	}{
		{"wrong password", local, 0, "/servlet?key=AutoP", "admin", "admin", 401},
		{"no credentials", local, 0, "/servlet?key=OK", "", "", 401},
		{"not in limit_ip", stranger, 0, "/servlet?key=AutoP", "admin", "s3cret", 403},
		{"key presses", local, 0, "/servlet?key=F1;F3;OK", "admin", "s3cret", 200},
		{"unknown key", local, 0, "/servlet?key=NOPE", "admin", "s3cret", 400},
		{"another path", local, 0, "/index.htm", "admin", "s3cret", 404},
		{"factory phone: blank limit_ip", local, 1, "/servlet?key=AutoP", "admin", "admin", 403},
		{"AutoP", local, 0, "/servlet?key=AutoP", "admin", "s3cret", 200},
	}
	for _, tt := range tests {
		status, h, err := get(tt.from, tt.phone, tt.path, tt.user, tt.pass)
		if err != nil || status != tt.status {
			t.Errorf("%s: %d, %v; want %d", tt.name, status, err, tt.status)
		}
		if status == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic realm=") {
			t.Errorf("%s: WWW-Authenticate %q", tt.name, h.Get("WWW-Authenticate"))
		}
	}
	f := r.ev.waitCount("fetch", 3*time.Second, 1, isEvent("fetch"))[0]
	if f.str("trigger") != "action_uri" || f.str("mac") != m0 || f.num("status") != 200 || f["applied"] != false {
		t.Errorf("fetch line %v", f)
	}
	a := r.ev.waitCount("action_uri", 3*time.Second, len(tests), isEvent("action_uri"))
	if last := a[len(a)-1]; last.str("key") != "AutoP" || last.num("status") != 200 || last.str("mac") != m0 ||
		!strings.HasPrefix(last.str("from"), "127.0.0.1:") {
		t.Errorf("action_uri line %v", last)
	}

	// Reboot: answered, then the web server is gone until the phone is up.
	if status, _, err := get(local, 0, "/servlet?key=Reboot", "admin", "s3cret"); err != nil || status != 200 {
		t.Fatalf("Reboot: %d, %v", status, err)
	}
	rb := r.ev.waitCount("reboot", 3*time.Second, 1, isEvent("reboot"))[0]
	if rb.str("reason") != "action_uri" {
		t.Errorf("reboot line %v", rb)
	}
	if status, _, err := get(local, 0, "/servlet?key=OK", "admin", "s3cret"); err == nil {
		t.Errorf("a rebooting phone answered %d", status)
	}
	f = r.ev.waitCount("fetch", 3*time.Second, 2, isEvent("fetch"))[1]
	if f.str("trigger") != "reboot" {
		t.Errorf("fetch line %v", f)
	}
	sum := r.stop()
	checkSummary(t, sum, map[string]float64{"action_uri": float64(len(tests) + 1), "reboots": 1, "fetches": 4})
}

// TestReportLimits: setup_autop_finish follows power-on rounds only (a
// check-sync round reports nothing; a check-sync with reboot=true reboots
// the phone, and its boot reports); -max-reports loses a phone's reports
// after the Nth (a phone that reported once and went quiet);
// -no-action-urls sends none.
func TestReportLimits(t *testing.T) {
	const mac = "001565c70000"
	tests := []struct {
		name       string
		event      string
		args       []string
		sent, lost int
	}{
		{"check-sync: only the boot reports", "check-sync", nil, 1, 0},
		{"reboot: the boot after it reports", "check-sync;reboot=true", []string{"-reboot-time", "50ms"}, 2, 0},
		{"-max-reports 1", "check-sync;reboot=true", []string{"-reboot-time", "50ms", "-max-reports", "1"}, 1, 1},
		{"-no-action-urls", "check-sync;reboot=true", []string{"-reboot-time", "50ms", "-no-action-urls"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newProvFixture(t)
			fx.set(mac, append([]string{"sip.notify_reboot_enable = 0"}, fx.actionURLs()...)...)
			r := startSim(t, fx, 1, mac, tt.args...)
			r.checkSync(0, "limits-1", tt.event)
			r.ev.waitCount("fetch", 3*time.Second, 1, isEvent("fetch"))
			if tt.sent+tt.lost > 0 {
				r.ev.waitCount("report", 3*time.Second, tt.sent+tt.lost, isEvent("report"))
			}
			time.Sleep(100 * time.Millisecond) // no further report comes
			sum := r.stop()
			if n := r.ev.count(where("event", "report", "lost", true)); n != tt.lost {
				t.Errorf("%d lost report lines, want %d", n, tt.lost)
			}
			if n := len(fx.seenReports()); n != tt.sent {
				t.Errorf("server got %d reports, want %d", n, tt.sent)
			}
			checkSummary(t, sum, map[string]float64{"reports": float64(tt.sent), "reports_lost": float64(tt.lost)})
		})
	}
}

// freeTCPPort finds a TCP port free on ip.
func freeTCPPort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
