package webui_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provbox/provbox/webui"
)

// tlsEpoch is the fake clock's start; any fixed time works.
var tlsEpoch = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable Now for CertAuthority.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tlsLogs collects a CertAuthority's log output across goroutines.
type tlsLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *tlsLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *tlsLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// namesVar is a Names func whose answer a test can change.
type namesVar struct {
	mu    sync.Mutex
	names []string
}

func (n *namesVar) Set(names ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names = names
}

func (n *namesVar) Get() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.names)
}

// MustOpenCA opens a CertAuthority on dir (a new temporary one if empty)
// for names, with now as its clock (nil: the real one).
func MustOpenCA(tb testing.TB, dir string, now func() time.Time, names ...string) (*webui.CertAuthority, *namesVar, *tlsLogs) {
	tb.Helper()
	if dir == "" {
		dir = filepath.Join(tb.TempDir(), "tls")
	}
	nv := &namesVar{names: names}
	logs := &tlsLogs{}
	ca := &webui.CertAuthority{
		Dir:    dir,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    now,
		Names:  nv.Get,
	}
	if err := ca.Open(); err != nil {
		tb.Fatal(err)
	}
	return ca, nv, logs
}

var defaultTestNames = []string{"provbox", "provbox.local", "localhost", "127.0.0.1", "::1", "192.168.1.10"}

func TestCertAuthorityOpenCreates(t *testing.T) {
	clock := &fakeClock{t: tlsEpoch}
	dir := filepath.Join(t.TempDir(), "tls")
	ca, _, _ := MustOpenCA(t, dir, clock.Now, defaultTestNames...)

	// Keys must not be readable by other users: whoever holds ca.key can
	// impersonate any server to the phones that trust it.
	for _, tt := range []struct {
		file string
		mode os.FileMode
	}{
		{".", 0o700},
		{"ca.key", 0o600},
		{"server.key", 0o600},
		{"ca.crt", 0o644},
		{"server.crt", 0o644},
	} {
		t.Run(tt.file, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.mode {
				t.Errorf("mode = %v, want %v", got, tt.mode)
			}
		})
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(tmp) > 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}

	caCert := parseCACert(t, ca)
	if !caCert.IsCA || !caCert.BasicConstraintsValid || caCert.MaxPathLen != 0 || !caCert.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v", caCert.IsCA, caCert.BasicConstraintsValid, caCert.MaxPathLen, caCert.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; caCert.KeyUsage != want {
		t.Errorf("CA KeyUsage = %v, want %v", caCert.KeyUsage, want)
	}
	if !strings.HasPrefix(caCert.Subject.CommonName, "provbox CA ") {
		t.Errorf("CA CommonName = %q", caCert.Subject.CommonName)
	}
	if got, want := caCert.NotAfter, tlsEpoch.AddDate(10, 0, 0); !got.Equal(want) {
		t.Errorf("CA NotAfter = %v, want %v", got, want)
	}
	assertP256(t, "CA", caCert)

	leaf := ca.ServerCert()
	if leaf == nil {
		t.Fatal("ServerCert() = nil after Open")
	}
	assertP256(t, "server", leaf)
	if got, want := leaf.NotBefore, tlsEpoch.Add(-time.Hour); !got.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", got, want)
	}
	if got, want := leaf.NotAfter, tlsEpoch.Add(90*24*time.Hour); !got.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", got, want)
	}
	if leaf.Subject.CommonName != "provbox" {
		t.Errorf("CommonName = %q, want the first DNS name %q", leaf.Subject.CommonName, "provbox")
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("server usage: IsCA=%v KeyUsage=%v ExtKeyUsage=%v", leaf.IsCA, leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if n := leaf.SerialNumber; n.Sign() <= 0 || n.BitLen() > 128 {
		t.Errorf("serial %v: want a positive 128-bit number", n)
	}
	if got, want := leaf.DNSNames, []string{"provbox", "provbox.local", "localhost"}; !slices.Equal(got, want) {
		t.Errorf("DNSNames = %q, want %q", got, want)
	}
	if len(leaf.IPAddresses) != 3 {
		t.Errorf("IPAddresses = %v, want 3", leaf.IPAddresses)
	}

	// The chain handed to clients is leaf then CA, so phones that trust the
	// CA need nothing else.
	cert, err := ca.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[0], leaf.Raw) || !bytes.Equal(cert.Certificate[1], caCert.Raw) {
		t.Errorf("GetCertificate chain has %d certificates, want leaf + CA", len(cert.Certificate))
	}
}

func TestCertAuthorityCommonName(t *testing.T) {
	for _, tt := range []struct {
		name  string
		names []string
		want  string
	}{
		{"first name, an address", []string{"10.0.0.1", "Phones.Example.", "provbox"}, "10.0.0.1"},
		{"first name, a host name", []string{"Phones.Example.", "10.0.0.1", "provbox"}, "phones.example"},
		{"only addresses", []string{"::1", "10.0.0.1"}, "::1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ca, _, _ := MustOpenCA(t, "", nil, tt.names...)
			if got := ca.ServerCert().Subject.CommonName; got != tt.want {
				t.Errorf("CommonName = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCertAuthorityReopen(t *testing.T) {
	clock := &fakeClock{t: tlsEpoch}
	dir := filepath.Join(t.TempDir(), "tls")
	first, _, _ := MustOpenCA(t, dir, clock.Now, defaultTestNames...)
	clock.Advance(24 * time.Hour)

	// Same names in another order and case: the same set.
	second, _, logs := MustOpenCA(t, dir, clock.Now, "LOCALHOST", "192.168.1.10", "::1", "127.0.0.1", "provbox.local", "provbox")
	if !bytes.Equal(first.CACertPEM(), second.CACertPEM()) {
		t.Error("reopening the directory created another CA")
	}
	if !bytes.Equal(first.ServerCert().Raw, second.ServerCert().Raw) {
		t.Error("reopening the directory reissued the server certificate")
	}
	if strings.Contains(logs.String(), "tls certificate issued") {
		t.Errorf("reopen logged an issue:\n%s", logs)
	}

	// Another box, another CA, distinguishable by name in a trust store.
	other, _, _ := MustOpenCA(t, "", clock.Now, defaultTestNames...)
	if a, b := parseCACert(t, first).Subject.CommonName, parseCACert(t, other).Subject.CommonName; a == b {
		t.Errorf("two CAs share the CommonName %q", a)
	}
}

func TestCertAuthorityVerify(t *testing.T) {
	clock := &fakeClock{t: tlsEpoch}
	ca, _, logs := MustOpenCA(t, "", clock.Now,
		"provbox", "Provbox.Local", "localhost", "127.0.0.1", "192.168.1.10", "::1", "[2001:db8::5]",
		"", "bad name", "fe80::1%eth0")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CACertPEM())

	for _, tt := range []struct {
		host string
		at   time.Duration // after issue
		ok   bool
	}{
		{host: "provbox", ok: true},
		{host: "provbox.local", ok: true},
		{host: "PROVBOX.LOCAL", ok: true},
		{host: "localhost", ok: true},
		{host: "127.0.0.1", ok: true},
		{host: "192.168.1.10", ok: true},
		{host: "::1", ok: true},
		{host: "2001:db8::5", ok: true},
		{host: "provbox.example.com"},
		{host: "192.168.1.11"},
		{host: "fe80::1"},
		{host: "provbox", at: -30 * time.Minute, ok: true}, // a phone whose clock lags
		{host: "provbox", at: -2 * time.Hour},
		{host: "provbox", at: 89 * 24 * time.Hour, ok: true},
		{host: "provbox", at: 91 * 24 * time.Hour},
	} {
		t.Run(tt.host+"@"+tt.at.String(), func(t *testing.T) {
			_, err := ca.ServerCert().Verify(x509.VerifyOptions{
				DNSName:     tt.host,
				Roots:       roots,
				CurrentTime: tlsEpoch.Add(tt.at),
			})
			if tt.ok && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !tt.ok && err == nil {
				t.Error("Verify succeeded, want an error")
			}
		})
	}
	if !strings.Contains(logs.String(), "skipped as invalid") {
		t.Errorf("invalid names were not logged:\n%s", logs)
	}
}

func TestCertAuthorityRefresh(t *testing.T) {
	const day = 24 * time.Hour
	for _, tt := range []struct {
		name    string
		advance time.Duration
		names   []string // nil: unchanged
		want    bool
	}{
		{name: "unchanged", want: false},
		{name: "reordered and recased", names: []string{"::1", "PROVBOX", "192.168.1.10", "127.0.0.1", "LocalHost", "provbox.local"}, want: false},
		{name: "duplicates and invalid names", names: append([]string{"provbox", "", "not valid"}, defaultTestNames...), want: false},
		{name: "59 days", advance: 59 * day, want: false},
		{name: "61 days", advance: 61 * day, want: true},
		{name: "clock set back", advance: -2 * time.Hour, want: true},
		{name: "name added", names: append([]string{"phones.example.com"}, defaultTestNames...), want: true},
		{name: "name removed", names: defaultTestNames[1:], want: true},
		{name: "address changed", names: []string{"provbox", "provbox.local", "localhost", "127.0.0.1", "::1", "192.168.1.77"}, want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: tlsEpoch}
			dir := filepath.Join(t.TempDir(), "tls")
			ca, names, logs := MustOpenCA(t, dir, clock.Now, defaultTestNames...)
			caPEM, before := ca.CACertPEM(), ca.ServerCert()

			clock.Advance(tt.advance)
			if tt.names != nil {
				names.Set(tt.names...)
			}
			got, err := ca.Refresh()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Refresh() = %v, want %v", got, tt.want)
			}
			after := ca.ServerCert()
			if reissued := !bytes.Equal(before.Raw, after.Raw); reissued != tt.want {
				t.Errorf("certificate replaced = %v, want %v", reissued, tt.want)
			}
			if !bytes.Equal(ca.CACertPEM(), caPEM) {
				t.Error("Refresh replaced the CA")
			}
			if !tt.want {
				return
			}

			if !strings.Contains(logs.String(), `msg="tls certificate issued"`) || !strings.Contains(logs.String(), "not_after=") {
				t.Errorf("issue not logged:\n%s", logs)
			}
			if again, err := ca.Refresh(); err != nil || again {
				t.Errorf("second Refresh() = %v, %v; want false, nil", again, err)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(caPEM)
			for _, n := range names.Get() {
				if _, ok := canonicalTestName(n); !ok {
					continue
				}
				if _, err := after.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, CurrentTime: clock.Now()}); err != nil {
					t.Errorf("new certificate for %q: %v", n, err)
				}
			}
			// The new certificate is on disk: a restart keeps it.
			reopened, _, _ := MustOpenCA(t, dir, clock.Now, names.Get()...)
			if !bytes.Equal(reopened.ServerCert().Raw, after.Raw) {
				t.Error("reopening after Refresh did not load the refreshed certificate")
			}
		})
	}
}

// canonicalTestName reports whether the CA is expected to keep n.
func canonicalTestName(n string) (string, bool) {
	n = strings.TrimSpace(n)
	return n, n != "" && !strings.ContainsAny(n, " %")
}

func TestCertAuthorityRun(t *testing.T) {
	ca, names, _ := MustOpenCA(t, "", nil, "localhost")
	before := ca.ServerCert()
	names.Set("localhost", "127.0.0.1")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		ca.Run(ctx, 5*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for bytes.Equal(ca.ServerCert().Raw, before.Raw) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not reissue the certificate after the names changed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestCertAuthorityTLSHandshake(t *testing.T) {
	ca, names, _ := MustOpenCA(t, "", nil, "localhost", "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: &tls.Config{GetCertificate: ca.GetCertificate},
		ErrorLog:  slog.NewLogLogger(slog.DiscardHandler, slog.LevelError), // the untrusting client's aborted handshakes
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	trusting := x509.NewCertPool()
	if !trusting.AppendCertsFromPEM(ca.CACertPEM()) {
		t.Fatal("CACertPEM is not a PEM certificate")
	}
	other, _, _ := MustOpenCA(t, "", nil, "localhost", "127.0.0.1")
	otherCA := x509.NewCertPool()
	otherCA.AppendCertsFromPEM(other.CACertPEM())

	client := func(roots *x509.CertPool) *http.Client {
		return &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: roots},
				DisableKeepAlives: true, // each request handshakes anew
			},
		}
	}
	get := func(c *http.Client, host string) (*http.Response, error) {
		resp, err := c.Get("https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}

	for _, tt := range []struct {
		name  string
		roots *x509.CertPool
		host  string
		ok    bool
	}{
		{"CA by address", trusting, "127.0.0.1", true},
		{"CA by name", trusting, "localhost", true},
		{"system roots", nil, "127.0.0.1", false},
		{"another box's CA", otherCA, "127.0.0.1", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := get(client(tt.roots), tt.host)
			if !tt.ok {
				var unknown x509.UnknownAuthorityError
				if err == nil || !errors.As(err, &unknown) {
					t.Fatalf("GET: %v, want an unknown-authority error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(ca.ServerCert().SerialNumber) != 0 {
				t.Errorf("served serial %v, want %v", got, ca.ServerCert().SerialNumber)
			}
		})
	}

	// A renewal takes effect on the next handshake, without a restart.
	names.Set("localhost", "127.0.0.1", "provbox.test")
	if ok, err := ca.Refresh(); err != nil || !ok {
		t.Fatalf("Refresh() = %v, %v", ok, err)
	}
	resp, err := get(client(trusting), "127.0.0.1")
	if err != nil {
		t.Fatalf("GET after renewal: %v", err)
	}
	if got := resp.TLS.PeerCertificates[0]; !slices.Contains(got.DNSNames, "provbox.test") {
		t.Errorf("after renewal the server still presents %q", got.DNSNames)
	}
}

func TestCertAuthorityBadCA(t *testing.T) {
	anotherKey := func(t *testing.T, dir string) {
		other := filepath.Join(t.TempDir(), "tls")
		MustOpenCA(t, other, nil, "localhost")
		b, err := os.ReadFile(filepath.Join(other, "ca.key"))
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(dir, "ca.key"), b)
	}
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string // in the error
	}{
		{"corrupt ca.key", func(t *testing.T, dir string) {
			writeTestFile(t, filepath.Join(dir, "ca.key"), []byte("not a key\n"))
		}, []string{"ca.key", "no PEM private key"}},
		{"truncated ca.key", func(t *testing.T, dir string) {
			writeTestFile(t, filepath.Join(dir, "ca.key"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		}, []string{"ca.key", "parse private key"}},
		{"corrupt ca.crt", func(t *testing.T, dir string) {
			writeTestFile(t, filepath.Join(dir, "ca.crt"), []byte("garbage"))
		}, []string{"ca.crt", "no PEM certificate"}},
		{"ca.crt missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "ca.crt"))
		}, []string{"ca.crt is missing"}},
		{"ca.key missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "ca.key"))
		}, []string{"ca.key is missing"}},
		{"ca.key of another CA", anotherKey, []string{"ca.key does not belong to", "ca.crt"}},
		{"server certificate as CA", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "server.crt"))
			writeTestFile(t, filepath.Join(dir, "ca.crt"), b)
		}, []string{"ca.crt", "not a CA certificate"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			MustOpenCA(t, dir, nil, "localhost")
			tt.damage(t, dir)
			files := readDir(t, dir)

			ca := &webui.CertAuthority{Dir: dir, Names: func() []string { return []string{"localhost"} }}
			err := ca.Open()
			if err == nil {
				t.Fatal("Open succeeded over a broken CA")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			// An admin's phones trust the old CA: nothing may be replaced.
			if got := readDir(t, dir); !maps.Equal(got, files) {
				t.Error("Open changed the directory after failing")
			}
			if ca.CACertPEM() != nil || ca.ServerCert() != nil {
				t.Error("a failed Open left a usable CA")
			}
			if _, err := ca.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
				t.Error("GetCertificate succeeded after a failed Open")
			}
		})
	}
}

func TestCertAuthorityExpiredCA(t *testing.T) {
	clock := &fakeClock{t: tlsEpoch}
	dir := filepath.Join(t.TempDir(), "tls")
	MustOpenCA(t, dir, clock.Now, "localhost")
	clock.Advance(11 * 365 * 24 * time.Hour)
	ca := &webui.CertAuthority{Dir: dir, Now: clock.Now, Names: func() []string { return []string{"localhost"} }}
	if err := ca.Open(); err == nil || !strings.Contains(err.Error(), "CA expired") {
		t.Fatalf("Open = %v, want a CA expired error", err)
	}
}

// The server certificate is disposable: whatever is wrong with it, Open
// issues a new one from the same CA.
func TestCertAuthorityBadServerCert(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"corrupt server.crt", func(t *testing.T, dir string) {
			writeTestFile(t, filepath.Join(dir, "server.crt"), []byte("garbage"))
		}},
		{"server.key missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "server.key"))
		}},
		{"server.key of another certificate", func(t *testing.T, dir string) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, filepath.Join(dir, "server.key"), pemBlock("PRIVATE KEY", der))
		}},
		{"signed by another CA", func(t *testing.T, dir string) {
			other := filepath.Join(t.TempDir(), "tls")
			MustOpenCA(t, other, nil, "localhost")
			for _, f := range []string{"server.crt", "server.key"} {
				b, err := os.ReadFile(filepath.Join(other, f))
				if err != nil {
					t.Fatal(err)
				}
				writeTestFile(t, filepath.Join(dir, f), b)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			first, _, _ := MustOpenCA(t, dir, nil, "localhost")
			tt.damage(t, dir)

			second, _, logs := MustOpenCA(t, dir, nil, "localhost")
			if !bytes.Equal(first.CACertPEM(), second.CACertPEM()) {
				t.Fatal("a broken server certificate replaced the CA")
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(second.CACertPEM())
			if _, err := second.ServerCert().Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots}); err != nil {
				t.Errorf("reissued certificate: %v", err)
			}
			if !strings.Contains(logs.String(), "tls certificate issued") {
				t.Errorf("no reissue logged:\n%s", logs)
			}
		})
	}
}

func TestListenNames(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no hostname:", err)
	}
	host = strings.ToLower(host)
	short, _, _ := strings.Cut(host, ".")
	always := []string{host, short + ".local", "localhost"}

	for _, tt := range []struct {
		name   string
		listen string
		extra  []string
		want   []string
		absent []string
	}{
		{name: "loopback", listen: "127.0.0.1:8443", want: []string{"127.0.0.1"}, absent: []string{"0.0.0.0", "::1"}},
		{name: "named host", listen: "provbox.example:443", want: []string{"provbox.example"}, absent: []string{"127.0.0.1"}},
		{name: "ipv6 host", listen: "[2001:db8::7]:443", want: []string{"2001:db8::7"}},
		{name: "empty host", listen: ":8443", want: []string{"127.0.0.1"}, absent: []string{""}},
		{name: "unspecified v4", listen: "0.0.0.0:8443", want: []string{"127.0.0.1"}, absent: []string{"0.0.0.0"}},
		{name: "unspecified v6", listen: "[::]:8443", want: []string{"127.0.0.1"}, absent: []string{"::"}},
		{name: "no port", listen: "", want: []string{"127.0.0.1"}},
		{
			name:   "extra",
			listen: "127.0.0.1:8443",
			extra:  []string{"Phones.Example.COM:8443", "10.0.0.5", "[2001:db8::1]", "phones.example.com", "bad name", ""},
			want:   []string{"phones.example.com", "10.0.0.5", "2001:db8::1"},
			absent: []string{"bad name", "Phones.Example.COM:8443", "[2001:db8::1]"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := webui.ListenNames(tt.listen, tt.extra...)
			for _, w := range append(slices.Clone(always), tt.want...) {
				if !slices.Contains(got, w) {
					t.Errorf("ListenNames(%q) = %q, missing %q", tt.listen, got, w)
				}
			}
			for _, a := range tt.absent {
				if slices.Contains(got, a) {
					t.Errorf("ListenNames(%q) = %q, contains %q", tt.listen, got, a)
				}
			}
			if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
				t.Errorf("ListenNames(%q) = %q, want sorted and deduplicated", tt.listen, got)
			}
			for _, n := range got {
				if strings.HasPrefix(n, "fe80:") {
					t.Errorf("ListenNames(%q) includes link-local %q", tt.listen, n)
				}
			}
		})
	}
}

// parseCACert parses ca's CACertPEM.
func parseCACert(tb testing.TB, ca *webui.CertAuthority) *x509.Certificate {
	tb.Helper()
	block, _ := pem.Decode(ca.CACertPEM())
	if block == nil || block.Type != "CERTIFICATE" {
		tb.Fatalf("CACertPEM is not a PEM certificate: %q", ca.CACertPEM())
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func assertP256(tb testing.TB, what string, c *x509.Certificate) {
	tb.Helper()
	k, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		tb.Errorf("%s key is %T, want ECDSA P-256", what, c.PublicKey)
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// writeTestFile overwrites path in place, keeping its mode.
func writeTestFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// readDir returns the contents of the files in dir by name.
func readDir(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	files := make(map[string]string)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}
