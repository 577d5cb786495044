package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/configs"
)

// needTools fails (not skips) when a real peer is missing: make test and
// .ci/run install them.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make deps installs it: apt-get install curl tftp-hpa atftp)", tool)
		}
	}
}

// run runs a real client and returns its stdout.
func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// TestProvisioningRealClients: phones of every supported model fetch their
// config with curl over HTTP (with their real User-Agent) and over TFTP with
// curl, tftp-hpa and atftp (blksize 1468); every copy is byte for byte what
// provbox render prints, and the phone ends synced.
func TestProvisioningRealClients(t *testing.T) {
	needTools(t, "curl", "tftp", "atftp")
	cfg := emptyConfig(t)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	// A firmware image, served over both protocols.
	fw := make([]byte, 3<<20)
	rand.Read(fw)
	os.MkdirAll(filepath.Join(data, "firmware"), 0o755)
	os.WriteFile(filepath.Join(data, "firmware", "T46-28.86.0.10.rom"), fw, 0o644)

	srv := MustRunMain(t, cfg, data)
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "alice-sip-secret", "sip_server": "pbx.example.com"}, 201, nil)
	var blf appliance.Key
	a.must("POST", "/api/v1/keys", map[string]any{"type": "blf", "value": "1002", "label": "Bob # 2 = desk"}, 201, &blf)

	tftpHost, tftpPort, _ := strings.Cut(srv.tftp, ":")
	families := map[string]bool{}
	for i, m := range configs.MustCatalog().Models() {
		// One model of each firmware family with line keys: the files differ
		// by counts only within a family (every model renders in configs'
		// golden test).
		if m.LineKeys == 0 || families[m.Family] {
			continue
		}
		families[m.Family] = true
		mac := fmt.Sprintf("0015650100%02x", i)
		t.Run(m.Name, func(t *testing.T) {
			a.must("POST", "/api/v1/phones", map[string]any{"mac": mac, "model": m.Name, "extension": "1001"}, 201, nil)
			layout := []map[string]any{{"position": 1, "key_id": 1}, {"position": 2, "key_id": 1}, {"position": m.LineKeys, "key_id": blf.ID}}
			if m.LineKeys == 2 {
				layout = append(layout[:1], layout[2])
			}
			a.must("PUT", "/api/v1/phones/"+mac+"/keys", layout, 200, nil)
			want := []byte(mustCLI(t, "", "render", mac, "--data", data, "--config", cfg))
			if !bytes.HasPrefix(want, []byte("#!version:1.0.0.1\n")) || !bytes.Contains(want, []byte(fmt.Sprintf("linekey.%d.type = 16\n", m.LineKeys))) {
				t.Fatalf("render:\n%s", want)
			}
			ua := fmt.Sprintf("Yealink %s 96.86.0.45 %s", m.UserAgents[0], appliance.FormatMAC(mac))
			dir := t.TempDir()
			user, pass := a.secret(mac)
			// TFTP carries no secret: each TFTP client uses the claim
			// window (reopened for the next), HTTP the phone's secret.
			got := map[string][]byte{
				"curl tftp": runTool(t, "curl", "-sSf", "--tftp-blksize", "1468", "tftp://"+srv.tftp+"/"+mac+".cfg"),
				"curl http": runTool(t, "curl", "-sSf", "-A", ua, "-u", user+":"+pass, srv.url+"/prov/"+mac+".cfg"),
			}
			a.reopen(mac)
			runTool(t, "tftp", tftpHost, tftpPort, "-m", "binary", "-c", "get", mac+".cfg", filepath.Join(dir, "hpa.cfg"))
			a.reopen(mac)
			runTool(t, "atftp", "--option", "blksize 1468", "-g", "-r", mac+".cfg", "-l", filepath.Join(dir, "atftp.cfg"), tftpHost, tftpPort)
			for _, f := range []string{"hpa.cfg", "atftp.cfg"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				got[f] = b
			}
			for client, b := range got {
				if !bytes.Equal(b, want) {
					t.Errorf("%s got different bytes than render (%d vs %d)", client, len(b), len(want))
				}
			}
			var p appliance.Phone
			a.must("GET", "/api/v1/phones/"+mac, nil, 200, &p)
			if p.Sync.State != appliance.SyncFetched || p.Sync.FetchedVersion != configs.HashFile(want) {
				t.Errorf("sync after fetch: %+v", p.Sync)
			}
			// The model file too, when the model has one.
			if f := configs.YealinkModelFile(m); f != "" {
				model := runTool(t, "curl", "-sSf", "-A", ua, srv.url+"/prov/"+f)
				if !bytes.HasPrefix(model, []byte("#!version:1.0.0.1\n")) {
					t.Errorf("model file %q", model)
				}
			}
		})
	}

	t.Run("firmware", func(t *testing.T) {
		dir := t.TempDir()
		runTool(t, "curl", "-sSf", "--tftp-blksize", "1468", "-o", filepath.Join(dir, "curl.rom"), "tftp://"+srv.tftp+"/T46-28.86.0.10.rom")
		runTool(t, "atftp", "--option", "blksize 1468", "-g", "-r", "T46-28.86.0.10.rom", "-l", filepath.Join(dir, "atftp.rom"), tftpHost, tftpPort)
		runTool(t, "curl", "-sSf", "-o", filepath.Join(dir, "http.rom"), srv.url+"/prov/T46-28.86.0.10.rom")
		for _, f := range []string{"curl.rom", "atftp.rom", "http.rom"} {
			if b, _ := os.ReadFile(filepath.Join(dir, f)); !bytes.Equal(b, fw) {
				t.Errorf("%s: %d bytes differ from the firmware", f, len(b))
			}
		}
	})

	t.Run("unknown phone is discovered", func(t *testing.T) {
		code := runTool(t, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-A", "Yealink SIP-T48S 66.86.0.15 00:15:65:99:88:77", srv.url+"/prov/001565998877.cfg")
		if string(code) != "401" {
			t.Fatalf("status %s", code)
		}
		cmd := exec.Command("curl", "-sSf", "-o", "/dev/null", "tftp://"+srv.tftp+"/001565998866.cfg")
		if err := cmd.Run(); err == nil {
			t.Fatal("tftp served an unknown phone")
		}
		// Recorded in the background (a refusal answers at once): wait for both.
		seen := map[string]appliance.Discovered{}
		for deadline := time.Now().Add(5 * time.Second); len(seen) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var list []appliance.Discovered
			a.must("GET", "/api/v1/discovered", nil, 200, &list)
			for _, d := range list {
				seen[d.MAC] = d
			}
		}
		if d := seen["001565998877"]; d.Model != "T48S" || d.Source != "http" || d.Firmware != "66.86.0.15" {
			t.Errorf("http discovery %+v", d)
		}
		if d := seen["001565998866"]; d.Vendor != "Yealink" || d.Source != "tftp" {
			t.Errorf("tftp discovery %+v", d)
		}
	})

	t.Run("hostile paths", func(t *testing.T) {
		for _, p := range []string{"/prov/../provbox.db", "/prov/..%2fprovbox.db", "/prov/%2e%2e%2fprovbox.db", "/prov/firmware/../provbox.db", "/prov/%00"} {
			out := runTool(t, "curl", "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", srv.url+p)
			if s := string(out); s == "200" {
				t.Errorf("%s answered 200", p)
			}
		}
		for _, p := range []string{"../provbox.db", "/etc/passwd", "firmware/../provbox.db"} {
			if err := exec.Command("curl", "-sSf", "-o", "/dev/null", "tftp://"+srv.tftp+"/"+p).Run(); err == nil {
				t.Errorf("tftp served %s", p)
			}
		}
	})

	if strings.Contains(srv.logs.String(), "alice-sip-secret") {
		t.Fatal("a SIP password reached the log")
	}
	srv.close()
}

// TestProvisioningOldCredentials: the shared provisioning.username and
// password are gone; a config file that still sets them is refused with
// what replaced them.
func TestProvisioningOldCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "provbox.toml")
	os.WriteFile(cfg, []byte("[provisioning]\nusername = \"phones\"\npassword = \"prov-pass-1\"\n"), 0o600)
	r := runCLI(t, "", "serve", "--config", cfg, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--https", "off", "--tftp", "off", "--sip", "off")
	if r.code != 2 || !strings.Contains(r.stderr, "provisioning.username: was replaced by per-phone secrets") || !strings.Contains(r.stderr, "remove provisioning.username and provisioning.password") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

// settingsOf reads a Yealink file's "key = value" lines.
func settingsOf(b []byte) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " = "); ok && !strings.HasPrefix(l, "#") {
			out[k] = v
		}
	}
	return out
}

// TestYealinkKeysRealClients (issue 10): a phone set up through the API and
// one imported from CSV fetch their configs over HTTP (curl) and TFTP
// (tftp-hpa, curl); the files carry the BLF pickup prefix alone, a park
// slot as a BLF on the slot, a park code as the park key, unused accounts
// cleared, the phones' admin password and PnP off. A removed extension's
// password leaves the phone's file; a phone whose extension has no SIP
// server is not ready (API, and serve's log at start).
func TestYealinkKeysRealClients(t *testing.T) {
	needTools(t, "curl", "tftp")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "provbox.toml")
	const adminPW = "Office-Phones-42"
	os.WriteFile(cfg, []byte("[http]\npublic_url = \"http://192.0.2.10:8080/prov/\"\n[provisioning]\nphone_admin_password = \""+adminPW+"\"\n"), 0o600)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := MustRunMain(t, cfg, data)
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	var alice, bob, nobody appliance.Extension
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "alice-sip-secret", "sip_server": "pbx.example.com"}, 201, &alice)
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1002", "name": "Bob", "password": "bob-sip-secret", "sip_server": "pbx.example.com"}, 201, &bob)
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1009", "name": "Nobody", "password": "x-sip-secret"}, 201, &nobody)
	var blf, slot, code appliance.Key
	a.must("POST", "/api/v1/keys", map[string]any{"type": "blf", "value": "1003", "label": "Carol"}, 201, &blf)
	a.must("POST", "/api/v1/keys", map[string]any{"type": "park", "value": "701", "label": "Park 1"}, 201, &slot)
	a.must("POST", "/api/v1/keys", map[string]any{"type": "park", "value": "*85", "label": "Park"}, 201, &code)

	// Phone 1 through the API.
	const api1 = "001565000a01"
	a.must("POST", "/api/v1/phones", map[string]any{"mac": api1, "model": "T46U", "extension": "1001"}, 201, nil)
	a.must("PUT", "/api/v1/phones/"+api1+"/keys", []map[string]any{
		{"position": 1, "key_id": alice.AccountKey}, {"position": 2, "key_id": bob.AccountKey},
		{"position": 3, "key_id": blf.ID}, {"position": 4, "key_id": slot.ID}, {"position": 5, "key_id": code.ID},
	}, 200, nil)
	// Phone 2 from CSV, with the same kinds of keys (the park keys by value).
	const csv2 = "001565000a02"
	csv := "mac,name,model,position,key_type,key_value,key_label\n" +
		csv2 + ",Desk,T54W,1,account,1001,\n" + csv2 + ",,,2,account,1002,\n" + csv2 + ",,,3,blf,1003,Carol\n" +
		csv2 + ",,,4,park,702,Park 2\n" + csv2 + ",,,5,park,#72,Park code\n"
	a.must("POST", "/api/v1/phones.csv", []byte(csv), 200, nil)

	tftpHost, tftpPort, _ := strings.Cut(srv.tftp, ":")
	fetch := func(mac string) map[string][]byte {
		t.Helper()
		user, pass := a.secret(mac)
		out := map[string][]byte{"http": runTool(t, "curl", "-sSf", "-A", "Yealink SIP-T46U 108.86.0.90 "+appliance.FormatMAC(mac), "-u", user+":"+pass, srv.url+"/prov/"+mac+".cfg")}
		a.reopen(mac) // TFTP: the claim window's one fetch without a secret
		out["curl tftp"] = runTool(t, "curl", "-sSf", "tftp://"+srv.tftp+"/"+mac+".cfg")
		a.reopen(mac)
		f := filepath.Join(t.TempDir(), "hpa.cfg")
		runTool(t, "tftp", tftpHost, tftpPort, "-m", "binary", "-c", "get", mac+".cfg", f)
		out["tftp-hpa"], _ = os.ReadFile(f)
		return out
	}
	for mac, park := range map[string][2]string{api1: {"701", "*85"}, csv2: {"702", "#72"}} {
		for client, b := range fetch(mac) {
			s := settingsOf(b)
			for k, want := range map[string]string{
				// BLF: the pickup prefix alone; the phone appends the number.
				"linekey.3.type": "16", "linekey.3.value": "1003", "linekey.3.extension": "**", "linekey.3.pickup_value": "**",
				"features.pickup.direct_pickup_code": "**", "features.pickup.direct_pickup_enable": "1",
				// A park slot is a BLF on the slot; a park code is the park key.
				"linekey.4.type": "16", "linekey.4.value": park[0],
				"linekey.5.type": "10", "linekey.5.value": park[1],
				// Two accounts, then unused ones cleared.
				"account.1.user_name": "1001", "account.2.user_name": "1002", "account.2.password": "bob-sip-secret",
				"account.3.enable": "0", "account.3.user_name": "%NULL%", "account.3.password": "%NULL%", "account.3.sip_server.1.address": "%NULL%",
				// The managed admin password, PnP off, no reboot on check-sync.
				"static.security.user_password": "admin:" + adminPW, "security.user_password": "admin:" + adminPW,
				"static.auto_provision.pnp_enable": "0", "sip.notify_reboot_enable": "0",
			} {
				if s[k] != want {
					t.Errorf("%s via %s: %s = %q, want %q", mac, client, k, s[k], want)
				}
			}
		}
	}

	// Bob leaves phone 1: his password leaves its file (account 2 cleared).
	a.must("PUT", "/api/v1/phones/"+api1+"/keys", []map[string]any{{"position": 1, "key_id": alice.AccountKey}, {"position": 2, "key_id": alice.AccountKey}}, 200, nil)
	after := fetch(api1)["http"]
	if s := settingsOf(after); s["account.2.enable"] != "0" || s["account.2.password"] != "%NULL%" || bytes.Contains(after, []byte("bob-sip-secret")) {
		t.Errorf("Bob's account stays on the phone:\n%s", after)
	}

	// Ready checks: an extension without a SIP server (and no registrar).
	const lobby = "001565000a03"
	a.must("POST", "/api/v1/phones", map[string]any{"mac": lobby, "model": "T46U", "extension": "1009"}, 201, nil)
	var sync appliance.SyncStatus
	a.must("GET", "/api/v1/phones/"+lobby+"/sync", nil, 200, &sync)
	if len(sync.Problems) != 1 || !strings.Contains(sync.Problems[0], "extension 1009 has no SIP server") {
		t.Fatalf("problems %q", sync.Problems)
	}
	a.must("GET", "/api/v1/phones/"+api1+"/sync", nil, 200, &sync)
	if sync.Problems == nil || len(sync.Problems) != 0 {
		t.Fatalf("a ready phone has problems %#v", sync.Problems)
	}
	srv.close()
	logs := srv.logs.String()
	srv = MustRunMain(t, cfg, data)
	if !strings.Contains(srv.logs.String(), `"msg":"phone not ready: extension 1009 has no SIP server`) || !strings.Contains(srv.logs.String(), "00:15:65:00:0a:03") {
		t.Errorf("serve did not log the problem at start:\n%s", srv.logs)
	}
	for _, secret := range []string{"alice-sip-secret", "bob-sip-secret", adminPW} {
		if strings.Contains(logs+srv.logs.String(), secret) {
			t.Fatalf("a secret reached the log: %s", secret)
		}
	}
	srv.close()
	// `provbox resync` sends nothing to a phone that never fetched its config.
	r := runCLI(t, "", "resync", lobby, "--data", data, "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stdout, "00:15:65:00:0a:03  not sent: the phone has never fetched its config") {
		t.Fatalf("resync of a phone that never fetched: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
