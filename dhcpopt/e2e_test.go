package dhcpopt

// End-to-end tests in network namespaces made here: the test server
// (internal/testserver: dhcpopt.Server on a SQLite store) runs in one, real
// clients (ISC dhclient, dnsmasq as a rival server) in the other, joined by
// a veth pair with 10.x addresses. They need root; CI runs them as root.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/provbox/provbox/configs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
)

type netns struct {
	srv, cli, vsrv, vcli string
	prefix               string // "10.N.0."
}

func (n *netns) ip(host int) string { return fmt.Sprintf("%s%d", n.prefix, host) }

func needRootTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: DHCP network-namespace tests need root (ip netns, raw sockets); run go test as root, as CI does")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED LOUDLY: %s is not installed (Debian: isc-dhcp-client, dnsmasq, iproute2)", tool)
		}
	}
}

// mustNetns makes two namespaces joined by a veth pair; srv holds
// 10.N.0.1/24, cli no address (clients get theirs by DHCP).
func mustNetns(t *testing.T) *netns {
	t.Helper()
	id := os.Getpid() % 100000
	n := &netns{
		srv: fmt.Sprintf("pds%d", id), cli: fmt.Sprintf("pdc%d", id),
		vsrv: fmt.Sprintf("pdvs%d", id), vcli: fmt.Sprintf("pdvc%d", id),
		prefix: fmt.Sprintf("10.%d.0.", 100+(id+77)%150),
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", n.srv).Run()
		exec.Command("ip", "netns", "del", n.cli).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", n.srv}, {"netns", "add", n.cli},
		{"link", "add", n.vsrv, "type", "veth", "peer", "name", n.vcli},
		{"link", "set", n.vsrv, "netns", n.srv}, {"link", "set", n.vcli, "netns", n.cli},
		{"-n", n.srv, "addr", "add", n.ip(1) + "/24", "dev", n.vsrv},
		{"-n", n.srv, "link", "set", "lo", "up"}, {"-n", n.srv, "link", "set", n.vsrv, "up"},
		{"-n", n.cli, "link", "set", "lo", "up"}, {"-n", n.cli, "link", "set", n.vcli, "up"},
	} {
		n.run(t, args...)
	}
	return n
}

func (n *netns) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// TestMain removes the test server binary built for the e2e tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// testServerBinary builds internal/testserver once per test run.
func testServerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dhcpopt-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "testserver")
		out, err := exec.Command("go", "build", "-o", buildPath, "./internal/testserver").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

type serverProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []string
	done chan struct{}
	err  error
}

func (p *serverProc) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// stop sends SIGTERM and waits.
func (p *serverProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("server did not stop:\n%s", p)
	}
}

// startServer runs the test server in srv; with ready it waits for its
// ready line, else for it to exit.
// The process ends with owner (the whole test, not a subtest).
func startServer(t, owner *testing.T, n *netns, db string, ready bool, args ...string) *serverProc {
	t.Helper()
	base := []string{"netns", "exec", n.srv, testServerBinary(t), "-iface", n.vsrv, "-db", db,
		"-start", n.ip(100), "-end", n.ip(110), "-router", n.ip(1), "-dns", n.ip(1),
		"-url", "http://" + n.ip(1) + ":8080/prov/", "-log-level", "debug"}
	cmd := exec.Command("ip", append(base, args...)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, done: make(chan struct{})}
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
			var rec struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ready" {
				up <- true
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	owner.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-up:
		if !ready {
			t.Fatalf("server started but should not have:\n%s", p)
		}
	case <-p.done:
		if ready {
			t.Fatalf("server exited: %v\n%s", p.err, p)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("server neither ready nor gone:\n%s", p)
	}
	return p
}

// dhclient runs ISC dhclient once in cli and returns the variables its
// script saw for the final state (BOUND…), or nil when it got no lease.
type dhclient struct {
	t   *testing.T
	n   *netns
	dir string
}

func newDHClient(t *testing.T, n *netns) *dhclient {
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
env | grep -E '^(reason|new_|old_|interface)' | sort > %[1]s/env.$$
mv %[1]s/env.$$ %[1]s/last.env
case "$reason" in
BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
RELEASE|EXPIRE|FAIL|STOP) [ -n "$old_ip_address" ] && ip addr del "$old_ip_address/$old_subnet_mask" dev "$interface" ;;
esac
exit 0
`, dir)
	os.WriteFile(filepath.Join(dir, "script"), []byte(script), 0o755)
	d := &dhclient{t: t, n: n, dir: dir}
	t.Cleanup(func() { d.kill() })
	return d
}

func (d *dhclient) args(extra ...string) []string {
	return append([]string{"netns", "exec", d.n.cli, "dhclient", "-4", "-v", "-cf", filepath.Join(d.dir, "conf"),
		"-sf", filepath.Join(d.dir, "script"), "-lf", filepath.Join(d.dir, "leases"), "-pf", filepath.Join(d.dir, "pid")}, extra...)
}

// lease asks for a lease (dhclient -1, then daemonised to renew) and
// returns the script's variables, or nil after wait without one.
func (d *dhclient) lease(wait time.Duration, fresh bool) map[string]string {
	d.t.Helper()
	d.kill()
	if fresh {
		os.Remove(filepath.Join(d.dir, "leases"))
	}
	os.Remove(filepath.Join(d.dir, "last.env"))
	conf := fmt.Sprintf("timeout %d;\nretry 1;\nrequest subnet-mask, routers, domain-name-servers, ntp-servers, tftp-server-name, dhcp-lease-time;\n", int(wait.Seconds()))
	os.WriteFile(filepath.Join(d.dir, "conf"), []byte(conf), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", d.args("-1", d.n.vcli)...).CombinedOutput()
	if err != nil {
		d.t.Logf("dhclient: %v\n%s", err, out)
		return nil
	}
	return d.env()
}

func (d *dhclient) env() map[string]string {
	b, err := os.ReadFile(filepath.Join(d.dir, "last.env"))
	if err != nil {
		return nil
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

// release sends DHCPRELEASE and stops the daemonised dhclient.
func (d *dhclient) release() {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", d.args("-r", d.n.vcli)...).CombinedOutput(); err != nil {
		d.t.Fatalf("dhclient -r: %v\n%s", err, out)
	}
}

// kill stops a daemonised dhclient of this test by its pid file.
func (d *dhclient) kill() {
	b, err := os.ReadFile(filepath.Join(d.dir, "pid"))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 1 {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	os.Remove(filepath.Join(d.dir, "pid"))
	// A killed dhclient leaves its address behind.
	exec.Command("ip", "-n", d.n.cli, "addr", "flush", "dev", d.n.vcli, "scope", "global").Run()
}

func findLeases(t *testing.T, path string) map[string]*appliance.Lease {
	t.Helper()
	db := sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	list, err := db.Services().Leases.FindLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*appliance.Lease{}
	for _, l := range list {
		out[l.IP] = l
	}
	return out
}

func TestE2E_Netns(t *testing.T) {
	needRootTools(t, "ip", "dhclient", "dnsmasq")
	n := mustNetns(t)
	url := "http://" + n.ip(1) + ":8080/prov/"
	db := filepath.Join(t.TempDir(), "provbox.db")
	setMAC := func(mac string) {
		n.run(t, "-n", n.cli, "link", "set", n.vcli, "down")
		n.run(t, "-n", n.cli, "link", "set", n.vcli, "address", mac)
		n.run(t, "-n", n.cli, "link", "set", n.vcli, "up")
	}
	setMAC("00:15:65:e2:e0:01")
	top := t
	srv := startServer(t, t, n, db, true)
	client := newDHClient(t, n)

	var first string
	t.Run("lease with option 66", func(t *testing.T) {
		env := client.lease(10*time.Second, true)
		if env == nil || env["reason"] != "BOUND" {
			t.Fatalf("no lease: %v\n%s", env, srv)
		}
		first = env["new_ip_address"]
		want := map[string]string{"new_tftp_server_name": url, "new_subnet_mask": "255.255.255.0", "new_routers": n.ip(1),
			"new_domain_name_servers": n.ip(1), "new_dhcp_server_identifier": n.ip(1), "new_dhcp_lease_time": "3600"}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s = %q, want %q", k, env[k], v)
			}
		}
		if first != n.ip(100) {
			t.Errorf("address %s, want the first of the pool", first)
		}
		l := findLeases(t, db)[first]
		if l == nil || l.MAC != "001565e2e001" || l.State != appliance.LeaseBound {
			t.Fatalf("stored: %+v", l)
		}
	})

	t.Run("survives kill -9", func(t *testing.T) {
		client.kill()
		// No clean shutdown: an ACKed lease is on disk before the ACK leaves.
		srv.cmd.Process.Kill()
		<-srv.done
		srv = startServer(t, top, n, db, true, "-allow-other")
		// A fresh client state: no requested address, so the server's
		// memory (the store) decides.
		env := client.lease(10*time.Second, true)
		if env == nil || env["new_ip_address"] != first {
			t.Fatalf("after restart got %v, want %s\n%s", env["new_ip_address"], first, srv)
		}
	})

	t.Run("second client gets another address", func(t *testing.T) {
		client.kill()
		setMAC("00:15:65:e2:e0:02")
		env := client.lease(10*time.Second, true)
		if env == nil || env["new_ip_address"] == "" || env["new_ip_address"] == first {
			t.Fatalf("second client: %v\n%s", env, srv)
		}
		second := env["new_ip_address"]
		client.release()
		deadline := time.Now().Add(5 * time.Second)
		for {
			l := findLeases(t, db)[second]
			if l != nil && l.State == appliance.LeaseReleased && l.MAC == "001565e2e002" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("release not stored: %+v\n%s", l, srv)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("phones_only ignores a PC", func(t *testing.T) {
		srv.stop(t)
		srv = startServer(t, top, n, db, true, "-allow-other", "-phones-only")
		setMAC("02:00:00:e2:e0:03")
		if env := client.lease(3*time.Second, true); env != nil && env["reason"] == "BOUND" {
			t.Fatalf("a non-phone got %s", env["new_ip_address"])
		}
		if !strings.Contains(srv.String(), "not a phone") {
			t.Fatalf("not logged:\n%s", srv)
		}
		setMAC("00:15:65:e2:e0:04")
		if env := client.lease(10*time.Second, true); env == nil || env["reason"] != "BOUND" {
			t.Fatalf("a phone got nothing:\n%s", srv)
		}
		client.release()
	})

	t.Run("conflict check skips an address in use", func(t *testing.T) {
		srv.stop(t)
		db2 := filepath.Join(t.TempDir(), "fresh.db")
		srv = startServer(t, top, n, db2, true, "-allow-other")
		// A device with a static address at the start of the pool.
		n.run(t, "-n", n.cli, "addr", "add", n.ip(100)+"/24", "dev", n.vcli)
		defer n.run(t, "-n", n.cli, "addr", "del", n.ip(100)+"/24", "dev", n.vcli)
		setMAC("00:15:65:e2:e0:05")
		env := client.lease(10*time.Second, true)
		if env == nil || env["new_ip_address"] != n.ip(101) {
			t.Fatalf("got %v, want %s\n%s", env["new_ip_address"], n.ip(101), srv)
		}
		if l := findLeases(t, db2)[n.ip(100)]; l == nil || l.State != appliance.LeaseDeclined || l.MAC != "" {
			t.Fatalf("conflict not stored: %+v", l)
		}
		client.release()
	})

	t.Run("refuses to start beside another server", func(t *testing.T) {
		srv.stop(t)
		n.run(t, "-n", n.cli, "addr", "add", n.ip(2)+"/24", "dev", n.vcli)
		dir := t.TempDir()
		dm := exec.Command("ip", "netns", "exec", n.cli, "dnsmasq", "--keep-in-foreground", "--port=0", "--conf-file=/dev/null",
			"--interface="+n.vcli, "--bind-interfaces", "--dhcp-range="+n.ip(150)+","+n.ip(160)+",255.255.255.0,1h",
			"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"), "--user=root")
		if err := dm.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { dm.Process.Kill(); dm.Wait() }()
		time.Sleep(500 * time.Millisecond)
		p := startServer(t, top, n, db, false)
		if p.err == nil || !strings.Contains(p.String(), "another DHCP server already answers on "+n.vsrv+": "+n.ip(2)) {
			t.Fatalf("exit %v:\n%s", p.err, p)
		}
	})
}
