package webui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Tests of the Locations page (ui_locations.go).

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
