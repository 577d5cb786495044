package main

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildPhonesim builds the command into a temporary directory.
func buildPhonesim(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build phonesim")
	}
	bin := filepath.Join(t.TempDir(), "phonesim")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEndToEnd runs the built phonesim with three phones against an HTTP
// server, sends one phone a real check-sync NOTIFY over UDP, and follows
// the answer and the re-fetch on phonesim's stdout.
func TestEndToEnd(t *testing.T) {
	bin := buildPhonesim(t)
	srv := newCfgServer(t)
	ipBase, port := testAddrs(t)
	macs := []string{"0015650a0000", "0015650a0001", "0015650a0002"}
	base, _ := parseIPv4(ipBase)
	ips, _ := ipRange(base, 3)

	cmd := exec.Command(bin, "-n", "3", "-first-mac", "00:15:65:0a:00:00", "-ip-base", ipBase,
		"-sip-port", strconv.Itoa(port), "-prov", srv.URL+"/prov/", "-boot-concurrency", "2")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ev := readEvents(t, stdout)

	// Boot: every phone fetched its config once, from its own address,
	// with the Yealink User-Agent.
	booted := ev.wait("booted", 5*time.Second, isEvent("booted"))
	if booted.num("phones") != 3 || booted.num("ok") != 3 || booted.num("failed") != 0 {
		t.Fatalf("booted %v", booted)
	}
	boots := map[string]event{}
	for _, e := range ev.all {
		if e.str("event") == "boot" {
			boots[e.str("mac")] = e
		}
	}
	for i, mac := range macs {
		b, ok := boots[mac]
		if !ok {
			t.Fatalf("no boot line for %s in %v", mac, ev.all)
		}
		want := fmt.Sprintf(`"v1-%s"`, mac)
		if b.str("etag") != want || b.num("status") != 200 || b.str("ip") != ipString(ips[i]) || b.num("at") == 0 {
			t.Errorf("boot %v; want etag %s ip %s", b, want, ipString(ips[i]))
		}
		seen := srv.seen(mac)
		if len(seen) != 1 {
			t.Fatalf("%s fetched %d times at boot", mac, len(seen))
		}
		if seen[0].ip != ipString(ips[i]) {
			t.Errorf("%s fetched from %s, want its own address %s", mac, seen[0].ip, ipString(ips[i]))
		}
		if ua := "Yealink SIP-T46G 28.83.0.35 " + macColon(mac); seen[0].ua != ua {
			t.Errorf("User-Agent %q, want %q", seen[0].ua, ua)
		}
	}

	// The config of phone 1 changes; provbox sends it a check-sync.
	srv.version.Store(2)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	phone := &net.UDPAddr{IP: ipBytes(ips[1]), Port: port}
	notify := sipRequest{
		uri:    fmt.Sprintf("sip:1001@%s", phone),
		callID: "e2e-1@127.0.0.1", event: "check-sync;reboot=false",
		via: conn.LocalAddr().String(),
	}.bytes()
	sent := time.Now().UnixNano()
	answer := sipExchange(t, conn, phone, notify)
	res := parseResponse(t, answer)
	if res.StatusCode != 200 {
		t.Fatalf("answer:\n%s", answer)
	}
	checkCopied(t, parseRequest(t, notify), res)

	n := ev.wait("notify", 3*time.Second, isEventFor("notify", macs[1]))
	if n.str("call_id") != "e2e-1@127.0.0.1" || n.str("event_header") != "check-sync;reboot=false" ||
		n.str("request_uri") != "sip:1001@"+phone.String() || int64(n.num("at")) < sent-int64(time.Second) {
		t.Errorf("notify line %v", n)
	}
	f := ev.wait("fetch", 5*time.Second, isEventFor("fetch", macs[1]))
	if want := fmt.Sprintf(`"v2-%s"`, macs[1]); f.str("etag") != want || f.num("status") != 200 {
		t.Errorf("fetch line %v, want etag %s", f, want)
	}
	if f.num("after_notify_ms") <= 0 || f.num("at") < n.num("at") {
		t.Errorf("fetch line times %v (notify at %v)", f, n.num("at"))
	}

	// provbox did not see the 200 and retransmits: answered the same, no
	// second fetch.
	again := sipExchange(t, conn, phone, notify)
	if !bytes.Equal(again, answer) {
		t.Errorf("retransmission answered differently:\n%s\nvs\n%s", again, answer)
	}
	ev.wait("retransmit", 3*time.Second, isEventFor("retransmit", macs[1]))

	// Other requests: 405.
	opt := sipExchange(t, conn, phone, sipRequest{method: "OPTIONS", callID: "e2e-2", via: conn.LocalAddr().String()}.bytes())
	if r := parseResponse(t, opt); r.StatusCode != 405 {
		t.Errorf("OPTIONS answered %d", r.StatusCode)
	}
	// Garbage is ignored; the phone still answers afterwards.
	conn.WriteToUDP([]byte("garbage\r\n\r\n"), phone)
	other := sipExchange(t, conn, phone, sipRequest{callID: "e2e-3", event: "message-summary", via: conn.LocalAddr().String()}.bytes())
	if r := parseResponse(t, other); r.StatusCode != 200 {
		t.Errorf("NOTIFY message-summary answered %d", r.StatusCode)
	}
	ev.wait("request", 3*time.Second, isEventFor("request", macs[1]))

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sum := ev.wait("summary", 5*time.Second, isEvent("summary"))
	ev.drain()
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("phonesim: %v\nstderr: %s", err, stderr.String())
	}
	for k, want := range map[string]float64{"phones": 3, "boot_ok": 3, "boot_failed": 0, "notifies": 1,
		"retransmits": 1, "refetches": 1, "refetch_failed": 0, "fetches": 4, "other_requests": 2} {
		if sum.num(k) != want {
			t.Errorf("summary %s = %v, want %v", k, sum.num(k), want)
		}
	}
	if sum.str("reason") != "signal" || sum.num("peak_rss_kb") <= 0 || sum.num("notify_to_fetch_ms_p50") <= 0 ||
		sum.num("fetch_ms_p99") <= 0 {
		t.Errorf("summary %v", sum)
	}
	for i, mac := range macs {
		want := 1
		if i == 1 {
			want = 2
		}
		if got := len(srv.seen(mac)); got != want {
			t.Errorf("%s fetched %d times, want %d", mac, got, want)
		}
	}
	if strings.TrimSpace(stderr.String()) != "" {
		t.Logf("stderr: %s", stderr.String())
	}
}
