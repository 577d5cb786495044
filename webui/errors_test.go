package webui_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/webui"
)

// brokenLocations fails every read with an error that is not the
// domain's: an internal error, whose details must reach the log only.
type brokenLocations struct{ appliance.LocationService }

var errDiskOnFire = errors.New("read /var/lib/provbox/provbox.db: disk on fire")

func (brokenLocations) FindLocations(context.Context) ([]*appliance.Location, error) {
	return nil, errDiskOnFire
}

func (brokenLocations) FindLocation(context.Context, int64) (*appliance.Location, error) {
	return nil, errDiskOnFire
}

// TestErrors_OnePath: every error goes through one table and one answer:
// JSON under /api/, an HTML page on the admin pages (never JSON there),
// internal details only in the log.
func TestErrors_OnePath(t *testing.T) {
	ts := MustOpenServer(t, func(s *webui.Server) {
		s.Services.Locations = brokenLocations{s.Services.Locations}
	})
	b := newBrowser(t, ts)
	ext := ts.mustExtension(t, "1001", "Alice")
	extPath := "/extensions/" + strconvI(ext.ID)
	for _, tc := range []struct {
		name, method, path string
		api                bool
		status             int
		body               string // part of the page, or the JSON "error"
		field              string // the JSON "field"
	}{
		{"page: internal error", "GET", "/locations", false, 500, "Something went wrong", ""},
		{"page: internal error of a lookup", "GET", "/locations/1", false, 500, "Something went wrong", ""},
		{"page: unknown id", "GET", "/extensions/999", false, 404, "extension not found", ""},
		{"page: malformed id", "GET", "/extensions/abc", false, 404, "/extensions/abc: no such page", ""},
		{"page: malformed MAC", "GET", "/phones/zz", false, 404, "/phones/zz: no such page", ""},
		{"page: unknown admin", "POST", "/users/nobody/delete", false, 404, "nobody", ""},
		{"page: stale form", "POST", extPath + "/delete?csrf=x", false, 403, "this form is stale", ""},
		{"page: bad query", "GET", "/phones?sort=colour", false, 400, "sort: ", ""},
		{"API: internal error", "GET", "/api/v1/locations", true, 500, "internal error", ""},
		{"API: unknown id", "GET", "/api/v1/extensions/999", true, 404, "extension not found", "id"},
		{"API: malformed id", "GET", "/api/v1/extensions/abc", true, 400, "is not an id", "id"},
		{"API: malformed MAC", "GET", "/api/v1/phones/zz/sync", true, 400, "not a MAC address", "mac"},
		{"API: no such endpoint", "GET", "/api/v1/nope", true, 404, "no such endpoint", ""},
		{"API: duplicate", "POST", "/api/v1/extensions", true, 409, "1001", "number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			switch {
			case tc.api && tc.method == "POST":
				r = ts.send(t, request{method: tc.method, path: tc.path, body: map[string]any{"number": "1001"}})
			case tc.api:
				r = ts.send(t, request{method: tc.method, path: tc.path})
			case tc.method == "POST" && strings.Contains(tc.path, "csrf="):
				path, _, _ := strings.Cut(tc.path, "?")
				r = b.post(path, url.Values{"csrf": {"forged"}})
			case tc.method == "POST":
				r = b.post(tc.path, nil)
			default:
				r = b.get(tc.path)
			}
			ct := r.Header.Get("Content-Type")
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if strings.Contains(string(r.Body), "disk on fire") {
				t.Fatalf("the internal error's details reached the client: %s", r.Body)
			}
			if !tc.api {
				if !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(r.Body), tc.body) {
					t.Fatalf("%s, want an HTML page with %q: %s", ct, tc.body, r.Body)
				}
				return
			}
			if e := r.err(t); !strings.HasPrefix(ct, "application/json") || !strings.Contains(e.Error, tc.body) || e.Field != tc.field {
				t.Fatalf("%s %+v, want JSON with %q at field %q", ct, e, tc.body, tc.field)
			}
		})
	}
	if !strings.Contains(ts.logs.String(), "disk on fire") {
		t.Error("the internal error is not in the log")
	}
}

// countingPhones and countingKeys count the reads that load many rows.
type countingPhones struct {
	appliance.PhoneService
	all, one *atomic.Int64
}

func (c countingPhones) FindPhones(ctx context.Context, f appliance.PhoneFilter) ([]*appliance.Phone, error) {
	c.all.Add(1)
	return c.PhoneService.FindPhones(ctx, f)
}

func (c countingPhones) FindPhone(ctx context.Context, mac string) (*appliance.Phone, error) {
	c.one.Add(1)
	return c.PhoneService.FindPhone(ctx, mac)
}

type countingKeys struct {
	appliance.KeyService
	finds *atomic.Int64
}

func (c countingKeys) FindKeys(ctx context.Context, f appliance.KeyFilter) ([]*appliance.Key, error) {
	c.finds.Add(1)
	return c.KeyService.FindKeys(ctx, f)
}

// TestUIKeys_EditOnManyPhonesReadsLittle: the flash after editing a key
// names its first 10 phones without loading every phone, and the list
// reads the keys once (twice only when searching by value or label).
func TestUIKeys_EditOnManyPhonesReadsLittle(t *testing.T) {
	var all, one, finds atomic.Int64
	ts := MustOpenServer(t, func(s *webui.Server) {
		s.Services.Phones = countingPhones{s.Services.Phones, &all, &one}
		s.Services.Keys = countingKeys{s.Services.Keys, &finds}
	})
	b := newBrowser(t, ts)
	blf := ts.mustKey(t, "blf", "1002", "Bob")
	ts.mustKey(t, "speed_dial", "5551234", "Pizza")
	ts.mustExtension(t, "1001", "Alice")
	for i := range 12 {
		mac := fmt.Sprintf("0015650000%02d", i+10)
		ts.mustPhone(t, mac, "T46G", "1001")
		var layout []map[string]any
		ts.call(t, "GET", "/api/v1/phones/"+mac+"/keys", nil, 200, &layout)
		layout = append(layout, map[string]any{"position": 3, "key_id": blf.ID})
		ts.call(t, "PUT", "/api/v1/phones/"+mac+"/keys", layout, 200, nil)
	}

	all.Store(0)
	one.Store(0)
	r := b.post("/keys/"+strconvI(blf.ID), url.Values{"type": {"blf"}, "value": {"1002"}, "label": {"Bobby"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	if all.Load() != 0 || one.Load() > 10 {
		t.Errorf("the flash read %d phone lists and %d phones, want 0 and at most 10", all.Load(), one.Load())
	}
	flash := b.get("/keys").Body
	for _, want := range []string{"Its 12 phones are being updated: 00:15:65:00:00:10, ", "00:15:65:00:00:19, and 2 more."} {
		if !strings.Contains(string(flash), want) {
			t.Errorf("flash lacks %q", want)
		}
	}

	for _, tc := range []struct {
		query string
		reads int64
		shown string
	}{
		{"", 1, "3 keys."},
		{"?accounts=hide&attached=true", 1, "1 key shown of 3."},
		{"?type=speed_dial", 1, "1 key shown of 3."},
		{"?q=pizz", 2, "1 key shown of 3."},
	} {
		finds.Store(0)
		body := string(b.get("/keys" + tc.query).Body)
		if finds.Load() != tc.reads || !strings.Contains(body, tc.shown) {
			t.Errorf("/keys%s: %d reads of the keys, want %d; says %q: %v", tc.query, finds.Load(), tc.reads, tc.shown, strings.Contains(body, tc.shown))
		}
	}
}
