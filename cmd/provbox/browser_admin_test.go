package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/provbox/provbox/appliance"
)

// TestBrowserAdminDay drives an admin's day in chromium against the real
// binary, three phonesim handsets and a registrar: from a fresh start the
// dashboard's checklist ticks itself step by step up to a synced phone;
// a CSV dry run shows an error on line 4 and writes nothing, then the fixed
// file imports three phones; a one-form edit (and its "unsaved changes?"
// question); a duplicate key refused at its field; a bulk Resync of the 3
// phones, which re-fetch; an extension's new password, whose audit entry
// ends with its 3 phones confirmed. Each page is checked by axe-core
// (WCAG level A) and photographed (day-*.png).
func TestBrowserAdminDay(t *testing.T) {
	axeSource(t)
	shots := artifactDir(t)
	sim := buildTool(t, "../phonesim")
	regAddr := "127.0.0.2:" + strconv.Itoa(freeUDPPort(t, "127.0.0.2"))
	startRegistrar(t, regAddr)
	const ipBase = "127.1.4.1"
	phonePort := freeUDPPort(t, ipBase)
	cfg := filepath.Join(t.TempDir(), "provbox.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[sip]\nphone_port = %d\npnp = false\nreport_timeout = \"5s\"\n", phonePort)), 0o600)
	data := t.TempDir()
	srv := startServe(t, cfg, data)
	code := regexp.MustCompile(`"setup_code":"([a-z0-9-]+)"`).FindStringSubmatch(srv.logs.String())
	if code == nil {
		t.Fatalf("no setup code in the log:\n%s", srv.logs)
	}
	ctx := newChromium(t, 1366, 900)
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\nprovbox log:\n%s", what, err, srv.logs)
		}
	}
	n := 0
	// look photographs the page and checks it with axe-core.
	look := func(name string) {
		t.Helper()
		do(name, chromedp.Sleep(200*time.Millisecond))
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", name, err)
		}
		n++
		if err := os.WriteFile(filepath.Join(shots, fmt.Sprintf("day-%02d-%s.png", n, name)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
		axeCheck(t, ctx, name)
	}
	text := func(sel string) string { t.Helper(); return textOf(t, ctx, sel) }
	// steps reads the checklist: each step's title → done.
	steps := func() map[string]bool {
		t.Helper()
		do("dashboard", chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.ID("checklist")))
		got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]bool](
			`Object.fromEntries([...document.querySelectorAll("[data-step]")].map(li => [li.dataset.step, li.classList.contains("done")]))`))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	wantSteps := func(when string, done ...string) {
		t.Helper()
		got := steps()
		for step, ok := range got {
			if ok != strings.Contains(strings.Join(done, "|"), step) {
				t.Errorf("%s: checklist step %q done=%v (all: %v)", when, step, ok, got)
			}
		}
		if len(got) != 6 {
			t.Errorf("%s: %d checklist steps: %v", when, len(got), got)
		}
	}

	// First run: the setup code from the log makes the first admin, and
	// the dashboard greets them with the checklist.
	do("setup", chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), code[1]), chromedp.SetValue(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"), chromedp.SendKeys(chromedp.ID("password2"), "correct horse battery"),
		chromedp.Submit(chromedp.ID("password2")), chromedp.WaitVisible(chromedp.ID("checklist")))
	look("dashboard-fresh")
	wantSteps("fresh", "Admin created")

	do("registrar", chromedp.Navigate(srv.url+"/settings"), chromedp.WaitVisible(chromedp.ID("f-registrar")),
		chromedp.SetValue(chromedp.ID("f-registrar"), regAddr), chromedp.Submit(chromedp.ID("f-registrar")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	wantSteps("registrar set", "Admin created", "Registrar set")
	do("extension", chromedp.Navigate(srv.url+"/extensions"),
		chromedp.SendKeys(chromedp.ID("f-number"), "1001"), chromedp.SendKeys(chromedp.ID("f-name"), "Front desk line"),
		chromedp.SendKeys(chromedp.ID("f-password"), "line-pw-1"), chromedp.Submit(chromedp.ID("f-number")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	wantSteps("extension", "Admin created", "Registrar set", "First extension")

	// CSV: a dry run with an error on line 4 lists it and writes nothing.
	a := newAPI(t, srv.url, "admin", "correct horse battery")
	bad := "mac,name,model,position,key_type,key_value,key_label\n" +
		"001565c00001,Desk 1,T46G,1,account,1001,\n" +
		"001565c00002,Desk 2,T46G,1,account,1001,\n" +
		"001565c00003,Desk 3,T46G,1,account,1009,\n" +
		"001565c00001,,,2,blf,1002,Bob\n"
	do("csv dry run", chromedp.Navigate(srv.url+"/phones/import"), chromedp.WaitVisible(chromedp.ID("f-csv")),
		chromedp.SetValue(chromedp.ID("f-csv"), bad), chromedp.Submit(chromedp.ID("f-csv")),
		chromedp.WaitVisible(chromedp.ID("csv-errors")))
	look("csv-error-line-4")
	if errs := strings.ToLower(text("#csv-errors")); !strings.Contains(errs, "line 4") || !strings.Contains(errs, "1009") || strings.Contains(errs, "line 3") {
		t.Fatalf("CSV errors:\n%s", errs)
	}
	var phones []appliance.Phone
	if a.must("GET", "/api/v1/phones", nil, 200, &phones); len(phones) != 0 {
		t.Fatalf("a dry run with an error wrote %d phones", len(phones))
	}
	do("csv fixed", chromedp.SetValue(chromedp.ID("f-csv"), strings.Replace(bad, "1009", "1001", 1)),
		chromedp.Submit(chromedp.ID("f-csv")), chromedp.WaitVisible(chromedp.ID("preview")))
	look("csv-preview")
	do("csv import", chromedp.Click(chromedp.CSS(`#preview button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if f := text(".flash"); !strings.Contains(f, "3 added") {
		t.Fatalf("import flash: %q", f)
	}
	look("phones-imported")
	wantSteps("phones imported", "Admin created", "Registrar set", "First extension", "First phone")

	// The handsets boot: they fetch their configs and report: synced.
	startSim(t, sim, 3, "-first-mac", "001565c00001", "-ip-base", ipBase, "-sip-port", strconv.Itoa(phonePort),
		"-prov", srv.url+"/prov/", "-register-timeout", "3s")
	registered := func(p appliance.Phone) bool { return p.Sync.Registration["1"].State == appliance.RegRegistered }
	waitPhones(t, a, "synced after boot", 20*time.Second, nil, func(p appliance.Phone) bool {
		return p.Sync.State == appliance.SyncSynced && registered(p)
	})
	do("dashboard done", chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("[data-all-done]")))
	look("dashboard-all-done")

	// One form: leaving with an unsaved change asks first; Save keeps the
	// device settings and the line keys together.
	const mac = "001565c00001"
	var bobs []appliance.Key
	a.must("GET", "/api/v1/keys?type=blf&value=1002", nil, 200, &bobs)
	if len(bobs) != 1 {
		t.Fatalf("BLF keys from the CSV: %+v", bobs)
	}
	do("unsaved", chromedp.Navigate(srv.url+"/phones/"+mac+"/edit"), chromedp.WaitVisible(chromedp.ID("f-description")),
		chromedp.SendKeys(chromedp.ID("f-description"), "typed, then left"),
		chromedp.Click(chromedp.CSS(".save-bar a.button")), chromedp.WaitVisible(chromedp.CSS("#config-masked")))
	if d := dialogs(ctx); len(d) != 1 || !strings.HasPrefix(d[0], "beforeunload") {
		t.Errorf("leaving with an unsaved change: dialogs %q", d)
	}
	do("one form", chromedp.Navigate(srv.url+"/phones/"+mac+"/edit"), chromedp.WaitVisible(chromedp.ID("f-description")),
		chromedp.SendKeys(chromedp.ID("f-description"), "by the door"),
		chromedp.SetValue(chromedp.ID("f-key_3"), strconv.FormatInt(bobs[0].ID, 10)))
	look("phone-one-form")
	do("save", chromedp.Click(chromedp.CSS(".save-bar button[type=submit]")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if f := text(".flash"); !strings.Contains(f, "Device settings and line keys of Desk 1 saved") {
		t.Errorf("one-form flash: %q", f)
	}
	var ph appliance.Phone
	var layout []appliance.LayoutEntry
	a.must("GET", "/api/v1/phones/"+mac, nil, 200, &ph)
	a.must("GET", "/api/v1/phones/"+mac+"/keys", nil, 200, &layout)
	if ph.Description != "by the door" || len(layout) != 3 || layout[2].Position != 3 || layout[2].KeyID != bobs[0].ID {
		t.Fatalf("after the one-form save: %q %+v", ph.Description, layout)
	}
	if d := dialogs(ctx); len(d) != 1 {
		t.Errorf("saving asked: %q", d)
	}
	look("phone-after-save")

	// A duplicate key is refused next to its field, with what was typed.
	do("duplicate key", chromedp.Navigate(srv.url+"/keys"), chromedp.WaitVisible(chromedp.ID("f-value")),
		chromedp.SetValue(chromedp.ID("f-type"), "blf"), chromedp.SendKeys(chromedp.ID("f-value"), "1002"),
		chromedp.SendKeys(chromedp.ID("f-label"), "Bob"), chromedp.Submit(chromedp.ID("f-value")), chromedp.WaitVisible(chromedp.CSS(".field.bad .err")))
	look("key-duplicate-refused")
	if e := text(".field.bad .err"); !strings.Contains(e, "exists already") {
		t.Errorf("duplicate key error: %q", e)
	}
	var blfs []appliance.Key
	if a.must("GET", "/api/v1/keys?type=blf", nil, 200, &blfs); len(blfs) != 1 {
		t.Errorf("the duplicate was created: %+v", blfs)
	}

	// Bulk Resync of the 3 phones: each is told and fetches again.
	var before []appliance.Phone
	a.must("GET", "/api/v1/phones", nil, 200, &before)
	told := map[string]*time.Time{}
	for _, p := range before {
		told[p.MAC] = p.Sync.LastFetchAt
	}
	do("tick all", chromedp.Navigate(srv.url+"/phones"), chromedp.WaitVisible(chromedp.ID("f-all")),
		chromedp.Click(chromedp.ID("f-all")), chromedp.SetValue(chromedp.ID("f-action"), "resync"))
	look("phones-bulk-ticked")
	do("bulk resync", chromedp.Click(chromedp.CSS("fieldset.bulk button[type=submit]")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if f := text(".flash"); !strings.Contains(f, "Resync sent to 3 phones") {
		t.Fatalf("bulk resync flash: %q", f)
	}
	waitPhones(t, a, "re-fetched after the bulk resync", 20*time.Second, nil, func(p appliance.Phone) bool {
		return p.Sync.LastNotifyResult == "200 OK" && p.Sync.LastFetchAt != nil && told[p.MAC] != nil && p.Sync.LastFetchAt.After(*told[p.MAC])
	})
	look("phones-after-bulk-resync")

	// A new password for the shared line, in its form: every phone is
	// told, re-fetches, re-registers and reports; the audit entry of the
	// edit ends with its 3 phones confirmed.
	var exts []appliance.Extension
	a.must("GET", "/api/v1/extensions", nil, 200, &exts)
	edit := time.Now()
	do("extension password", chromedp.Navigate(fmt.Sprintf("%s/extensions/%d", srv.url, exts[0].ID)), chromedp.WaitVisible(chromedp.ID("f-password")),
		chromedp.SendKeys(chromedp.ID("f-password"), "line-pw-2"), chromedp.Submit(chromedp.ID("f-password")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	waitPhones(t, a, "synced after the password change", 20*time.Second, nil, func(p appliance.Phone) bool {
		return p.Sync.State == appliance.SyncSynced && p.Sync.AppliedAt != nil && p.Sync.AppliedAt.After(edit) && registered(p)
	})
	do("audit", chromedp.Navigate(srv.url+"/audit"), chromedp.WaitVisible(chromedp.CSS("table tbody tr")))
	look("audit")
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tbody tr")].map(tr => tr.innerText)`))
	if err != nil {
		t.Fatal(err)
	}
	var entry string
	for _, r := range rows {
		if strings.Contains(r, "extension.update") {
			entry = r
			break
		}
	}
	if !strings.Contains(entry, "admin") || !strings.Contains(entry, "3 phones: 3 confirmed") || !strings.Contains(entry, "******** (changed)") || strings.Contains(entry, "line-pw") {
		t.Errorf("audit entry of the password change: %q\nall rows:\n%s", entry, strings.Join(rows, "\n---\n"))
	}
	for _, want := range []string{"phone.update", "phones.import", "phone.resync", "settings.update", "extension.create"} {
		if !strings.Contains(strings.Join(rows, "\n"), want) {
			t.Errorf("no %s entry in the audit trail", want)
		}
	}
	// The one-form edit is one entry: its setting and its key.
	for _, r := range rows {
		if strings.Contains(r, "phone.update") && (!strings.Contains(r, "by the door") || !strings.Contains(r, "key 3") || !strings.Contains(r, "Bob")) {
			t.Errorf("audit entry of the one-form edit: %q", r)
		}
	}
	t.Logf("screenshots in %s", shots)
}
