package webui_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// stepsDone reads the checklist: which steps are done.
func stepsDone(t *testing.T, body string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`<li class="(done|todo)" data-step="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		out[m[2]] = m[1] == "done"
	}
	return out
}

// TestUIDashboard_ChecklistTicksItself: from a fresh start to a synced
// phone, each step of the checklist ticks by itself from what the admin
// (and the phone) did, and what needs the admin is listed with its link.
func TestUIDashboard_ChecklistTicksItself(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}, 0)
	b := newBrowser(t, ts)
	ctx := t.Context()
	check := func(name string, want map[string]bool) string {
		t.Helper()
		body := string(b.get("/").Body)
		got := stepsDone(t, body)
		if len(want) == 0 {
			if len(got) != 0 || !strings.Contains(body, "data-all-done") {
				t.Fatalf("%s: checklist still shown: %v", name, got)
			}
			return body
		}
		for step, done := range want {
			if got[step] != done {
				t.Errorf("%s: step %q done=%v, want %v (all: %v)", name, step, got[step], done, got)
			}
		}
		return body
	}
	body := check("fresh", map[string]bool{"Admin created": true, "Registrar set": false, "First extension": false,
		"First phone": false, "Phones can find provbox": false, "First phone synced": false})
	for _, want := range []string{`href="/settings"`, `href="/extensions"`, `href="/phones/new"`, `id="find"`, "tftp-server-name", "066 Boot Server"} {
		if !strings.Contains(body, want) {
			t.Errorf("fresh dashboard lacks %q", want)
		}
	}

	reg := "pbx.example.com"
	if err := ts.svc.Settings.SetOverrides(ctx, appliance.SettingsOverrides{Registrar: &reg}); err != nil {
		t.Fatal(err)
	}
	ts.mustExtension(t, "1001", "Alice")
	check("registrar and extension", map[string]bool{"Registrar set": true, "First extension": true, "First phone": false})

	// A phone without an account key is not ready, and the dashboard says
	// why with a link to it.
	if _, err := ts.svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "001565000002", Name: "Lobby", Manufacturer: "Yealink", Model: "T46G"}, ""); err != nil {
		t.Fatal(err)
	}
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	body = check("phones", map[string]bool{"First phone": true, "Phones can find provbox": false, "First phone synced": false})
	card := between(t, body, `id="not-ready"`, `</div>`)
	if !strings.Contains(card, `href="/phones/001565000002"`) || !strings.Contains(card, "no account key") || strings.Contains(card, "001565aabbcc") {
		t.Errorf("not-ready card:\n%s", card)
	}

	// The phone fetches: it found the box; it reports: synced.
	ts.get(t, "GET", "/prov/001565aabbcc.cfg", yealinkUA, nil)
	check("fetched", map[string]bool{"Phones can find provbox": true, "First phone synced": false})
	p, _ := ts.svc.Phones.FindPhone(ctx, "001565aabbcc")
	if err := ts.svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: appliance.ReportProvisioned}); err != nil {
		t.Fatal(err)
	}
	check("synced", nil)
}
