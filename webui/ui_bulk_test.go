package webui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// TestUIPhones_ListSortsPagesFilters: 60 phones are listed 50 a page,
// sorted by a column (both ways), filtered by text and by state.
func TestUIPhones_ListSortsPagesFilters(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", Registrar: "pbx.example.com"}, 0)
	ts.mustExtension(t, "1001", "Alice")
	for i := 1; i <= 60; i++ {
		ext := "1001"
		if i%10 == 0 {
			ext = "" // no account key: not ready
		}
		ts.call(t, "POST", "/api/v1/phones", map[string]any{"mac": fmt.Sprintf("0015650000%02x", i), "model": "T46G",
			"name": fmt.Sprintf("Desk %02d", i), "extension": ext}, 201, nil)
	}
	b := newBrowser(t, ts)
	names := func(body string) []string {
		var out []string
		rows := between(t, body, "<tbody>", "</tbody>")
		for _, part := range strings.Split(rows, `">Desk `)[1:] {
			out = append(out, "Desk "+part[:2])
		}
		return out
	}
	for _, tc := range []struct {
		path        string
		n           int
		first, last string
		text        string
	}{
		{"/phones", 50, "Desk 01", "Desk 50", "Phones 1–50 of 60"},
		{"/phones?page=2", 10, "Desk 51", "Desk 60", "Phones 51–60 of 60"},
		{"/phones?sort=name&dir=desc", 50, "Desk 60", "Desk 11", `aria-sort="descending"`},
		{"/phones?state=not_ready", 6, "Desk 10", "Desk 60", "(60 in all)"},
		{"/phones?q=Desk+0", 9, "Desk 01", "Desk 09", "Phones 1–9 of 9"},
	} {
		body := string(b.get(tc.path).Body)
		got := names(body)
		if len(got) != tc.n || got[0] != tc.first || got[len(got)-1] != tc.last || !strings.Contains(body, tc.text) {
			t.Errorf("%s: %d rows %v…, want %d %s…%s and %q", tc.path, len(got), got[:min(3, len(got))], tc.n, tc.first, tc.last, tc.text)
		}
	}
	for _, bad := range []struct{ query, field string }{{"state=bogus", "state"}, {"sort=colour", "sort"}, {"dir=up", "dir"}, {"page=x", "page"}} {
		if r := b.get("/phones?" + bad.query); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), bad.field) {
			t.Errorf("/phones?%s: %d %s", bad.query, r.Status, r.Body)
		}
	}
	if body := string(b.get("/phones").Body); !strings.Contains(body, `href="/phones?page=2" rel="next"`) || !strings.Contains(body, `href="/phones?dir=desc&amp;sort=name"`) {
		t.Error("no next-page or sort-descending link")
	}
}

// TestUIPhones_BulkActions: resync, set location, copy line keys and
// delete (after a confirmation naming them) act on the ticked phones, in
// one transaction each.
func TestUIPhones_BulkActions(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}, 0)
	ctx := t.Context()
	ts.mustExtension(t, "1001", "Alice")
	ts.mustExtension(t, "1002", "Bob")
	macs := []string{"001565000001", "001565000002", "001565000003", "001565000004"}
	for _, m := range macs {
		ts.mustPhone(t, m, "T46G", "1001")
	}
	for _, m := range macs[:3] {
		ts.getAs(t, "GET", "/prov/"+m+".cfg", m) // fetched: can be told to resync
	}
	b := newBrowser(t, ts)
	post := func(form url.Values) response {
		t.Helper()
		form.Set("back", "/phones")
		return b.follow(b.post("/phones/bulk", form))
	}
	sub := ts.svc.Events.Subscribe(16, appliance.EventResync)
	defer sub.Close()
	body := string(post(url.Values{"action": {"resync"}, "mac": macs}).Body)
	if !strings.Contains(body, "Resync sent to 3 phones") || !strings.Contains(body, "Not sent to 00:15:65:00:00:04") {
		t.Errorf("resync flash:\n%s", between(t, body, `class="flash`, "</div>"))
	}
	if ev := <-sub.C; len(ev.MACs) != 3 {
		t.Errorf("resync event for %v", ev.MACs)
	}

	loc, err := ts.svc.Locations.CreateLocation(ctx, &appliance.Location{Name: "HQ", Street: "1 Main St", City: "Springfield", Country: "US"})
	if err != nil {
		t.Fatal(err)
	}
	post(url.Values{"action": {"location"}, "location_id": {fmt.Sprint(loc.ID)}, "mac": macs[:2]})
	for i, m := range macs {
		p, _ := ts.svc.Phones.FindPhone(ctx, m)
		if at := p.LocationID != nil && *p.LocationID == loc.ID; at != (i < 2) {
			t.Errorf("%s at HQ: %v", m, at)
		}
	}

	// Copy the keys of phone 1 (given a BLF) to 2 and 3.
	blf, err := ts.svc.Keys.CreateKey(ctx, &appliance.Key{Type: appliance.KeyBLF, Value: "1002", Label: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	layout, _ := ts.svc.Phones.FindLayout(ctx, macs[0])
	layout = append(layout, appliance.LayoutEntry{Position: 5, KeyID: blf.ID})
	if _, err := ts.svc.Phones.ReplaceLayout(ctx, macs[0], layout); err != nil {
		t.Fatal(err)
	}
	body = string(post(url.Values{"action": {"copy"}, "from": {macs[0]}, "mac": {macs[0], macs[1], macs[2]}}).Body)
	if !strings.Contains(body, "copied to 2 phones") {
		t.Errorf("copy flash:\n%s", between(t, body, `class="flash`, "</div>"))
	}
	for _, m := range macs[1:3] {
		if l, _ := ts.svc.Phones.FindLayout(ctx, m); len(l) != 3 || l[2].KeyID != blf.ID {
			t.Errorf("%s layout %+v", m, l)
		}
	}
	// A copy that does not fit one phone (a T46G's 27 keys onto a T19P
	// E2's none… here: a key on position 20 onto a T42S with 15) changes none.
	ts.call(t, "POST", "/api/v1/phones", map[string]any{"mac": "001565000005", "model": "T42S", "extension": "1001"}, 201, nil)
	layout = append(layout, appliance.LayoutEntry{Position: 20, KeyID: blf.ID})
	if _, err := ts.svc.Phones.ReplaceLayout(ctx, macs[0], layout); err != nil {
		t.Fatal(err)
	}
	body = string(post(url.Values{"action": {"copy"}, "from": {macs[0]}, "mac": {macs[1], "001565000005"}}).Body)
	if !strings.Contains(body, "Nothing changed") || !strings.Contains(body, "00:15:65:00:00:05") {
		t.Errorf("refused copy flash:\n%s", between(t, body, `class="flash`, "</div>"))
	}
	if l, _ := ts.svc.Phones.FindLayout(ctx, macs[1]); len(l) != 3 {
		t.Errorf("a refused bulk copy changed %s: %+v", macs[1], l)
	}

	// Delete asks first, naming the phones; only the confirmation deletes.
	r := b.post("/phones/bulk", url.Values{"action": {"delete"}, "mac": macs[2:], "back": {"/phones"}})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Delete 2 phones?") || !strings.Contains(string(r.Body), "00:15:65:00:00:04") {
		t.Fatalf("delete confirmation %d:\n%s", r.Status, r.Body)
	}
	if phones, _ := ts.svc.Phones.FindPhones(ctx, appliance.PhoneFilter{}); len(phones) != 5 {
		t.Fatalf("deleted before the confirmation: %d phones", len(phones))
	}
	post(url.Values{"action": {"delete"}, "confirm": {"yes"}, "mac": macs[2:]})
	if phones, _ := ts.svc.Phones.FindPhones(ctx, appliance.PhoneFilter{}); len(phones) != 3 {
		t.Fatalf("after delete: %d phones", len(phones))
	}
	// Without a CSRF token nothing happens.
	if r := b.post("/phones/bulk", url.Values{"csrf": {"forged"}, "action": {"delete"}, "confirm": {"yes"}, "mac": macs[:1]}); r.Status != http.StatusForbidden {
		t.Errorf("no CSRF: %d", r.Status)
	}
}
