package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The behaviour settings a phone keeps from its configs, besides the
// provisioning keys of prov.go. Names are canonical (without "static.",
// see canonicalKey); the package comment gives each one's source.
const (
	keyNotifyReboot     = "sip.notify_reboot_enable"
	keyTrustCtrl        = "sip.trust_ctrl"
	keyActionURIEnable  = "features.action_uri.enable"
	keyActionURILimitIP = "features.action_uri_limit_ip"
	keyShowActionURI    = "features.show_action_uri_option"
	keyUserPassword     = "security.user_password"
	actionURLPrefix     = "action_url."

	maxAccounts     = 16  // account.1 … account.16: the most any Yealink model has (yealink.md §2)
	maxActionURL    = 511 // "URL within 511 characters" (CP960 guide p.443, yealink-audit.md last section)
	defaultSIPPort  = 5060
	factoryAdmin    = "admin"
	factoryPassword = "admin"
)

// The action URL events phonesim knows. It never sends ip_change: an
// emulated phone keeps its address.
const (
	reportAutopFinish    = "setup_autop_finish"
	reportRegistered     = "registered"
	reportRegisterFailed = "register_failed"
	reportUnregistered   = "unregistered"
	reportIPChange       = "ip_change"
)

var actionURLNames = map[string]bool{reportAutopFinish: true, reportRegistered: true,
	reportRegisterFailed: true, reportUnregistered: true, reportIPChange: true}

// The account.N fields phonesim reads.
const (
	fieldEnable   = "enable"
	fieldUserName = "user_name"
	fieldAuthName = "auth_name"
	fieldPassword = "password"
	fieldAddress  = "sip_server.1.address"
	fieldPort     = "sip_server.1.port"
)

var accountFields = map[string]bool{fieldEnable: true, fieldUserName: true, fieldAuthName: true,
	fieldPassword: true, fieldAddress: true, fieldPort: true}

// canonicalKey drops the "static." prefix: firmware V81 and later name some
// settings static.auto_provision.server.url, older firmware
// auto_provision.server.url, and provbox writes both (yealink-audit.md §1,
// the auto_provision.server.url row). For phonesim they are one setting;
// the later line of a file wins.
func canonicalKey(k string) string { return strings.TrimPrefix(k, "static.") }

// settingKey reports whether phonesim keeps the (canonical) key k.
func settingKey(k string) bool {
	switch k {
	case keyServerURL, keyUsername, keyPassword, keyCAURL, keyTrustCerts,
		keyNotifyReboot, keyTrustCtrl, keyActionURIEnable, keyActionURILimitIP, keyShowActionURI, keyUserPassword:
		return true
	}
	if name, ok := strings.CutPrefix(k, actionURLPrefix); ok {
		return actionURLNames[name]
	}
	_, _, ok := accountKey(k)
	return ok
}

// accountKey splits "account.3.sip_server.1.address" into 3 and
// "sip_server.1.address"; ok is false for other keys and other fields.
func accountKey(k string) (n int, field string, ok bool) {
	rest, ok := strings.CutPrefix(k, "account.")
	if !ok {
		return 0, "", false
	}
	num, field, ok := strings.Cut(rest, ".")
	if !ok || !accountFields[field] {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > maxAccounts || strconv.Itoa(n) != num {
		return 0, "", false
	}
	return n, field, true
}

// account is one SIP account's registration settings.
type account struct {
	enable   bool
	address  string // account.N.sip_server.1.address: a host name or an IPv4 address
	port     int    // account.N.sip_server.1.port; 0 means 5060
	userName string
	authName string // empty: the user name
	password string
}

// active reports whether the phone registers the account: enabled, with a
// registrar.
func (a account) active() bool { return a.enable && a.address != "" }

func (a account) registrarPort() int {
	if a.port == 0 {
		return defaultSIPPort
	}
	return a.port
}

func (a account) authUser() string {
	if a.authName != "" {
		return a.authName
	}
	return a.userName
}

// actionURIConfig is what the phone's web server checks before it obeys an
// Action URI request (actionuri.go).
type actionURIConfig struct {
	enable    bool   // features.action_uri.enable
	limitIP   string // features.action_uri_limit_ip, as written
	prompt    bool   // features.show_action_uri_option: ask on screen instead of obeying
	adminUser string
	adminPass string // from security.user_password = admin:<password>
}

// factoryFlash is a phone's flash before any config: the factory
// defaults of the behaviour settings (the provisioning keys' zero values
// are their defaults already).
func factoryFlash() flash {
	return flash{
		notifyReboot: 1,
		actionURI:    actionURIConfig{enable: true, prompt: true, adminUser: factoryAdmin, adminPass: factoryPassword},
	}
}

// applySettings takes the behaviour settings of one config into f. A bad
// value is reported and leaves the setting as it was; "%NULL%" restores
// the factory value.
func applySettings(f *flash, values map[string]string) []error {
	var errs []error
	bad := func(k, v, want string) { errs = append(errs, fmt.Errorf("%s = %q: want %s", k, v, want)) }
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys) // errors in a stable order
	for _, k := range keys {
		v := values[k]
		null := v == nullValue
		switch {
		case k == keyNotifyReboot:
			switch {
			case null:
				f.notifyReboot = 1
			case v == "0" || v == "1" || v == "2":
				f.notifyReboot = int(v[0] - '0')
			default:
				bad(k, v, "0, 1 or 2")
			}
		case k == keyTrustCtrl:
			if b, ok := boolSetting(v, false); ok {
				f.trustCtrl = b
			} else {
				bad(k, v, "0 or 1")
			}
		case k == keyActionURIEnable:
			if b, ok := boolSetting(v, true); ok {
				f.actionURI.enable = b
			} else {
				bad(k, v, "0 or 1")
			}
		case k == keyShowActionURI:
			if b, ok := boolSetting(v, true); ok {
				f.actionURI.prompt = b
			} else {
				bad(k, v, "0 or 1")
			}
		case k == keyActionURILimitIP:
			f.actionURI.limitIP = cleared(v)
		case k == keyUserPassword:
			user, pass, ok := strings.Cut(v, ":")
			switch {
			case null:
				f.actionURI.adminPass = factoryPassword
			case !ok || user == "":
				bad(k, v, "user:password")
			case user == f.actionURI.adminUser:
				f.actionURI.adminPass = pass
			}
			// Other users' passwords (the non-admin "user", "var") do not
			// open the Action URI; they are not kept.
		case strings.HasPrefix(k, actionURLPrefix):
			name := strings.TrimPrefix(k, actionURLPrefix)
			if null {
				delete(f.actionURLs, name)
				continue
			}
			v = actionURL(v)
			if err := checkActionURL(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				continue
			}
			if f.actionURLs == nil {
				f.actionURLs = map[string]string{}
			}
			f.actionURLs[name] = v
		default:
			n, field, ok := accountKey(k)
			if !ok {
				continue // a provisioning key: learn takes it
			}
			if err := setAccountField(&f.accounts[n-1], field, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		}
	}
	return errs
}

// boolSetting reads a 0/1 setting; "%NULL%" is the factory value def.
func boolSetting(v string, def bool) (value, ok bool) {
	switch v {
	case nullValue:
		return def, true
	case "0":
		return false, true
	case "1":
		return true, true
	}
	return false, false
}

func setAccountField(a *account, field, v string) error {
	switch field {
	case fieldEnable:
		b, ok := boolSetting(v, false)
		if !ok {
			return fmt.Errorf("%q: want 0 or 1", v)
		}
		a.enable = b
	case fieldPort:
		if v == nullValue {
			a.port = 0
			return nil
		}
		port, err := strconv.Atoi(v)
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("%q: want a port, 1 to 65535", v)
		}
		a.port = port
	case fieldAddress:
		a.address = cleared(v)
	case fieldUserName:
		a.userName = cleared(v)
	case fieldAuthName:
		a.authName = cleared(v)
	case fieldPassword:
		a.password = cleared(v)
	}
	return nil
}

// actionURL is a configured action URL as the firmware sends it: trimmed,
// and "http://" put in front when it has no scheme (CActionUrl::MySend,
// YFW 35534784267).
func actionURL(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	return v
}

// checkActionURL checks an action URL template: an http(s) URL with a host,
// within Yealink's length limit. Its $variables are in the query, where
// url.Parse accepts them.
func checkActionURL(v string) error {
	if len(v) > maxActionURL {
		return fmt.Errorf("%d characters: Yealink takes at most %d", len(v), maxActionURL)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", v)
	}
	return nil
}

// live is what a running phone acts on between provisioning rounds: a
// snapshot of its flash, published after each round (publish). Its SIP
// reader, web server and report and registration goroutines read it
// without taking the round's lock.
type live struct {
	notifyReboot int
	trustCtrl    bool
	registrars   []netip.Addr      // the addresses of the enabled accounts' registrars
	actionURLs   map[string]string // nil with -no-action-urls
	actionURI    actionURIConfig
	client       *http.Client // the phone's provisioning transport: what it trusts
}

// allows reports whether trust_ctrl lets a request from src in.
func (l *live) allows(src netip.Addr) bool {
	if !l.trustCtrl {
		return true
	}
	src = src.Unmap()
	for _, r := range l.registrars {
		if r == src {
			return true
		}
	}
	return false
}

// publish snapshots the phone's flash for its other goroutines. The caller
// holds roundMu (or the phone has not started yet).
func (s *sim) publish(p *phone) {
	f := &p.flash
	l := &live{notifyReboot: f.notifyReboot, trustCtrl: f.trustCtrl, actionURI: f.actionURI}
	l.client, _ = s.clients.get(f)
	if !s.cfg.noActionURLs && len(f.actionURLs) > 0 {
		l.actionURLs = make(map[string]string, len(f.actionURLs))
		for k, v := range f.actionURLs {
			l.actionURLs[k] = v
		}
	}
	if f.trustCtrl {
		seen := map[netip.Addr]bool{}
		for _, a := range f.accounts {
			if !a.active() {
				continue
			}
			ip, err := s.resolveRegistrar(p, a.address)
			if err != nil {
				// Untrusted, then. The loopback rule is phonesim's, not the
				// config's fault: no error line for it, or every round of
				// every test phone would print one.
				if s.ctx.Err() == nil && !errors.Is(err, errNotLoopback) {
					s.fail(p, "config", fmt.Errorf("trust_ctrl: registrar %s: %w", a.address, err))
				}
				continue
			}
			if !seen[ip] {
				seen[ip] = true
				l.registrars = append(l.registrars, ip)
			}
		}
	}
	p.live.Store(l)
}

var errNotLoopback = errors.New("not a loopback address, and this phone is on loopback: phonesim does not contact it")

// resolveRegistrar finds a registrar's IPv4 address. A phone on a
// loopback address (every test) only talks to loopback: a registrar name
// such as pbx.example.com in a test config must not become a DNS query or
// a REGISTER that leaves the machine. That is phonesim's safety rule, not
// Yealink behaviour.
func (s *sim) resolveRegistrar(p *phone, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if !ip.Is4() {
			return netip.Addr{}, fmt.Errorf("%s: phonesim speaks IPv4 only", host)
		}
		if p.ip.IsLoopback() && !ip.IsLoopback() {
			return netip.Addr{}, errNotLoopback
		}
		return ip, nil
	}
	if p.ip.IsLoopback() && host != "localhost" {
		return netip.Addr{}, errNotLoopback
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ip := range ips {
		if ip = ip.Unmap(); !p.ip.IsLoopback() || ip.IsLoopback() {
			return ip, nil
		}
	}
	return netip.Addr{}, errNotLoopback
}

// syncAction is what a phone does about a new check-sync NOTIFY.
type syncAction int

const (
	syncRefetch syncAction = iota // auto-provision, no reboot
	syncReboot                    // reboot, then auto-provision at boot
	syncIgnore                    // answered 200, nothing done
)

func (a syncAction) String() string {
	switch a {
	case syncRefetch:
		return "refetch"
	case syncReboot:
		return "reboot"
	case syncIgnore:
		return "ignore"
	}
	return "syncAction(" + strconv.Itoa(int(a)) + ")"
}

// checkSyncAction applies sip.notify_reboot_enable to a check-sync's Event
// header: 1 (factory) reboots on every check-sync, 0 reboots only when the
// Event carries reboot=true and else re-provisions, 2 ignores check-sync.
// Source: yealink.md §5 (T5/CP969 guide p.757, T2 user guide p.45).
func checkSyncAction(notifyReboot int, event string) syncAction {
	switch notifyReboot {
	case 0:
		if rebootParam(event) {
			return syncReboot
		}
		return syncRefetch
	case 2:
		return syncIgnore
	}
	return syncReboot
}

// rebootParam reports whether an Event header value carries reboot=true
// ("check-sync;reboot=true"; names and values case-insensitive).
func rebootParam(event string) bool {
	params := strings.Split(event, ";")
	for _, p := range params[1:] {
		name, value, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(name), "reboot") &&
			strings.EqualFold(strings.Trim(strings.TrimSpace(value), `"`), "true") {
			return true
		}
	}
	return false
}
