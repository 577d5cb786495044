package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/provbox/provbox/appliance"
)

// artifactDir is where the browser test leaves its screenshots: the
// PROVBOX_ARTIFACTS directory, else artifacts/screenshots in the checkout.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("PROVBOX_ARTIFACTS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fakeHandset answers check-sync NOTIFYs on ip:port with 200 OK and then
// fetches its config from ip, as a Yealink does.
func fakeHandset(t *testing.T, ip string, port int, fetch func()) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...))
			req, ok := m.(*sipmsg.Request)
			if err != nil || !ok {
				continue
			}
			c.WriteToUDP([]byte(sipmsg.NewResponseFromRequest(req, 200, "OK", nil).String()), from)
			if req.Method == sipmsg.NOTIFY {
				go fetch()
			}
		}
	}()
}

// TestBrowserFirstStartToProvisionedPhone drives the admin pages in Debian's
// chromium like a new admin: first-run setup with the code from the log,
// an extension, a location, a phone, a BLF key from Button Configurations,
// the key on the phone's line keys; the generated config changes and the
// sync badge moves to synced as the (emulated) handset re-fetches. It saves
// a screenshot of every page.
func TestBrowserFirstStartToProvisionedPhone(t *testing.T) {
	shots := artifactDir(t)
	phonePort := freeUDPPort(t, "127.0.0.2")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "provbox.toml")
	// A provisioning URL phones could reach, so the only ready problem below
	// is the one the test makes (the derived URL is 127.0.0.1 on a machine
	// without a default route).
	os.WriteFile(cfg, []byte(fmt.Sprintf("[http]\npublic_url = \"http://192.0.2.10:8080/prov/\"\n[sip]\nphone_port = %d\npnp = false\n", phonePort)), 0o600)
	data := t.TempDir()
	srv := startServe(t, cfg, data)
	code := regexp.MustCompile(`"setup_code":"([a-z0-9-]+)"`).FindStringSubmatch(srv.logs.String())
	if code == nil {
		t.Fatalf("no setup code in the log:\n%s", srv.logs)
	}
	const mac = "001565aabbcc"
	// The handset fetches its first config without a secret (its claim
	// window) and uses the user name and secret from it from then on.
	var credMu sync.Mutex
	var cred string
	var bootReport string
	fetch := func() {
		credMu.Lock()
		args := []string{"-sSf", "--interface", "127.0.0.2", "-A", "Yealink SIP-T46G 28.83.0.35 00:15:65:aa:bb:cc"}
		if cred != "" {
			args = append(args, "-u", cred)
		}
		credMu.Unlock()
		out, err := exec.Command("curl", append(args, srv.url+"/prov/"+mac+".cfg")...).Output()
		if err != nil {
			t.Logf("handset fetch: %v %s", err, out)
			return
		}
		s := settingsOf(out)
		credMu.Lock()
		cred = s["static.auto_provision.server.username"] + ":" + s["static.auto_provision.server.password"]
		bootReport = s["action_url.setup_autop_finish"]
		credMu.Unlock()
	}
	// powerOn is the handset's power-on provisioning: a fetch, then its
	// setup_autop_finish action URL (on this test's server: the config names
	// the public URL's host).
	powerOn := func() {
		fetch()
		credMu.Lock()
		u := bootReport
		credMu.Unlock()
		i := strings.Index(u, "/prov/ev/")
		if i < 0 {
			t.Fatalf("no setup_autop_finish action URL in the config: %q", u)
		}
		u = strings.NewReplacer("$mac", mac, "$ip", "127.0.0.2", "$model", "SIP-T46G", "$firmware", "28.83.0.35").Replace(u[i:])
		if out, err := exec.Command("curl", "-sSf", "--interface", "127.0.0.2", srv.url+u).CombinedOutput(); err != nil {
			t.Fatalf("handset report: %v %s", err, out)
		}
	}
	fakeHandset(t, "127.0.0.2", phonePort, fetch)

	ctx := newChromium(t, 1200, 900)

	n := 0
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nprovbox log:\n%s", name, err, srv.logs)
		}
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", name, err)
		}
		n++
		path := filepath.Join(shots, fmt.Sprintf("%02d-%s.png", n, name))
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string { t.Helper(); return textOf(t, ctx, sel) }
	settle := chromedp.Sleep(300 * time.Millisecond)

	step("setup",
		chromedp.Navigate(srv.url+"/"),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), code[1]),
		chromedp.SetValue(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
		chromedp.SendKeys(chromedp.ID("password2"), "correct horse battery"),
		chromedp.Submit(chromedp.ID("password2")),
		chromedp.WaitVisible(chromedp.CSS("header.top")), settle)

	for _, e := range [][2]string{{"1001", "Alice Smith"}, {"1002", "Bob Jones"}} {
		step("extensions-"+e[0],
			chromedp.Navigate(srv.url+"/extensions"),
			chromedp.SendKeys(chromedp.ID("f-number"), e[0]),
			chromedp.SendKeys(chromedp.ID("f-name"), e[1]),
			chromedp.SendKeys(chromedp.ID("f-password"), "sip-secret-"+e[0]),
			chromedp.SendKeys(chromedp.ID("f-sip_server"), "pbx.example.com"),
			chromedp.Submit(chromedp.ID("f-number")),
			chromedp.WaitVisible(chromedp.CSS(".flash")), settle)
		if !strings.Contains(text(".flash"), "Extension "+e[0]+" added") {
			t.Fatalf("extension flash: %q", text(".flash"))
		}
	}
	step("locations",
		chromedp.Navigate(srv.url+"/locations"),
		chromedp.SendKeys(chromedp.ID("f-name"), "HQ Front office"),
		chromedp.SendKeys(chromedp.ID("f-street"), "1 Main St"),
		chromedp.SendKeys(chromedp.ID("f-city"), "Springfield"),
		chromedp.SendKeys(chromedp.ID("f-country"), "US"),
		chromedp.Submit(chromedp.ID("f-name")),
		chromedp.WaitVisible(chromedp.CSS(".flash")), settle)

	step("phone-new",
		chromedp.Navigate(srv.url+"/phones/new"),
		chromedp.SendKeys(chromedp.ID("f-mac"), "00-15-65-AA-BB-CC"),
		chromedp.SendKeys(chromedp.ID("f-name"), "Reception"),
		chromedp.SetValue(chromedp.ID("f-model"), "T46G"),
		chromedp.SetValue(chromedp.ID("f-extension"), "1001"),
		chromedp.Submit(chromedp.ID("f-mac")),
		chromedp.WaitVisible(chromedp.ID("config-masked")), settle)
	// The handset boots, fetches its config and reports: synced.
	powerOn()
	step("phone-synced", chromedp.Navigate(srv.url+"/phones/"+mac), chromedp.WaitVisible(chromedp.CSS(".badge.synced")), settle)
	before := text("#config-masked")
	if strings.Contains(before, "sip-secret-1001") || !strings.Contains(before, "account.1.password = ********") {
		t.Fatalf("config preview does not mask the password:\n%s", before)
	}

	step("keys-add-blf",
		chromedp.Navigate(srv.url+"/keys"),
		chromedp.SetValue(chromedp.ID("f-type"), "blf"),
		chromedp.SendKeys(chromedp.ID("f-value"), "1002"),
		chromedp.SendKeys(chromedp.ID("f-label"), "Bob"),
		chromedp.Submit(chromedp.ID("f-value")),
		chromedp.WaitVisible(chromedp.CSS(".flash")), settle)

	a := newAPI(t, srv.url, "admin", "correct horse battery")
	var blfs []appliance.Key
	a.must("GET", "/api/v1/keys?type=blf", nil, 200, &blfs)
	if len(blfs) != 1 || blfs[0].Label != "Bob" {
		t.Fatalf("keys after the form: %+v", blfs)
	}
	step("phone-line-keys",
		chromedp.Navigate(srv.url+"/phones/"+mac+"/edit"),
		chromedp.WaitVisible(chromedp.ID("f-key_3")),
		chromedp.SetValue(chromedp.ID("f-key_3"), strconv.FormatInt(blfs[0].ID, 10)),
		chromedp.Submit(chromedp.ID("f-key_3")),
		chromedp.WaitVisible(chromedp.ID("config-masked")), settle)
	after := text("#config-masked")
	if after == before || !strings.Contains(after, "linekey.3.type = 16") || !strings.Contains(after, "linekey.3.label = Bob") {
		t.Fatalf("config did not change with the layout:\n%s", after)
	}
	// The edit sent a check-sync; the handset answered and re-fetched: the
	// badge, polled by the page, moves to fetched (a Yealink applies a line
	// key without a report), and the timeline shows the change.
	step("phone-resynced", chromedp.WaitVisible(chromedp.CSS(".badge.fetched")), chromedp.Sleep(2500*time.Millisecond))
	if got := text(".badge.fetched"); got != "fetched" {
		t.Fatalf("badge %q", got)
	}
	if tl := text("table.timeline tbody"); !strings.Contains(tl, "check-sync: 200 OK") {
		t.Fatalf("timeline:\n%s", tl)
	}
	var sync appliance.SyncStatus
	a.must("GET", "/api/v1/phones/"+mac+"/sync", nil, 200, &sync)
	if sync.State != appliance.SyncFetched || sync.LastNotifyResult != "200 OK" || sync.FetchedVersion != sync.ConfigVersion {
		t.Fatalf("sync after the edit: %+v", sync)
	}

	// The phone's own provisioning secret: masked until Reveal; Reopen
	// claim opens its claim window again (a factory-reset phone).
	var sec struct{ Username, Password string }
	a.must("GET", "/api/v1/phones/"+mac+"/secret", nil, 200, &sec)
	step("phone-secret",
		chromedp.Navigate(srv.url+"/phones/"+mac),
		chromedp.WaitVisible(chromedp.ID("reveal-secret")),
		chromedp.Click(chromedp.ID("reveal-secret")),
		chromedp.WaitVisible(chromedp.ID("secret-plain")), settle)
	if got := text("#secret-plain"); got != sec.Password || !strings.Contains(text("[data-claim-mac]"), "closed") {
		t.Fatalf("revealed secret %q, want %q; claim: %s", got, sec.Password, text("[data-claim-mac]"))
	}
	step("phone-reopen-claim", chromedp.Click(chromedp.ID("reopen-claim")), chromedp.WaitVisible(chromedp.CSS(".flash")), settle)
	if !strings.Contains(text(".flash"), "Claim reopened") || !strings.Contains(text("[data-claim-mac]"), "open until") {
		t.Fatalf("reopen claim: %q / %q", text(".flash"), text("[data-claim-mac]"))
	}

	// Button Configurations: search and show/hide are links.
	step("keys-search", chromedp.Navigate(srv.url+"/keys?q=bob"), settle)
	if rows := text("table tbody"); !strings.Contains(rows, "Bob") || strings.Contains(rows, "Alice") {
		t.Fatalf("search q=bob:\n%s", rows)
	}
	step("keys-hide-accounts", chromedp.Navigate(srv.url+"/keys?accounts=hide"), settle)
	if rows := text("table tbody"); strings.Contains(rows, "Account Key") || !strings.Contains(rows, "BLF") {
		t.Fatalf("hide account keys:\n%s", rows)
	}
	step("keys-unattached", chromedp.Navigate(srv.url+"/keys?attached=false"), settle)
	if rows := text("table tbody"); strings.Contains(rows, "BLF") || !strings.Contains(rows, "1002") {
		t.Fatalf("unattached keys: want the unused account key of 1002, not the BLF on the phone:\n%s", rows)
	}
	// Ready checks: an extension without a SIP server (and no default
	// registrar) makes its phone "not ready", on its page and in the list;
	// setting the registrar in Settings clears it.
	step("extension-no-server",
		chromedp.Navigate(srv.url+"/extensions"),
		chromedp.SendKeys(chromedp.ID("f-number"), "1003"),
		chromedp.SendKeys(chromedp.ID("f-name"), "Lobby"),
		chromedp.SendKeys(chromedp.ID("f-password"), "sip-secret-1003"),
		chromedp.Submit(chromedp.ID("f-number")),
		chromedp.WaitVisible(chromedp.CSS(".flash")), settle)
	const lobby = "001565aabbdd"
	step("phone-not-ready",
		chromedp.Navigate(srv.url+"/phones/new"),
		chromedp.SendKeys(chromedp.ID("f-mac"), "00:15:65:aa:bb:dd"),
		chromedp.SendKeys(chromedp.ID("f-name"), "Lobby phone"),
		chromedp.SetValue(chromedp.ID("f-model"), "T54W"),
		chromedp.SetValue(chromedp.ID("f-extension"), "1003"),
		chromedp.Submit(chromedp.ID("f-mac")),
		chromedp.WaitVisible(chromedp.CSS(".problems")), settle)
	if got := text(".flash.problems"); !strings.Contains(got, "Not ready") || !strings.Contains(got, "extension 1003 has no SIP server") {
		t.Fatalf("phone page problems: %q", got)
	}
	a.must("GET", "/api/v1/phones/"+lobby+"/sync", nil, 200, &sync)
	if len(sync.Problems) != 1 || !strings.Contains(sync.Problems[0], "extension 1003 has no SIP server") {
		t.Fatalf("API problems %q", sync.Problems)
	}
	step("phones-not-ready", chromedp.Navigate(srv.url+"/phones"), settle)
	if rows := text("table tbody"); !strings.Contains(rows, "not ready") || !strings.Contains(rows, "extension 1003 has no SIP server") {
		t.Fatalf("phones list does not show the problem:\n%s", rows)
	}
	step("settings-registrar",
		chromedp.Navigate(srv.url+"/settings"),
		chromedp.SendKeys(chromedp.ID("f-registrar"), "pbx.example.com"),
		chromedp.Submit(chromedp.ID("f-registrar")),
		chromedp.WaitVisible(chromedp.CSS(".flash")), settle)
	step("phone-ready", chromedp.Navigate(srv.url+"/phones/"+lobby), settle)
	a.must("GET", "/api/v1/phones/"+lobby+"/sync", nil, 200, &sync)
	if len(sync.Problems) != 0 {
		t.Fatalf("problems after the registrar was set: %q", sync.Problems)
	}
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(".flash.problems").hidden`)); err != nil || !hidden {
		t.Fatalf("the problems box still shows (%v)", err)
	}
	// The phones' admin password: masked on Settings until revealed, and the
	// one every config carries.
	step("settings-admin-password",
		chromedp.Navigate(srv.url+"/settings"),
		chromedp.Click(chromedp.ID("reveal-phone-admin")),
		chromedp.WaitVisible(chromedp.ID("phone-admin-plain")), settle)
	pw := text("#phone-admin-plain")
	cfgText := string(a.must("GET", "/api/v1/phones/"+lobby+"/config", nil, 200, nil))
	if len(pw) < 8 || !strings.Contains(cfgText, "static.security.user_password = admin:"+pw+"\n") {
		t.Fatalf("revealed admin password %q not in the config:\n%s", pw, cfgText)
	}

	for _, p := range []string{"phones", "extensions", "locations", "discovered", "leases", "settings", "users"} {
		step("page-"+p, chromedp.Navigate(srv.url+"/"+p), settle)
	}
	t.Logf("screenshots in %s", shots)
}
