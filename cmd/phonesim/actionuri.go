package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Action URI: a Yealink obeys "GET http(s)://<phone>/servlet?key=<KEY>"
// (keys separated by ';'), answering 200 when it performed the action.
// Sources: T21P E2 guide p.459-465, https://easymanua.ls/yealink/t21pe2/manual?p=465;
// T40G guide, https://www.easymanua.ls/yealink/t40g/manual/289184?p=523;
// T2/T4/T5 guide "Variable Values List", https://easymanua.ls/yealink/sip-t4u-series/manual?p=480
// (yealink-audit.md §2 "Better trigger 2" and "Confirmed after the audit").

// actionURIPaths are the request paths a phone takes: /servlet, and the
// two older forms the guides say phones still accept
// (https://www.easymanua.ls/yealink/sip-t2-series/manual?p=717).
var actionURIPaths = map[string]bool{"/servlet": true, "/cgi-bin/ConfigManApp.com": true, "/cgi-bin/cgiServer.exx": true}

// Keys phonesim acts on. Neither is in a Yealink guide page; both are in
// the firmware's command table (YFW 35226849602, CActionUri::MyInit; AutoP
// runs what "Auto Provision Now" runs) and public tools use them. Matched
// exactly, as the firmware's map lookup does: "autop" is unknown.
const (
	keyAutoP  = "AutoP"  // auto-provision now: a round like a check-sync's, no reboot
	keyReboot = "Reboot" // reboot, then the boot round
)

// idleKeys answer 200 and change nothing an emulated phone has: the key
// presses of the guide's variable list (T2/T4/T5 guide p.477, above) and
// the other commands of the firmware table (DND, call waiting, transfer,
// end call, redial). "Reset" (factory reset) is in that table too; phonesim
// does not emulate it, so it is refused as unknown rather than faked.
var idleKeys = map[string]bool{"OK": true, "ENTER": true, "SPEAKER": true, "F_TRANSFER": true,
	"VOLUME_UP": true, "VOLUME_DOWN": true, "MUTE": true, "F_HOLD": true, "HOLD": true, "F_CONFERENCE": true,
	"F1": true, "F2": true, "F3": true, "F4": true, "UP": true, "DOWN": true, "LEFT": true, "RIGHT": true,
	"CANCEL": true, "DNDOn": true, "DNDOff": true, "CallWaitingOn": true, "CallWaitingOff": true,
	"ATrans": true, "BTrans": true, "CALLEND": true, "CallEnd": true, "RD": true}

// actionURIRequest is what the checks look at in one request.
type actionURIRequest struct {
	from       netip.Addr
	user, pass string
	hasAuth    bool   // Basic credentials were sent
	key        string // the key parameter, as decoded
}

// actionURIDecision is the answer and what the phone then does.
type actionURIDecision struct {
	status        int
	autop, reboot bool
}

// decideActionURI runs the phone's checks in order:
//
//  1. features.action_uri.enable (factory 1): 0 → 403.
//  2. features.action_uri_limit_ip: the source must match an entry (IPv4
//     addresses, '*' for any octet, "any" for everyone); blank, the
//     factory value, "will reject any HTTP GET request" → 403
//     (T40G guide p.523 above). The status of a refusal is UNVERIFIED.
//  3. HTTP Basic credentials equal to the admin's (factory admin:admin,
//     set by static.security.user_password = admin:<password>) → else 401
//     with a Basic challenge. The V8x guide writes the credentials as URL
//     userinfo (https://easymanua.ls/yealink/sip-t4u-series/manual?p=480),
//     which clients send as Basic; older firmware used login parameters
//     in the query, which phonesim does not take. The phone's challenge
//     scheme and status are UNVERIFIED.
//  4. features.show_action_uri_option (factory 1): the phone holds the
//     first request and asks "Allow remote control?" on its screen; it
//     runs it only when someone presses OK, and drops further requests
//     while the prompt is pending (YFW 35165426425, CAccessManager; guide:
//     https://www.easymanua.ls/yealink/sip-t41s/manual/21214?p=479).
//     Nobody presses OK on an emulated phone, so nothing ever runs:
//     phonesim answers 403. What a real phone answers meanwhile is
//     UNVERIFIED.
//  5. The key: AutoP or Reboot act, an idle key answers 200, anything else
//  400. The firmware ignores a key it does not know; which status it
//     then answers is UNVERIFIED.
func decideActionURI(c actionURIConfig, r actionURIRequest) actionURIDecision {
	switch {
	case !c.enable:
		return actionURIDecision{status: http.StatusForbidden}
	case !limitIPAllows(c.limitIP, r.from):
		return actionURIDecision{status: http.StatusForbidden}
	case !r.hasAuth || !equalSecret(r.user, c.adminUser) || !equalSecret(r.pass, c.adminPass):
		return actionURIDecision{status: http.StatusUnauthorized}
	case c.prompt:
		return actionURIDecision{status: http.StatusForbidden}
	}
	d := actionURIDecision{status: http.StatusOK}
	for _, k := range strings.Split(r.key, ";") {
		switch k = strings.TrimSpace(k); {
		case k == keyAutoP:
			d.autop = true
		case k == keyReboot:
			d.reboot = true
		case idleKeys[k]:
		default:
			return actionURIDecision{status: http.StatusBadRequest}
		}
	}
	return d
}

func equalSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// limitIPAllows matches ip against features.action_uri_limit_ip.
func limitIPAllows(list string, ip netip.Addr) bool {
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if strings.EqualFold(entry, "any") || (entry != "" && ipPatternMatches(entry, ip)) {
			return true
		}
	}
	return false
}

// ipPatternMatches matches an IPv4 address against "10.1.4.3" or
// "10.10.*.*".
func ipPatternMatches(pattern string, ip netip.Addr) bool {
	ip = ip.Unmap()
	parts := strings.Split(pattern, ".")
	if !ip.Is4() || len(parts) != 4 {
		return false
	}
	octets := ip.As4()
	for i, part := range parts {
		if part == "*" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n != int(octets[i]) {
			return false
		}
	}
	return true
}

// startWeb starts the phone's HTTPS server on its address and -web-port.
// All phones present one self-signed certificate (a real one presents its
// own device certificate).
func (s *sim) startWeb(p *phone) error {
	ln, err := net.Listen("tcp4", net.JoinHostPort(p.ip.String(), strconv.Itoa(s.cfg.webPort)))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveActionURI(p, w, r) }),
		ReadHeaderTimeout: httpTimeout,
		ErrorLog:          log.New(io.Discard, "", 0), // clients that refuse the certificate are expected
	}
	if !s.track(srv) {
		ln.Close()
		return errors.New("shutting down")
	}
	if !s.spawn(func() { srv.Serve(tls.NewListener(ln, s.webTLS)) }) {
		ln.Close()
		return errors.New("shutting down")
	}
	return nil
}

// serveActionURI answers one request to the phone's web server.
func (s *sim) serveActionURI(p *phone, w http.ResponseWriter, r *http.Request) {
	if p.down.Load() {
		// Rebooting: nobody answers. Drop the connection.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	got := time.Now()
	key, _ := queryValue(r.URL.RawQuery, "key")
	from, _ := netip.ParseAddrPort(r.RemoteAddr)
	var d actionURIDecision
	switch {
	case !actionURIPaths[r.URL.Path]:
		d.status = http.StatusNotFound
	case r.Method != http.MethodGet:
		d.status = http.StatusMethodNotAllowed
	default:
		user, pass, ok := r.BasicAuth()
		d = decideActionURI(p.live.Load().actionURI, actionURIRequest{from: from.Addr(), user: user, pass: pass,
			hasAuth: ok, key: key})
	}
	if d.status == http.StatusUnauthorized {
		// The scheme and realm a phone sends are UNVERIFIED; clients
		// send Basic preemptively.
		w.Header().Set("WWW-Authenticate", `Basic realm="Yealink"`)
	}
	w.WriteHeader(d.status)
	s.actionURI.Add(1)
	s.out.emit(actionURIEvent{Event: "action_uri", MAC: p.mac, At: got.UnixNano(), Key: key, From: r.RemoteAddr,
		Status: d.status}, false)
	c := roundCause{trigger: triggerActionURI, at: got}
	switch {
	case d.reboot:
		s.reboot(p, c)
	case d.autop:
		s.spawn(func() { s.refetch(p, c) })
	}
}

// queryValue finds a parameter in a raw query split at '&' only: the
// Action URI separates keys with ';', which net/url no longer accepts as
// a separator.
func queryValue(raw, name string) (string, bool) {
	for _, pair := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			continue
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		return v, true
	}
	return "", false
}

// selfSignedTLS makes the phones' web server certificate.
func selfSignedTLS() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "phonesim Yealink web server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, nil
}
