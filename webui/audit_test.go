package webui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// TestAudit_API: a change made through the API is recorded as the Basic
// user's, with the phones it moved, in SPEC §4's shapes.
func TestAudit_API(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	e := ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	ts.call(t, "PATCH", fmt.Sprintf("/api/v1/extensions/%d", e.ID), map[string]any{"name": "Alice Smith", "password": "An0ther-sip-pw"}, 200, nil)

	var list []appliance.AuditEntry
	r := ts.call(t, "GET", "/api/v1/audit", nil, 200, &list)
	if len(list) < 3 {
		t.Fatalf("entries %+v", list)
	}
	got := list[0]
	if got.Actor != adminName || got.Action != "extension.update" || got.Object != "extension 1001 “Alice Smith”" || len(got.Phones) != 1 ||
		got.Phones[0].MAC != "001565aabbcc" || got.Phones[0].Version == "" {
		t.Fatalf("newest entry %+v", got)
	}
	want := map[appliance.AuditChange]bool{
		{Field: "name", Before: "Alice", After: "Alice Smith"}:                                  true,
		{Field: "password", Before: appliance.AuditSecret, After: appliance.AuditSecretChanged}: true,
	}
	for _, c := range got.Changes {
		delete(want, c)
	}
	if len(want) > 0 {
		t.Fatalf("changes %+v lack %+v", got.Changes, want)
	}
	for _, s := range []string{`"actor":"admin"`, `"reached_at":null`, `"confirmed_at":null`, `"changes":[`, `"field":"name"`} {
		if !strings.Contains(string(r.Body), s) {
			t.Errorf("answer lacks %s: %s", s, r.Body)
		}
	}
	for _, secret := range []string{"An0ther-sip-pw", "sip-1001"} {
		if strings.Contains(string(r.Body), secret) {
			t.Fatalf("secret %q in the answer: %s", secret, r.Body)
		}
	}

	// Filters and the cursor.
	ts.call(t, "GET", "/api/v1/audit?mac=00:15:65:AA:BB:CC&limit=1", nil, 200, &list)
	if len(list) != 1 || list[0].ID != got.ID {
		t.Fatalf("by phone: %+v", list)
	}
	ts.call(t, "GET", fmt.Sprintf("/api/v1/audit?before=%d&q=phone", got.ID), nil, 200, &list)
	if len(list) != 1 || list[0].Action != "phone.create" || list[0].Actor != adminName {
		t.Fatalf("older, q=phone: %+v", list)
	}
	for _, tc := range []struct{ query, field string }{
		{"before=x", "before"}, {"limit=100000", "limit"}, {"limit=-1", "limit"}, {"mac=nope", "mac"},
	} {
		r := ts.send(t, request{method: "GET", path: "/api/v1/audit?" + tc.query})
		if r.Status != http.StatusBadRequest || r.err(t).Field != tc.field {
			t.Errorf("%s: %d %s", tc.query, r.Status, r.Body)
		}
	}
	if r := ts.send(t, request{method: "GET", path: "/api/v1/audit", noAuth: true}); r.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", r.Status)
	}
}

var auditRowRe = regexp.MustCompile(`<tr id="audit-(\d+)">`)

// TestAudit_Page: the page lists changes newest first with who (the
// session's admin), when, before → after and the phones; its search is a
// link, and older changes are a page away.
func TestAudit_Page(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	// A change made in the browser is the session's admin's.
	if r := b.post("/extensions", url.Values{"number": {"1002"}, "name": {"Bob"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("add extension: %d %s", r.Status, r.Body)
	}
	list, err := ts.svc.Audit.FindAudit(context.Background(), appliance.AuditFilter{Limit: 1})
	if err != nil || len(list) != 1 || list[0].Actor != adminName || list[0].Action != "extension.create" {
		t.Fatalf("browser change: %+v %v", list, err)
	}

	r := b.get("/audit")
	body := string(r.Body)
	if r.Status != http.StatusOK {
		t.Fatalf("audit page: %d %s", r.Status, body)
	}
	for _, want := range []string{
		"<h1>Audit trail</h1>", `<label for="f-q">`, `<label for="f-mac">`,
		"extension.create", "extension 1002 “Bob”", "<strong>name</strong>: — → Bob",
		"phone.create", `<a href="/phones/001565aabbcc">00:15:65:aa:bb:cc</a>`, "1 phone: 1 waiting",
		"<td>" + adminName + "</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !regexp.MustCompile(`<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+</time>`).MatchString(body) {
		t.Errorf("no time with its zone:\n%s", body)
	}
	if i, j := strings.Index(body, "extension.create"), strings.Index(body, "phone.create"); i < 0 || j < 0 || i > j {
		t.Errorf("not newest first")
	}
	if strings.Contains(body, "Older changes") {
		t.Errorf("an older page for %d entries", len(auditRowRe.FindAllString(body, -1)))
	}

	// Searching by phone.
	r = b.get("/audit?mac=" + url.QueryEscape("00:15:65:AA:BB:CC"))
	if rows := auditRowRe.FindAllString(string(r.Body), -1); r.Status != http.StatusOK || len(rows) != 1 || !strings.Contains(string(r.Body), "phone.create") {
		t.Fatalf("by phone: %d rows %q", r.Status, rows)
	}
	r = b.get("/audit?mac=nope")
	if r.Status != http.StatusBadRequest || !strings.Contains(fieldBlock(t, string(r.Body), "mac"), `class="err"`) {
		t.Fatalf("bad MAC: %d\n%s", r.Status, r.Body)
	}

	// More than a page: 50 a page, then "Older changes" keeps the search.
	ctx := appliance.WithActor(context.Background(), "script")
	for i := range appliance.AuditPage + 5 {
		if _, err := ts.svc.Locations.CreateLocation(ctx, &appliance.Location{Name: fmt.Sprint("Room ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	r = b.get("/audit?q=script")
	rows := auditRowRe.FindAllStringSubmatch(string(r.Body), -1)
	if len(rows) != appliance.AuditPage {
		t.Fatalf("%d rows on the first page", len(rows))
	}
	m := regexp.MustCompile(`href="(/audit\?[^"]*before=[^"]*)"`).FindStringSubmatch(string(r.Body))
	if m == nil {
		t.Fatal("no older page link")
	}
	older := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.Contains(older, "q=script") || !strings.Contains(older, "before="+rows[len(rows)-1][1]) {
		t.Fatalf("older link %s", older)
	}
	r = b.get(older)
	if rows := auditRowRe.FindAllString(string(r.Body), -1); len(rows) != 5 || strings.Contains(string(r.Body), "Older changes") {
		t.Fatalf("older page: %d rows", len(rows))
	}

	anon := &browser{t: t, ts: ts, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if r := anon.get("/audit"); r.Status != http.StatusSeeOther {
		t.Fatalf("anonymous: %d", r.Status)
	}
}
