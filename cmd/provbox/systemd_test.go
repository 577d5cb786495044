package main

// Tests of serve under systemd (issue 7): the sd_notify protocol as
// systemd speaks it (READY=1 once every listener is bound, WATCHDOG=1
// pings, STOPPING=1 on SIGTERM) against a unixgram socket standing in for
// systemd's, and SIGHUP reloading the config file.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// startServeWith starts provbox with exactly args and the extra environment
// (systemd's variables are dropped from the inherited one), and waits for
// its "provbox ready" line like startServe.
func startServeWith(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "STATE_DIRECTORY":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return runServe(t, cmd)
}

// notifySocket is a stand-in for systemd's notify socket: it collects the
// datagrams sent to it, each stamped with when it arrived.
type notifySocket struct {
	path string
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	// A unix socket path must fit in 108 bytes: t.TempDir() may not.
	dir, err := os.MkdirTemp("", "sdnotify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 1000)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// next returns the next datagram, failing after timeout.
func (n *notifySocket) next(t *testing.T, timeout time.Duration, what string) string {
	t.Helper()
	select {
	case m, ok := <-n.msgs:
		if !ok {
			t.Fatalf("notify socket closed while waiting for %s", what)
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no %s on the notify socket within %s", what, timeout)
	}
	return ""
}

var statusRE = regexp.MustCompile(`STATUS=serving http ([^,\s]+), tftp ([^,\s]+), sip ([^,\s]+)`)

// TestServeNotifiesSystemd: READY=1 arrives when HTTP, TFTP and SIP already
// answer; with WATCHDOG_USEC=200000 WATCHDOG=1 comes every ~100 ms; SIGTERM
// brings STOPPING=1 and a clean exit.
func TestServeNotifiesSystemd(t *testing.T) {
	sock := newNotifySocket(t)
	data := t.TempDir()
	p := startServeWith(t, []string{"NOTIFY_SOCKET=" + sock.path, "WATCHDOG_USEC=200000"},
		"serve", "--config", emptyConfig(t), "--data", data,
		"--http", "127.0.0.1:0", "--tftp", "127.0.0.1:0", "--sip", "127.0.0.1:0")

	ready := sock.next(t, 10*time.Second, "READY=1")
	if !strings.HasPrefix(ready, "READY=1\n") {
		t.Fatalf("first notification %q, want READY=1 first", ready)
	}
	m := statusRE.FindStringSubmatch(ready)
	if m == nil {
		t.Fatalf("READY=1 without the STATUS naming the listeners: %q", ready)
	}
	httpAddr, tftpAddr, sipAddr := m[1], m[2], m[3]
	if "http://"+httpAddr != p.url || tftpAddr != p.tftp {
		t.Errorf("STATUS names http %s tftp %s, the ready log %s %s", httpAddr, tftpAddr, p.url, p.tftp)
	}
	// Each listener answers as soon as READY=1 is in.
	c, err := net.DialTimeout("tcp", httpAddr, time.Second)
	if err != nil {
		t.Fatalf("http %s after READY=1: %v", httpAddr, err)
	}
	c.Close()
	rrq := func(string) []byte { return append([]byte{0, 1}, "nothing-here.cfg\x00octet\x00"...) }
	if reply := udpExchange(t, tftpAddr, rrq); len(reply) < 2 || reply[1] != 5 {
		t.Errorf("tftp %s after READY=1: reply %q, want an ERROR packet", tftpAddr, reply)
	}
	options := func(local string) []byte {
		return []byte("OPTIONS sip:provbox@" + sipAddr + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-ready-1\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=t1\r\nTo: <sip:provbox@127.0.0.1>\r\n" +
			"Call-ID: ready-1@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
	}
	if reply := udpExchange(t, sipAddr, options); !strings.HasPrefix(string(reply), "SIP/2.0 200") {
		t.Errorf("sip %s after READY=1: reply %q, want 200", sipAddr, firstLine(string(reply)))
	}

	// Watchdog pings: half of 200 ms apart.
	start := time.Now()
	var pings []time.Duration
	for len(pings) < 3 {
		msg := sock.next(t, 2*time.Second, "WATCHDOG=1")
		if msg != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", msg)
		}
		pings = append(pings, time.Since(start))
	}
	if pings[2] < 150*time.Millisecond {
		t.Errorf("3 pings within %s: pinging faster than every WATCHDOG_USEC/2", pings[2])
	}
	t.Logf("watchdog pings at %v", pings)

	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.After(10 * time.Second)
	for stopping := false; !stopping; {
		select {
		case msg, ok := <-sock.msgs:
			if !ok {
				t.Fatal("notify socket closed")
			}
			stopping = msg == "STOPPING=1"
		case <-deadline:
			t.Fatalf("no STOPPING=1 within 10s of SIGTERM:\n%s", p.logs)
		}
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM:\n%s", p.logs)
	}
	if p.code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", p.code, p.logs)
	}
}

// TestServeWithoutSystemd: no NOTIFY_SOCKET, nothing to tell, no error logged.
func TestServeWithoutSystemd(t *testing.T) {
	p := startServeWith(t, nil, "serve", "--config", emptyConfig(t), "--data", t.TempDir(),
		"--http", "127.0.0.1:0", "--tftp", "off", "--sip", "off")
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(p.logs.String(), "notify") {
		t.Errorf("notify log lines without systemd:\n%s", p.logs)
	}
}

// udpExchange sends one datagram, made for the local address, to addr and
// returns the first reply.
func udpExchange(t *testing.T, addr string, msg func(local string) []byte) []byte {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Unconnected: a TFTP server answers from a new port.
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.WriteTo(msg(c.LocalAddr().String()), to); err != nil {
		t.Fatalf("send to %s: %v", addr, err)
	}
	buf := make([]byte, 2048)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no reply from %s: %v", addr, err)
	}
	return buf[:n]
}

// logRecords returns the JSON log records with message msg.
func logRecords(logs, msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestReloadOnSIGHUP: a new http.public_url reaches the phones' files and
// a new log_level takes effect without a restart; a changed sip.listen is
// named in one log line as needing a restart; a broken file is refused
// and the running config kept; a template override is picked up.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "provbox.toml")
	write := func(text string) { // atomically, as editors save
		t.Helper()
		if err := os.WriteFile(cfgPath+".new", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(cfgPath+".new", cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	const base = "log_level = %q\n[http]\nlisten = \"127.0.0.1:0\"\npublic_url = %q\n[https]\nlisten = \"off\"\n[tftp]\nlisten = \"off\"\n[sip]\nlisten = %q\npnp = false\n"
	write(fmt.Sprintf(base, "info", "http://198.51.100.7:8080/prov/", "127.0.0.1:0"))
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfgPath)
	// No listen flags: the file's keys are the ones in force.
	p := startServeWith(t, nil, "serve", "--config", cfgPath, "--data", data)
	a := newAPI(t, p.url, "admin", "correct-horse-battery")
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "alice-sip-pw"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": "001565aabbcc", "model": "T46G", "extension": "1001"}, 201, nil)
	phoneURL := func() string {
		cfg := string(a.must("GET", "/api/v1/phones/001565aabbcc/config", nil, 200, nil))
		for _, line := range strings.Split(cfg, "\n") {
			if k, v, ok := strings.Cut(line, " = "); ok && k == "auto_provision.server.url" {
				return v
			}
		}
		t.Fatalf("no auto_provision.server.url in:\n%s", cfg)
		return ""
	}
	if got := phoneURL(); got != "http://198.51.100.7:8080/prov/" {
		t.Fatalf("before reload: url %q", got)
	}
	hup := func() {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	// waitLog returns the nth log record with msg.
	waitLog := func(wantReloads int, msg string) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if recs := logRecords(p.logs.String(), msg); len(recs) >= wantReloads {
				return recs[wantReloads-1]
			}
		}
		t.Fatalf("no %q log line #%d after SIGHUP:\n%s", msg, wantReloads, p.logs)
		return nil
	}

	// 1: public URL and log level, applied at once.
	write(fmt.Sprintf(base, "debug", "http://prov.example.test:8080/prov/", "127.0.0.1:0"))
	hup()
	rec := waitLog(1, "config reloaded")
	if got := fmt.Sprint(rec["applied"]); got != "[http.public_url log_level]" {
		t.Errorf("applied %s, want [http.public_url log_level]", got)
	}
	if got := phoneURL(); got != "http://prov.example.test:8080/prov/" {
		t.Errorf("after reload: url %q, want the new public_url", got)
	}
	// Requests are logged at debug; the line may take a moment to be read.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.logs.String(), `"level":"DEBUG"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log_level debug not in force: no DEBUG line after the reload:\n%s", p.logs)
		}
		phoneURL()
	}
	if len(logRecords(p.logs.String(), "config reload: these keys take effect only after a restart (systemctl restart provbox)")) != 0 {
		t.Errorf("restart asked for though no restart key changed:\n%s", p.logs)
	}

	// 2: sip.listen changed: named as needing a restart; the rest applies.
	write(fmt.Sprintf(base, "info", "http://prov.example.test:8080/prov/", "127.0.0.1:5999"))
	hup()
	rec = waitLog(1, "config reload: these keys take effect only after a restart (systemctl restart provbox)")
	if got := fmt.Sprint(rec["restart_needed"]); got != "[sip.listen]" {
		t.Errorf("restart_needed %s, want [sip.listen]", got)
	}
	if got := fmt.Sprint(waitLog(2, "config reloaded")["applied"]); got != "[log_level]" {
		t.Errorf("applied %s, want [log_level]", got)
	}

	// 3: a file that does not parse: logged, nothing changes.
	write("log_level = \"debug\"\n[http\npublic_url = \"http://other.example.test/prov/\"\n")
	hup()
	rec = waitLog(1, "config reload failed; still running with the previous config")
	if !strings.Contains(fmt.Sprint(rec["err"]), cfgPath) {
		t.Errorf("error %q does not name the file", rec["err"])
	}
	if got := phoneURL(); got != "http://prov.example.test:8080/prov/" {
		t.Errorf("after a bad reload: url %q, want the previous one", got)
	}

	// 4: a template override is picked up by the reload (even of a
	// refused file): the phone's file carries it.
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "configs", "templates", "yealink", "mac.cfg.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	override := filepath.Join(data, "templates", "yealink", "mac.cfg.tmpl")
	if err := os.WriteFile(override, append(tmpl, "\nlocal_time.ntp_server1 = ntp.reload.test\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	hup()
	waitLog(1, "templates changed: recomputing every phone's config version")
	if cfg := string(a.must("GET", "/api/v1/phones/001565aabbcc/config", nil, 200, nil)); !strings.Contains(cfg, "ntp.reload.test") {
		t.Errorf("after a template override and a reload, the file lacks it:\n%s", cfg)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.logs)
	}
}

// TestPackagedConfig: /etc/provbox/provbox.toml as the .deb installs it
// sets only data_dir (the service's state directory, so that admin commands
// find the same database) and lists every other key commented with its
// default: uncommenting them all changes nothing.
func TestPackagedConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "packaging", "provbox.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.DataDir = "/var/lib/provbox"
	got, err := parseConfig("provbox.toml", raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("as shipped:\n got %+v\nwant %+v", got, want)
	}
	uncommented := regexp.MustCompile(`(?m)^# ([a-z_0-9]+ = .*)$`).ReplaceAll(raw, []byte("$1"))
	if got, err = parseConfig("provbox.toml", uncommented); err != nil {
		t.Fatalf("uncommented: %v", err)
	}
	if len(got.DHCP.DNS) == 0 && len(got.DHCP.NTP) == 0 { // dns = [] is no list
		got.DHCP.DNS, got.DHCP.NTP = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("uncommented, the values are not the defaults:\n got %+v\nwant %+v", got, want)
	}
	var c Config
	md, err := toml.Decode(string(uncommented), &c)
	if err != nil {
		t.Fatal(err)
	}
	for k := range configValues(&c) {
		if !md.IsDefined(strings.Split(k, ".")...) {
			t.Errorf("key %s is not in packaging/provbox.toml", k)
		}
	}
}
