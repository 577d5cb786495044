package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/provbox/provbox/appliance"
)

// newChromium starts Debian's headless chromium with a window of w×h and
// returns its context. No timeout on the context (it would kill the
// browser): a watchdog cancels a run stuck for 3 minutes.
func newChromium(t *testing.T, w, h int) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (make deps installs it: apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	watchdog := time.AfterFunc(3*time.Minute, cancel)
	t.Cleanup(func() {
		watchdog.Stop()
		cancel()
		cancelAlloc()
	})
	// A dialog (a confirm before deleting, "leave with unsaved changes?")
	// would hold the page until answered: each is recorded and accepted.
	rec := &dialogLog{}
	opened := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range opened {
			if err != nil {
				return
			}
			rec.mu.Lock()
			rec.seen = append(rec.seen, string(ev.Type)+": "+ev.Message)
			rec.mu.Unlock()
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return context.WithValue(ctx, dialogKey{}, rec)
}

// textOf is the text an element shows (innerText: folded content left out).
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// textContentOf is an element's whole text, folded <details> included.
func textContentOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// dialogLog records the JavaScript dialogs a page opened ("beforeunload: ",
// "confirm: Delete phone …?").
type dialogLog struct {
	mu   sync.Mutex
	seen []string
}

type dialogKey struct{}

// dialogs returns the dialogs opened so far in the browser of ctx.
func dialogs(ctx context.Context) []string {
	rec := ctx.Value(dialogKey{}).(*dialogLog)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.seen...)
}

// TestBrowserKeyEditor drives the phone-shaped key editor in chromium: a
// T54W with two EXP50 modules (a key dragged from the phone onto module 1,
// another swapped on the phone, one dragged to the clear zone, a new key
// typed onto module 2, saved), and screenshots of the editor for that
// T54W+EXP50, a T33G and a T87W.
func TestBrowserKeyEditor(t *testing.T) {
	shots := artifactDir(t)
	cfg := filepath.Join(t.TempDir(), "provbox.toml")
	os.WriteFile(cfg, []byte("[http]\npublic_url = \"http://192.0.2.10:8080/prov/\"\n[sip]\nregistrar = \"pbx.example.com\"\npnp = false\n"), 0o600)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := startServe(t, cfg, data)
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	for _, e := range [][2]string{{"1001", "Alice Smith"}, {"1002", "Bob Jones"}, {"1003", "Carol"}} {
		a.must("POST", "/api/v1/extensions", map[string]any{"number": e[0], "name": e[1], "password": "sip-secret-" + e[0]}, 201, nil)
	}
	var keys []appliance.Key
	for _, k := range [][3]string{{"blf", "1002", "Bob Jones at reception"}, {"blf", "1003", "Carol"}, {"park", "701", "Park 1"},
		{"speed_dial", "+15551234", "Pizza"}, {"prefix", "9", "Outside"}} {
		var key appliance.Key
		a.must("POST", "/api/v1/keys", map[string]any{"type": k[0], "value": k[1], "label": k[2]}, 201, &key)
		keys = append(keys, key)
	}
	bob, carol, park, pizza := keys[0].ID, keys[1].ID, keys[2].ID, keys[3].ID
	const t54, t33, t87 = "001565000054", "001565000033", "001565000087"
	a.must("POST", "/api/v1/phones", map[string]any{"mac": t54, "name": "Reception", "model": "T54W", "expansion_modules": 2, "extension": "1001"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": t33, "name": "Warehouse", "model": "T33G", "extension": "1002"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": t87, "name": "Boss", "model": "T87W", "expansion_modules": 1, "extension": "1003"}, 201, nil)
	var acct []appliance.Key
	a.must("GET", "/api/v1/keys?type=account", nil, 200, &acct)
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	a.must("PUT", "/api/v1/phones/"+t54+"/keys", []map[string]any{
		{"position": 1, "key_id": acct[0].ID}, {"position": 2, "key_id": acct[0].ID}, {"position": 3, "key_id": bob},
		{"position": 4, "key_id": carol}, {"position": 6, "key_id": park}, {"position": 7, "key_id": pizza},
		{"module": 1, "position": 2, "key_id": keys[4].ID}, {"module": 2, "position": 1, "key_id": park},
	}, 200, nil)
	a.must("PUT", "/api/v1/phones/"+t33+"/keys", []map[string]any{{"position": 1, "key_id": acct[1].ID}, {"position": 2, "key_id": acct[1].ID},
		{"position": 3, "key_id": bob}, {"position": 4, "key_id": pizza}, {"position": 12, "key_id": park}}, 200, nil)
	a.must("PUT", "/api/v1/phones/"+t87+"/keys", []map[string]any{{"position": 1, "key_id": acct[2].ID}, {"position": 2, "key_id": acct[2].ID},
		{"position": 3, "key_id": bob}, {"position": 13, "key_id": carol}, {"module": 1, "position": 1, "key_id": pizza}}, 200, nil)

	ctx := newChromium(t, 1366, 2400)
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, "keys-"+name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nprovbox log:\n%s", what, err, srv.logs)
		}
	}
	value := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("value of %s: %v", sel, err)
		}
		return v
	}
	text := func(sel string) string { t.Helper(); return textOf(t, ctx, sel) }
	do("login", chromedp.Navigate(srv.url+"/login?next=/phones/"+t54+"/edit"),
		chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), "correct-horse-battery"),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("f-key_1_60")))
	shot("T54W-2xEXP50")
	if buf, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`section.board`))); err == nil {
		os.WriteFile(filepath.Join(shots, "keys-T54W-phone-panel.png"), buf, 0o644)
	}
	// The labels as the phone shows them: the T54W's 10 characters.
	if got := text(`[data-shown-for="key_3"]`); got != "Bob Jones…" {
		t.Errorf("line key 3 shows %q", got)
	}
	// Drag line key 3 (Bob) onto module 1 key 1 (empty): a move.
	do("drag to the module", chromedp.DragAndDrop(chromedp.CSS(`[data-slot="key_3"] .pos`), chromedp.CSS(`[data-slot="key_1_1"]`)))
	if value("#f-key_3") != "" || value("#f-key_1_1") != id(bob) {
		t.Fatalf("after the drag: key_3 %q, key_1_1 %q", value("#f-key_3"), value("#f-key_1_1"))
	}
	if got := text(`[data-shown-for="key_1_1"]`); got != "Bob Jones…" {
		t.Errorf("module key 1 shows %q", got)
	}
	// Drag line key 4 (Carol) onto line key 6 (Park 1): a swap.
	do("swap", chromedp.DragAndDrop(chromedp.CSS(`[data-slot="key_4"] .pos`), chromedp.CSS(`[data-slot="key_6"]`)))
	if value("#f-key_4") != id(park) || value("#f-key_6") != id(carol) {
		t.Fatalf("after the swap: key_4 %q, key_6 %q", value("#f-key_4"), value("#f-key_6"))
	}
	// Drag line key 7 (Pizza) to the clear zone (it sticks to the top of
	// the window while the editor scrolls).
	do("clear", chromedp.ScrollIntoView(chromedp.CSS(`[data-slot="key_7"]`)),
		chromedp.DragAndDrop(chromedp.CSS(`[data-slot="key_7"] .pos`), chromedp.CSS(`[data-clear]`)))
	if value("#f-key_7") != "" {
		t.Fatalf("after the clear: key_7 %q", value("#f-key_7"))
	}
	// A new key typed for module 2 key 60, then Save.
	do("new key", chromedp.SetValue(chromedp.ID("f-new_type"), "speed_dial"), chromedp.SendKeys(chromedp.ID("f-new_value"), "5559876"),
		chromedp.SendKeys(chromedp.ID("f-new_label"), "Taxi"), chromedp.SetValue(chromedp.ID("f-new_at"), "key_2_60"))
	shot("T54W-2xEXP50-edited")
	do("save", chromedp.Click(chromedp.CSS(".save-bar button[type=submit]")), chromedp.WaitVisible(chromedp.ID("config-masked")))
	if d := dialogs(ctx); len(d) != 0 {
		t.Errorf("saving asked first: %q", d)
	}
	var layout []appliance.LayoutEntry
	a.must("GET", "/api/v1/phones/"+t54+"/keys", nil, 200, &layout)
	got := map[string]string{}
	for _, e := range layout {
		got[fmt.Sprintf("%d/%d", e.Module, e.Position)] = e.Type + " " + e.Value
	}
	want := map[string]string{"0/1": "account 1001", "0/2": "account 1001", "0/4": "park 701", "0/6": "blf 1003", "1/1": "blf 1002",
		"1/2": "prefix 9", "2/1": "park 701", "2/60": "speed_dial 5559876"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("saved layout %v, want %v", got, want)
	}
	if cfg := textContentOf(t, ctx, "#config-masked"); !strings.Contains(cfg, "expansion_module.2.key.60.label = Taxi") || !strings.Contains(cfg, "expansion_module.1.key.1.type = 16") || !strings.Contains(cfg, "linekey.7.type = 0") {
		t.Errorf("config after the save:\n%s", cfg)
	}
	for _, p := range []struct{ mac, name, last string }{{t33, "T33G", "key_12"}, {t87, "T87W", "key_1_78"}} {
		do(p.name, chromedp.Navigate(srv.url+"/phones/"+p.mac+"/edit"), chromedp.WaitVisible(chromedp.ID("f-"+p.last)))
		shot(p.name)
	}
	if got := text(`[data-shown-for="key_3"]`); got != "Bob Jones at…" {
		t.Errorf("T87W line key 3 shows %q (12 characters)", got)
	}
	t.Logf("screenshots in %s", shots)
}
