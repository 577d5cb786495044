package webui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// Tests of the Settings page (ui_settings.go).

func TestUIAdmin_Settings(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	base := appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", Registrar: "pbx.example.com", NotifyRate: 50}
	if err := ts.db.SetSettings(t.Context(), base); err != nil {
		t.Fatal(err)
	}
	settings := ts.svc.Settings
	// As the form sends it, unchanged.
	form := func(kv ...string) url.Values {
		v := url.Values{"provisioning_url": {base.ProvisioningURL}, "registrar": {base.Registrar}, "notify_rate": {"50"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	body := string(b.get("/settings").Body)
	if strings.Count(body, `<span class="badge type">config file</span>`) != 3 || strings.Contains(body, "changed here</span>") {
		t.Fatalf("sources:\n%s", body)
	}
	if !strings.Contains(body, `value="http://10.0.0.2:8080/prov/"`) || !strings.Contains(body, `value="pbx.example.com"`) {
		t.Fatal("values in force not shown")
	}
	// The phones' admin password: generated, in a hidden element revealed
	// by a button, masked where it shows.
	pw := settings.Settings().PhoneAdminPassword
	if !strings.Contains(body, `<code id="phone-admin-plain" hidden>`+pw+`</code>`) || !strings.Contains(body, `<code id="phone-admin-masked">********</code>`) ||
		!strings.Contains(body, `data-reveal="phone-admin-masked phone-admin-plain"`) || !strings.Contains(body, `<span class="badge type">generated</span>`) || strings.Count(body, pw) != 1 {
		t.Fatalf("phones' admin password (%s) not behind Reveal:\n%s", pw, body)
	}

	// Saving unchanged values stores no override.
	if r := b.post("/settings", form()); r.Status != http.StatusSeeOther {
		t.Fatalf("save unchanged: %d %s", r.Status, r.Body)
	}
	if o := settings.Overrides(); o != (appliance.SettingsOverrides{}) {
		t.Fatalf("overrides for unchanged values: %+v", o)
	}
	if body := string(b.get("/settings").Body); !strings.Contains(body, "nothing changed") {
		t.Error("no flash")
	}

	// Only what differs becomes an override.
	if r := b.post("/settings", form("provisioning_url", "http://10.0.0.9/prov/", "notify_rate", "20")); r.Status != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.Status, r.Body)
	}
	o := settings.Overrides()
	if o.ProvisioningURL == nil || *o.ProvisioningURL != "http://10.0.0.9/prov/" || o.NotifyRate == nil || *o.NotifyRate != 20 || o.Registrar != nil {
		t.Fatalf("overrides: %+v", o)
	}
	body = string(b.get("/settings").Body)
	for _, want := range []string{"every phone is being resynced", `value="http://10.0.0.9/prov/"`, "the config file says <code>http://10.0.0.2:8080/prov/</code>", `form="reset-provisioning_url"`, `form="reset-notify_rate"`} {
		if !strings.Contains(body, want) {
			t.Errorf("after save, lacks %s", want)
		}
	}
	if strings.Count(body, `<span class="badge pending">changed here</span>`) != 2 {
		t.Error("changed settings not marked")
	}
	if strings.Contains(body, `form="reset-registrar"`) {
		t.Error("reset offered for a setting from the config file")
	}

	// Errors: next to the field, typed value kept, nothing saved.
	for _, tc := range []struct {
		name string
		form url.Values
		want *regexp.Regexp
	}{
		{"URL not http", form("provisioning_url", "ftp://10.0.0.9/prov/"), fieldErr("f-provisioning_url", "ftp://10.0.0.9/prov/", "is not an http(s) URL ending in /")},
		{"URL without slash", form("provisioning_url", "http://10.0.0.9/prov"), fieldErr("f-provisioning_url", "http://10.0.0.9/prov", "ending in /")},
		{"registrar", form("registrar", "bad host!"), fieldErr("f-registrar", "bad host!", "not a host name")},
		{"rate not a number", form("notify_rate", "fast"), fieldErr("f-notify_rate", "fast", "not a whole number")},
		{"rate too high", form("notify_rate", "100000"), fieldErr("f-notify_rate", "100000", "outside 1-10000")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/settings", tc.form)
			if r.Status != http.StatusBadRequest || !tc.want.Match(r.Body) {
				t.Fatalf("%d\n%s", r.Status, r.Body)
			}
			if got := settings.Overrides(); *got.ProvisioningURL != "http://10.0.0.9/prov/" || *got.NotifyRate != 20 || got.Registrar != nil {
				t.Fatalf("changed by a failed save: %+v", got)
			}
		})
	}

	// Reset: the config file rules that field again; the rest stays.
	if r := b.post("/settings", url.Values{"reset_provisioning_url": {"1"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if o := settings.Overrides(); o.ProvisioningURL != nil || o.NotifyRate == nil || *o.NotifyRate != 20 {
		t.Fatalf("after reset: %+v", o)
	}
	if got := settings.Settings().ProvisioningURL; got != base.ProvisioningURL {
		t.Fatalf("in force after reset: %s", got)
	}
	// A later change of the config file shows through.
	base.ProvisioningURL = "http://10.0.0.3:8080/prov/"
	ts.db.SetSettings(t.Context(), base)
	if got := settings.Settings().ProvisioningURL; got != base.ProvisioningURL {
		t.Fatalf("config file change hidden: %s", got)
	}
	// Setting the value back to the config file's also drops the override.
	if r := b.post("/settings", form("provisioning_url", base.ProvisioningURL, "notify_rate", "50")); r.Status != http.StatusSeeOther {
		t.Fatalf("save: %d", r.Status)
	}
	if o := settings.Overrides(); o != (appliance.SettingsOverrides{}) {
		t.Fatalf("overrides equal to the config file kept: %+v", o)
	}

	// Per-phone secrets replaced the shared credentials: the page explains
	// them, and has no credential fields any more.
	body = string(b.get("/settings").Body)
	if strings.Contains(body, "prov_password") || !strings.Contains(body, "How phones prove who they are") || !strings.Contains(body, "24 hours") {
		t.Fatalf("phone secrets card:\n%s", body)
	}
}
