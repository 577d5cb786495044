package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netnsPair is two network namespaces joined by a veth pair: srv holds
// 10.N.0.1/24, cli 10.N.0.2/24. Test traffic stays inside them.
type netnsPair struct {
	srv, cli, vsrv, vcli string
	srvIP, cliIP         string
}

// mustNetns creates the pair, or skips loudly when this is not root (make
// test and CI run as root, where these tests always run).
func mustNetns(t *testing.T) *netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: network-namespace tests need root (ip netns); run make test as root, as CI does")
	}
	needTools(t, "ip")
	id := os.Getpid() % 100000
	n := &netnsPair{
		srv: fmt.Sprintf("pbs%d", id), cli: fmt.Sprintf("pbc%d", id),
		vsrv: fmt.Sprintf("pvs%d", id), vcli: fmt.Sprintf("pvc%d", id),
	}
	oct := 100 + id%150
	n.srvIP, n.cliIP = fmt.Sprintf("10.%d.0.1", oct), fmt.Sprintf("10.%d.0.2", oct)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", n.srv).Run()
		exec.Command("ip", "netns", "del", n.cli).Run()
	})
	run("netns", "add", n.srv)
	run("netns", "add", n.cli)
	run("link", "add", n.vsrv, "type", "veth", "peer", "name", n.vcli)
	run("link", "set", n.vsrv, "netns", n.srv)
	run("link", "set", n.vcli, "netns", n.cli)
	run("-n", n.srv, "addr", "add", n.srvIP+"/24", "dev", n.vsrv)
	run("-n", n.cli, "addr", "add", n.cliIP+"/24", "dev", n.vcli)
	for _, ns := range [][2]string{{n.srv, n.vsrv}, {n.cli, n.vcli}} {
		run("-n", ns[0], "link", "set", "lo", "up")
		run("-n", ns[0], "link", "set", ns[1], "up")
	}
	// Without this route a multicast send from cli fails silently.
	run("-n", n.cli, "route", "replace", "224.0.0.0/4", "dev", n.vcli)
	return n
}

// startServeIn starts serve inside namespace ns and waits for its ready line.
// netnsCurl is a curl command line for the admin API from inside namespace
// ns, as an admin's machine on the LAN makes it: it follows the redirect
// to HTTPS (keeping the credentials) and verifies provbox's certificate
// with the CA provbox serves at /prov/ca.crt. Append method and URL.
func netnsCurl(t *testing.T, ns, base string) []string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sSf", "-o", ca, base+"/prov/ca.crt").CombinedOutput(); err != nil {
		t.Fatalf("ca.crt: %v\n%s", err, out)
	}
	return []string{"curl", "-sSfL", "--location-trusted", "--cacert", ca, "-u", "admin:correct-horse-battery"}
}

func startServeIn(t *testing.T, ns string, args ...string) *serveProc {
	t.Helper()
	return runServe(t, exec.Command("ip", append([]string{"netns", "exec", ns, binary, "serve"}, args...)...))
}

// TestPnPMulticastNetns: sipp in its own namespace multicasts a Yealink PnP
// SUBSCRIBE to 224.0.1.75:5060; provbox, in the other, having joined the
// group on its LAN interface, answers 200 OK and the NOTIFY with the URL.
func TestPnPMulticastNetns(t *testing.T) {
	n := mustNetns(t)
	needTools(t, "sipp", "curl")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "provbox.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[sip]\npnp = true\npnp_interface = %q\n", n.vsrv)), 0o600)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := startServeIn(t, n.srv, "--config", cfg, "--data", data, "--http", n.srvIP+":8080", "--tftp", "off", "--sip", n.srvIP+":5060")
	if !strings.Contains(srv.logs.String(), "sip plug-and-play listening") {
		t.Fatalf("PnP not listening:\n%s", srv.logs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", n.cli, "sipp", "224.0.1.75:5060", "-sf", scenario("uac-pnp-subscribe.xml"),
		"-inf", scenario("pnp-mac.csv"), "-i", n.cliIP, "-p", "5060", "-m", "1", "-nostdin",
		"-trace_logs", "-log_file", filepath.Join(dir, "uac.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("sipp: %v\n%s\nprovbox:\n%s", err, out, srv.logs)
	}
	logged, _ := os.ReadFile(filepath.Join(dir, "uac.log"))
	want := fmt.Sprintf("PNP NOTIFY content-type= application/url url=http://%s:8080/prov/", n.srvIP)
	if !strings.Contains(string(logged), want) {
		t.Fatalf("want %q in:\n%s", want, logged)
	}
	// From another address than loopback, the API is on HTTPS: plain HTTP
	// redirects (308) there, and provbox's CA verifies its certificate.
	plain, _ := exec.Command("ip", "netns", "exec", n.srv, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-u", "admin:correct-horse-battery", srv.url+"/api/v1/discovered").Output()
	if want := fmt.Sprintf("308 https://%s:8443/api/v1/discovered", n.srvIP); string(plain) != want {
		t.Fatalf("plain HTTP API from %s: %q, want %q", n.srvIP, plain, want)
	}
	disc, err := exec.Command("ip", append([]string{"netns", "exec", n.srv}, append(netnsCurl(t, n.srv, srv.url), srv.url+"/api/v1/discovered")...)...).Output()
	if err != nil || !strings.Contains(string(disc), `"mac":"001565aa0001"`) || !strings.Contains(string(disc), `"source":"pnp"`) || !strings.Contains(string(disc), `"ip":"`+n.cliIP+`"`) {
		t.Fatalf("discovered: %s %v", disc, err)
	}
}
