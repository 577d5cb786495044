package main

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestCheckSyncAction(t *testing.T) {
	tests := []struct {
		notifyReboot int
		event        string
		want         syncAction
	}{
		{0, "check-sync", syncRefetch},
		{0, "check-sync;reboot=false", syncRefetch},
		{0, "check-sync;reboot=true", syncReboot},
		{0, "Check-Sync ; Reboot = TRUE", syncReboot},
		{0, `check-sync;reboot="true"`, syncReboot},
		{0, "check-sync;rebooted=true", syncRefetch},
		{1, "check-sync", syncReboot},
		{1, "check-sync;reboot=false", syncReboot},
		{1, "check-sync;reboot=true", syncReboot},
		{2, "check-sync", syncIgnore},
		{2, "check-sync;reboot=false", syncIgnore},
		{2, "check-sync;reboot=true", syncIgnore},
	}
	for _, tt := range tests {
		if got := checkSyncAction(tt.notifyReboot, tt.event); got != tt.want {
			t.Errorf("notify_reboot_enable %d, Event %q: %v, want %v", tt.notifyReboot, tt.event, got, tt.want)
		}
	}
}

func TestApplySettings(t *testing.T) {
	factory := factoryFlash()
	tests := []struct {
		name   string
		before func(*flash)
		values map[string]string
		check  func(*flash) bool
		errs   []string // substrings, one per error, in order
	}{
		{"factory values", nil, nil, func(f *flash) bool {
			return f.notifyReboot == 1 && !f.trustCtrl && f.actionURI.enable && f.actionURI.prompt &&
				f.actionURI.limitIP == "" && f.actionURI.adminUser == "admin" && f.actionURI.adminPass == "admin"
		}, nil},
		{"notify_reboot_enable 0 and 2", nil, map[string]string{keyNotifyReboot: "2"},
			func(f *flash) bool { return f.notifyReboot == 2 }, nil},
		{"notify_reboot_enable %NULL% is the factory 1", func(f *flash) { f.notifyReboot = 0 },
			map[string]string{keyNotifyReboot: nullValue}, func(f *flash) bool { return f.notifyReboot == 1 }, nil},
		{"bad notify_reboot_enable keeps the old value", func(f *flash) { f.notifyReboot = 0 },
			map[string]string{keyNotifyReboot: "3"}, func(f *flash) bool { return f.notifyReboot == 0 },
			[]string{"want 0, 1 or 2"}},
		{"trust_ctrl", nil, map[string]string{keyTrustCtrl: "1"}, func(f *flash) bool { return f.trustCtrl }, nil},
		{"action URI settings", nil, map[string]string{keyActionURIEnable: "0", keyShowActionURI: "0",
			keyActionURILimitIP: "10.0.0.1,10.1.*.*", keyUserPassword: "admin:s3cr:et"}, func(f *flash) bool {
			a := f.actionURI
			return !a.enable && !a.prompt && a.limitIP == "10.0.0.1,10.1.*.*" && a.adminPass == "s3cr:et"
		}, nil},
		{"another user's password is not the admin's", nil, map[string]string{keyUserPassword: "user:x"},
			func(f *flash) bool { return f.actionURI.adminPass == "admin" }, nil},
		{"user_password without a colon", nil, map[string]string{keyUserPassword: "s3cret"},
			func(f *flash) bool { return f.actionURI.adminPass == "admin" }, []string{"user:password"}},
		{"action URLs set, cleared, refused", func(f *flash) { f.actionURLs = map[string]string{"registered": "http://a/"} },
			map[string]string{"action_url.registered": nullValue, "action_url.setup_autop_finish": "https://p:8443/r?m=$mac",
				"action_url.ip_change":       "p/ip?m=$mac",
				"action_url.register_failed": "ftp://x/", "action_url.unregistered": "http://p/" + strings.Repeat("x", 600)},
			func(f *flash) bool {
				return reflect.DeepEqual(f.actionURLs, map[string]string{"setup_autop_finish": "https://p:8443/r?m=$mac",
					"ip_change": "http://p/ip?m=$mac"}) // no scheme: the firmware puts http:// in front
			}, []string{"action_url.register_failed", "action_url.unregistered: 609 characters"}},
		{"an account", nil, map[string]string{"account.2.enable": "1", "account.2.user_name": "1002",
			"account.2.password": "pw", "account.2.sip_server.1.address": "127.0.0.1", "account.2.sip_server.1.port": "5070"},
			func(f *flash) bool {
				a := f.accounts[1]
				return a == account{enable: true, userName: "1002", password: "pw", address: "127.0.0.1", port: 5070} &&
					a.active() && a.authUser() == "1002" && a.registrarPort() == 5070
			}, nil},
		{"an account cleared", func(f *flash) {
			f.accounts[0] = account{enable: true, userName: "1001", authName: "a1001", address: "pbx", port: 5070}
		}, map[string]string{"account.1.enable": "0", "account.1.user_name": nullValue, "account.1.auth_name": nullValue,
			"account.1.sip_server.1.address": nullValue, "account.1.sip_server.1.port": nullValue},
			func(f *flash) bool { return f.accounts[0] == account{} }, nil},
		{"bad account values", nil, map[string]string{"account.1.enable": "yes", "account.1.sip_server.1.port": "0"},
			func(f *flash) bool { return f.accounts[0] == account{} }, []string{"account.1.enable", "account.1.sip_server.1.port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := factory
			f.actionURLs = nil
			if tt.before != nil {
				tt.before(&f)
			}
			errs := applySettings(&f, tt.values)
			if !tt.check(&f) {
				t.Errorf("flash after: %+v", f)
			}
			if len(errs) != len(tt.errs) {
				t.Fatalf("errors %v, want %d", errs, len(tt.errs))
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tt.errs[i]) {
					t.Errorf("error %q, want it to hold %q", e, tt.errs[i])
				}
			}
		})
	}
}

func TestAccountKey(t *testing.T) {
	tests := []struct {
		key   string
		n     int
		field string
	}{
		{"account.1.enable", 1, "enable"},
		{"account.16.sip_server.1.address", 16, "sip_server.1.address"},
		{"account.3.auth_name", 3, "auth_name"},
		{"account.17.enable", 0, ""},
		{"account.0.enable", 0, ""},
		{"account.01.enable", 0, ""},
		{"account.1.label", 0, ""},
		{"account.1.sip_server.2.address", 0, ""},
		{"accounts.1.enable", 0, ""},
	}
	for _, tt := range tests {
		n, field, ok := accountKey(tt.key)
		if n != tt.n || field != tt.field || ok != (tt.n != 0) {
			t.Errorf("accountKey(%q) = %d, %q, %v", tt.key, n, field, ok)
		}
	}
}

// TestTrustCtrl: with trust_ctrl = 1 only the registrars' addresses get in,
// compared by IP (any port); a refused request is dropped unanswered and
// not remembered; responses are never refused.
func TestTrustCtrl(t *testing.T) {
	registrar := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name  string
		l     live
		from  string
		allow bool
	}{
		{"trust_ctrl 0: a stranger", live{}, "127.9.9.9", true},
		{"trust_ctrl 1: the registrar", live{trustCtrl: true, registrars: []netip.Addr{registrar}}, "127.0.0.1", true},
		{"trust_ctrl 1: the registrar, IPv4-mapped", live{trustCtrl: true, registrars: []netip.Addr{registrar}}, "::ffff:127.0.0.1", true},
		{"trust_ctrl 1: a stranger", live{trustCtrl: true, registrars: []netip.Addr{registrar}}, "127.9.9.9", false},
		{"trust_ctrl 1, no account enabled", live{trustCtrl: true}, "127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.allows(netip.MustParseAddr(tt.from)); got != tt.allow {
				t.Fatalf("allows(%s) = %v", tt.from, got)
			}
			st := newSIPState("001565aabbcc", "T46G", "28.83.0.35")
			cs := sipRequest{event: "check-sync;reboot=true", callID: "trust-1"}.bytes()
			a := st.handle(cs, tt.from+":5060", tt.allow)
			if tt.allow {
				if a.kind != kindCheckSync || a.reply == nil {
					t.Errorf("let in: kind %v, reply %v", a.kind, a.reply != nil)
				}
				return
			}
			if a.kind != kindRefused || a.reply != nil || a.method != "NOTIFY" {
				t.Errorf("refused: kind %v method %s reply %q", a.kind, a.method, a.reply)
			}
			// Not remembered: let in later, it is new.
			if a := st.handle(cs, "127.0.0.1:5060", true); a.kind != kindCheckSync {
				t.Errorf("after a refusal the same check-sync is %v", a.kind)
			}
			res := []byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n" +
				"To: <sip:a@b>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n")
			if a := st.handle(res, tt.from+":5060", false); a.kind != kindResponse {
				t.Errorf("a response from a stranger is %v", a.kind)
			}
		})
	}
}

// TestResolveRegistrar: a phone on loopback contacts loopback registrars
// only, and never resolves a name other than localhost.
func TestResolveRegistrar(t *testing.T) {
	s := &sim{cfg: &config{}}
	loop := &phone{ip: ipBytes(0x7f400001)}
	tests := []struct {
		host string
		want string // "" for an error
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.45.6.7", "127.45.6.7"},
		{"192.0.2.10", ""},
		{"pbx.example.com", ""},
		{"::1", ""},
	}
	for _, tt := range tests {
		got, err := s.resolveRegistrar(loop, tt.host)
		if (err != nil) != (tt.want == "") || (err == nil && got.String() != tt.want) {
			t.Errorf("resolveRegistrar(%q) = %v, %v; want %q", tt.host, got, err, tt.want)
		}
	}
}

func TestReportsAutopFinish(t *testing.T) {
	// Power-on rounds only (T40G guide p.481; SOURCES.md).
	for trigger, want := range map[string]bool{triggerBoot: true, triggerReboot: true, triggerCheckSync: false, triggerActionURI: false} {
		s := &sim{cfg: &config{}}
		if got := s.reportsAutopFinish(roundCause{trigger: trigger}); got != want {
			t.Errorf("%s round: %v", trigger, got)
		}
	}
}
