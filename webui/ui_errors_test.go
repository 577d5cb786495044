package webui_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// Tests of forms that report every error at once, of the extension
// delete that names the phones it strands, and of the Button
// Configurations details (duplicates at their field, label hints).

// TestUIForms_EveryErrorAtOnce: one submit marks every field that breaks
// a rule, each next to its field, and the flash counts them.
func TestUIForms_EveryErrorAtOnce(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		fields map[string]string // field id (without f-) → part of its error
	}{
		{"add phone: bad MAC and no model", "/phones",
			url.Values{"mac": {"00:15:65:12:34:5G"}, "manufacturer": {"Yealink"}, "model": {""}}, http.StatusBadRequest,
			map[string]string{"mac": "is not a MAC address", "model": "required (supported Yealink models"}},
		{"add extension: bad number, transport and voicemail", "/extensions",
			url.Values{"number": {"10 01"}, "transport": {"sctp"}, "voicemail": {"vm"}}, http.StatusBadRequest,
			map[string]string{"number": "may only hold", "transport": "is not one of udp, tcp, tls", "voicemail": "is not a feature code"}},
		{"add location: no name, bad callback", "/locations",
			url.Values{"name": {""}, "callback_number": {"call me"}}, http.StatusBadRequest,
			map[string]string{"name": "required", "callback_number": "is not a phone number"}},
		{"add admin: bad name, short and different passwords", "/users",
			url.Values{"name": {"a b"}, "password": {"short"}, "password2": {"other"}}, http.StatusBadRequest,
			map[string]string{"name": "must be 1-32", "password": "too short", "password2": "the two passwords differ"}},
		{"settings: bad URL, registrar and rate", "/settings",
			url.Values{"provisioning_url": {"ftp://x"}, "registrar": {"bad host!"}, "notify_rate": {"lots"}}, http.StatusBadRequest,
			map[string]string{"provisioning_url": "is not an http(s) URL", "registrar": "is not a host name", "notify_rate": "not a whole number"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post(tc.path, tc.form)
			body := string(r.Body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d:\n%s", r.Status, tc.status, body)
			}
			for field, msg := range tc.fields {
				block := fieldBlock(t, body, field)
				if !strings.Contains(block, `class="err"`) || !strings.Contains(block, msg) {
					t.Errorf("field %s lacks its error %q:\n%s", field, msg, block)
				}
			}
			want := "Please correct the " + strings.Fields("0 1 2 3 4")[len(tc.fields)] + " fields marked below."
			if !strings.Contains(body, want) {
				t.Errorf("flash %q missing", want)
			}
		})
	}
	// The typed MAC is kept beside its error.
	r := b.post("/phones", url.Values{"mac": {"00:15:65:12:34:5G"}, "manufacturer": {"Yealink"}})
	if !strings.Contains(fieldBlock(t, string(r.Body), "mac"), `value="00:15:65:12:34:5G"`) {
		t.Error("typed MAC not kept")
	}
}

// TestUI_SetupEveryError: a wrong code, a short password and a mismatch
// are shown together; the wrong code still counts as a failure (403).
func TestUI_SetupEveryError(t *testing.T) {
	fresh := MustOpenEmptyServer(t, "abcde-fghjk")
	jar, _ := cookiejar.New(nil)
	anon := &browser{t: t, ts: fresh, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		errs   map[string]string
	}{
		{"three errors", url.Values{"code": {"wrong"}, "username": {"boss"}, "password": {"12345"}, "password2": {"123456"}}, http.StatusForbidden,
			map[string]string{"code": "wrong setup code", "password": "too short", "password2": "the two passwords differ"}},
		{"right code, bad name and mismatch", url.Values{"code": {"abcde-fghjk"}, "username": {"b o s s"}, "password": {"long enough pw"}, "password2": {"long enough"}}, http.StatusBadRequest,
			map[string]string{"username": "must be 1-32", "password2": "the two passwords differ"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := anon.post("/setup", tc.form)
			body := string(r.Body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d:\n%s", r.Status, tc.status, body)
			}
			if n := strings.Count(body, `<div class="err">`); n != len(tc.errs) {
				t.Errorf("%d errors shown, want %d:\n%s", n, len(tc.errs), body)
			}
			for field, msg := range tc.errs {
				re := regexp.MustCompile(`(?s)<div class="field bad"><label for="` + field + `">.*?<div class="err">[^<]*` + regexp.QuoteMeta(msg))
				if !re.MatchString(body) {
					t.Errorf("field %s lacks %q", field, msg)
				}
			}
		})
	}
	if users, _ := fresh.svc.Users.FindUsers(t.Context()); len(users) != 0 {
		t.Fatalf("an admin was created: %+v", users)
	}
}

// TestAPI_SeveralErrors: the JSON error keeps the first error and field,
// and lists all of them when there are several.
func TestAPI_SeveralErrors(t *testing.T) {
	ts := MustOpenServer(t)
	type body struct {
		Error  string `json:"error"`
		Field  string `json:"field"`
		Errors []struct {
			Field string `json:"field"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	for _, tc := range []struct {
		name   string
		path   string
		in     map[string]any
		field  string
		fields []string
	}{
		{"phone", "/api/v1/phones", map[string]any{"mac": "0015651234", "model": ""}, "mac", []string{"mac", "model"}},
		{"extension", "/api/v1/extensions", map[string]any{"number": "", "transport": "sctp"}, "number", []string{"number", "transport"}},
		{"key", "/api/v1/keys", map[string]any{"type": "speed_dial", "value": "abc", "label": "a\nb"}, "value", []string{"value", "label"}},
		{"one error has no list", "/api/v1/locations", map[string]any{"name": ""}, "name", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got body
			r := ts.call(t, "POST", tc.path, tc.in, http.StatusBadRequest, &got)
			if got.Field != tc.field || !strings.HasPrefix(got.Error, tc.field+": ") {
				t.Errorf("first error %q (field %q), want field %q", got.Error, got.Field, tc.field)
			}
			var fields []string
			for _, e := range got.Errors {
				fields = append(fields, e.Field)
				if !strings.HasPrefix(e.Error, e.Field+": ") {
					t.Errorf("error %q does not name its field", e.Error)
				}
			}
			if strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("errors of %v, want %v: %s", fields, tc.fields, r.Body)
			}
			if tc.fields == nil && strings.Contains(string(r.Body), `"errors"`) {
				t.Errorf("a single error has a list: %s", r.Body)
			}
		})
	}
}

// TestUIExtensions_ForceDeleteNamesStrandedPhones: the confirmation says
// which phones keep another account key and which are left with none;
// after "Delete anyway" the flash names them and their ready problems say
// so.
func TestUIExtensions_ForceDeleteNamesStrandedPhones(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	e101 := ts.mustExtension(t, "101", "Alice")
	e102 := ts.mustExtension(t, "102", "Bob")
	ts.mustPhone(t, "001565aabbcc", "T46G", "101")
	ts.call(t, "PATCH", "/api/v1/phones/001565aabbcc", map[string]any{"name": "Front desk"}, 200, nil)
	ts.mustPhone(t, "001565000002", "T46G", "101")
	ts.call(t, "PATCH", "/api/v1/phones/001565000002", map[string]any{"name": "Lobby"}, 200, nil)
	ts.call(t, "PUT", "/api/v1/phones/001565000002/keys", []map[string]any{
		{"position": 1, "key_id": e101.AccountKey}, {"position": 2, "key_id": e102.AccountKey}}, 200, nil)
	id := strconvI(e101.ID)

	r := b.post("/extensions/"+id+"/delete", nil)
	body := string(r.Body)
	if r.Status != http.StatusConflict {
		t.Fatalf("delete in use: %d\n%s", r.Status, body)
	}
	text := strings.Join(strings.Fields(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(body, "")), " ")
	for _, want := range []string{
		"Extension 101 is on 2 phones: Front desk (00:15:65:aa:bb:cc), Lobby (00:15:65:00:00:02).",
		"Deleting it removes its account key from them; Front desk (00:15:65:aa:bb:cc) will then have no account key and will not register (not ready).",
		"Lobby (00:15:65:00:00:02) keeps its other account key.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("confirmation lacks %q:\n%s", want, text)
		}
	}
	for _, raw := range []string{"force=true", "phone(s)", "id: "} {
		if strings.Contains(text, raw) {
			t.Errorf("confirmation shows raw API text %q", raw)
		}
	}
	if !strings.Contains(body, `<a href="/phones/001565aabbcc">Front desk (00:15:65:aa:bb:cc)</a>`) {
		t.Error("confirmation does not link the phone")
	}

	r = b.follow(b.post("/extensions/"+id+"/delete", url.Values{"force": {"true"}}))
	if body := string(r.Body); !strings.Contains(body, "Extension 101 deleted. Front desk (00:15:65:aa:bb:cc) now has no account key and will not register (not ready)") ||
		strings.Contains(body, "Lobby (00:15:65:00:00:02) now") {
		t.Errorf("flash does not name the stranded phone:\n%s", body)
	}
	for _, tc := range []struct {
		mac       string
		noAccount bool
	}{{"001565aabbcc", true}, {"001565000002", false}} {
		var sync appliance.SyncStatus
		ts.call(t, "GET", "/api/v1/phones/"+tc.mac+"/sync", nil, 200, &sync)
		has := false
		for _, p := range sync.Problems {
			has = has || strings.HasPrefix(p, "no account key")
		}
		if has != tc.noAccount {
			t.Errorf("%s: problems %q, want no account key: %v", tc.mac, sync.Problems, tc.noAccount)
		}
	}
}

// TestUIKeys_DuplicateAtItsField: a duplicate key is refused (409) next
// to the field that makes it one, with what was typed kept, in the add
// form and in the inline edit.
func TestUIKeys_DuplicateAtItsField(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	ts.mustKey(t, "blf", "102", "Bob")
	ts.mustKey(t, "speed_dial", "5551234", "")
	other := ts.mustKey(t, "blf", "103", "Carol")
	for _, tc := range []struct {
		name              string
		path              string
		typ, value, label string
		want              *regexp.Regexp
	}{
		{"add, same label", "/keys", "blf", "102", "Bob", fieldErr("f-label", "Bob", "this key exists already")},
		{"add, label is the value", "/keys", "speed_dial", "5551234", "", fieldErr("f-value", "5551234", "this key exists already")},
		{"edit, same label", "/keys/" + strconvI(other.ID), "blf", "102", "Bob", fieldErr("e-label", "Bob", "this key exists already")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post(tc.path, url.Values{"type": {tc.typ}, "value": {tc.value}, "label": {tc.label}})
			body := string(r.Body)
			if r.Status != http.StatusConflict {
				t.Fatalf("status %d, want 409:\n%s", r.Status, body)
			}
			if !tc.want.MatchString(body) {
				t.Fatalf("error not at its field (%s):\n%s", tc.want, body)
			}
			if !strings.Contains(body, `value="`+tc.value+`"`) {
				t.Error("typed value not kept")
			}
		})
	}
	if k, _ := ts.svc.Keys.FindKey(t.Context(), other.ID); k.Value != "103" || k.Label != "Carol" {
		t.Errorf("refused edit changed the key: %+v", k)
	}
	if keys, _ := ts.svc.Keys.FindKeys(t.Context(), appliance.KeyFilter{}); len(keys) != 3 {
		t.Errorf("%d keys, want 3", len(keys))
	}
}

// TestUIKeys_LabelHintAndWording: the label field says how many characters
// the phones in use show; counts are singular or plural; one search box.
func TestUIKeys_LabelHintAndWording(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	body := string(b.get("/keys").Body)
	if !strings.Contains(body, "Most phones show about 10 characters") {
		t.Error("no general hint without phones")
	}
	e := ts.mustExtension(t, "101", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46U", "101")
	ts.mustPhone(t, "001565000002", "T33G", "101")
	blf := ts.mustKey(t, "blf", "102", "Bob")
	ts.call(t, "PUT", "/api/v1/phones/001565000002/keys", []map[string]any{
		{"position": 1, "key_id": e.AccountKey}, {"position": 2, "key_id": blf.ID}}, 200, nil)

	body = string(b.get("/keys").Body)
	t46u, _ := ts.Catalog.Lookup("Yealink", "T46U")
	t33g, _ := ts.Catalog.Lookup("Yealink", "T33G")
	want := "T46U phones show " + strconvI(int64(t46u.LabelChars)) + " characters, T33G " + strconvI(int64(t33g.LabelChars)) + ": keep it to " + strconvI(int64(t33g.LabelChars)) + " to fit them all."
	if t46u.LabelChars <= t33g.LabelChars {
		t.Fatalf("catalog: T46U %d, T33G %d", t46u.LabelChars, t33g.LabelChars)
	}
	if !strings.Contains(fieldBlock(t, body, "label"), want) {
		t.Errorf("add form lacks %q:\n%s", want, fieldBlock(t, body, "label"))
	}
	// The inline edit names the phones the key is on.
	body = string(b.get("/keys?edit=" + strconvI(blf.ID)).Body)
	if !strings.Contains(body, "T33G phones show "+strconvI(int64(t33g.LabelChars))+" characters.") {
		t.Errorf("edit row lacks the hint of its phone")
	}
	for _, tc := range []struct{ want, not string }{
		{"2 keys.", "key(s)"},
		{"Saving updates its 1 phone.", "phone(s)"},
		{`<label for="s-q">Search value or label</label>`, `<label for="s-value">`},
	} {
		if !strings.Contains(body, tc.want) || strings.Contains(body, tc.not) {
			t.Errorf("want %q and not %q", tc.want, tc.not)
		}
	}
	// value= and label= still search, and show what they search.
	body = string(b.get("/keys?value=102&label=bob").Body)
	if !strings.Contains(body, rowOf(blf)) || !strings.Contains(body, `id="s-value" name="value" value="102"`) || !strings.Contains(body, "1 key shown of 2.") {
		t.Errorf("value/label search:\n%s", body)
	}
}

// TestUIUsers_LastAdminAndTimeZone: the only admin is not offered Remove;
// times carry their zone.
func TestUIUsers_LastAdminAndTimeZone(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	body := string(b.get("/users").Body)
	if strings.Contains(body, `/delete"`) || !strings.Contains(body, "the only admin") {
		t.Errorf("the only admin is offered Remove:\n%s", body)
	}
	if !regexp.MustCompile(`<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+\-0-9]+</td>`).MatchString(body) {
		t.Errorf("created time without zone:\n%s", body)
	}
	if _, err := ts.svc.Users.CreateUser(t.Context(), "second", "long enough pw"); err != nil {
		t.Fatal(err)
	}
	if body := string(b.get("/users").Body); strings.Count(body, `/delete"`) != 2 {
		t.Errorf("two admins, not both removable")
	}
}
