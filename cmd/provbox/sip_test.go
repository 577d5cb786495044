package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// freeUDPPort returns a UDP port free on ip right now.
func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func scenario(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "sip", "testdata", name)
}

// sipProvbox runs serve in process with SIP on 127.0.0.1 and phones
// assumed on phonePort; it returns the server, an API client, the SIP
// address and the data directory.
func sipProvbox(t *testing.T, phonePort int) (*runningMain, *api, string, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "provbox.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[sip]\nphone_port = %d\npnp = false\n", phonePort)), 0o600)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := MustRunMain(t, cfg, data)
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "alice-sip-pw"}, 201, nil)
	return srv, a, srv.SIPAddr(), data
}

// TestCheckSyncToSipp: an API edit produces exactly one NOTIFY at a sipp
// phone, with the phone's Request-URI and Event check-sync;reboot=false,
// and the phone ends notified; a phone that never answers ends unreachable.
func TestCheckSyncToSipp(t *testing.T) {
	needTools(t, "sipp", "curl")
	phonePort := freeUDPPort(t, "127.0.0.2")
	srv, a, _, _ := sipProvbox(t, phonePort)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": "001565aabbcc", "model": "T46G", "extension": "1001"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": "001565aabbcd", "model": "T46G", "extension": "1001"}, 201, nil)
	// The phones fetch their configs from their own addresses: provbox
	// learns where to send NOTIFYs.
	runTool(t, "curl", "-sSf", "-o", "/dev/null", "--interface", "127.0.0.2", "-A", "Yealink SIP-T46G 28.83.0.35 00:15:65:aa:bb:cc", srv.url+"/prov/001565aabbcc.cfg")
	runTool(t, "curl", "-sSf", "-o", "/dev/null", "--interface", "127.0.0.3", srv.url+"/prov/001565aabbcd.cfg")

	dir := t.TempDir()
	logFile := filepath.Join(dir, "uas.log")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	sipp := exec.CommandContext(ctx, "sipp", "-sf", scenario("uas-notify.xml"), "-i", "127.0.0.2", "-p", strconv.Itoa(phonePort),
		"-m", "2", "-nostdin", "-trace_logs", "-log_file", logFile, "-trace_msg", "-message_file", filepath.Join(dir, "msgs.log"))
	if err := sipp.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // sipp binds its port
	var blf appliance.Key
	a.must("POST", "/api/v1/keys", map[string]any{"type": "blf", "value": "1002", "label": "Bob"}, 201, &blf)
	edit := time.Now()
	a.must("PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{{"position": 1, "key_id": 1}, {"position": 3, "key_id": blf.ID}}, 200, nil)
	var st appliance.SyncStatus
	for time.Since(edit) < 3*time.Second {
		a.must("GET", "/api/v1/phones/001565aabbcc/sync", nil, 200, &st)
		if st.State == appliance.SyncNotified {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.State != appliance.SyncNotified || st.LastNotifyResult != "200 OK" {
		t.Fatalf("sync after the edit: %+v", st)
	}
	t.Logf("edit → notified in %v", time.Since(edit))
	sipp.Wait() // -m 2: it waits for a second NOTIFY until the timeout kills it
	logged, _ := os.ReadFile(logFile)
	if n := strings.Count(string(logged), "NOTIFY event="); n != 1 {
		t.Fatalf("%d NOTIFYs at the phone, want exactly 1:\n%s", n, logged)
	}
	if !strings.Contains(string(logged), "event= check-sync;reboot=false") {
		t.Fatalf("event:\n%s", logged)
	}
	msgs, _ := os.ReadFile(filepath.Join(dir, "msgs.log"))
	if want := fmt.Sprintf("NOTIFY sip:1001@127.0.0.2:%d SIP/2.0", phonePort); !strings.Contains(string(msgs), want) {
		t.Fatalf("request line %q not in:\n%s", want, msgs)
	}

	// The second phone (127.0.0.3) has nobody listening.
	a.must("PUT", "/api/v1/phones/001565aabbcd/keys", []map[string]any{{"position": 1, "key_id": 1}, {"position": 2, "key_id": blf.ID}}, 200, nil)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		a.must("GET", "/api/v1/phones/001565aabbcd/sync", nil, 200, &st)
		if st.State == appliance.SyncUnreachable {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.State != appliance.SyncUnreachable || st.LastNotifyResult != "no answer" {
		t.Fatalf("silent phone: %+v", st)
	}
	if strings.Contains(srv.logs.String(), "alice-sip-pw") {
		t.Fatal("SIP password in the log")
	}
}

// TestPnPUnicastSipp: sipp as a Yealink phone sends the PnP SUBSCRIBE to
// provbox's SIP port and gets 200 OK and the NOTIFY with the URL.
func TestPnPUnicastSipp(t *testing.T) {
	needTools(t, "sipp")
	srv, a, sipAddr, _ := sipProvbox(t, 5060)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sipp", sipAddr, "-sf", scenario("uac-pnp-subscribe.xml"), "-inf", scenario("pnp-mac.csv"),
		"-i", "127.0.0.4", "-p", strconv.Itoa(freeUDPPort(t, "127.0.0.4")), "-m", "1", "-nostdin",
		"-trace_logs", "-log_file", filepath.Join(dir, "uac.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, out)
	}
	logged, _ := os.ReadFile(filepath.Join(dir, "uac.log"))
	want := "PNP NOTIFY content-type= application/url url=" + srv.url + "/prov/"
	if !strings.Contains(string(logged), want) {
		t.Fatalf("want %q in:\n%s", want, logged)
	}
	var list []appliance.Discovered
	a.must("GET", "/api/v1/discovered", nil, 200, &list)
	if len(list) != 1 || list[0].MAC != "001565aa0001" || list[0].Source != "pnp" || list[0].Model != "T46G" || list[0].Vendor != "Yealink" {
		t.Fatalf("discovered %+v", list)
	}
}
