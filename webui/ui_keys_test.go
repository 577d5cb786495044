package webui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// Tests of the Button Configurations page (ui_keys.go).

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
