package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// The provisioning keys a phone keeps from the files it fetches (see the
// package comment for their sources), canonical: without "static."
// (canonicalKey). settings.go has the others.
const (
	keyServerURL  = "auto_provision.server.url"
	keyUsername   = "auto_provision.server.username"
	keyPassword   = "auto_provision.server.password"
	keyCAURL      = "trusted_certificates.url"
	keyTrustCerts = "security.trust_certificates"

	configHeader = "#!version:1.0.0.1"
	nullValue    = "%NULL%" // an explicit empty value: clears the setting

	maxCustomCAs = 10      // Yealink: "You can upload 10 custom certificates at most"
	maxCAFile    = 5 << 20 // Yealink: a trusted certificate file is at most 5 MB
)

// flash is what a phone keeps from the configs it fetched, as a Yealink
// keeps it in flash, across check-syncs and reboots: later fetches use the
// stored URL, credentials and trusted certificates, and the behaviour
// settings decide what the phone does (factoryFlash gives their factory
// values). The phone's roundMu guards it; its other goroutines read the
// snapshot publish makes.
type flash struct {
	serverURL          string // ends in '/'; empty: the boot base (-prov or PnP)
	username, password string
	noVerify           bool                // trust_certificates = 0: accept any server certificate
	caURL              string              // the trusted-certificates URL last downloaded
	caCerts            []*x509.Certificate // the custom trusted certificates, in download order
	caKey              [32]byte            // SHA-256 over caCerts' DER: names their shared transport

	notifyReboot int                  // sip.notify_reboot_enable: 0, 1 (factory) or 2
	trustCtrl    bool                 // sip.trust_ctrl = 1
	actionURLs   map[string]string    // action_url.<event> → URL with $variables
	actionURI    actionURIConfig      // features.action_uri*, the admin password
	accounts     [maxAccounts]account // account.1 … account.16

	applied    bool     // a file has been applied: appliedMD5 is set
	appliedMD5 [16]byte // MD5 of the last file applied
}

func (f *flash) hasCredentials() bool { return f.username != "" || f.password != "" }

func (f *flash) trust() trustKey {
	if f.noVerify {
		return trustKey{noVerify: true}
	}
	return trustKey{ca: f.caKey}
}

// addCAs adds certificates to the custom trusted list, skipping ones it
// holds already.
func (f *flash) addCAs(certs []*x509.Certificate) error {
	added := false
	for _, c := range certs {
		if f.holdsCA(c) {
			continue
		}
		if len(f.caCerts) == maxCustomCAs {
			return fmt.Errorf("already %d custom trusted certificates", maxCustomCAs)
		}
		f.caCerts = append(f.caCerts, c)
		added = true
	}
	if added {
		h := sha256.New()
		for _, c := range f.caCerts {
			h.Write(c.Raw) // DER is self-delimiting: the concatenation is unambiguous
		}
		copy(f.caKey[:], h.Sum(nil))
	}
	return nil
}

func (f *flash) holdsCA(c *x509.Certificate) bool {
	for _, have := range f.caCerts {
		if bytes.Equal(have.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// cfgFile is what phonesim reads of a fetched config: whether it starts
// with the version line, and the values of the keys it keeps (settingKey),
// by canonical name ("%NULL%" kept as is; a blank value is left out, as a
// Yealink ignores it).
type cfgFile struct {
	versioned bool
	values    map[string]string
}

// readConfig reads a Yealink config to its end. A line too long for the
// buffer is skipped: no setting phonesim keeps is that long.
func readConfig(r io.Reader) (cfgFile, error) {
	c := cfgFile{values: map[string]string{}}
	br := bufio.NewReaderSize(r, 4096)
	lines, skipping := 0, false
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			skipping = true
			continue
		case skipping:
			skipping = false
			lines++
		case len(line) > 0:
			c.add(string(line), lines == 0)
			lines++
		}
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return c, err
		}
	}
}

func (c *cfgFile) add(line string, first bool) {
	line = strings.TrimSpace(line)
	if first {
		c.versioned = line == configHeader
	}
	if line == "" || line[0] == '#' {
		return
	}
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return
	}
	k, v = canonicalKey(strings.TrimSpace(k)), strings.TrimSpace(v)
	if settingKey(k) && v != "" {
		c.values[k] = v
	}
}

// learn takes a fetched config's settings into the phone's flash,
// downloading its trusted certificates when their URL is new. Bad values
// are reported (stage "config") and skipped; it returns false when the
// certificate download failed (stage "ca"): the phone could not take the
// config in full. from is the config's URL, for a relative one.
func (s *sim) learn(p *phone, from string, c cfgFile) bool {
	if !c.versioned {
		s.fail(p, "config", fmt.Errorf("%s: first line is not %s: settings ignored", from, configHeader))
		return true
	}
	f := &p.flash
	if v, ok := c.values[keyServerURL]; ok {
		if v == nullValue {
			f.serverURL = ""
		} else if base, err := baseURL(v); err != nil {
			s.fail(p, "config", fmt.Errorf("%s: %w", keyServerURL, err))
		} else {
			f.serverURL = base
		}
	}
	if v, ok := c.values[keyUsername]; ok {
		f.username = cleared(v)
	}
	if v, ok := c.values[keyPassword]; ok {
		f.password = cleared(v)
	}
	if v, ok := c.values[keyTrustCerts]; ok {
		switch v {
		case "0":
			f.noVerify = true
		case "1", nullValue:
			f.noVerify = false
		default:
			s.fail(p, "config", fmt.Errorf("%s = %q: want 0 or 1", keyTrustCerts, v))
		}
	}
	for _, err := range applySettings(f, c.values) {
		s.fail(p, "config", err)
	}
	v, ok := c.values[keyCAURL]
	if !ok {
		return true
	}
	if v == nullValue {
		f.caURL = "" // the certificates stay; a URL set again is downloaded again
		return true
	}
	caURL, err := resolveURL(from, v)
	if err != nil {
		s.fail(p, "config", fmt.Errorf("%s: %w", keyCAURL, err))
		return true
	}
	if caURL == f.caURL {
		return true
	}
	certs, err := s.downloadCA(p, caURL)
	if err == nil {
		err = f.addCAs(certs)
	}
	if err != nil {
		if s.ctx.Err() == nil {
			s.fail(p, "ca", err)
		}
		return false
	}
	f.caURL = caURL
	return true
}

// downloadCA GETs a trusted-certificates file from the phone's address,
// without credentials (at bootstrap it is plain HTTP), and returns the
// certificates in it, PEM or DER.
func (s *sim) downloadCA(p *phone, caURL string) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(s.ctx, httpTimeout)
	defer cancel()
	client, _ := s.clients.get(&p.flash)
	req, err := s.newRequest(ctx, p, caURL)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCAFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("GET %s: reading body: %w", caURL, err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: HTTP %d", caURL, resp.StatusCode)
	case len(body) > maxCAFile:
		return nil, fmt.Errorf("GET %s: larger than %d bytes", caURL, maxCAFile)
	}
	certs, err := parseCerts(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", caURL, err)
	}
	return certs, nil
}

// parseCerts reads the CERTIFICATE blocks of a PEM file, or a DER file.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) > 0 {
		return certs, nil
	}
	certs, err := x509.ParseCertificates(b)
	if err != nil || len(certs) == 0 {
		return nil, errors.New("no certificate in it (want PEM or DER)")
	}
	return certs, nil
}

// cleared is a config value with "%NULL%" made empty.
func cleared(v string) string {
	if v == nullValue {
		return ""
	}
	return v
}

// baseURL checks an http(s) base URL and makes it end in '/'.
func baseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if !strings.HasSuffix(raw, "/") {
		raw += "/"
	}
	return raw, nil
}

// resolveURL makes ref absolute against the URL of the config naming it.
func resolveURL(from, ref string) (string, error) {
	base, err := url.Parse(from)
	if err != nil {
		return "", err
	}
	u, err := base.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL", ref)
	}
	return u.String(), nil
}

// basicChallenge reports whether a 401 offers the Basic scheme. It looks
// at the first token of each challenge, roughly: a comma inside a quoted
// parameter could hide or fake one, which no provisioning server sends.
func basicChallenge(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		for _, ch := range strings.Split(v, ",") {
			scheme, _, _ := strings.Cut(strings.TrimSpace(ch), " ")
			if strings.EqualFold(scheme, "Basic") {
				return true
			}
		}
	}
	return false
}

// trustKey names what a phone trusts: no verification, the system roots
// (zero ca; they stand in for a factory phone's built-in list) or only
// its custom certificates (their SHA-256).
type trustKey struct {
	noVerify bool
	ca       [32]byte
}

// clients hands out one HTTP client (and transport) per trustKey, made
// on first use: 1,000 phones trusting one CA share one transport. Each
// transport dials from the phone's own address (localIPKey), keep-alive
// off: no idle connection pools.
type clients struct {
	mu    sync.Mutex
	byKey map[trustKey]*http.Client
}

// get returns the client for f's trust and whether it verifies server
// certificates.
func (cs *clients) get(f *flash) (*http.Client, bool) {
	key := f.trust()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.byKey[key]; ok {
		return c, !key.noVerify
	}
	// Classic ECDHE groups only: a Yealink's TLS stack offers no
	// post-quantum hybrid (X25519MLKEM768, which Go clients prefer since
	// 1.24) — UNVERIFIED in a Yealink document, but no firmware we know has
	// one; offering it would make every handshake of the emulated phones
	// far costlier for the server than a real phone's.
	tc := &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	switch {
	case key.noVerify:
		tc.InsecureSkipVerify = true // the phone was told trust_certificates = 0
	case len(f.caCerts) > 0:
		pool := x509.NewCertPool()
		for _, c := range f.caCerts {
			pool.AddCert(c)
		}
		tc.RootCAs = pool // only the custom ones, not the system roots
	}
	c := &http.Client{Transport: newTransport(tc), Timeout: httpTimeout}
	if cs.byKey == nil {
		cs.byKey = map[trustKey]*http.Client{}
	}
	cs.byKey[key] = c
	return c, !key.noVerify
}

func newTransport(tc *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:                  nil, // never an environment proxy: the source address is the point
		DialContext:            dialFromPhone,
		TLSClientConfig:        tc,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		TLSHandshakeTimeout:    httpTimeout,
		ResponseHeaderTimeout:  httpTimeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// dialFromPhone dials from the address in ctx's localIPKey, if any.
func dialFromPhone(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: httpTimeout}
	if ip, ok := ctx.Value(localIPKey{}).(net.IP); ok {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return d.DialContext(ctx, network, addr)
}
