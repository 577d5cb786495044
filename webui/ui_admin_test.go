package webui_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/webui"
)

// Tests of the admin pages of ui_admin.go: Button Configurations,
// Locations, Leases, Settings and Users.

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

// keysFixture: extensions 1001 (on a phone) and 1002 (on none), and one key
// of each other type; the BLF is on the phone.
type keysFixture struct {
	acc1001, acc1002, blf, speed, park, prefix *appliance.Key
}

func newKeysFixture(t *testing.T, ts *testServer) keysFixture {
	t.Helper()
	var f keysFixture
	e1 := ts.mustExtension(t, "1001", "Alice")
	e2 := ts.mustExtension(t, "1002", "Bob")
	f.acc1001, _ = ts.svc.Keys.FindKey(t.Context(), e1.AccountKey)
	f.acc1002, _ = ts.svc.Keys.FindKey(t.Context(), e2.AccountKey)
	f.blf = ts.mustKey(t, "blf", "1002", "Bob BLF")
	f.speed = ts.mustKey(t, "speed_dial", "5551234", "Pizza")
	f.park = ts.mustKey(t, "park", "701", "Park 1")
	f.prefix = ts.mustKey(t, "prefix", "9", "Outside")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	ts.call(t, "PATCH", "/api/v1/phones/001565aabbcc", map[string]any{"name": "Front desk"}, 200, nil)
	ts.call(t, "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{
		{"position": 1, "key_id": f.acc1001.ID}, {"position": 3, "key_id": f.blf.ID}}, 200, nil)
	return f
}

func rowOf(k *appliance.Key) string { return `id="key-` + strconvI(k.ID) + `"` }

func TestUIAdmin_KeysSearchAndToggles(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	f := newKeysFixture(t, ts)
	all := []*appliance.Key{f.acc1001, f.acc1002, f.blf, f.speed, f.park, f.prefix}
	for _, tc := range []struct {
		query string
		want  []*appliance.Key
	}{
		{"", all},
		{"?type=blf", []*appliance.Key{f.blf}},
		{"?type=account", []*appliance.Key{f.acc1001, f.acc1002}},
		{"?value=555", []*appliance.Key{f.speed}},
		{"?label=PARK", []*appliance.Key{f.park}},
		{"?q=pizza", []*appliance.Key{f.speed}},
		{"?q=100", []*appliance.Key{f.acc1001, f.acc1002, f.blf}},
		{"?q=bob", []*appliance.Key{f.acc1002, f.blf}},
		{"?type=blf&value=1002&label=bob&q=", []*appliance.Key{f.blf}},
		{"?type=park&value=1002", nil},
		{"?accounts=hide", []*appliance.Key{f.blf, f.speed, f.park, f.prefix}},
		{"?attached=true", []*appliance.Key{f.acc1001, f.blf}},
		{"?attached=false", []*appliance.Key{f.acc1002, f.speed, f.park, f.prefix}},
		{"?attached=false&accounts=hide", []*appliance.Key{f.speed, f.park, f.prefix}},
		{"?q=100&accounts=hide", []*appliance.Key{f.blf}},
		{"?q=100&attached=false", []*appliance.Key{f.acc1002}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := b.get("/keys" + tc.query)
			body := string(r.Body)
			if r.Status != http.StatusOK {
				t.Fatalf("%d\n%s", r.Status, body)
			}
			for _, k := range all {
				if got, want := strings.Contains(body, rowOf(k)), containsKey(tc.want, k); got != want {
					t.Errorf("%s %s: present %v, want %v", k.Type, k.Value, got, want)
				}
			}
			if len(tc.want) == 0 && !strings.Contains(body, "No keys match") {
				t.Error("no empty-result message")
			}
		})
	}

	// The toggles are links that keep the search, and the search keeps the
	// toggles.
	body := string(b.get("/keys?type=blf&q=10").Body)
	for _, want := range []string{
		`href="/keys?accounts=hide&amp;q=10&amp;type=blf"`,
		`href="/keys?attached=false&amp;q=10&amp;type=blf"`,
		`<option value="blf" selected>`,
		`name="q" type="search" value="10"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %s", want)
		}
	}
	body = string(b.get("/keys?accounts=hide&attached=false").Body)
	for _, want := range []string{
		`<input type="hidden" name="accounts" value="hide">`,
		`<input type="hidden" name="attached" value="false">`,
		`href="/keys?attached=false"`, // show account keys again, still unattached only
		`href="/keys?accounts=hide"`,  // all keys, account keys still hidden
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %s", want)
		}
	}
}

func containsKey(list []*appliance.Key, k *appliance.Key) bool {
	for _, x := range list {
		if x.ID == k.ID {
			return true
		}
	}
	return false
}

// fieldErr matches an input (or select) of the given id holding value,
// followed by its error message containing msg.
func fieldErr(id, value, msg string) *regexp.Regexp {
	return regexp.MustCompile(`(?s)id="` + regexp.QuoteMeta(id) + `"[^>]*value="` + regexp.QuoteMeta(value) + `"[^>]*>\s*<div class="err">[^<]*` + regexp.QuoteMeta(msg))
}

func TestUIAdmin_KeysAddInvalid(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	for _, tc := range []struct {
		name              string
		typ, value, label string
		want              *regexp.Regexp
	}{
		{"speed dial abc", "speed_dial", "abc", "Pizza", fieldErr("f-value", "abc", "is not a dial string")},
		{"label with a newline", "blf", "1002", "Bob\nSmith", fieldErr("f-label", "Bob\nSmith", "control characters")},
		{"label too long", "blf", "1002", strings.Repeat("x", 33), fieldErr("f-label", strings.Repeat("x", 33), "too long")},
		{"blf not an extension", "blf", "bob smith", "", fieldErr("f-value", "bob smith", "not an extension or user@host")},
		{"park with letters", "park", "P1", "", fieldErr("f-value", "P1", "neither a parking-lot slot")},
		{"no value", "prefix", "", "", fieldErr("f-value", "", "required")},
		{"type account", "account", "1001", "Alice", regexp.MustCompile(`(?s)</select>\s*<div class="err">account keys are created with their extension`)},
		{"unknown type", "intercom", "1001", "", regexp.MustCompile(`(?s)</select>\s*<div class="err">&#34;intercom&#34; is not one of`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/keys", url.Values{"type": {tc.typ}, "value": {tc.value}, "label": {tc.label}})
			body := string(r.Body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d\n%s", r.Status, body)
			}
			if !tc.want.MatchString(body) {
				t.Fatalf("error not next to its field (%s):\n%s", tc.want, body)
			}
			if !strings.Contains(body, "Please correct the field marked below") {
				t.Error("no flash")
			}
			if tc.typ != "account" && tc.typ != "intercom" && !strings.Contains(body, `<option value="`+tc.typ+`" selected>`) {
				t.Error("typed type not kept")
			}
		})
	}
	if keys, _ := ts.svc.Keys.FindKeys(t.Context(), appliance.KeyFilter{}); len(keys) != 0 {
		t.Fatalf("created: %+v", keys)
	}
	// The add form offers account keys only as a pointer to Extensions.
	body := string(b.get("/keys").Body)
	if !strings.Contains(body, `<option value="account" disabled>`) {
		t.Error("account key not shown disabled")
	}
}

func TestUIAdmin_KeysAddEditDelete(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")

	// Add, from a filtered list: back to the same list, with a flash.
	r := b.post("/keys", url.Values{"type": {"speed_dial"}, "value": {"+15551234567"}, "label": {""}, "back": {"type=speed_dial&q=555"}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/keys?q=555&type=speed_dial" {
		t.Fatalf("add: %d %s %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	if body := string(b.get("/keys").Body); !strings.Contains(body, "Key Speed Dial &#43;15551234567 added") {
		t.Fatalf("no flash:\n%s", body)
	}
	keys, _ := ts.svc.Keys.FindKeys(t.Context(), appliance.KeyFilter{Type: "speed_dial"})
	if len(keys) != 1 || keys[0].Label != "+15551234567" {
		t.Fatalf("blank label is the value: %+v", keys)
	}
	k := keys[0]
	id := strconvI(k.ID)

	// Edit in place: the row becomes inputs.
	body := string(b.get("/keys?edit=" + id).Body)
	if !strings.Contains(body, `<form id="edit-key" method="post" action="/keys/`+id+`"`) || !strings.Contains(body, `form="edit-key" aria-label="Value" value="&#43;15551234567"`) {
		t.Fatalf("edit row:\n%s", body)
	}
	r = b.post("/keys/"+id, url.Values{"type": {"speed_dial"}, "value": {"555-1234"}, "label": {"Pizza"}})
	if r.Status != http.StatusBadRequest || !fieldErr("e-value", "555-1234", "is not a dial string").Match(r.Body) {
		t.Fatalf("bad edit: %d\n%s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), `id="f-value" name="value" value="555-1234"`) {
		t.Error("the edit's typed value leaked into the add form")
	}
	r = b.post("/keys/"+id, url.Values{"type": {"speed_dial"}, "value": {"5551234"}, "label": {"Pizza"}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/keys" {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	if k, _ = ts.svc.Keys.FindKey(t.Context(), k.ID); k.Value != "5551234" || k.Label != "Pizza" {
		t.Fatalf("after edit: %+v", k)
	}
	if r := b.get("/keys/" + id); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/keys?edit="+id) {
		t.Errorf("GET /keys/{id}: %d %s", r.Status, r.Header.Get("Location"))
	}

	// Put it on the phone: an edit says the phone is being updated.
	acc, _ := ts.svc.Keys.FindKeys(t.Context(), appliance.KeyFilter{Type: "account"})
	ts.call(t, "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{{"position": 1, "key_id": acc[0].ID}, {"position": 2, "key_id": k.ID}}, 200, nil)
	if r := b.post("/keys/"+id, url.Values{"type": {"speed_dial"}, "value": {"5551234"}, "label": {"Pizza place"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("edit attached: %d", r.Status)
	}
	body = string(b.get("/keys").Body)
	if !strings.Contains(body, "1 phone is being updated: 00:15:65:aa:bb:cc") {
		t.Fatalf("no update flash:\n%s", body)
	}
	if !strings.Contains(body, `<a href="/phones/001565aabbcc" title="00:15:65:aa:bb:cc">00:15:65:aa:bb:cc</a>`) {
		t.Error("Attached To does not link the phone")
	}
	ts.call(t, "PATCH", "/api/v1/phones/001565aabbcc", map[string]any{"name": "Front desk"}, 200, nil)
	if body := string(b.get("/keys").Body); !strings.Contains(body, `title="00:15:65:aa:bb:cc">Front desk</a>`) {
		t.Error("Attached To does not name the phone")
	}

	// Delete while on the phone: asks, naming the phone; force deletes and
	// detaches.
	r = b.post("/keys/"+id+"/delete", url.Values{"back": {"q=pizza"}})
	body = string(r.Body)
	if r.Status != http.StatusConflict || !strings.Contains(body, `<a href="/phones/001565aabbcc">Front desk</a>`) || !strings.Contains(body, "Delete anyway") {
		t.Fatalf("delete in use: %d\n%s", r.Status, body)
	}
	if !strings.Contains(body, `<input type="hidden" name="force" value="true"><input type="hidden" name="back" value="q=pizza">`) {
		t.Error("the force form does not keep the list")
	}
	if _, err := ts.svc.Keys.FindKey(t.Context(), k.ID); err != nil {
		t.Fatal("deleted without force")
	}
	r = b.post("/keys/"+id+"/delete", url.Values{"force": {"true"}, "back": {"q=pizza"}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/keys?q=pizza" {
		t.Fatalf("force: %d %s", r.Status, r.Header.Get("Location"))
	}
	if _, err := ts.svc.Keys.FindKey(t.Context(), k.ID); appliance.ErrorCode(err) != appliance.ENOTFOUND {
		t.Fatalf("still there: %v", err)
	}
	layout, _ := ts.svc.Phones.FindLayout(t.Context(), "001565aabbcc")
	for _, e := range layout {
		if e.KeyID == k.ID {
			t.Fatal("still on the phone")
		}
	}

	// A key on no phone goes at once.
	k2 := ts.mustKey(t, "park", "701", "Park")
	if r := b.post("/keys/"+strconvI(k2.ID)+"/delete", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("delete unused: %d %s", r.Status, r.Body)
	}
	if r := b.post("/keys/999/delete", nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown key: %d", r.Status)
	}
}

func TestUIAdmin_AccountKeys(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	e := ts.mustExtension(t, "1001", "Alice")
	id := strconvI(e.AccountKey)
	body := string(b.get("/keys").Body)
	if !strings.Contains(body, rowOf(&appliance.Key{ID: e.AccountKey})) || !strings.Contains(body, "follows extension") {
		t.Fatalf("account key row:\n%s", body)
	}
	if strings.Contains(body, `action="/keys/`+id+`/delete"`) || strings.Contains(body, `edit=`+id) {
		t.Fatal("account key offers delete or edit")
	}
	// Not even ?edit= opens it.
	if body := string(b.get("/keys?edit=" + id).Body); strings.Contains(body, `form="edit-key"`) {
		t.Fatal("account key editable")
	}
	for _, tc := range []struct{ path, want string }{
		{"/keys/" + id + "/delete", "account key of extension 1001; it goes when the extension is deleted"},
		{"/keys/" + id, "account key of extension 1001; edit the extension instead"},
	} {
		r := b.post(tc.path, url.Values{"type": {"blf"}, "value": {"1002"}, "force": {"true"}})
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), tc.want) || !strings.Contains(string(r.Body), `class="flash error"`) {
			t.Errorf("POST %s: %d\n%s", tc.path, r.Status, r.Body)
		}
	}
	if k, err := ts.svc.Keys.FindKey(t.Context(), e.AccountKey); err != nil || k.Value != "1001" {
		t.Fatalf("account key changed: %+v %v", k, err)
	}
}

func TestUIAdmin_KeyLabelEscaped(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	k := ts.mustKey(t, "blf", "1002", "<script>alert(1)</script>")
	for _, path := range []string{"/keys", "/keys?edit=" + strconvI(k.ID), "/keys?q=%3Cscript%3E"} {
		body := string(b.get(path).Body)
		if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: label not escaped", path)
		}
	}
	// Typed into a failing form, too.
	r := b.post("/keys", url.Values{"type": {"blf"}, "value": {"<script>x</script>"}, "label": {"<script>y</script>"}})
	if strings.Contains(string(r.Body), "<script>x") || strings.Contains(string(r.Body), "<script>y") {
		t.Error("typed text not escaped")
	}
}

func TestUIAdmin_Locations(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	form := func(kv ...string) url.Values {
		v := url.Values{"name": {"Head office"}, "street": {"12 Main St"}, "city": {"Springfield"}, "region": {"IL"},
			"postal_code": {"62701"}, "country": {"US"}, "callback_number": {"+15551230000"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name string
		form url.Values
		want *regexp.Regexp
	}{
		{"no name", form("name", ""), fieldErr("f-name", "", "required")},
		{"bad callback", form("callback_number", "call me"), fieldErr("f-callback_number", "call me", "is not a phone number")},
		{"street with a newline", form("street", "12 Main\nSt"), fieldErr("f-street", "12 Main\nSt", "control characters")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/locations", tc.form)
			if r.Status != http.StatusBadRequest || !tc.want.Match(r.Body) {
				t.Fatalf("%d\n%s", r.Status, r.Body)
			}
			if !strings.Contains(string(r.Body), `value="Springfield"`) {
				t.Error("other typed values not kept")
			}
		})
	}
	if r := b.post("/locations", form()); r.Status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if body := string(b.get("/locations").Body); !strings.Contains(body, "Location Head office added") || !strings.Contains(body, "Springfield, IL 62701") {
		t.Fatalf("list:\n%s", body)
	}
	if r := b.post("/locations", form()); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "Head office") {
		t.Fatalf("duplicate: %d %s", r.Status, r.Body)
	}
	locs, _ := ts.svc.Locations.FindLocations(t.Context())
	id := strconvI(locs[0].ID)
	if body := string(b.get("/locations/" + id).Body); !strings.Contains(body, "Edit location Head office") || !strings.Contains(body, `value="&#43;15551230000"`) {
		t.Fatalf("edit form:\n%s", body)
	}
	if r := b.post("/locations/"+id, form("callback_number", "x")); r.Status != http.StatusBadRequest || !fieldErr("f-callback_number", "x", "not a phone number").Match(r.Body) {
		t.Fatalf("bad update: %d", r.Status)
	}
	if r := b.post("/locations/"+id, form("name", "HQ", "street", "1 Elm St")); r.Status != http.StatusSeeOther {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	if l, _ := ts.svc.Locations.FindLocation(t.Context(), locs[0].ID); l.Name != "HQ" || l.Street != "1 Elm St" || l.City != "Springfield" {
		t.Fatalf("after update: %+v", l)
	}
	if r := b.get("/locations/999"); r.Status != http.StatusNotFound {
		t.Errorf("unknown: %d", r.Status)
	}

	// In use: the delete asks, naming the phone; force clears the phone's
	// location.
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	ts.call(t, "PATCH", "/api/v1/phones/001565aabbcc", map[string]any{"location_id": locs[0].ID}, 200, nil)
	if body := string(b.get("/locations").Body); !strings.Contains(body, `<a href="/phones/001565aabbcc" title="00:15:65:aa:bb:cc">00:15:65:aa:bb:cc</a>`) {
		t.Error("phones at the location not listed")
	}
	r := b.post("/locations/"+id+"/delete", nil)
	body := string(r.Body)
	if r.Status != http.StatusConflict || !strings.Contains(body, "Location HQ is used by 1 phone:") || !strings.Contains(body, "00:15:65:aa:bb:cc") || !strings.Contains(body, "Delete anyway") {
		t.Fatalf("delete in use: %d\n%s", r.Status, body)
	}
	if r := b.post("/locations/"+id+"/delete", url.Values{"force": {"true"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("force: %d", r.Status)
	}
	if p, _ := ts.svc.Phones.FindPhone(t.Context(), "001565aabbcc"); p.LocationID != nil {
		t.Fatalf("phone still at the location: %v", *p.LocationID)
	}
	if locs, _ := ts.svc.Locations.FindLocations(t.Context()); len(locs) != 0 {
		t.Fatal("not deleted")
	}
}

func TestUIAdmin_Leases(t *testing.T) {
	ts := MustOpenServer(t, func(s *webui.Server) { s.Services.Leases = nil }) // DHCP off
	if err := ts.db.SetSettings(t.Context(), appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", NotifyRate: 50}); err != nil {
		t.Fatal(err)
	}
	body := string(newBrowser(t, ts).get("/leases").Body)
	for _, want := range []string{"DHCP is off", "option 66", "plug-and-play", "<code>http://10.0.0.2:8080/prov/</code>", `href="/#find"`} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	if strings.Contains(body, "cannot reach") {
		t.Error("warns about a LAN address")
	}
	ts.db.SetSettings(t.Context(), appliance.Settings{ProvisioningURL: "http://127.0.0.1:8080/prov/", NotifyRate: 50})
	if body := string(newBrowser(t, ts).get("/leases").Body); !strings.Contains(body, "Phones cannot reach this URL") {
		t.Error("no warning about a loopback URL")
	}
}

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

// login tries name and password on the login form of a fresh browser.
func login(t *testing.T, ts *testServer, name, password string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, ts: ts, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	return b.post("/login", url.Values{"username": {name}, "password": {password}}).Status
}

func TestUIAdmin_Users(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)

	// The last admin cannot go.
	r := b.post("/users/admin/delete", nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "is the last admin; add another first") || !strings.Contains(string(r.Body), `class="flash error"`) {
		t.Fatalf("delete last admin: %d\n%s", r.Status, r.Body)
	}

	for _, tc := range []struct {
		name string
		form url.Values
		want *regexp.Regexp
	}{
		{"passwords differ", url.Values{"name": {"bob"}, "password": {"long enough pw"}, "password2": {"long enough pW"}}, fieldErr("f-password2", "", "the two passwords differ")},
		{"too short", url.Values{"name": {"bob"}, "password": {"sh0rt"}, "password2": {"sh0rt"}}, fieldErr("f-password", "", "too short")},
		{"bad name", url.Values{"name": {"bob smith"}, "password": {"long enough pw"}, "password2": {"long enough pw"}}, fieldErr("f-name", "bob smith", "must be 1-32")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/users", tc.form)
			body := string(r.Body)
			if r.Status != http.StatusBadRequest || !tc.want.MatchString(body) {
				t.Fatalf("%d\n%s", r.Status, body)
			}
			if !strings.Contains(body, `value="`+tc.form.Get("name")+`"`) {
				t.Error("name not kept")
			}
			if strings.Contains(body, tc.form.Get("password")) {
				t.Error("password echoed")
			}
		})
	}
	if r := b.post("/users", url.Values{"name": {"admin"}, "password": {"long enough pw"}, "password2": {"long enough pw"}}); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "already exists") {
		t.Fatalf("duplicate: %d", r.Status)
	}
	if r := b.post("/users", url.Values{"name": {"bob"}, "password": {"bobs first pw"}, "password2": {"bobs first pw"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("add: %d %s", r.Status, r.Body)
	}
	body := string(b.get("/users").Body)
	if !strings.Contains(body, "Admin bob added") || !strings.Contains(body, `action="/users/bob/delete"`) {
		t.Fatalf("list:\n%s", body)
	}

	// Change bob's password; he logs in with the new one only.
	if body := string(b.get("/users?passwd=bob").Body); !strings.Contains(body, "Change the password of bob") || !strings.Contains(body, `action="/users/bob/password"`) {
		t.Fatalf("password form:\n%s", body)
	}
	r = b.post("/users/bob/password", url.Values{"password": {"bobs new pw!"}, "password2": {"bobs new pw?"}})
	if r.Status != http.StatusBadRequest || !fieldErr("f-password2", "", "the two passwords differ").Match(r.Body) || strings.Contains(string(r.Body), "bobs new pw") {
		t.Fatalf("mismatch: %d\n%s", r.Status, r.Body)
	}
	if r := b.post("/users/bob/password", url.Values{"password": {"bobs new pw!"}, "password2": {"bobs new pw!"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	if s := login(t, ts, "bob", "bobs new pw!"); s != http.StatusSeeOther {
		t.Fatalf("login with the new password: %d", s)
	}
	if s := login(t, ts, "bob", "bobs first pw"); s != http.StatusUnauthorized {
		t.Fatalf("login with the old password: %d", s)
	}
	if r := b.post("/users/nobody/password", url.Values{"password": {"long enough pw"}, "password2": {"long enough pw"}}); r.Status != http.StatusNotFound {
		t.Errorf("unknown user: %d", r.Status)
	}

	// With two admins, one can go; then the other is the last again.
	if r := b.post("/users/bob/delete", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("delete bob: %d %s", r.Status, r.Body)
	}
	if s := login(t, ts, "bob", "bobs new pw!"); s != http.StatusUnauthorized {
		t.Fatalf("removed admin logs in: %d", s)
	}
	if r := b.post("/users/admin/delete", nil); r.Status != http.StatusConflict {
		t.Fatalf("delete last admin: %d", r.Status)
	}
}

func TestUIAdmin_RemoveSelf(t *testing.T) {
	ts := MustOpenServer(t)
	if _, err := ts.svc.Users.CreateUser(t.Context(), "carol", "carols password"); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts)
	if body := string(b.get("/users").Body); !strings.Contains(body, "Remove your own account admin?") {
		t.Error("no warning on removing oneself")
	}
	r := b.post("/users/admin/delete", nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("remove self: %d %s", r.Status, r.Header.Get("Location"))
	}
	if r := b.get("/users"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Fatalf("after removing self: %d %s", r.Status, r.Header.Get("Location"))
	}
}
