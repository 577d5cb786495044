package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// TestPhoneSecretsRealClients (issue 11): with real clients against the
// real binary, a factory phone bootstraps over HTTP and over TFTP within its
// claim window and then only with its own secret; phone A's secret never
// opens phone B's file; the answers without or with a wrong secret are
// identical for a known and an unknown MAC and change nothing; the CA from
// /prov/ca.crt verifies the HTTPS listener, where the phone's secret opens
// its file and the session cookie is Secure; a foreign Host gets 421.
func TestPhoneSecretsRealClients(t *testing.T) {
	needTools(t, "curl", "tftp")
	cfg := emptyConfig(t)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := MustRunMain(t, cfg, data)
	if srv.https == "" {
		t.Fatalf("no HTTPS listener in the ready line:\n%s", srv.logs)
	}
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "alice-sip-secret", "sip_server": "pbx.example.com"}, 201, nil)
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1002", "name": "Bob", "password": "bob-sip-secret", "sip_server": "pbx.example.com"}, 201, nil)
	const phoneA, phoneB, unknown = "001565000c0a", "001565000c0b", "001565000cff"
	a.must("POST", "/api/v1/phones", map[string]any{"mac": phoneA, "model": "T46U", "extension": "1001"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": phoneB, "model": "T54W", "extension": "1002"}, 201, nil)
	userA, secretA := a.secret(phoneA)
	userB, secretB := a.secret(phoneB)
	if userA != phoneA || secretA == secretB || len(secretA) < 20 {
		t.Fatalf("secrets %s:%s %s:%s", userA, secretA, userB, secretB)
	}
	ua := "Yealink SIP-T46U 108.86.0.90 " + appliance.FormatMAC(phoneA)
	tftpHost, tftpPort, _ := strings.Cut(srv.tftp, ":")
	hpa := func(mac string) (string, error) {
		out, err := exec.Command("tftp", tftpHost, tftpPort, "-m", "binary", "-c", "get", mac+".cfg", filepath.Join(t.TempDir(), "x.cfg")).CombinedOutput()
		if err == nil && strings.Contains(string(out), "Error") {
			err = exec.ErrNotFound // tftp-hpa exits 0 on a TFTP error
		}
		return string(out), err
	}

	// A factory phone: its first config over plain HTTP without a secret.
	first := runTool(t, "curl", "-sSf", "--interface", "127.0.0.21", "-A", ua, srv.url+"/prov/"+phoneA+".cfg")
	s := settingsOf(first)
	for k, want := range map[string]string{
		"static.auto_provision.server.username": phoneA, "static.auto_provision.server.password": secretA,
		"static.trusted_certificates.url": srv.url + "/prov/ca.crt", "static.security.trust_certificates": "1",
	} {
		// The derived public URL names the default interface, not 127.0.0.1:
		// compare the path for the CA URL.
		if got := s[k]; got != want && !(strings.HasSuffix(k, ".url") && strings.HasSuffix(got, "/prov/ca.crt")) {
			t.Errorf("first config: %s = %q, want %q", k, got, want)
		}
	}
	if u := s["static.auto_provision.server.url"]; !strings.HasPrefix(u, "https://") || !strings.HasSuffix(u, "/prov/") {
		t.Errorf("first config does not move the phone to HTTPS: %q", u)
	}
	if bytes.Contains(first, []byte("bob-sip-secret")) || bytes.Contains(first, []byte(secretB)) {
		t.Error("phone A's file holds phone B's secrets")
	}
	// The claim is used: no second fetch without the secret, by either
	// protocol; over TFTP the same refusal as for an unknown MAC.
	outA, errA := hpa(phoneA)
	if errA == nil || !strings.Contains(outA, "Error code 2") {
		t.Errorf("TFTP after the claim: %v %s", errA, outA)
	}
	if outU, _ := hpa(unknown); outU != outA {
		t.Errorf("TFTP refusals differ: known %q, unknown %q", outA, outU)
	}
	// Phone B bootstraps over TFTP (tftp-hpa), once.
	if out, err := hpa(phoneB); err != nil {
		t.Fatalf("TFTP claim of B: %v %s", err, out)
	}
	if err := exec.Command("curl", "-sSf", "-o", "/dev/null", "tftp://"+srv.tftp+"/"+phoneB+".cfg").Run(); err == nil {
		t.Error("TFTP served B a second time without a secret")
	}

	// Refusals: one answer for known and unknown MACs, with or without a
	// (wrong) secret; nothing about the phone changes, whoever asks.
	var before appliance.SyncStatus
	a.must("GET", "/api/v1/phones/"+phoneA+"/sync", nil, 200, &before)
	answer := func(mac, cred string) string {
		args := []string{"-s", "-i", "--interface", "127.0.0.66", "-A", ua}
		if cred != "" {
			args = append(args, "-u", cred)
		}
		out := runTool(t, "curl", append(args, srv.url+"/prov/"+mac+".cfg")...)
		return regexp.MustCompile(`(?m)^Date: .*\r\n`).ReplaceAllString(string(out), "")
	}
	refusals := map[string]string{
		"known, no secret":      answer(phoneA, ""),
		"unknown, no secret":    answer(unknown, ""),
		"known, wrong secret":   answer(phoneA, phoneA+":not-the-secret"),
		"unknown, wrong secret": answer(unknown, unknown+":not-the-secret"),
		"A's secret on B":       answer(phoneB, phoneB+":"+secretA),
		"B's secret as A on B":  answer(phoneB, phoneA+":"+secretB),
	}
	ref := refusals["known, no secret"]
	// Header names are case-insensitive: /prov/ writes WWW-Authenticate as
	// RFC 9110 spells it, net/http's Header.Set as Www-Authenticate.
	if !strings.HasPrefix(ref, "HTTP/1.1 401") || !strings.Contains(strings.ToLower(ref), `www-authenticate: basic realm="provbox provisioning"`) {
		t.Fatalf("refusal:\n%s", ref)
	}
	for name, got := range refusals {
		if got != ref {
			t.Errorf("%s answers differently:\n%s\nvs\n%s", name, got, ref)
		}
	}
	var after appliance.SyncStatus
	a.must("GET", "/api/v1/phones/"+phoneA+"/sync", nil, 200, &after)
	if after.State != before.State || after.LastFetchIP != before.LastFetchIP || after.SIPAddress != before.SIPAddress ||
		!after.LastFetchAt.Equal(*before.LastFetchAt) || after.LastFetchIP != "127.0.0.21" {
		t.Fatalf("refused requests changed the phone: %+v → %+v", before, after)
	}

	// HTTPS: the CA provbox serves (HTTP and TFTP alike) verifies it.
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	runTool(t, "curl", "-sSf", "-o", ca, srv.url+"/prov/ca.crt")
	runTool(t, "curl", "-sSf", "-o", filepath.Join(dir, "tftp-ca.crt"), "tftp://"+srv.tftp+"/ca.crt")
	if x, y := mustRead(t, ca), mustRead(t, filepath.Join(dir, "tftp-ca.crt")); !bytes.HasPrefix(x, []byte("-----BEGIN CERTIFICATE-----")) || !bytes.Equal(x, y) {
		t.Fatalf("ca.crt over HTTP and TFTP:\n%s\n%s", x, y)
	}
	if err := exec.Command("curl", "-sSf", "-o", "/dev/null", srv.https+"/healthz").Run(); err == nil {
		t.Error("HTTPS verified without provbox's CA")
	}
	got := runTool(t, "curl", "-sSf", "--cacert", ca, "-A", ua, "-u", userA+":"+secretA, srv.https+"/prov/"+phoneA+".cfg")
	if want := mustCLI(t, "", "render", phoneA, "--data", data, "--config", cfg); string(got) != want {
		t.Errorf("HTTPS file differs from render")
	}
	if code := runTool(t, "curl", "-s", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", "-u", userB+":"+secretB, srv.https+"/prov/"+phoneA+".cfg"); string(code) != "401" {
		t.Errorf("B's secret opened A's file over HTTPS: %s", code)
	}
	// The certificate's Common Name is the host phones are told (some
	// phones check only the CN).
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, ca))
	conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.https, "https://"), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	conn.Close()
	if u, _ := url.Parse(s["static.auto_provision.server.url"]); cn != u.Hostname() {
		t.Errorf("certificate CN %q, phones are told %q", cn, u.Hostname())
	}
	// Over TLS the session cookie is Secure.
	hdr := runTool(t, "curl", "-s", "--cacert", ca, "-o", "/dev/null", "-D", "-", "-d", "username=admin&password=correct-horse-battery", srv.https+"/login")
	if !regexp.MustCompile(`(?mi)^Set-Cookie: provbox_session=[^\r\n]*; Secure`).Match(hdr) {
		t.Errorf("session cookie over HTTPS:\n%s", hdr)
	}

	// DNS rebinding: a foreign Host is refused on the admin pages and API,
	// not on /prov/ (phones use whatever name they were given).
	for path, want := range map[string]string{"/api/v1/phones": "421", "/login": "421", "/prov/y000000000108.cfg": "200", "/healthz": "200"} {
		code := runTool(t, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "admin:correct-horse-battery", "-H", "Host: attacker.example:8080", srv.url+path)
		if string(code) != want {
			t.Errorf("Host attacker.example %s: %s, want %s", path, code, want)
		}
	}
	if code := runTool(t, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "admin:correct-horse-battery", "-H", "Host: localhost", srv.url+"/api/v1/phones"); string(code) != "200" {
		t.Errorf("Host localhost: %s", code)
	}

	// Rotation: the old secret opens the file (which carries the new one)
	// until the phone has used the new one.
	a.must("POST", "/api/v1/phones/"+phoneA+"/secret", nil, 200, nil)
	_, secretA2 := a.secret(phoneA)
	withOld := runTool(t, "curl", "-sSf", "--cacert", ca, "-u", userA+":"+secretA, srv.https+"/prov/"+phoneA+".cfg")
	if settingsOf(withOld)["static.auto_provision.server.password"] != secretA2 {
		t.Error("the file fetched with the old secret does not carry the new one")
	}
	runTool(t, "curl", "-sSf", "--cacert", ca, "-o", "/dev/null", "-u", userA+":"+secretA2, srv.https+"/prov/"+phoneA+".cfg")
	if code := runTool(t, "curl", "-s", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", "-u", userA+":"+secretA, srv.https+"/prov/"+phoneA+".cfg"); string(code) != "401" {
		t.Errorf("old secret after the new one was used: %s", code)
	}
	// Reopen (a factory reset): one more fetch without the secret.
	a.reopen(phoneA)
	if out, err := hpa(phoneA); err != nil {
		t.Errorf("TFTP after reopen: %v %s", err, out)
	}

	logs := srv.logs.String()
	for _, secret := range []string{secretA, secretB, secretA2, "alice-sip-secret", "bob-sip-secret"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret reached the log: %s", secret)
		}
	}
	srv.close()
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
