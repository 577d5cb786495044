package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// TestResyncToSipp: `provbox resync MAC` sends one check-sync NOTIFY to a
// sipp phone at the address the phone's fetch taught, from a socket of its
// own, and records the answer as the daemon's loop does (the daemon, started
// again, shows it; its state there follows the new ephemeral URL).
func TestResyncToSipp(t *testing.T) {
	needTools(t, "sipp", "curl")
	phonePort := freeUDPPort(t, "127.0.0.5")
	cfg := filepath.Join(t.TempDir(), "provbox.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[sip]\nphone_port = %d\npnp = false\n", phonePort)), 0o600)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := MustRunMain(t, cfg, data)
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "alice-sip-pw"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": "001565aabbce", "model": "T46G", "extension": "1001"}, 201, nil)
	// Its one fetch in the claim window teaches provbox where it is.
	runTool(t, "curl", "-sSf", "-o", "/dev/null", "--interface", "127.0.0.5", srv.url+"/prov/001565aabbce.cfg")
	srv.close()

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs := filepath.Join(dir, "msgs.log")
	sipp := exec.CommandContext(ctx, "sipp", "-sf", scenario("uas-notify.xml"), "-i", "127.0.0.5", "-p", strconv.Itoa(phonePort),
		"-m", "1", "-nostdin", "-trace_msg", "-message_file", msgs)
	if err := sipp.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // sipp binds its port
	r := runCLI(t, "", "resync", "00:15:65:aa:bb:ce", "--data", data, "--config", cfg)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "00:15:65:aa:bb:ce  200 OK  (fetched)" {
		t.Fatalf("resync: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sipp.Wait() // -m 1: done after the one NOTIFY
	got, _ := os.ReadFile(msgs)
	if want := fmt.Sprintf("NOTIFY sip:1001@127.0.0.5:%d SIP/2.0", phonePort); strings.Count(string(got), want) != 1 {
		t.Fatalf("want one %q in:\n%s", want, got)
	}

	srv = MustRunMain(t, cfg, data)
	a = newAPI(t, srv.url, "admin", "correct-horse-battery")
	var st appliance.SyncStatus
	a.must("GET", "/api/v1/phones/001565aabbce/sync", nil, 200, &st)
	if st.LastNotifyResult != "200 OK" || st.LastNotifyAt == nil {
		t.Fatalf("recorded: %+v", st)
	}
}
