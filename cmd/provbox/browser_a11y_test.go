package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/provbox/provbox/appliance"
)

// axeLevels are the axe-core rule tags the check fails on: WCAG 2.0 and
// 2.1 level A. axeAdvisory are run too and only logged (level AA: mostly
// colour contrast).
var (
	axeLevels   = []string{"wcag2a", "wcag21a"}
	axeAdvisory = []string{"wcag2aa", "wcag21aa"}
)

var (
	axeOnce sync.Once
	axeJS   string
	axeErr  error
)

// axeSource is node_modules/axe-core/axe.min.js of the checkout, the
// version package-lock.json pins (make deps runs npm ci).
func axeSource(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		var b []byte
		b, axeErr = os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "node_modules", "axe-core", "axe.min.js"))
		axeJS = string(b)
	})
	if axeErr != nil {
		t.Fatalf("axe-core is not installed (make deps runs npm ci): %v", axeErr)
	}
	return axeJS
}

// axeViolation is the part of an axe-core violation the report shows.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Tags   []string `json:"tags"`
	Nodes  []struct {
		Target  []any  `json:"target"` // selectors; an array of them inside a shadow root or frame
		Summary string `json:"summary"`
	} `json:"nodes"`
}

func (v axeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for i, n := range v.Nodes {
		if i == 8 {
			fmt.Fprintf(&b, "\n      … and %d more", len(v.Nodes)-i)
			break
		}
		fmt.Fprintf(&b, "\n      %v", n.Target)
		if s := strings.ReplaceAll(strings.TrimSpace(n.Summary), "\n", " / "); s != "" {
			fmt.Fprintf(&b, ": %s", s)
		}
	}
	return b.String()
}

// axeCheck injects axe-core into the page ctx shows (a CDP evaluation, which
// the pages' CSP does not restrict), runs it on the document and fails the
// test with each WCAG 2.0/2.1 level A violation: its rule id, what it asks
// for and the selectors of the elements. Level AA violations are logged.
func axeCheck(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](axeSource(t))); err != nil {
		t.Fatalf("%s: inject axe-core: %v", name, err)
	}
	tags, _ := json.Marshal(append(slices.Clone(axeLevels), axeAdvisory...))
	script := fmt.Sprintf(`axe.run(document, {runOnly: {type: 'tag', values: %s}, resultTypes: ['violations']}).then(r => r.violations.map(v => ({
		id: v.id, impact: v.impact, help: v.help, tags: v.tags,
		nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary}))})))`, tags)
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe.run: %v", name, err)
	}
	for _, v := range vs {
		if slices.ContainsFunc(v.Tags, func(tag string) bool { return slices.Contains(axeLevels, tag) }) {
			t.Errorf("%s: accessibility violation %s", name, v)
		} else {
			t.Logf("%s: level AA (advisory) %s", name, v)
		}
	}
}

// TestBrowserEveryPageAccessible opens every admin page in chromium, at a
// laptop's 1366×900 and a phone's 390×844, with a little data in them: a
// full-page screenshot of each (page-<name>-<width>.png in artifactDir) and
// an axe-core check (WCAG 2.0/2.1 level A). It also drives the menu with the
// keyboard only: the skip link, the Devices and Settings dropdowns, and the
// Menu button a phone-width window folds them into.
func TestBrowserEveryPageAccessible(t *testing.T) {
	axeSource(t)
	shots := artifactDir(t)
	cfg := filepath.Join(t.TempDir(), "provbox.toml")
	os.WriteFile(cfg, []byte("[http]\npublic_url = \"http://192.0.2.10:8080/prov/\"\n[sip]\nregistrar = \"pbx.example.com\"\npnp = false\n"), 0o600)
	data := t.TempDir()
	const pass = "correct-horse-battery"
	mustCLI(t, pass+"\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := startServe(t, cfg, data)
	a := newAPI(t, srv.url, "admin", pass)
	var ext appliance.Extension
	for _, e := range [][2]string{{"1001", "Alice Smith"}, {"1002", "Bob Jones"}} {
		a.must("POST", "/api/v1/extensions", map[string]any{"number": e[0], "name": e[1], "password": "sip-secret-" + e[0]}, 201, &ext)
	}
	var loc appliance.Location
	a.must("POST", "/api/v1/locations", map[string]any{"name": "HQ Front office", "street": "1 Main St", "city": "Springfield",
		"region": "IL", "postal_code": "62701", "country": "US", "callback_number": "+15551230000"}, 201, &loc)
	var blf, park appliance.Key
	a.must("POST", "/api/v1/keys", map[string]any{"type": "blf", "value": "1002", "label": "Bob"}, 201, &blf)
	a.must("POST", "/api/v1/keys", map[string]any{"type": "park", "value": "701", "label": "Park 1"}, 201, &park)
	const mac = "001565aabbcc"
	a.must("POST", "/api/v1/phones", map[string]any{"mac": mac, "name": "Reception", "description": "Front desk",
		"model": "T46G", "location_id": loc.ID, "extension": "1001"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": "001565aabbdd", "model": "T54W", "extension": "1002"}, 201, nil)
	var acct []appliance.Key
	a.must("GET", "/api/v1/keys?type=account", nil, 200, &acct)
	a.must("PUT", "/api/v1/phones/"+mac+"/keys", []map[string]any{{"position": 1, "key_id": acct[0].ID}, {"position": 2, "key_id": acct[0].ID},
		{"position": 3, "key_id": blf.ID}, {"position": 4, "key_id": park.ID}}, 200, nil)
	// An unknown phone asks for its config: a row under Discovered.
	exec.Command("curl", "-s", "-o", "/dev/null", "-A", "Yealink SIP-T33G 124.86.0.40 00:15:65:12:34:56", srv.url+"/prov/001565123456.cfg").Run()

	pages := []struct{ name, path string }{
		{"dashboard", "/"},
		{"phones", "/phones"},
		{"phone-new", "/phones/new"},
		{"phone", "/phones/" + mac},
		{"phone-edit", "/phones/" + mac + "/edit"},
		{"keys", "/keys"},
		{"key-edit", fmt.Sprintf("/keys/%d", blf.ID)}, // the inline edit row
		{"extensions", "/extensions"},
		{"extension-edit", fmt.Sprintf("/extensions/%d", ext.ID)},
		{"locations", "/locations"},
		{"location-edit", fmt.Sprintf("/locations/%d", loc.ID)},
		{"discovered", "/discovered"},
		{"leases", "/leases"},
		{"settings", "/settings"},
		{"users", "/users"},
		{"user-password", "/users?passwd=admin"},
		{"keys-none-match", "/keys?q=nothing-matches"},
		{"audit", "/audit"},
		{"phones-import", "/phones/import"},
	}
	for _, size := range [][2]int{{1366, 900}, {390, 844}} {
		w, h := size[0], size[1]
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			b := newA11yBrowser(t, srv, shots, w, h)
			b.do("login", chromedp.Navigate(srv.url+"/login?next=/phones"),
				chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), pass),
				chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.CSS("header.top")))
			for _, p := range pages {
				b.page(p.name, p.path)
			}
			// Forms sent back with their errors (aria-invalid, messages).
			b.do("phone form with errors", chromedp.Navigate(srv.url+"/phones/new"), chromedp.SendKeys(chromedp.ID("f-mac"), "00:15:65:12:34:5G"),
				chromedp.Submit(chromedp.ID("f-mac")), chromedp.WaitVisible(chromedp.CSS(".field.bad .err")))
			b.page("phone-new-errors", "")
			b.do("extension form with errors", chromedp.Navigate(srv.url+"/extensions"), chromedp.SendKeys(chromedp.ID("f-number"), "1001"),
				chromedp.Submit(chromedp.ID("f-number")), chromedp.WaitVisible(chromedp.CSS(".field.bad .err")))
			b.page("extensions-errors", "")
			b.keyboard()
			// Log out with the header's button; the login page after it.
			b.do("logout", chromedp.Navigate(srv.url+"/phones"), chromedp.WaitVisible(chromedp.CSS("header.top .who button")),
				chromedp.Click(chromedp.CSS("header.top .who button")), chromedp.WaitVisible(chromedp.ID("username")))
			b.page("login", "")
			b.do("wrong password", chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), "not the password"),
				chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.CSS(".flash")))
			b.page("login-error", "")
		})
	}
	// /setup only answers while there is no admin: a fresh provbox.
	fresh := startServe(t, cfg, t.TempDir())
	for _, w := range []int{1366, 390} {
		b := newA11yBrowser(t, fresh, shots, w, 844)
		b.page("setup", "/setup")
		b.do("setup with errors", chromedp.SendKeys(chromedp.ID("code"), "wrong-code"), chromedp.SendKeys(chromedp.ID("password"), "short"),
			chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.CSS(".err, .flash")))
		b.page("setup-errors", "")
	}
	t.Logf("screenshots in %s", shots)
}

// a11yBrowser is one chromium window of TestBrowserEveryPageAccessible.
type a11yBrowser struct {
	t     *testing.T
	ctx   context.Context
	srv   *serveProc
	shots string
	width int
}

// newA11yBrowser opens chromium with a viewport of w×h CSS pixels (a
// window alone cannot be narrower than 500 px).
func newA11yBrowser(t *testing.T, srv *serveProc, shots string, w, h int) *a11yBrowser {
	t.Helper()
	b := &a11yBrowser{t: t, ctx: newChromium(t, w, h), srv: srv, shots: shots, width: w}
	b.do("viewport", chromedp.EmulateViewport(int64(w), int64(h)))
	return b
}

func (b *a11yBrowser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%d px: %s: %v\nprovbox log:\n%s", b.width, what, err, b.srv.logs)
	}
}

func (b *a11yBrowser) eval(what, js string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		b.t.Fatalf("%d px: %s: %v", b.width, what, err)
	}
	return v
}

func (b *a11yBrowser) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("%s: screenshot: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, fmt.Sprintf("page-%s-%d.png", name, b.width)), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// overflowJS names the outermost elements that stick out of the window on
// the right, when the page scrolls sideways (a table inside a .table-wrap
// scrolls on its own and does not count).
const overflowJS = `(() => {
	const vw = document.documentElement.clientWidth;
	if (document.documentElement.scrollWidth <= vw + 1) return [];
	const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\s+/).join(".") : "") + " (" + Math.round(e.getBoundingClientRect().right) + " px)";
	const out = [], all = [];
	for (const e of document.querySelectorAll("body *")) {
		const p = e.parentElement;
		if (e.getBoundingClientRect().right <= vw + 1) continue;
		all.push(e);
		if (p && p.getBoundingClientRect().right <= vw + 1 && getComputedStyle(p).overflowX === "visible") out.push(e);
	}
	// None sticks out of an element that fits: an absolutely positioned
	// one escaping a scrolled box; name the innermost.
	return (out.length ? out.slice(0, 6) : all.slice(-6)).map(name);
})()`

// page opens path (or stays on the page shown when path is ""), wants a
// 200 without a horizontal scroll bar, takes its screenshot and runs axe.
func (b *a11yBrowser) page(name, path string) {
	b.t.Helper()
	if path != "" {
		resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(b.srv.url+path))
		if err != nil {
			b.t.Fatalf("%d px: open %s: %v", b.width, path, err)
		}
		if resp.Status != 200 {
			b.t.Errorf("%d px: %s answers %d %s", b.width, path, resp.Status, resp.StatusText)
			return
		}
	}
	// Live badges and the like settle; then the page as it stays.
	b.do(name, chromedp.WaitReady(chromedp.CSS("main")), chromedp.Sleep(300*time.Millisecond))
	if wide, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](overflowJS)); err != nil {
		b.t.Fatalf("%d px: %s: page width: %v", b.width, name, err)
	} else if len(wide) > 0 {
		b.t.Errorf("%d px: %s scrolls sideways (the page, not a table in it, is wider than the window); too wide: %s", b.width, name, strings.Join(wide, ", "))
	}
	b.shot(name)
	axeCheck(b.t, b.ctx, fmt.Sprintf("%d px %s", b.width, name))
}

// keyboard drives the menu with keys alone, on the phone page: Tab reaches
// the skip link first and Enter on it moves the focus to the content; the
// Settings dropdown (in the Menu on a phone) opens with Enter and its
// Locations link then shows; Escape closes it again.
func (b *a11yBrowser) keyboard() {
	b.t.Helper()
	shown := func(sel string) string {
		return fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.checkVisibility({visibilityProperty: true}); })()`, "header.top "+sel)
	}
	b.do("keyboard: open the phone page", chromedp.Navigate(b.srv.url+"/phones"), chromedp.WaitReady(chromedp.CSS("main")))
	b.do("keyboard: Tab", chromedp.KeyEvent("\t"))
	if !b.eval("skip link", `document.activeElement.matches("a.skip") && document.activeElement.getBoundingClientRect().top >= 0`) {
		b.t.Errorf("%d px: the first Tab does not show the skip link", b.width)
	}
	b.do("keyboard: skip", chromedp.KeyEvent("\r"))
	if !b.eval("skip target", `document.activeElement.id === "main"`) {
		b.t.Errorf("%d px: the skip link does not move the focus to <main>", b.width)
	}
	narrow := b.width < 700
	if narrow {
		if b.eval("menu closed", shown(`a[href="/locations"]`)) || b.eval("dashboard link", shown(`nav a[href="/"]`)) {
			b.t.Errorf("%d px: the menu is not folded", b.width)
		}
		b.focus(`details.menu > summary`)
		b.do("keyboard: open Menu", chromedp.KeyEvent("\r"))
		if !b.eval("menu open", shown(`nav a[href="/extensions"]`)) {
			b.t.Errorf("%d px: Enter on Menu does not show the links", b.width)
		}
	} else if !b.eval("bar", shown(`nav a[href="/extensions"]`)) || b.eval("no Menu", shown(`details.menu > summary`)) {
		b.t.Errorf("%d px: the menu bar is not shown open", b.width)
	}
	if b.eval("settings closed", shown(`a[href="/locations"]`)) {
		b.t.Errorf("%d px: the Settings group starts open", b.width)
	}
	b.focus(`details.group:has(a[href="/settings"]) > summary`)
	b.do("keyboard: open Settings", chromedp.KeyEvent("\r"))
	if !b.eval("settings open", shown(`a[href="/locations"]`)) {
		b.t.Errorf("%d px: Enter on Settings does not show Locations", b.width)
	}
	b.shot("menu")
	b.do("keyboard: Escape", chromedp.KeyEvent("\x1b"))
	if b.eval("settings closed again", shown(`a[href="/locations"]`)) {
		b.t.Errorf("%d px: Escape does not close the Settings group", b.width)
	}

	// Without JavaScript the menu still opens with the keyboard (<details>).
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		b.t.Fatalf("disable JavaScript: %v", err)
	}
	defer chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
	b.do("no JS: open the keys page", chromedp.Navigate(b.srv.url+"/keys"), chromedp.WaitReady(chromedp.CSS("main")))
	if narrow {
		b.focus(`details.menu > summary`)
		b.do("no JS: open Menu", chromedp.KeyEvent(" "))
	}
	b.focus(`details.group:has(a[href="/phones"]) > summary`)
	b.do("no JS: open Devices", chromedp.KeyEvent(" "))
	if !b.eval("no JS: devices open", shown(`a[href="/discovered"]`)) {
		b.t.Errorf("%d px: without JavaScript, Space on Devices does not show Discovered", b.width)
	}
	b.shot("menu-nojs")
}

// focus puts the keyboard focus on sel (as Tab would get there).
func (b *a11yBrowser) focus(sel string) {
	b.t.Helper()
	b.do("focus "+sel, chromedp.Focus(chromedp.CSS(sel)))
}
