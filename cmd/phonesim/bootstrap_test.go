package main

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverCert issues a certificate for 127.0.0.1.
func (ca *testCA) serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "provbox"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// provServer emulates provbox's side of the bootstrap. Over plain HTTP it
// serves a phone's config without credentials while the claim window is
// open (401 otherwise), and ca.crt. Over HTTPS, with a certificate from
// its own CA, it serves the config only to the phone's Basic credentials
// (401 with a challenge otherwise). Each config it serves over HTTPS
// carries the next of passwords: the secret rotates.
type provServer struct {
	plain, secure *httptest.Server

	claimOpen bool
	caFile    []byte   // served as ca.crt
	trust     string   // static.security.trust_certificates in the configs
	passwords []string // the config's password: [0] at claim, then the next on each HTTPS config
	revoked   bool     // HTTPS refuses every credential

	mu   sync.Mutex
	gen  int // index of the password HTTPS accepts
	seen []provRequest
}

type provRequest struct {
	from   string // the client's address
	https  bool
	path   string
	auth   string // "user:password", "" without credentials
	status int
}

func startProvServer(t *testing.T, s *provServer, ca *testCA) {
	t.Helper()
	s.plain = httptest.NewServer(http.HandlerFunc(s.servePlain))
	t.Cleanup(s.plain.Close)
	s.secure = httptest.NewUnstartedServer(http.HandlerFunc(s.serveSecure))
	s.secure.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}}
	s.secure.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of a case
	s.secure.StartTLS()
	t.Cleanup(s.secure.Close)
}

func (s *provServer) record(r *http.Request, status int) {
	auth := ""
	if u, p, ok := r.BasicAuth(); ok {
		auth = u + ":" + p
	}
	from, _, _ := net.SplitHostPort(r.RemoteAddr)
	s.seen = append(s.seen, provRequest{from: from, https: r.TLS != nil, path: r.URL.Path, auth: auth, status: status})
}

func (s *provServer) servePlain(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path == "/prov/ca.crt" {
		s.record(r, http.StatusOK)
		w.Write(s.caFile)
		return
	}
	mac, ok := macFile(r.URL.Path)
	switch {
	case !ok:
		s.record(r, http.StatusNotFound)
		http.NotFound(w, r)
	case !s.claimOpen:
		s.record(r, http.StatusUnauthorized)
		challenge(w)
	default:
		s.record(r, http.StatusOK)
		s.config(w, mac)
	}
}

func (s *provServer) serveSecure(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mac, ok := macFile(r.URL.Path)
	if !ok {
		s.record(r, http.StatusNotFound)
		http.NotFound(w, r)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || s.revoked || user != mac || pass != s.passwords[s.gen] {
		s.record(r, http.StatusUnauthorized)
		challenge(w)
		return
	}
	s.record(r, http.StatusOK)
	if s.gen+1 < len(s.passwords) {
		s.gen++ // the phone fetched with the old secret; it gets the new one
	}
	s.config(w, mac)
}

func macFile(path string) (string, bool) {
	name, ok := strings.CutPrefix(path, "/prov/")
	mac, ok2 := strings.CutSuffix(name, ".cfg")
	return mac, ok && ok2 && len(mac) == 12
}

func challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="provbox provisioning"`)
	http.Error(w, "401 unauthorized", http.StatusUnauthorized)
}

func (s *provServer) config(w http.ResponseWriter, mac string) {
	w.Header().Set("ETag", fmt.Sprintf(`"g%d-%s"`, s.gen, mac))
	fmt.Fprintf(w, `#!version:1.0.0.1
## provbox
account.1.user_name = %s
static.auto_provision.pnp_enable = 0
sip.notify_reboot_enable = 0
static.trusted_certificates.url = %s/prov/ca.crt
static.security.trust_certificates = %s
static.security.ca_cert = 2
static.auto_provision.server.url = %s/prov/
static.auto_provision.server.username = %s
static.auto_provision.server.password = %s
`, mac, s.plain.URL, s.trust, s.secure.URL, mac, s.passwords[s.gen])
}

func (s *provServer) requests() []provRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]provRequest(nil), s.seen...)
}

// TestBootstrap boots one phone against provServer and sends it
// check-syncs: each case says what the boot fetch and each re-fetch show.
func TestBootstrap(t *testing.T) {
	const mac = "0015650a0000"
	type want struct {
		status   int    // 0: no response (the error line only)
		https    bool   // fetched from the HTTPS server
		tls      bool   // "tls" of the line
		auth     string // "auth" of the line
		etag     string
		errStage string // an error line follows, of this stage
		err      string // … holding this
		trigger  string // of a fetch line; "" is check-sync
	}
	tests := []struct {
		name      string
		srv       *provServer
		otherCA   bool // ca.crt is another CA's: the HTTPS server's certificate does not verify
		boot      want
		refetches []want
		exit      int
		retries   float64
		failed    float64  // summary refetch_failed
		secure    []string // credentials of each request the HTTPS handler saw, in order
	}{
		{
			name: "claim, then HTTPS with the secret; the rotated secret opens the next fetch",
			srv:  &provServer{claimOpen: true, trust: "1", passwords: []string{"s3cret-A", "s3cret-B", "s3cret-C"}},
			boot: want{status: 200, auth: "none", etag: `"g0-` + mac + `"`},
			refetches: []want{
				{status: 200, https: true, tls: true, auth: "basic", etag: `"g1-` + mac + `"`},
				{status: 200, https: true, tls: true, auth: "basic", etag: `"g2-` + mac + `"`},
			},
			retries: 2,
			secure:  []string{"", mac + ":s3cret-A", "", mac + ":s3cret-B"},
		},
		{
			// The phone never took a config: it still has the factory
			// notify_reboot_enable = 1, so the check-sync reboots it.
			name: "claim window closed: 401 at boot, no credentials to retry with",
			srv:  &provServer{claimOpen: false, trust: "1", passwords: []string{"s3cret-A"}},
			boot: want{status: 401, auth: "none", errStage: "boot", err: "HTTP 401"},
			refetches: []want{
				{status: 401, auth: "none", errStage: "fetch", err: "HTTP 401", trigger: "reboot"},
			},
			exit:   1,
			failed: 1,
		},
		{
			name:    "server certificate from another CA",
			srv:     &provServer{claimOpen: true, trust: "1", passwords: []string{"s3cret-A"}},
			otherCA: true,
			boot:    want{status: 200, auth: "none", etag: `"g0-` + mac + `"`},
			refetches: []want{
				{errStage: "fetch", err: "certificate"},
			},
			failed: 1,
		},
		{
			name:    "trust_certificates = 0: any certificate, not verified",
			srv:     &provServer{claimOpen: true, trust: "0", passwords: []string{"s3cret-A"}},
			otherCA: true,
			boot:    want{status: 200, auth: "none", etag: `"g0-` + mac + `"`},
			refetches: []want{
				{status: 200, https: true, tls: false, auth: "basic", etag: `"g0-` + mac + `"`},
			},
			retries: 1,
			secure:  []string{"", mac + ":s3cret-A"},
		},
		{
			name: "credentials refused after the retry",
			srv:  &provServer{claimOpen: true, trust: "1", passwords: []string{"s3cret-A"}, revoked: true},
			boot: want{status: 200, auth: "none", etag: `"g0-` + mac + `"`},
			refetches: []want{
				{status: 401, https: true, tls: true, auth: "basic", errStage: "fetch", err: "HTTP 401"},
			},
			retries: 1,
			failed:  1,
			secure:  []string{"", mac + ":s3cret-A"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv
			ca := newTestCA(t, "provbox test CA")
			srv.caFile = ca.pem
			if tt.otherCA {
				srv.caFile = newTestCA(t, "another CA").pem
			}
			startProvServer(t, srv, ca)
			ipBase, port := testAddrs(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ev, done, stderr := startRun(t, ctx, "-first-mac", mac, "-ip-base", ipBase, "-sip-port", strconv.Itoa(port),
				"-prov", srv.plain.URL+"/prov/", "-reboot-time", "50ms")

			check := func(line event, w want) {
				t.Helper()
				base := srv.plain.URL + "/prov/"
				if w.https {
					base = srv.secure.URL + "/prov/"
				}
				if line.num("status") != float64(w.status) || line.str("url") != base+mac+".cfg" ||
					line["tls"] != w.tls || line.str("auth") != w.auth || line.str("etag") != w.etag {
					t.Errorf("%s line %v, want %+v", line.str("event"), line, w)
				}
				if trigger := cmp.Or(w.trigger, "check-sync"); line.str("event") == "fetch" && line.str("trigger") != trigger {
					t.Errorf("fetch line %v, want trigger %s", line, trigger)
				}
			}
			checkErr := func(stage string, w want) {
				t.Helper()
				if w.errStage == "" {
					return
				}
				e := ev.wait("error "+stage, 5*time.Second, isEventFor("error", mac))
				if e.str("stage") != w.errStage || !strings.Contains(e.str("error"), w.err) {
					t.Errorf("error line %v, want stage %s with %q", e, w.errStage, w.err)
				}
			}
			check(ev.wait("boot", 5*time.Second, isEventFor("boot", mac)), tt.boot)
			checkErr("boot", tt.boot)
			ev.wait("booted", 5*time.Second, isEvent("booted"))

			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			phone := &net.UDPAddr{IP: net.ParseIP(ipBase), Port: port}
			for i, w := range tt.refetches {
				notify := sipRequest{uri: "sip:1001@" + phone.String(), callID: fmt.Sprintf("bootstrap-%d", i),
					event: "check-sync;reboot=false", via: conn.LocalAddr().String()}.bytes()
				if r := parseResponse(t, sipExchange(t, conn, phone, notify)); r.StatusCode != 200 {
					t.Fatalf("check-sync %d answered %d", i, r.StatusCode)
				}
				if w.status != 0 {
					check(ev.wait("fetch", 5*time.Second, isEventFor("fetch", mac)), w)
				}
				checkErr("fetch", w)
			}

			cancel()
			if code := waitExit(t, done, 5*time.Second); code != tt.exit {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.exit, stderr)
			}
			sum := ev.wait("summary", time.Second, isEvent("summary"))
			if sum.num("auth_retries") != tt.retries || sum.num("refetches") != float64(len(tt.refetches)) ||
				sum.num("refetch_failed") != tt.failed {
				t.Errorf("summary %v; want auth_retries %v, refetch_failed %v", sum, tt.retries, tt.failed)
			}
			ev.drain()

			// Every request came from the phone's own address; the plain
			// server never saw credentials, and ca.crt was fetched once:
			// later configs name the same URL.
			var secure []string
			caFetches := 0
			for _, r := range srv.requests() {
				if r.from != ipBase {
					t.Errorf("request from %s, want the phone's %s: %+v", r.from, ipBase, r)
				}
				switch {
				case r.https:
					secure = append(secure, r.auth)
				case r.auth != "":
					t.Errorf("credentials over plain HTTP: %+v", r)
				case r.path == "/prov/ca.crt":
					caFetches++
				}
			}
			if !reflect.DeepEqual(secure, tt.secure) {
				t.Errorf("HTTPS requests carried %q, want %q", secure, tt.secure)
			}
			if want := map[bool]int{true: 1}[tt.srv.claimOpen]; caFetches != want {
				t.Errorf("ca.crt fetched %d times, want %d", caFetches, want)
			}
		})
	}
}

// TestBootstrapBadCAFile: ca.crt holds no certificate; the phone cannot
// take its config in full and its boot fails.
func TestBootstrapBadCAFile(t *testing.T) {
	srv := &provServer{claimOpen: true, trust: "1", passwords: []string{"s3cret-A"}, caFile: []byte("not a certificate\n")}
	startProvServer(t, srv, newTestCA(t, "provbox test CA"))
	ipBase, port := testAddrs(t)
	ev, done, _ := startRun(t, context.Background(), "-ip-base", ipBase, "-sip-port", strconv.Itoa(port),
		"-prov", srv.plain.URL+"/prov/", "-duration", "1ms")
	e := ev.wait("error", 5*time.Second, isEvent("error"))
	if e.str("stage") != "ca" || !strings.Contains(e.str("error"), "ca.crt") || !strings.Contains(e.str("error"), "no certificate") {
		t.Errorf("error line %v", e)
	}
	if code := waitExit(t, done, 5*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	ev.drain()
}

func TestReadConfig(t *testing.T) {
	long := strings.Repeat("x", 10000)
	tests := []struct {
		name      string
		in        string
		versioned bool
		values    map[string]string
	}{
		{"provisioning keys", "#!version:1.0.0.1\n## comment\naccount.1.user_name = 1001\n" +
			"static.auto_provision.server.url = https://10.0.0.2:8443/prov/\n" +
			"static.auto_provision.server.username=001565aabbcc\n" +
			"static.auto_provision.server.password =  s3cret = A  \n" +
			"static.trusted_certificates.url = http://10.0.0.2:8080/prov/ca.crt\n" +
			"static.security.trust_certificates = 1\n", true, map[string]string{
			keyServerURL: "https://10.0.0.2:8443/prov/", keyUsername: "001565aabbcc", keyPassword: "s3cret = A",
			keyCAURL: "http://10.0.0.2:8080/prov/ca.crt", keyTrustCerts: "1", "account.1.user_name": "1001",
		}},
		{"with and without static., the later line wins", "#!version:1.0.0.1\n" +
			"auto_provision.server.url = http://old/\nstatic.auto_provision.server.url = http://new/\n" +
			"static.security.user_password = admin:pw\n", true,
			map[string]string{keyServerURL: "http://new/", keyUserPassword: "admin:pw"}},
		{"behaviour keys kept, others dropped", "#!version:1.0.0.1\n" +
			"sip.notify_reboot_enable = 0\nsip.trust_ctrl = 1\naction_url.setup_autop_finish = http://p/r?m=$mac\n" +
			"action_url.off_hook = http://p/x\naccount.16.sip_server.1.port = 5062\naccount.17.enable = 1\n" +
			"account.1.label = Alice\nlinekey.1.type = 15\nfeatures.action_uri_limit_ip = 10.0.0.*\n", true,
			map[string]string{keyNotifyReboot: "0", keyTrustCtrl: "1", "action_url.setup_autop_finish": "http://p/r?m=$mac",
				"account.16.sip_server.1.port": "5062", keyActionURILimitIP: "10.0.0.*"}},
		{"CRLF, %NULL% kept, blank left out", "#!version:1.0.0.1\r\nstatic.auto_provision.server.username = %NULL%\r\n" +
			"static.auto_provision.server.password =\r\n", true, map[string]string{keyUsername: nullValue}},
		{"commented out", "#!version:1.0.0.1\n#static.auto_provision.server.password = x\n", true, map[string]string{}},
		{"no version line", "static.security.trust_certificates = 0\n", false, map[string]string{keyTrustCerts: "0"}},
		{"version line not first", "\n#!version:1.0.0.1\n", false, map[string]string{}},
		{"long line skipped, no final newline", "#!version:1.0.0.1\nx = " + long + "\nstatic.security.trust_certificates = 0",
			true, map[string]string{keyTrustCerts: "0"}},
		{"long first line", long + "\nstatic.security.trust_certificates = 1\n", false, map[string]string{keyTrustCerts: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := readConfig(strings.NewReader(tt.in))
			if err != nil || c.versioned != tt.versioned || !reflect.DeepEqual(c.values, tt.values) {
				t.Errorf("readConfig = %+v, %v; want versioned %v, %v", c, err, tt.versioned, tt.values)
			}
		})
	}
}

func TestBasicChallenge(t *testing.T) {
	tests := []struct {
		headers []string
		want    bool
	}{
		{[]string{`Basic realm="provbox provisioning"`}, true},
		{[]string{`basic`}, true},
		{[]string{`Digest realm="x", qop="auth"`, `Basic realm="y"`}, true},
		{[]string{`Digest realm="x", Basic realm="y"`}, true},
		{[]string{`Digest realm="x"`}, false},
		{[]string{`Bearer`}, false},
		{nil, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.headers {
			h.Add("WWW-Authenticate", v)
		}
		if got := basicChallenge(h); got != tt.want {
			t.Errorf("basicChallenge(%q) = %v, want %v", tt.headers, got, tt.want)
		}
	}
}

// TestClientsShared: phones that trust the same certificates share one
// transport; a different certificate, or no verification, gets another.
func TestClientsShared(t *testing.T) {
	a, b := newTestCA(t, "a").cert, newTestCA(t, "b").cert
	with := func(noVerify bool, certs ...*x509.Certificate) *flash {
		f := &flash{noVerify: noVerify}
		if err := f.addCAs(certs); err != nil {
			t.Fatal(err)
		}
		return f
	}
	var cs clients
	first, verifies := cs.get(with(false, a))
	if !verifies {
		t.Error("a custom CA does not verify")
	}
	tests := []struct {
		name     string
		f        *flash
		same     bool
		verifies bool
	}{
		{"same CA", with(false, a), true, true},
		{"same CA added twice", with(false, a, a), true, true},
		{"other CA", with(false, b), false, true},
		{"both CAs", with(false, a, b), false, true},
		{"system roots", with(false), false, true},
		{"no verification", with(true, a), false, false},
	}
	for _, tt := range tests {
		c, v := cs.get(tt.f)
		if (c == first) != tt.same || v != tt.verifies {
			t.Errorf("%s: shared %v verifies %v, want %v %v", tt.name, c == first, v, tt.same, tt.verifies)
		}
	}
	if len(cs.byKey) != 5 {
		t.Errorf("%d transports, want 5", len(cs.byKey))
	}
}
