package webui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// Tests across the admin pages (Button Configurations, Locations, Leases,
// Settings, Users): each needs a login and the form's CSRF token. Each
// page's own tests are in its ui_<page>_test.go.

func TestUIAdmin_PagesNeedLogin(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	anon := &browser{t: t, ts: ts, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, tc := range []struct{ path, want string }{
		{"/keys", "Add New Key Function"},
		{"/locations", "Add location"},
		{"/leases", "<h1>Leases</h1>"},
		{"/settings", "Provisioning URL"},
		{"/users", "Add admin"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := b.get(tc.path)
			if r.Status != http.StatusOK || !strings.Contains(string(r.Body), tc.want) {
				t.Fatalf("logged in: %d\n%s", r.Status, r.Body)
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
			r = anon.get(tc.path)
			if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login?next="+url.QueryEscape(tc.path) {
				t.Fatalf("anonymous: %d %s", r.Status, r.Header.Get("Location"))
			}
		})
	}
}

func TestUIAdmin_CSRF(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	k := ts.mustKey(t, "blf", "1002", "Bob")
	l := ts.mustLocation(t, "HQ")
	kid, lid := strconvI(k.ID), strconvI(l.ID)
	for _, path := range []string{
		"/keys", "/keys/" + kid, "/keys/" + kid + "/delete",
		"/locations", "/locations/" + lid, "/locations/" + lid + "/delete",
		"/settings",
		"/users", "/users/admin/password", "/users/admin/delete",
	} {
		for _, csrf := range []string{"", "forged"} {
			form := url.Values{"csrf": {csrf}, "type": {"blf"}, "value": {"1003"}, "name": {"x"}, "force": {"true"},
				"password": {"long enough pw"}, "password2": {"long enough pw"}, "provisioning_url": {"http://10.9.9.9/prov/"}}
			if r := b.post(path, form); r.Status != http.StatusForbidden {
				t.Errorf("POST %s with csrf %q: %d", path, csrf, r.Status)
			}
		}
	}
	// Nothing changed.
	if keys, _ := ts.svc.Keys.FindKeys(t.Context(), appliance.KeyFilter{}); len(keys) != 1 || keys[0].Value != "1002" {
		t.Errorf("keys: %+v", keys)
	}
	if locs, _ := ts.svc.Locations.FindLocations(t.Context()); len(locs) != 1 {
		t.Errorf("locations: %d", len(locs))
	}
	if o := ts.svc.Settings.Overrides(); o.ProvisioningURL != nil {
		t.Errorf("overrides: %+v", o)
	}
	if users, _ := ts.svc.Users.FindUsers(t.Context()); len(users) != 1 {
		t.Errorf("users: %d", len(users))
	}
}
