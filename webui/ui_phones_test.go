package webui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// fieldBlock returns the markup of the form field whose input or select
// has id f-name: from its <div class="field…"> to the next field or the
// form's buttons, so that an error can be checked to sit next to it.
func fieldBlock(t testing.TB, body, name string) string {
	t.Helper()
	i := strings.Index(body, `id="f-`+name+`"`)
	if i < 0 {
		t.Fatalf("no field %s in:\n%s", name, body)
	}
	start := max(strings.LastIndex(body[:i], `<div class="field`), strings.LastIndex(body[:i], `<div class="slot`))
	end := len(body)
	for _, next := range []string{`<div class="field`, `<div class="slot`, `<div class="actions"`, `</fieldset>`} {
		if j := strings.Index(body[i:], next); j >= 0 && i+j < end {
			end = i + j
		}
	}
	return body[start:end]
}

var selectedRe = regexp.MustCompile(`<option value="([^"]*)"[^>]* selected>`)

// selected returns the value of the option chosen in a field's select.
func selected(t testing.TB, body, name string) string {
	t.Helper()
	m := selectedRe.FindAllStringSubmatch(fieldBlock(t, body, name), -1)
	if len(m) != 1 {
		t.Fatalf("field %s: %d options selected", name, len(m))
	}
	return m[0][1]
}

// followFlash reads the page a redirect leads to (with its flash).
func (b *browser) follow(r response) response {
	b.t.Helper()
	if r.Status != http.StatusSeeOther {
		b.t.Fatalf("want a redirect, got %d:\n%s", r.Status, r.Body)
	}
	return b.get(r.Header.Get("Location"))
}

func TestUIPhones_PagesNeedLogin(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 0)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	anon := &browser{t: t, ts: ts, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	b := newBrowser(t, ts)
	for _, tc := range []struct{ path, want string }{
		{"/phones", "Add phone"},
		{"/phones?q=T46", "00:15:65:aa:bb:cc"},
		{"/phones/new", "Device Settings"},
		{"/phones/001565aabbcc", "Generated config"},
		{"/phones/00-15-65-AA-BB-CC", "Generated config"},
		{"/phones/001565aabbcc/edit", "Device Provisioning"},
		{"/discovered", "No phones discovered yet"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := anon.get(tc.path)
			if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login?next="+url.QueryEscape(tc.path) {
				t.Fatalf("anonymous: %d %s", r.Status, r.Header.Get("Location"))
			}
			r = b.get(tc.path)
			if r.Status != 200 || !strings.Contains(string(r.Body), tc.want) {
				t.Fatalf("logged in: %d, want %q in\n%s", r.Status, tc.want, r.Body)
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Fatalf("CSP %q", csp)
			}
		})
	}
	for _, path := range []string{"/phones/001565000001", "/phones/nonsense", "/phones/001565000001/edit"} {
		if r := b.get(path); r.Status != http.StatusNotFound {
			t.Errorf("%s: %d", path, r.Status)
		}
	}
}

func TestUIPhones_Create(t *testing.T) {
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	loc := ts.mustLocation(t, "HQ")
	b := newBrowser(t, ts)
	good := func(kv ...string) url.Values {
		f := url.Values{"mac": {"00-15-65-AA-BB-CC"}, "name": {""}, "description": {"by the door"},
			"location_id": {strconv.FormatInt(loc.ID, 10)}, "manufacturer": {"Yealink"}, "model": {"T46G"}, "extension": {"1001"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	// Invalid input: the status, the error next to its field, and what was
	// typed still there.
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		field  string
		msg    string
		kept   string // markup showing the typed value
	}{
		{"bad MAC", good("mac", "00:15:65", "name", "Front desk"), 400, "mac", "is not a MAC address", `value="00:15:65"`},
		{"multicast MAC", good("mac", "01:00:5e:00:00:01"), 400, "mac", "multicast", `value="01:00:5e:00:00:01"`},
		{"unsupported model", good("model", "T99", "name", "Front desk"), 400, "model", "is not a supported Yealink model", `<option value="T99" selected>T99 (not supported)`},
		{"unsupported manufacturer", good("manufacturer", "Polycom"), 400, "manufacturer", "is not supported", `<option value="Polycom" selected>`},
		{"unknown extension", good("extension", "9999", "name", "Front desk"), 400, "extension", `no extension &#34;9999&#34;`, `<option value="9999" selected>`},
		{"unknown location", good("location_id", "777"), 400, "location_id", "no location with id 777", `<option value="777" selected>`},
		{"garbage location", good("location_id", "x"), 400, "location_id", "is not a location", `<option value="x" selected>`},
		{"name too long", good("name", strings.Repeat("n", 65)), 400, "name", "too long", `value="` + strings.Repeat("n", 65) + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/phones", tc.form)
			body := string(r.Body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d:\n%s", r.Status, tc.status, body)
			}
			field := fieldBlock(t, body, tc.field)
			if !strings.Contains(field, `class="field bad"`) || !strings.Contains(field, `<div class="err">`) || !strings.Contains(field, tc.msg) {
				t.Fatalf("field %s lacks the error %q:\n%s", tc.field, tc.msg, field)
			}
			if !strings.Contains(body, tc.kept) {
				t.Fatalf("typed value lost, want %s in\n%s", tc.kept, body)
			}
			if tc.form.Get("name") == "Front desk" && !strings.Contains(fieldBlock(t, body, "name"), `value="Front desk"`) {
				t.Fatal("the other fields lost what was typed")
			}
			if phones, _ := ts.svc.Phones.FindPhones(t.Context(), appliance.PhoneFilter{}); len(phones) != 0 {
				t.Fatalf("a refused form created %+v", phones[0])
			}
		})
	}
	// The good one: dashed MAC stored canonical, blank name → the MAC,
	// extension's account key on keys 1 and 2.
	r := b.post("/phones", good())
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/phones/001565aabbcc" {
		t.Fatalf("create: %d %s\n%s", r.Status, r.Header.Get("Location"), r.Body)
	}
	ph, err := ts.svc.Phones.FindPhone(t.Context(), "001565aabbcc")
	if err != nil || ph.MAC != "001565aabbcc" || ph.Name != "001565aabbcc" || ph.Model != "T46G" || ph.LocationID == nil || *ph.LocationID != loc.ID || ph.Description != "by the door" {
		t.Fatalf("stored %+v %v", ph, err)
	}
	if layout, _ := ts.svc.Phones.FindLayout(t.Context(), ph.MAC); len(layout) != 2 || layout[0].Type != appliance.KeyAccount || layout[1].Position != 2 {
		t.Fatalf("layout %+v", layout)
	}
	page := string(b.get("/phones/001565aabbcc").Body)
	if !strings.Contains(page, "Phone 001565aabbcc added, with extension 1001 on line keys 1 and 2") || !strings.Contains(page, "HQ") {
		t.Fatalf("phone page after create:\n%s", page)
	}
	// A duplicate is a conflict, on the MAC field.
	r = b.post("/phones", good("mac", "0015.65aa.bbcc"))
	if r.Status != http.StatusConflict || !strings.Contains(fieldBlock(t, string(r.Body), "mac"), "already exists") {
		t.Fatalf("duplicate: %d\n%s", r.Status, r.Body)
	}
	// Without an extension: on to Device Provisioning.
	r = b.post("/phones", url.Values{"mac": {"001565aabbcd"}, "model": {"t-46g"}, "manufacturer": {"yealink"}, "name": {"Lobby"}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/phones/001565aabbcd/edit#provisioning" {
		t.Fatalf("create without extension: %d %s", r.Status, r.Header.Get("Location"))
	}
	if body := string(b.follow(r).Body); !strings.Contains(body, "at least 1 account key") || !strings.Contains(body, "no account key yet") {
		t.Fatalf("edit page after create:\n%s", body)
	}
}

func TestUIPhones_EditSettings(t *testing.T) {
	ts := MustOpenServer(t)
	alice := ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	loc := ts.mustLocation(t, "Warehouse")
	b := newBrowser(t, ts)
	body := string(b.get("/phones/001565aabbcc/edit").Body)
	if !strings.Contains(fieldBlock(t, body, "mac"), `value="00:15:65:aa:bb:cc"`) || selected(t, body, "model") != "T46G" || selected(t, body, "location_id") != "" || selected(t, body, "key_1") == "" {
		t.Fatalf("edit form not prefilled:\n%s", body)
	}
	if !strings.Contains(body, "add a location") || !strings.Contains(body, "T46G — 27 line keys") {
		t.Fatal("edit form lacks the location link or the key counts")
	}
	form := url.Values{"mac": {"001565aabbcc"}, "name": {"Reception"}, "description": {"front"}, "location_id": {strconv.FormatInt(loc.ID, 10)},
		"manufacturer": {"Yealink"}, "model": {"T48G"}}
	r := b.post("/phones/001565aabbcc", form)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/phones/001565aabbcc" {
		t.Fatalf("update: %d\n%s", r.Status, r.Body)
	}
	if page := string(b.follow(r).Body); !strings.Contains(page, "Phone Reception saved") || !strings.Contains(page, "Warehouse") {
		t.Fatalf("after update:\n%s", page)
	}
	ph, _ := ts.svc.Phones.FindPhone(t.Context(), "001565aabbcc")
	if ph.Name != "Reception" || ph.Model != "T48G" || ph.LocationID == nil {
		t.Fatalf("stored %+v", ph)
	}
	// A model too small for the layout: the domain's error on the model
	// field, the typed values kept; a blank name is the MAC.
	if _, err := ts.svc.Phones.ReplaceLayout(t.Context(), "001565aabbcc", []appliance.LayoutEntry{{Position: 1, KeyID: alice.AccountKey}, {Position: 5, KeyID: alice.AccountKey}}); err != nil {
		t.Fatal(err)
	}
	form.Set("model", "T40P")
	form.Set("description", "typed <text>")
	r = b.post("/phones/001565aabbcc", form)
	body = string(r.Body)
	if r.Status != http.StatusBadRequest || !strings.Contains(fieldBlock(t, body, "model"), "does not fit this phone") || selected(t, body, "model") != "T40P" ||
		!strings.Contains(body, `value="typed &lt;text&gt;"`) {
		t.Fatalf("model too small: %d\n%s", r.Status, body)
	}
	// Clearing the location and the name.
	r = b.post("/phones/001565aabbcc", url.Values{"mac": {"001565aabbcc"}, "name": {" "}, "location_id": {""}, "manufacturer": {"Yealink"}, "model": {"T48G"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("clear: %d\n%s", r.Status, r.Body)
	}
	if ph, _ := ts.svc.Phones.FindPhone(t.Context(), "001565aabbcc"); ph.Name != "001565aabbcc" || ph.LocationID != nil {
		t.Fatalf("after clearing %+v", ph)
	}
	// A new MAC (the handset was swapped) moves the page.
	r = b.post("/phones/001565aabbcc", url.Values{"mac": {"00:15:65:00:00:99"}, "name": {"Swapped"}, "manufacturer": {"Yealink"}, "model": {"T48G"}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/phones/001565000099" {
		t.Fatalf("new MAC: %d %s", r.Status, r.Header.Get("Location"))
	}
}

func TestUIPhones_Layout(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 0)
	alice := ts.mustExtension(t, "1001", "Alice")
	ts.mustExtension(t, "1002", "Bob")
	const evil = `<script>alert(1)</script>`
	blf := ts.mustKey(t, appliance.KeyBLF, "1002", evil)
	sd := ts.mustKey(t, appliance.KeySpeedDial, "5551234", "Pizza")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	b := newBrowser(t, ts)
	acct, blfID, sdID := strconv.FormatInt(alice.AccountKey, 10), strconv.FormatInt(blf.ID, 10), strconv.FormatInt(sd.ID, 10)

	// The selects: account keys first, labelled as the help page says.
	edit := string(b.get("/phones/001565aabbcc/edit").Body)
	sel := fieldBlock(t, edit, "key_3")
	ia, ib := strings.Index(sel, "Account Key — 1001 Alice"), strings.Index(sel, "BLF — 1002 &lt;script&gt;")
	if ia < 0 || ib < 0 || ia > ib || !strings.Contains(sel, "(empty)") || !strings.Contains(sel, "Speed Dial — 5551234 Pizza") {
		t.Fatalf("line-key select:\n%s", sel)
	}
	if strings.Contains(edit, "<script>alert") || !strings.Contains(edit, "2 account keys recommended") || strings.Count(edit, `id="f-key_`) != 27 {
		t.Fatalf("provisioning form:\n%s", edit)
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		msg    string
		field  string // the line key marked, if any
	}{
		{"no account key", url.Values{"key_1": {blfID}, "key_2": {""}, "key_3": {sdID}}, 400, "a phone needs at least 1 account key (2 recommended)", ""},
		{"beyond the model", url.Values{"key_1": {acct}, "key_30": {blfID}}, 400, "30 is outside 1..27, the line keys of the T46G", ""},
		{"unknown key", url.Values{"key_1": {acct}, "key_4": {"99999"}}, 400, "no key with id 99999", "key_4"},
		{"garbage key", url.Values{"key_1": {acct}, "key_4": {"x"}}, 400, "is not a button configuration", ""},
		{"garbage position", url.Values{"key_1": {acct}, "key_x": {blfID}}, 400, "is not a line key", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/phones/001565aabbcc/keys", tc.form)
			body := string(r.Body)
			if r.Status != tc.status || !strings.Contains(body, tc.msg) || !strings.Contains(body, "Line keys not saved") {
				t.Fatalf("%d, want %d and %q:\n%s", r.Status, tc.status, tc.msg, body)
			}
			// The admin's selections are kept, not the saved layout (keys 1
			// and 2 hold the account key); a key not sent is empty.
			for pos := 1; pos <= 3; pos++ {
				name := "key_" + strconv.Itoa(pos)
				if got, want := selected(t, body, name), tc.form.Get(name); got != want {
					t.Errorf("%s: selected %q, sent %q", name, got, want)
				}
			}
			if tc.field != "" && !strings.Contains(fieldBlock(t, body, tc.field), tc.msg) {
				t.Errorf("the error is not next to %s", tc.field)
			}
			if layout, _ := ts.svc.Phones.FindLayout(t.Context(), "001565aabbcc"); len(layout) != 2 {
				t.Fatalf("a refused layout was saved: %+v", layout)
			}
		})
	}

	// A BLF and the account key.
	r := b.post("/phones/001565aabbcc/keys", url.Values{"key_1": {acct}, "key_2": {acct}, "key_3": {blfID}, "key_4": {""}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/phones/001565aabbcc" {
		t.Fatalf("save: %d\n%s", r.Status, r.Body)
	}
	layout, _ := ts.svc.Phones.FindLayout(t.Context(), "001565aabbcc")
	if len(layout) != 3 || layout[2].KeyID != blf.ID || layout[2].Position != 3 {
		t.Fatalf("layout %+v", layout)
	}
	page := string(b.follow(r).Body)
	if !strings.Contains(page, "Line keys of 001565aabbcc saved") || !strings.Contains(page, "<td>3</td><td><span class=\"badge type\">BLF</span></td><td>1002</td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td>") {
		t.Fatalf("phone page:\n%s", page)
	}
	// The label is escaped wherever it shows: the phone page (layout and
	// config preview), the edit page, the list.
	if !strings.Contains(page, "linekey.3.label = &lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("config preview lacks the escaped label")
	}
	for _, path := range []string{"/phones/001565aabbcc", "/phones/001565aabbcc/edit", "/phones", "/phones?q=" + url.QueryEscape(evil)} {
		if body := string(b.get(path).Body); strings.Contains(body, "<script>alert") {
			t.Errorf("%s: unescaped label", path)
		}
	}
	if body := string(b.get("/phones/001565aabbcc/edit").Body); selected(t, body, "key_3") != blfID || selected(t, body, "key_4") != "" {
		t.Fatal("edit page does not show the saved layout")
	}
	// Emptying every key is allowed (no keys, no account needed).
	if r := b.post("/phones/001565aabbcc/keys", url.Values{"key_1": {""}}); r.Status != http.StatusSeeOther {
		t.Fatalf("empty layout: %d", r.Status)
	}
	if body := string(b.get("/phones/001565aabbcc").Body); !strings.Contains(body, "No account key") {
		t.Fatal("phone page does not warn about the missing account key")
	}
}

func TestUIPhones_ListEscapesAndSearches(t *testing.T) {
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	ts.call(t, "POST", "/api/v1/phones", map[string]any{"mac": "001565aabbcc", "model": "T46G", "name": "<script>alert(2)</script>", "extension": "1001"}, 201, nil)
	ts.call(t, "POST", "/api/v1/phones", map[string]any{"mac": "001565000002", "model": "T54W", "name": "Lobby"}, 201, nil)
	b := newBrowser(t, ts)
	body := string(b.get("/phones").Body)
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(2)") {
		t.Fatal("name not escaped in the list")
	}
	for _, want := range []string{`<a href="/phones/001565aabbcc">`, "<code>00:15:65:aa:bb:cc</code>", `data-sync-mac="001565aabbcc"`, `<span class="badge new"`, `<td class="opt">2</td>`, ">none</a>", `href="/phones/new"`} {
		if !strings.Contains(body, want) {
			t.Errorf("list lacks %s", want)
		}
	}
	for _, tc := range []struct {
		q          string
		want, not_ string
	}{
		{"T54", "Lobby", "00:15:65:aa:bb:cc"},
		{"00-15-65-AA-BB-CC", "00:15:65:aa:bb:cc", "Lobby"},
		{"lob", "Lobby", "00:15:65:aa:bb:cc"},
		{"nothing", "No phone matches", "Lobby"},
	} {
		body := string(b.get("/phones?q=" + url.QueryEscape(tc.q)).Body)
		rows := between(t, body, "<tbody>", "</tbody>") // the bulk "copy from" list names every phone
		if !strings.Contains(rows, tc.want) || strings.Contains(rows, tc.not_) || !strings.Contains(body, `value="`+tc.q+`"`) {
			t.Errorf("q=%s:\n%s", tc.q, body)
		}
	}
}

func TestUIPhones_ConfigPreviewMasksSecrets(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{PhoneAdminPassword: "phones-admin-pw"}, 0)
	ts.mustExtension(t, "1001", "Alice") // SIP password sip-1001
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	var sec struct{ Password string }
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/secret", nil, 200, &sec)
	b := newBrowser(t, ts)
	body := string(b.get("/phones/001565aabbcc").Body)
	masked := between(t, body, `<div id="config-masked">`, `id="config-plain"`)
	plain := between(t, body, `<pre class="config" id="config-plain" tabindex="0" hidden>`, "</pre>")
	// The phone's own secret also shows behind the Reveal of its card.
	if !strings.Contains(body, `<code id="secret-plain" hidden>`+sec.Password+`</code>`) || !strings.Contains(body, `data-reveal="secret-masked secret-plain"`) {
		t.Errorf("secret card:\n%s", body)
	}
	body = strings.Replace(body, `<code id="secret-plain" hidden>`+sec.Password, "", 1)
	for _, secret := range []string{"sip-1001", sec.Password, "phones-admin-pw"} {
		if strings.Contains(masked, secret) || !strings.Contains(plain, secret) || strings.Count(body, secret) != strings.Count(plain, secret) {
			t.Errorf("%s: in masked %v, in plain %v, %d times on the page", secret, strings.Contains(masked, secret), strings.Contains(plain, secret), strings.Count(body, secret))
		}
	}
	for _, want := range []string{"account.1.password = ********", "static.auto_provision.server.password = ********", "static.security.user_password = ********", "auto_provision.server.username = 001565aabbcc", "account.1.user_name = 1001"} {
		if !strings.Contains(masked, want) {
			t.Errorf("masked preview lacks %q", want)
		}
	}
	if !strings.Contains(body, `id="reveal-secrets"`) {
		t.Error("no Reveal button")
	}
	// Without a renderer the page still works.
	ts2 := MustOpenServer(t)
	ts2.mustPhone(t, "001565aabbcc", "T46G", "")
	if body := string(newBrowser(t, ts2).get("/phones/001565aabbcc").Body); !strings.Contains(body, "not available") || strings.Contains(body, "config-plain") {
		t.Errorf("no renderer:\n%s", body)
	}
}

func between(t testing.TB, s, from, to string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		t.Fatalf("no %s in\n%s", from, s)
	}
	out, _, _ := strings.Cut(rest, to)
	return out
}

func TestUIPhones_ResyncAndDelete(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 0)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	b := newBrowser(t, ts)
	sub := ts.svc.Events.Subscribe(10)
	defer sub.Close()
	// Never fetched: nothing is sent, and the page says why.
	r := b.post("/phones/00:15:65:aa:bb:cc/resync", nil)
	if body := string(b.follow(r).Body); r.Status != http.StatusSeeOther || !strings.Contains(body, "Nothing sent") || !strings.Contains(body, "reboots on check-sync") {
		t.Fatalf("resync of a phone that never fetched: %d\n%s", r.Status, body)
	}
	select {
	case e := <-sub.C:
		t.Fatalf("event %+v for a phone that never fetched", e)
	default:
	}
	ts.get(t, "GET", "/prov/001565aabbcc.cfg", yealinkUA, nil)
	r = b.post("/phones/00:15:65:aa:bb:cc/resync", nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/phones/001565aabbcc" {
		t.Fatalf("resync: %d %s", r.Status, r.Header.Get("Location"))
	}
	timeout := time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case e := <-sub.C:
			got = e.Type == appliance.EventResync && len(e.MACs) == 1 && e.MACs[0] == "001565aabbcc"
		case <-timeout:
			t.Fatal("no resync event")
		}
	}
	if body := string(b.follow(r).Body); !strings.Contains(body, "check-sync sent") {
		t.Fatalf("resync flash:\n%s", body)
	}
	if r := b.post("/phones/001565000001/resync", nil); r.Status != http.StatusNotFound {
		t.Fatalf("resync unknown: %d", r.Status)
	}

	r = b.post("/phones/001565aabbcc/delete", nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/phones" {
		t.Fatalf("delete: %d", r.Status)
	}
	if _, err := ts.svc.Phones.FindPhone(t.Context(), "001565aabbcc"); appliance.ErrorCode(err) != appliance.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
	if body := string(b.follow(r).Body); !strings.Contains(body, "deleted") || !strings.Contains(body, "No phones yet") {
		t.Fatalf("list after delete:\n%s", body)
	}
	if r := b.post("/phones/001565aabbcc/delete", nil); r.Status != http.StatusNotFound {
		t.Fatalf("delete again: %d", r.Status)
	}
}

func TestUIPhones_DiscoveredAdopt(t *testing.T) {
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	ctx := t.Context()
	b := newBrowser(t, ts)
	if body := string(b.get("/discovered").Body); !strings.Contains(body, "No phones discovered yet") || !strings.Contains(body, "/prov/") || !strings.Contains(body, "PnP") {
		t.Fatalf("empty state:\n%s", body)
	}
	for _, d := range []appliance.Sighting{
		{MAC: "001565112233", Model: "T54W", Firmware: "96.86.0.45", IP: "10.0.0.9", Source: "http", UA: "Yealink SIP-T54W"},
		{MAC: "0004f2000001", Vendor: "Polycom", Model: "VVX<b>", IP: "10.0.0.10", Source: "pnp"},
	} {
		if err := ts.svc.Sync.Sighted(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	body := string(b.get("/discovered").Body)
	adopt := `href="/phones/new?mac=001565112233&amp;manufacturer=Yealink&amp;model=T54W"`
	for _, want := range []string{"00:15:65:11:22:33", "T54W", "96.86.0.45", "10.0.0.9", "HTTP fetch", "SIP PnP", adopt, "not supported (Yealink only)", "VVX&lt;b&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("discovered lacks %s", want)
		}
	}
	body = string(b.get("/phones/new?mac=001565112233&manufacturer=Yealink&model=T54W").Body)
	if !strings.Contains(fieldBlock(t, body, "mac"), `value="00:15:65:11:22:33"`) || selected(t, body, "model") != "T54W" || selected(t, body, "manufacturer") != "Yealink" || !strings.Contains(body, "Adopting") {
		t.Fatalf("adopt form not prefilled:\n%s", body)
	}
	// A model in another spelling is understood; an unknown one is shown.
	if body := string(b.get("/phones/new?mac=001565112233&model=SIP-T46G").Body); selected(t, body, "model") != "T46G" {
		t.Fatal("SIP-T46G not understood")
	}
	if body := string(b.get("/phones/new?model=T99").Body); selected(t, body, "model") != "T99" || !strings.Contains(body, "T99 (not supported)") {
		t.Fatal("unknown model not shown")
	}
	r := b.post("/phones", url.Values{"mac": {"00:15:65:11:22:33"}, "name": {"Lobby"}, "manufacturer": {"Yealink"}, "model": {"T54W"}, "extension": {"1001"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("adopt: %d\n%s", r.Status, r.Body)
	}
	body = string(b.get("/discovered").Body)
	if strings.Contains(body, "00:15:65:11:22:33") || !strings.Contains(body, "00:04:f2:00:00:01") {
		t.Fatalf("adopted phone still discovered:\n%s", body)
	}
}

func TestUIPhones_CSRF(t *testing.T) {
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	b := newBrowser(t, ts)
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/phones", url.Values{"mac": {"001565000001"}, "model": {"T46G"}}},
		{"/phones/001565aabbcc", url.Values{"mac": {"001565aabbcc"}, "name": {"Hacked"}, "model": {"T46G"}}},
		{"/phones/001565aabbcc/keys", url.Values{"key_1": {""}}},
		{"/phones/001565aabbcc/resync", nil},
		{"/phones/001565aabbcc/delete", nil},
	} {
		for _, token := range []string{"", "forged"} {
			form := url.Values{"csrf": {token}}
			for k, v := range tc.form {
				form[k] = v
			}
			if r := b.post(tc.path, form); r.Status != http.StatusForbidden {
				t.Errorf("%s with token %q: %d", tc.path, token, r.Status)
			}
		}
	}
	phones, _ := ts.svc.Phones.FindPhones(t.Context(), appliance.PhoneFilter{})
	layout, _ := ts.svc.Phones.FindLayout(t.Context(), "001565aabbcc")
	if len(phones) != 1 || phones[0].Name != "001565aabbcc" || len(layout) != 2 {
		t.Fatalf("a refused form changed something: %+v %+v", phones, layout)
	}
}

// TestUIPhones_StuckAndTimeline: a stuck phone is listed first on the
// Phones page; its page shows the timeline and its registration.
func TestUIPhones_StuckAndTimeline(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}, 0)
	ts.db.ReportTimeout = time.Millisecond
	ext := ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	ctx := t.Context()
	ts.get(t, "GET", "/prov/001565aabbcc.cfg", yealinkUA, nil)
	p, _ := ts.svc.Phones.FindPhone(ctx, "001565aabbcc")
	for _, ev := range []string{appliance.ReportProvisioned, appliance.ReportRegistered} {
		if err := ts.svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: ev, User: "1001"}); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, ts)
	if body := string(b.get("/phones").Body); strings.Contains(body, "stuck-phones") || !strings.Contains(body, ">synced<") {
		t.Fatalf("before:\n%s", body)
	}
	pw := "new-pw"
	if _, err := ts.svc.Extensions.UpdateExtension(ctx, ext.ID, appliance.ExtensionUpdate{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	p, _ = ts.svc.Phones.FindPhone(ctx, "001565aabbcc")
	ts.svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: p.MAC, Version: p.Sync.ConfigVersion, Status: 200, Reason: "OK"})
	time.Sleep(5 * time.Millisecond)
	if macs, err := ts.svc.Sync.MarkStuck(ctx); err != nil || len(macs) != 1 {
		t.Fatalf("stuck %v %v", macs, err)
	}
	body := string(b.get("/phones").Body)
	card := between(t, body, `id="stuck-phones"`, `</div>`)
	if !strings.Contains(card, "1 stuck phone") || !strings.Contains(card, "00:15:65:aa:bb:cc") || !strings.Contains(card, "last trigger: 200 OK") {
		t.Fatalf("stuck card:\n%s", card)
	}
	page := string(b.get("/phones/001565aabbcc").Body)
	tl := between(t, page, `data-timeline-mac="001565aabbcc"`, `</table>`)
	if strings.Count(tl, "<tr>") != 3 || !strings.Contains(tl, `<span class="badge stuck">stuck</span>`) || !strings.Contains(tl, "check-sync: 200 OK") {
		t.Fatalf("timeline:\n%s", tl)
	}
	if reg := between(t, page, `data-registration-mac="001565aabbcc"`, `</dd>`); !strings.Contains(reg, "account 1 (1001): registered") {
		t.Fatalf("registration:\n%s", reg)
	}
}

// TestUIPhones_KeyEditor: without JavaScript, the key editor of a T54W with
// two EXP50 modules draws the phone's 27 keys on 3 pages of a left and a
// right column and each module as its own panel of 60 keys; a key moves by
// choosing it elsewhere, a typed value creates its key at the chosen module
// position in the same save, the label shows cut to what the phone shows,
// and a bad typed key saves nothing.
func TestUIPhones_KeyEditor(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 0)
	alice := ts.mustExtension(t, "1001", "Alice")
	ts.mustExtension(t, "1002", "Bob")
	long := ts.mustKey(t, appliance.KeyBLF, "1002", "Bob in accounts payable")
	var ph appliance.Phone
	ts.call(t, "POST", "/api/v1/phones", map[string]any{"mac": "001565000054", "model": "T54W", "expansion_modules": 2, "extension": "1001"}, 201, &ph)
	b := newBrowser(t, ts)
	acct, blf := strconv.FormatInt(alice.AccountKey, 10), strconv.FormatInt(long.ID, 10)

	edit := string(b.get("/phones/001565000054/edit").Body)
	if n := strings.Count(edit, `id="f-key_`); n != 27+2*60 {
		t.Fatalf("%d key selects, want 147", n)
	}
	for _, want := range []string{`<h3 id="board-0">T54W`, `<h3 id="board-1">Expansion module 1 (EXP50)`, `<h3 id="board-2">Expansion module 2 (EXP50)`,
		"Page 3 · keys 19–27", "Page 3 · keys 41–60", "Line key 27", "Module 2 key 60", `name="new_at"`, `<option value="key_2_60">Module 2 key 60 (empty)</option>`} {
		if !strings.Contains(edit, want) {
			t.Errorf("edit page lacks %q", want)
		}
	}
	// Page 1 of the phone: keys 1-5 in the left column, 6-9 in the right,
	// row by row as the handset shows them (key 1 beside key 6).
	page1 := edit[strings.Index(edit, "keys 1–9"):strings.Index(edit, "keys 10–18")]
	last := -1
	for _, k := range []int{1, 6, 2, 7, 3, 8, 4, 9, 5} {
		i := strings.Index(page1, fmt.Sprintf(">Line key %d<", k))
		if i < last {
			t.Fatalf("page 1: line key %d out of row order:\n%s", k, page1)
		}
		last = i
	}

	// Move the BLF from line key 3 to module 1 key 1 and type a speed dial
	// for module 2 key 5.
	r := b.post("/phones/001565000054/keys", url.Values{"key_1": {acct}, "key_2": {acct}, "key_3": {""}, "key_1_1": {blf},
		"new_type": {"speed_dial"}, "new_value": {"5551234"}, "new_label": {"Pizza"}, "new_at": {"key_2_5"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", r.Status, r.Body)
	}
	layout, _ := ts.svc.Phones.FindLayout(t.Context(), "001565000054")
	if len(layout) != 4 || layout[2].Module != 1 || layout[2].KeyID != long.ID || layout[3].Module != 2 || layout[3].Position != 5 || layout[3].Type != "speed_dial" || layout[3].Label != "Pizza" {
		t.Fatalf("layout %+v", layout)
	}
	edit = string(b.get("/phones/001565000054/edit").Body)
	if got := selected(t, edit, "key_1_1"); got != blf {
		t.Errorf("module 1 key 1 holds %q", got)
	}
	// The EXP50 shows 10 characters: the label as the phone shows it.
	if !strings.Contains(fieldBlock(t, edit, "key_1_1"), `data-shown-for="key_1_1" aria-hidden="true">Bob in acc…</div>`) {
		t.Errorf("cut label:\n%s", fieldBlock(t, edit, "key_1_1"))
	}

	// A bad typed key: the error is next to the new key, nothing is saved
	// and no key is created.
	keysBefore, _ := ts.svc.Keys.FindKeys(t.Context(), appliance.KeyFilter{})
	r = b.post("/phones/001565000054/keys", url.Values{"key_1": {acct}, "new_type": {"speed_dial"}, "new_value": {"pizza"}, "new_at": {"key_2_6"}})
	if r.Status != http.StatusBadRequest || !strings.Contains(fieldBlock(t, string(r.Body), "new_value"), "is not a dial string") {
		t.Fatalf("bad new key: %d\n%s", r.Status, r.Body)
	}
	if after, _ := ts.svc.Keys.FindKeys(t.Context(), appliance.KeyFilter{}); len(after) != len(keysBefore) {
		t.Errorf("a refused save created a key")
	}
	if l, _ := ts.svc.Phones.FindLayout(t.Context(), "001565000054"); len(l) != 4 {
		t.Errorf("a refused save changed the layout: %+v", l)
	}
	// A typed value without a position is refused at the position.
	r = b.post("/phones/001565000054/keys", url.Values{"key_1": {acct}, "new_type": {"blf"}, "new_value": {"1002"}})
	if r.Status != http.StatusBadRequest || !strings.Contains(fieldBlock(t, string(r.Body), "new_at"), "choose the position") {
		t.Fatalf("new key without position: %d", r.Status)
	}

	// Fewer modules while module 2 holds a key: refused, named.
	r = b.post("/phones/001565000054", url.Values{"mac": {"001565000054"}, "model": {"T54W"}, "expansion_modules": {"1"}})
	if r.Status != http.StatusBadRequest || !strings.Contains(fieldBlock(t, string(r.Body), "expansion_modules"), "with 1 expansion module does not fit this phone") {
		t.Fatalf("fewer modules: %d\n%s", r.Status, r.Body)
	}

	// A DECT base: accounts only, no line-key talk, only account keys offered.
	ts.mustPhone(t, "001565000070", "W70B", "1001")
	dect := string(b.get("/phones/001565000070/edit").Body)
	if strings.Count(dect, `id="f-key_`) != 10 || !strings.Contains(dect, "Account 10") || strings.Contains(dect, "Bob in accounts payable") || !strings.Contains(dect, "has no line keys") {
		t.Errorf("W70B editor:\n%s", dect)
	}
}

// TestUIKeys_LabelCutWarning: Button Configurations warns, without
// refusing, when a key's label is longer than a phone it is on shows,
// naming the model with the fewest characters.
func TestUIKeys_LabelCutWarning(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 0)
	alice := ts.mustExtension(t, "1001", "Alice")
	ts.mustExtension(t, "1002", "Bob")
	long := ts.mustKey(t, appliance.KeyBLF, "1002", "Bob in accounts payable")
	short := ts.mustKey(t, appliance.KeyBLF, "1001", "Alice")
	ts.mustPhone(t, "001565000046", "T46U", "1001")
	ts.mustPhone(t, "001565000033", "T33G", "1001")
	for _, mac := range []string{"001565000046", "001565000033"} {
		ts.call(t, "PUT", "/api/v1/phones/"+mac+"/keys", []map[string]any{{"position": 1, "key_id": alice.AccountKey}, {"position": 2, "key_id": long.ID}, {"position": 3, "key_id": short.ID}}, 200, nil)
	}
	page := string(newBrowser(t, ts).get("/keys").Body)
	if !strings.Contains(page, "a T33G shows 8 characters: “Bob in a…”") {
		t.Errorf("no cut warning for the long label:\n%s", page)
	}
	if strings.Count(page, "warn-label") != 1 {
		t.Errorf("%d warnings, want 1 (Alice fits)", strings.Count(page, "warn-label"))
	}
}

// TestUIPhones_OneForm: the phone's edit page is one form; device settings
// and line keys are saved together, or, when either is refused, neither.
func TestUIPhones_OneForm(t *testing.T) {
	ts := MustOpenServer(t)
	ctx := t.Context()
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	blf, err := ts.svc.Keys.CreateKey(ctx, &appliance.Key{Type: appliance.KeyBLF, Value: "1002", Label: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts)
	body := string(b.get("/phones/001565aabbcc/edit").Body)
	if n := strings.Count(body, `type="submit">Save</button>`); n != 1 || strings.Contains(body, "Save line keys") || strings.Contains(body, `action="/phones/001565aabbcc/keys"`) {
		t.Fatalf("%d Save buttons, or a second form:\n%s", n, body)
	}
	if !strings.Contains(body, "data-dirty-warn") {
		t.Error("the form does not ask before leaving with unsaved changes")
	}
	acct := selected(t, body, "key_1")
	form := func(desc string, key4 string) url.Values {
		return url.Values{"layout": {"1"}, "mac": {"001565aabbcc"}, "name": {"Front desk"}, "description": {desc}, "location_id": {""},
			"manufacturer": {"Yealink"}, "model": {"T46G"}, "expansion_modules": {"0"}, "key_1": {acct}, "key_2": {acct}, "key_4": {key4}}
	}
	// A refused key: nothing saved, the description typed is kept.
	r := b.post("/phones/001565aabbcc", form("by the door", "999999"))
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "by the door") {
		t.Fatalf("refused key: %d\n%s", r.Status, r.Body)
	}
	if p, _ := ts.svc.Phones.FindPhone(ctx, "001565aabbcc"); p.Description != "" || p.Name != "001565aabbcc" {
		t.Fatalf("a refused form saved the settings: %+v", p)
	}
	// Both saved together.
	r = b.follow(b.post("/phones/001565aabbcc", form("by the door", fmt.Sprint(blf.ID))))
	if !strings.Contains(string(r.Body), "Device settings and line keys of Front desk saved") {
		t.Errorf("flash:\n%s", r.Body)
	}
	p, _ := ts.svc.Phones.FindPhone(ctx, "001565aabbcc")
	layout, _ := ts.svc.Phones.FindLayout(ctx, "001565aabbcc")
	if p.Description != "by the door" || len(layout) != 3 || layout[2].Position != 4 || layout[2].KeyID != blf.ID {
		t.Fatalf("after save: %+v %+v", p, layout)
	}
	// A refused setting: the keys are not saved either.
	bad := form("x", "")
	bad.Set("mac", "00:15:65:12:34:5G")
	if r := b.post("/phones/001565aabbcc", bad); r.Status != http.StatusBadRequest || !strings.Contains(fieldBlock(t, string(r.Body), "mac"), "not a MAC") {
		t.Fatalf("bad MAC: %d", r.Status)
	}
	if layout, _ := ts.svc.Phones.FindLayout(ctx, "001565aabbcc"); len(layout) != 3 {
		t.Fatalf("a refused MAC saved the keys: %+v", layout)
	}
}

// TestUIPhones_ConfigView: the phone page shows the line keys first, the
// unused positions and accounts folded, and what changed since the
// phone's last fetch (secrets masked on both sides).
func TestUIPhones_ConfigView(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", Registrar: "pbx.example.com"}, 0)
	ctx := t.Context()
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	b := newBrowser(t, ts)
	if body := string(b.get("/phones/001565aabbcc").Body); !strings.Contains(between(t, body, `id="config-diff"`, "</p>"), "has not fetched a config yet") {
		t.Errorf("before any fetch:\n%s", between(t, body, `id="config-masked"`, "</details>"))
	}
	ts.getAs(t, "GET", "/prov/001565aabbcc.cfg", "001565aabbcc")
	body := string(b.get("/phones/001565aabbcc").Body)
	if !strings.Contains(between(t, body, `id="config-diff"`, "</p>"), "The phone has this config") || strings.Contains(body, "<mark>") {
		t.Errorf("after the fetch:\n%s", between(t, body, `id="config-masked"`, "</details>"))
	}
	// Line keys first, unused positions and accounts folded.
	view := between(t, body, `id="config-masked"`, `id="config-plain"`)
	sections := regexp.MustCompile(`<details class="config-section"( open)?>\s*<summary>([^<]*)</summary>`).FindAllStringSubmatch(view, -1)
	if len(sections) < 4 || !strings.HasPrefix(sections[0][2], "Line keys 1..27") || sections[0][1] == "" {
		t.Fatalf("sections: %q", sections)
	}
	for _, s := range sections {
		if strings.HasPrefix(s[2], "Unused accounts") && s[1] != "" {
			t.Error("unused accounts are not folded")
		}
	}
	if !strings.Contains(view, "25 unused positions") {
		t.Error("the unused line keys are not folded")
	}

	// A BLF key and a new SIP password: both are listed as changed since
	// the fetch, the password masked.
	blf, _ := ts.svc.Keys.CreateKey(ctx, &appliance.Key{Type: appliance.KeyBLF, Value: "1002", Label: "Bob"})
	layout, _ := ts.svc.Phones.FindLayout(ctx, "001565aabbcc")
	ts.svc.Phones.ReplaceLayout(ctx, "001565aabbcc", append(layout, appliance.LayoutEntry{Position: 3, KeyID: blf.ID}))
	exts, _ := ts.svc.Extensions.FindExtensions(ctx)
	pw := "a-new-sip-password"
	ts.svc.Extensions.UpdateExtension(ctx, exts[0].ID, appliance.ExtensionUpdate{Password: &pw})
	body = string(b.get("/phones/001565aabbcc").Body)
	diff := between(t, body, `id="config-diff"`, "</table>")
	for _, want := range []string{"linekey.3.type</code></td><td><code>0</code></td><td><mark>16</mark>", "linekey.3.label</code></td><td><code>%NULL%</code></td><td><mark>Bob</mark>",
		"account.1.password</code></td><td><code>********</code></td><td><mark>********</mark>"} {
		if !strings.Contains(diff, want) {
			t.Errorf("changes lack %s:\n%s", want, diff)
		}
	}
	if strings.Contains(body[strings.Index(body, `id="config-masked"`):strings.Index(body, `id="config-plain"`)], pw) {
		t.Error("the new password shows unmasked")
	}
	if !strings.Contains(view, "linekey.3") || !strings.Contains(between(t, body, `<summary>Line keys`, "</details>"), "<mark>linekey.3.type = 16</mark>") {
		t.Error("the changed line key is not marked in the view")
	}
}
