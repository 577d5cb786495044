package webui

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File names inside CertAuthority.Dir.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

const (
	caValidityYears = 10
	// serverValidity is short so a leaked server key stops mattering soon;
	// renewal is automatic, so nobody has to remember it.
	serverValidity = 90 * 24 * time.Hour
	// clockSkew backdates NotBefore: a phone whose clock is a little behind
	// (many have no RTC and set it from NTP after fetching their config)
	// must not reject a certificate issued a moment ago.
	clockSkew = time.Hour
	// caClockSkew backdates the CA further: it is created at first boot,
	// possibly before NTP has pulled a fast clock back, and unlike the
	// server certificate it is not reissued to fix that.
	caClockSkew = 7 * 24 * time.Hour
	// defaultRefreshEvery is Run's period when none is given.
	defaultRefreshEvery = time.Hour
)

// CertAuthority is provbox's own small certificate authority for its HTTPS
// listener when the admin gives no cert_file. It keeps a long-lived CA in
// Dir, whose certificate admins install on their phones (it is served at
// /prov/ca.crt), and issues the listener a short-lived server certificate
// for every name phones may use to reach it:
//
//	ca := &webui.CertAuthority{Dir: filepath.Join(data, "tls"), Logger: logger,
//		Names: func() []string { return webui.ListenNames(":8443", publicHost) }}
//	if err := ca.Open(); err != nil { … }
//	go ca.Run(ctx, time.Hour)
//	srv.TLSConfig = &tls.Config{GetCertificate: ca.GetCertificate}
//
// The CA is never replaced behind the admin's back: phones trust it, so an
// unreadable ca.key is an error, not a reason to start over. The server
// certificate is disposable and is reissued whenever it is missing, broken,
// nearing expiry or no longer covers exactly Names().
type CertAuthority struct {
	Dir    string           // e.g. <data>/tls; created 0700 if missing
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now
	// Names returns the DNS names and IP addresses (as strings) the server
	// certificate must cover. Called by Open and Refresh. Invalid names are
	// skipped. The first name (a host name or an address) becomes the CommonName,
	// which some phones check instead of the SANs, so put the name phones
	// are configured with first. Nil means ListenNames("").
	Names func() []string

	mu     sync.Mutex // serializes Open and Refresh
	caCert *x509.Certificate
	caKey  crypto.Signer
	caPEM  []byte
	server atomic.Pointer[serverCert]
}

// serverCert is one issued server certificate, swapped as a whole so a
// handshake never sees a leaf with another leaf's key.
type serverCert struct {
	tls   *tls.Certificate
	leaf  *x509.Certificate
	names []string // normalized, sorted SANs
}

// Open loads the CA from Dir, creating it if neither ca.crt nor ca.key
// exists, then loads the server certificate or issues a new one.
func (ca *CertAuthority) Open() error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.Dir == "" {
		return errors.New("tls: no directory for the certificate authority")
	}
	if err := os.MkdirAll(ca.Dir, 0o700); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := ca.loadOrCreateCA(); err != nil {
		return err
	}
	names, err := ca.names()
	if err != nil {
		return err
	}
	if sc, err := ca.loadServer(); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			ca.logger().Warn("tls certificate unusable, issuing a new one", "err", err)
		}
	} else if reason := ca.staleReason(sc, names); reason != "" {
		ca.logger().Info("tls certificate needs renewal", "reason", reason)
	} else {
		ca.server.Store(sc)
		ca.logger().Debug("tls certificate loaded", "names", sc.names, "not_after", sc.leaf.NotAfter)
		return nil
	}
	return ca.issue(names)
}

// CACertPEM returns the CA certificate in PEM, for /prov/ca.crt; nil before
// Open.
func (ca *CertAuthority) CACertPEM() []byte {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return bytes.Clone(ca.caPEM)
}

// GetCertificate returns the current server certificate with the CA
// certificate as its chain, for tls.Config.GetCertificate. Renewal swaps it
// atomically, so the listener never needs restarting.
func (ca *CertAuthority) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	sc := ca.server.Load()
	if sc == nil {
		return nil, errors.New("tls: no server certificate (certificate authority not open)")
	}
	return sc.tls, nil
}

// ServerCert returns the current server certificate, nil before Open.
func (ca *CertAuthority) ServerCert() *x509.Certificate {
	sc := ca.server.Load()
	if sc == nil {
		return nil
	}
	return sc.leaf
}

// Refresh reissues the server certificate when Names() changed (as a set;
// DNS names compare case-insensitively) or when less than a third of its
// lifetime remains, and reports whether it did.
func (ca *CertAuthority) Refresh() (bool, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	sc := ca.server.Load()
	if sc == nil || ca.caCert == nil {
		return false, errors.New("tls: refresh: certificate authority not open")
	}
	names, err := ca.names()
	if err != nil {
		return false, err
	}
	reason := ca.staleReason(sc, names)
	if reason == "" {
		return false, nil
	}
	ca.logger().Info("tls certificate needs renewal", "reason", reason)
	if err := ca.issue(names); err != nil {
		return false, err
	}
	return true, nil
}

// Run calls Refresh every period (hourly when every <= 0) until ctx is
// done. Addresses come and go (DHCP, a new interface), and a failed refresh
// leaves the old certificate in place, so errors are logged and retried
// rather than returned.
func (ca *CertAuthority) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = defaultRefreshEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := ca.Refresh(); err != nil {
				ca.logger().Error("tls certificate refresh failed", "err", err)
			}
		}
	}
}

func (ca *CertAuthority) logger() *slog.Logger {
	if ca.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return ca.Logger
}

func (ca *CertAuthority) now() time.Time {
	if ca.Now == nil {
		return time.Now()
	}
	return ca.Now()
}

func (ca *CertAuthority) path(name string) string { return filepath.Join(ca.Dir, name) }

// names returns Names() normalized, deduplicated, in the caller's order
// (the order picks the CommonName).
func (ca *CertAuthority) names() ([]string, error) {
	var raw []string
	if ca.Names == nil {
		raw = ListenNames("")
	} else {
		raw = ca.Names()
	}
	var names, skipped []string
	for _, n := range raw {
		c, ok := normalizeCertName(n)
		switch {
		case !ok:
			skipped = append(skipped, n)
		case !slices.Contains(names, c):
			names = append(names, c)
		}
	}
	if len(skipped) > 0 {
		ca.logger().Warn("tls certificate names skipped as invalid", "names", skipped)
	}
	if len(names) == 0 {
		return nil, errors.New("tls: no valid names for the server certificate")
	}
	return names, nil
}

// loadOrCreateCA creates a CA only when both files are missing: with one
// of them left, the admin's phones may already trust that CA, and a fresh
// one would silently break them.
func (ca *CertAuthority) loadOrCreateCA() error {
	certPath, keyPath := ca.path(caCertFile), ca.path(caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certMissing && keyMissing:
		return ca.createCA()
	case certErr != nil && !certMissing:
		return fmt.Errorf("tls: %w", certErr)
	case keyErr != nil && !keyMissing:
		return fmt.Errorf("tls: %w", keyErr)
	case certMissing:
		return fmt.Errorf("tls: %s exists but %s is missing; restore it, or remove both to create a new CA (phones must then trust the new one)", keyPath, certPath)
	case keyMissing:
		return fmt.Errorf("tls: %s exists but %s is missing; restore it, or remove both to create a new CA (phones must then trust the new one)", certPath, keyPath)
	}

	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("tls: %s: %w", certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return fmt.Errorf("tls: %s: not a CA certificate", certPath)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("tls: %s: %w", keyPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return fmt.Errorf("tls: %s does not belong to %s", keyPath, certPath)
	}
	// Issuing from an expired CA would only move the failure to every
	// phone's handshake; saying so here names the cause.
	if now := ca.now(); now.After(cert.NotAfter) {
		return fmt.Errorf("tls: %s: CA expired on %s; remove %s and %s to create a new one (phones must then trust it)",
			certPath, cert.NotAfter.Format(time.DateOnly), caCertFile, caKeyFile)
	}
	if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		ca.logger().Warn("tls CA key is readable by others", "file", keyPath, "mode", fi.Mode().Perm())
	}
	ca.caCert, ca.caKey = cert, key
	ca.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return nil
}

func (ca *CertAuthority) createCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls: generate CA key: %w", err)
	}
	serial, err := randomCertSerial()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	host = strings.ToLower(strings.TrimSpace(host))
	if host == "" {
		host = "localhost"
	}
	// The random suffix keeps two boxes' CAs apart in a phone's or
	// browser's trust store, where the CommonName is all an admin sees.
	var tag [4]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "provbox CA " + host + " " + hex.EncodeToString(tag[:]),
			Organization: []string{"provbox"},
		},
		NotBefore:             now.Add(-caClockSkew),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs only provbox's own server certificates, never
		// another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("tls: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("tls: parse CA certificate: %w", err)
	}
	keyPEM, err := marshalKeyPEM(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key first: a crash between the two leaves a key without a
	// certificate, which Open reports rather than papering over.
	if err := writeTLSFile(ca.path(caKeyFile), 0o600, keyPEM); err != nil {
		return err
	}
	if err := writeTLSFile(ca.path(caCertFile), 0o644, certPEM); err != nil {
		return err
	}
	ca.caCert, ca.caKey, ca.caPEM = cert, key, certPEM
	ca.logger().Info("tls CA created", "subject", cert.Subject.CommonName, "dir", ca.Dir, "not_after", cert.NotAfter)
	return nil
}

// loadServer reads server.crt and server.key and checks they belong
// together and to this CA; whether they still fit is staleReason's call.
func (ca *CertAuthority) loadServer() (*serverCert, error) {
	certPath, keyPath := ca.path(serverCertFile), ca.path(serverKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	leaf, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not belong to %s", keyPath, certPath)
	}
	if err := leaf.CheckSignatureFrom(ca.caCert); err != nil {
		return nil, fmt.Errorf("%s: not signed by %s: %w", certPath, caCertFile, err)
	}
	return ca.newServerCert(leaf, key), nil
}

// staleReason says why sc must be replaced for names, or "" if it need
// not be.
func (ca *CertAuthority) staleReason(sc *serverCert, names []string) string {
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(want, sc.names) {
		return "names changed"
	}
	now := ca.now()
	if now.Before(sc.leaf.NotBefore) {
		return "not yet valid"
	}
	lifetime := sc.leaf.NotAfter.Sub(sc.leaf.NotBefore)
	if sc.leaf.NotAfter.Sub(now) < lifetime/3 {
		return "expiring"
	}
	return ""
}

// issue signs a new server certificate for names, writes it and makes it
// current. names must be normalized and non-empty.
func (ca *CertAuthority) issue(names []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls: generate server key: %w", err)
	}
	serial, err := randomCertSerial()
	if err != nil {
		return err
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	// Some phones match the host against the CommonName and ignore SANs
	// (Yealink's cn_validation may, for an address too): the first name,
	// the one phones are told, whether a host name or an address.
	tmpl.Subject.CommonName = names[0]
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.caCert, key.Public(), ca.caKey)
	if err != nil {
		return fmt.Errorf("tls: create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("tls: parse server certificate: %w", err)
	}
	keyPEM, err := marshalKeyPEM(key)
	if err != nil {
		return err
	}
	// Key first: a crash between the two leaves a mismatched pair, which
	// loadServer rejects and Open replaces.
	if err := writeTLSFile(ca.path(serverKeyFile), 0o600, keyPEM); err != nil {
		return err
	}
	if err := writeTLSFile(ca.path(serverCertFile), 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return err
	}
	sc := ca.newServerCert(leaf, key)
	ca.server.Store(sc)
	ca.logger().Info("tls certificate issued", "names", sc.names, "not_after", leaf.NotAfter)
	return nil
}

func (ca *CertAuthority) newServerCert(leaf *x509.Certificate, key crypto.Signer) *serverCert {
	return &serverCert{
		tls: &tls.Certificate{
			Certificate: [][]byte{leaf.Raw, ca.caCert.Raw},
			PrivateKey:  key,
			Leaf:        leaf,
		},
		leaf:  leaf,
		names: certNames(leaf),
	}
}

// certNames returns the SANs of c in the form normalizeCertName gives, sorted.
func certNames(c *x509.Certificate) []string {
	var names []string
	for _, n := range c.DNSNames {
		names = append(names, strings.ToLower(n))
	}
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			names = append(names, a.Unmap().String())
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// normalizeCertName returns the canonical form of a DNS name (lower case, no
// trailing dot) or IP address (unmapped, no brackets), and whether it can
// go into a certificate at all. Zoned addresses (fe80::1%eth0) cannot.
func normalizeCertName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		if ip.Zone() != "" {
			return "", false
		}
		return ip.Unmap().String(), true
	}
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if !validDNSName(s) {
		return "", false
	}
	return s, true
}

// validDNSName accepts host names as phones and browsers use them,
// including a leading "*." wildcard and the underscores some LANs have.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		if i == 0 && label == "*" {
			continue
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

// ListenNames returns the names a server certificate must cover for a
// listener on listen (host:port): the hostname, its short name + ".local"
// (what mDNS answers to), "localhost", and either the listen host or, when
// that is empty or unspecified, every address of every interface that is
// up, except IPv6 link-local ones, which need a zone no certificate can
// carry. extra adds names such as the public URL's host; a host:port is
// reduced to its host. The result is normalized, sorted and deduplicated.
func ListenNames(listen string, extra ...string) []string {
	var raw []string
	if h, err := os.Hostname(); err == nil && h != "" {
		short, _, _ := strings.Cut(h, ".")
		raw = append(raw, h, short+".local")
	}
	raw = append(raw, "localhost")

	host := listen
	if h, _, err := net.SplitHostPort(listen); err == nil {
		host = h
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); host == "" || err == nil && ip.IsUnspecified() {
		raw = append(raw, upInterfaceAddrs()...)
	} else {
		raw = append(raw, host)
	}

	for _, e := range extra {
		if h, _, err := net.SplitHostPort(e); err == nil {
			e = h
		}
		raw = append(raw, e)
	}

	var names []string
	for _, n := range raw {
		if c, ok := normalizeCertName(n); ok {
			names = append(names, c)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// upInterfaceAddrs returns the addresses of the interfaces that are up. An
// error listing them leaves only the names the caller has anyway.
func upInterfaceAddrs() []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			var ip net.IP
			switch a := a.(type) {
			case *net.IPNet:
				ip = a.IP
			case *net.IPAddr:
				ip = a.IP
			}
			if ip == nil || ip.To4() == nil && ip.IsLinkLocalUnicast() {
				continue
			}
			out = append(out, ip.String())
		}
	}
	return out
}

func randomCertSerial() (*big.Int, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("tls: serial number: %w", err)
	}
	b[0] |= 0x01 // never zero, which RFC 5280 forbids
	return new(big.Int).SetBytes(b[:]), nil
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate in file")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}

// parseKeyPEM accepts PKCS #8 (what provbox writes) and SEC 1 EC keys
// (what openssl ecparam writes), for a CA an admin brought along.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key in file")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q, want PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

func marshalKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tls: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// writeTLSFile replaces path with data through a synced temporary file
// in the same directory, so a crash leaves the old file or the new one,
// never half a key.
func writeTLSFile(path string, mode os.FileMode, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	// Chmod before writing: a key must never sit on disk world-readable,
	// even briefly.
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // best effort: makes the rename itself durable
		d.Close()
	}
	return nil
}
