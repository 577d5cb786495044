package webui_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

func TestExtensions_CRUD(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)

	var e appliance.Extension
	r := ts.call(t, "POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "s3cret-pw"}, 201, &e)
	if e.ID == 0 || e.Number != "1001" || e.AuthUser != "1001" || e.Transport != "udp" || !e.PasswordSet || e.AccountKey == 0 {
		t.Fatalf("created %+v", e)
	}
	if strings.Contains(string(r.Body), "s3cret-pw") || strings.Contains(string(r.Body), `"password"`) {
		t.Fatalf("password in the answer: %s", r.Body)
	}

	var list []appliance.Extension
	ts.call(t, "GET", "/api/v1/extensions", nil, 200, &list)
	if len(list) != 1 || list[0].ID != e.ID {
		t.Fatalf("list %+v", list)
	}

	var got appliance.Extension
	ts.call(t, "GET", fmt.Sprintf("/api/v1/extensions/%d", e.ID), nil, 200, &got)
	if got != e {
		t.Fatalf("get %+v, want %+v", got, e)
	}

	ts.call(t, "PATCH", fmt.Sprintf("/api/v1/extensions/%d", e.ID), map[string]any{"name": "Alice Smith", "transport": "TCP"}, 200, &got)
	if got.Name != "Alice Smith" || got.Transport != "tcp" || got.Number != "1001" {
		t.Fatalf("patched %+v", got)
	}
	// The account key follows the extension's name.
	var k appliance.Key
	ts.call(t, "GET", fmt.Sprintf("/api/v1/keys/%d", e.AccountKey), nil, 200, &k)
	if k.Type != appliance.KeyAccount || k.Label != "Alice Smith" || k.Value != "1001" {
		t.Fatalf("account key %+v", k)
	}

	ts.call(t, "DELETE", fmt.Sprintf("/api/v1/extensions/%d", e.ID), nil, 204, nil)
	ts.call(t, "GET", fmt.Sprintf("/api/v1/extensions/%d", e.ID), nil, 404, nil)
	ts.call(t, "GET", fmt.Sprintf("/api/v1/keys/%d", e.AccountKey), nil, 404, nil)
	ts.call(t, "GET", "/api/v1/extensions", nil, 200, &list)
	if len(list) != 0 {
		t.Fatalf("list after delete %+v", list)
	}
}

func TestLocations_CRUD(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	var l appliance.Location
	ts.call(t, "POST", "/api/v1/locations", map[string]any{
		"name": "HQ", "street": "1 Main St", "city": "Springfield", "region": "IL",
		"postal_code": "62701", "country": "US", "callback_number": "+15551234567",
	}, 201, &l)
	if l.ID == 0 || l.Name != "HQ" || l.CallbackNumber != "+15551234567" {
		t.Fatalf("created %+v", l)
	}
	var list []appliance.Location
	ts.call(t, "GET", "/api/v1/locations", nil, 200, &list)
	if len(list) != 1 || list[0] != l {
		t.Fatalf("list %+v", list)
	}
	var got appliance.Location
	ts.call(t, "GET", fmt.Sprintf("/api/v1/locations/%d", l.ID), nil, 200, &got)
	if got != l {
		t.Fatalf("get %+v", got)
	}
	ts.call(t, "PATCH", fmt.Sprintf("/api/v1/locations/%d", l.ID), map[string]any{"city": "Shelbyville"}, 200, &got)
	if got.City != "Shelbyville" || got.Street != "1 Main St" {
		t.Fatalf("patched %+v", got)
	}
	ts.call(t, "DELETE", fmt.Sprintf("/api/v1/locations/%d", l.ID), nil, 204, nil)
	ts.call(t, "GET", fmt.Sprintf("/api/v1/locations/%d", l.ID), nil, 404, nil)
}

func TestPhones_CRUD(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	e := ts.mustExtension(t, "1001", "Alice")
	loc := ts.mustLocation(t, "HQ")

	var p appliance.Phone
	ts.call(t, "POST", "/api/v1/phones", map[string]any{
		"mac": "00-15-65-AA-BB-CC", "manufacturer": "yealink", "model": "T-46g",
		"description": "front desk", "location_id": loc.ID, "extension": "1001",
	}, 201, &p)
	if p.MAC != "001565aabbcc" || p.Name != "001565aabbcc" || p.Manufacturer != "Yealink" || p.Model != "T46G" ||
		p.LocationID == nil || *p.LocationID != loc.ID || p.Sync.State != appliance.SyncNew {
		t.Fatalf("created %+v", p)
	}

	// Addressed by MAC in every accepted notation.
	for _, mac := range []string{"001565aabbcc", "00:15:65:AA:BB:CC", "00-15-65-aa-bb-cc", "0015.65aa.bbcc"} {
		var got appliance.Phone
		ts.call(t, "GET", "/api/v1/phones/"+mac, nil, 200, &got)
		if got.ID != p.ID {
			t.Fatalf("GET %s: %+v", mac, got)
		}
	}

	// The extension's account key sits at positions 1 and 2.
	var layout []appliance.LayoutEntry
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/keys", nil, 200, &layout)
	want := []appliance.LayoutEntry{
		{Position: 1, KeyID: e.AccountKey, Type: "account", Value: "1001", Label: "Alice"},
		{Position: 2, KeyID: e.AccountKey, Type: "account", Value: "1001", Label: "Alice"},
	}
	if !slices.Equal(layout, want) {
		t.Fatalf("layout %+v, want %+v", layout, want)
	}

	ts.mustPhone(t, "00:15:65:11:22:33", "T54W", "")
	var list []appliance.Phone
	ts.call(t, "GET", "/api/v1/phones", nil, 200, &list)
	if len(list) != 2 {
		t.Fatalf("list %+v", list)
	}
	ts.call(t, "GET", "/api/v1/phones?q=front", nil, 200, &list)
	if len(list) != 1 || list[0].MAC != "001565aabbcc" {
		t.Fatalf("q=front: %+v", list)
	}

	var got appliance.Phone
	ts.call(t, "PATCH", "/api/v1/phones/00:15:65:aa:bb:cc", map[string]any{"name": "Reception", "location_id": 0}, 200, &got)
	if got.Name != "Reception" || got.LocationID != nil || got.Description != "front desk" {
		t.Fatalf("patched %+v", got)
	}

	ts.call(t, "DELETE", "/api/v1/phones/0015.65aa.bbcc", nil, 204, nil)
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc", nil, 404, nil)
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/keys", nil, 404, nil)
}

func TestPhones_Layout(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	alice := ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "")
	blf := ts.mustKey(t, "blf", "1002", "Bob")

	var layout []appliance.LayoutEntry
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/keys", nil, 200, &layout)
	if layout == nil || len(layout) != 0 {
		t.Fatalf("empty layout: %#v", layout)
	}

	// Sent out of order; answered sorted, with the keys' details.
	ts.call(t, "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{
		{"position": 3, "key_id": blf.ID}, {"position": 1, "key_id": alice.AccountKey},
	}, 200, &layout)
	want := []appliance.LayoutEntry{
		{Position: 1, KeyID: alice.AccountKey, Type: "account", Value: "1001", Label: "Alice"},
		{Position: 3, KeyID: blf.ID, Type: "blf", Value: "1002", Label: "Bob"},
	}
	if !slices.Equal(layout, want) {
		t.Fatalf("PUT answered %+v, want %+v", layout, want)
	}

	// What GET answers can be sent back as is.
	var again []appliance.LayoutEntry
	r := ts.call(t, "GET", "/api/v1/phones/001565aabbcc/keys", nil, 200, nil)
	ts.call(t, "PUT", "/api/v1/phones/001565aabbcc/keys", r.Body, 200, &again)
	if !slices.Equal(again, want) {
		t.Fatalf("round trip %+v", again)
	}

	var k appliance.Key
	ts.call(t, "GET", fmt.Sprintf("/api/v1/keys/%d", blf.ID), nil, 200, &k)
	if !slices.Equal(k.AttachedTo, []string{"001565aabbcc"}) {
		t.Fatalf("attached_to %v", k.AttachedTo)
	}

	// An empty array clears the layout.
	ts.call(t, "PUT", "/api/v1/phones/001565aabbcc/keys", []any{}, 200, &layout)
	if len(layout) != 0 {
		t.Fatalf("cleared layout %+v", layout)
	}
}

func TestKeys_CRUD(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	alice := ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")

	var k appliance.Key
	ts.call(t, "POST", "/api/v1/keys", map[string]any{"type": "speed_dial", "value": "5551234"}, 201, &k)
	if k.ID == 0 || k.Type != "speed_dial" || k.Label != "5551234" {
		t.Fatalf("created %+v", k)
	}
	r := ts.call(t, "GET", fmt.Sprintf("/api/v1/keys/%d", k.ID), nil, 200, nil)
	if !strings.Contains(string(r.Body), `"attached_to":[]`) {
		t.Errorf("unattached key: %s", r.Body)
	}
	park := ts.mustKey(t, "park", "*701", "Park 1")

	var got appliance.Key
	ts.call(t, "PATCH", fmt.Sprintf("/api/v1/keys/%d", k.ID), map[string]any{"label": "Pizza"}, 200, &got)
	if got.Label != "Pizza" || got.Value != "5551234" {
		t.Fatalf("patched %+v", got)
	}

	ids := func(path string) []int64 {
		t.Helper()
		var keys []appliance.Key
		ts.call(t, "GET", path, nil, 200, &keys)
		var out []int64
		for _, k := range keys {
			out = append(out, k.ID)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"", []int64{alice.AccountKey, k.ID, park.ID}},
		{"?type=park", []int64{park.ID}},
		{"?type=account", []int64{alice.AccountKey}},
		{"?value=5551234", []int64{k.ID}},
		{"?label=Pizza", []int64{k.ID}},
		{"?q=piz", []int64{k.ID}},
		{"?q=701", []int64{park.ID}},
		{"?attached=true", []int64{alice.AccountKey}},
		{"?attached=false", []int64{k.ID, park.ID}},
		{"?type=park&attached=true", nil},
	} {
		t.Run("filter"+tc.query, func(t *testing.T) {
			if got := ids("/api/v1/keys" + tc.query); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	ts.call(t, "DELETE", fmt.Sprintf("/api/v1/keys/%d", k.ID), nil, 204, nil)
	ts.call(t, "GET", fmt.Sprintf("/api/v1/keys/%d", k.ID), nil, 404, nil)
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ext := ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	blf := ts.mustKey(t, "blf", "1002", "")
	keyPath := fmt.Sprintf("/api/v1/keys/%d", blf.ID)
	extPath := fmt.Sprintf("/api/v1/extensions/%d", ext.ID)

	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		wantField    string
		wantInError  string
	}{
		{"bad MAC", "POST", "/api/v1/phones", map[string]any{"mac": "00:15:65:aa:bb", "model": "T46G"}, "mac", "not a MAC address"},
		{"multicast MAC", "POST", "/api/v1/phones", map[string]any{"mac": "01:00:5e:00:00:01", "model": "T46G"}, "mac", "multicast"},
		{"unsupported model", "POST", "/api/v1/phones", map[string]any{"mac": "001565000001", "model": "T99X"}, "model", "T46G"},
		{"unsupported manufacturer", "POST", "/api/v1/phones", map[string]any{"mac": "001565000001", "manufacturer": "Cisco", "model": "7960"}, "manufacturer", ""},
		{"unknown extension", "POST", "/api/v1/phones", map[string]any{"mac": "001565000001", "model": "T46G", "extension": "9999"}, "extension", "9999"},
		{"unknown location", "POST", "/api/v1/phones", map[string]any{"mac": "001565000001", "model": "T46G", "location_id": 42}, "location_id", ""},
		{"read-only sync", "POST", "/api/v1/phones", map[string]any{"mac": "001565000001", "model": "T46G", "sync": map[string]any{"state": "synced"}}, "sync", "unknown field"},
		{"read-only id", "POST", "/api/v1/phones", map[string]any{"id": 7, "mac": "001565000001", "model": "T46G"}, "id", "unknown field"},
		{"bad MAC in path", "GET", "/api/v1/phones/zz:15:65:aa:bb:cc", nil, "mac", ""},
		{"bad MAC in PATCH", "PATCH", "/api/v1/phones/001565aabbcc", map[string]any{"mac": "nope"}, "mac", ""},
		{"bad key value", "POST", "/api/v1/keys", map[string]any{"type": "speed_dial", "value": "call mom"}, "value", "dial string"},
		{"bad key type", "POST", "/api/v1/keys", map[string]any{"type": "intercom", "value": "1"}, "type", ""},
		{"account key by hand", "POST", "/api/v1/keys", map[string]any{"type": "account", "value": "1003"}, "type", ""},
		{"label with newline", "POST", "/api/v1/keys", map[string]any{"type": "speed_dial", "value": "1", "label": "a\nb"}, "label", ""},
		{"bad blf value in PATCH", "PATCH", keyPath, map[string]any{"value": "bob@"}, "value", ""},
		{"read-only attached_to", "POST", "/api/v1/keys", map[string]any{"type": "park", "value": "1", "attached_to": []string{}}, "attached_to", ""},
		{"layout position out of range", "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{{"position": 28, "key_id": ext.AccountKey}}, "keys[0].position", "1..27"},
		{"layout position zero", "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{{"position": 1, "key_id": ext.AccountKey}, {"position": 0, "key_id": blf.ID}}, "keys[0].position", ""},
		{"layout without account key", "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{{"position": 1, "key_id": blf.ID}}, "keys", "account key"},
		{"layout unknown key", "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{{"position": 1, "key_id": 9999}}, "keys[0].key_id", ""},
		{"layout duplicate position", "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{{"position": 1, "key_id": ext.AccountKey}, {"position": 1, "key_id": blf.ID}}, "keys[1].position", ""},
		{"layout not an array", "PUT", "/api/v1/phones/001565aabbcc/keys", map[string]any{"position": 1}, "body", "array"},
		{"layout wrong type", "PUT", "/api/v1/phones/001565aabbcc/keys", `[{"position":"one","key_id":1}]`, "position", "integer"},
		{"bad extension number", "POST", "/api/v1/extensions", map[string]any{"number": "10 01"}, "number", ""},
		{"missing extension number", "POST", "/api/v1/extensions", map[string]any{"name": "Nobody"}, "number", "required"},
		{"bad transport", "PATCH", extPath, map[string]any{"transport": "sctp"}, "transport", "udp, tcp, tls"},
		{"bad sip server", "POST", "/api/v1/extensions", map[string]any{"number": "1005", "sip_server": "pbx:99999"}, "sip_server", ""},
		{"read-only password_set", "POST", "/api/v1/extensions", map[string]any{"number": "1005", "password_set": true}, "password_set", "unknown field"},
		{"number of wrong type", "POST", "/api/v1/extensions", map[string]any{"number": 1005}, "number", "must be a string"},
		{"location without name", "POST", "/api/v1/locations", map[string]any{"city": "X"}, "name", "required"},
		{"bad callback number", "POST", "/api/v1/locations", map[string]any{"name": "X", "callback_number": "call me"}, "callback_number", ""},
		{"location id of wrong type", "PATCH", "/api/v1/phones/001565aabbcc", map[string]any{"location_id": "HQ"}, "location_id", "integer"},
		{"unknown field in PATCH", "PATCH", keyPath, map[string]any{"colour": "red"}, "colour", "unknown field"},
		{"bad JSON", "POST", "/api/v1/keys", `{"type": "park",`, "body", ""},
		{"JSON syntax error", "POST", "/api/v1/keys", `{"type" "park"}`, "body", "invalid JSON"},
		{"trailing data", "POST", "/api/v1/keys", `{"type": "park", "value": "1"} {"type": "park"}`, "body", "after the JSON value"},
		{"trailing garbage", "POST", "/api/v1/keys", `{"type": "park", "value": "1"}]`, "body", "after the JSON value"},
		{"empty body", "POST", "/api/v1/locations", "", "body", "empty"},
		{"array instead of object", "POST", "/api/v1/locations", `[]`, "body", "object"},
		{"bad id", "GET", "/api/v1/keys/abc", nil, "id", "not an id"},
		{"negative id", "DELETE", "/api/v1/extensions/-1", nil, "id", ""},
		{"zero id", "PATCH", "/api/v1/locations/0", map[string]any{}, "id", ""},
		{"bad force", "DELETE", keyPath + "?force=maybe", nil, "force", ""},
		{"bad attached", "GET", "/api/v1/keys?attached=maybe", nil, "attached", ""},
		{"bad dry_run", "POST", "/api/v1/phones.csv?dry_run=perhaps", "mac,model\n", "dry_run", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.send(t, request{method: tc.method, path: tc.path, body: tc.body})
			if r.Status != 400 {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
			}
			e := r.err(t)
			if e.Field != tc.wantField {
				t.Errorf("field %q, want %q (error %q)", e.Field, tc.wantField, e.Error)
			}
			if !strings.Contains(e.Error, tc.wantInError) {
				t.Errorf("error %q lacks %q", e.Error, tc.wantInError)
			}
		})
	}

	// Nothing above changed anything.
	var phones []appliance.Phone
	ts.call(t, "GET", "/api/v1/phones", nil, 200, &phones)
	if len(phones) != 1 {
		t.Fatalf("phones %+v", phones)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/extensions/999", nil},
		{"PATCH", "/api/v1/extensions/999", map[string]any{"name": "x"}},
		{"DELETE", "/api/v1/extensions/999", nil},
		{"GET", "/api/v1/locations/999", nil},
		{"PATCH", "/api/v1/locations/999", map[string]any{"name": "x"}},
		{"DELETE", "/api/v1/locations/999", nil},
		{"GET", "/api/v1/keys/999", nil},
		{"PATCH", "/api/v1/keys/999", map[string]any{"label": "x"}},
		{"DELETE", "/api/v1/keys/999?force=true", nil},
		{"GET", "/api/v1/phones/00:15:65:00:00:99", nil},
		{"PATCH", "/api/v1/phones/001565000099", map[string]any{"name": "x"}},
		{"DELETE", "/api/v1/phones/001565000099", nil},
		{"GET", "/api/v1/phones/001565000099/keys", nil},
		{"PUT", "/api/v1/phones/001565000099/keys", []any{}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := ts.send(t, request{method: tc.method, path: tc.path, body: tc.body})
			if r.Status != 404 {
				t.Fatalf("status %d, want 404: %s", r.Status, r.Body)
			}
			r.err(t)
		})
	}
}

func TestConflict(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	alice := ts.mustExtension(t, "1001", "Alice")
	loc := ts.mustLocation(t, "HQ")
	var p appliance.Phone
	ts.call(t, "POST", "/api/v1/phones", map[string]any{"mac": "001565aabbcc", "name": "Front desk", "model": "T46G", "extension": "1001", "location_id": loc.ID}, 201, &p)
	blf := ts.mustKey(t, "blf", "1002", "Bob")
	ts.call(t, "PUT", "/api/v1/phones/001565aabbcc/keys", []map[string]any{
		{"position": 1, "key_id": alice.AccountKey}, {"position": 2, "key_id": blf.ID},
	}, 200, nil)

	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		wantInError  string
	}{
		{"duplicate MAC", "POST", "/api/v1/phones", map[string]any{"mac": "00:15:65:AA:BB:CC", "model": "T54W"}, "00:15:65:aa:bb:cc"},
		{"duplicate number", "POST", "/api/v1/extensions", map[string]any{"number": "1001"}, "1001"},
		{"duplicate location", "POST", "/api/v1/locations", map[string]any{"name": "HQ"}, "HQ"},
		{"key in use", "DELETE", fmt.Sprintf("/api/v1/keys/%d", blf.ID), nil, "Front desk (00:15:65:aa:bb:cc)"},
		{"extension in use", "DELETE", fmt.Sprintf("/api/v1/extensions/%d", alice.ID), nil, "Front desk (00:15:65:aa:bb:cc)"},
		{"location in use", "DELETE", fmt.Sprintf("/api/v1/locations/%d", loc.ID), nil, "Front desk (00:15:65:aa:bb:cc)"},
		{"account key deleted directly", "DELETE", fmt.Sprintf("/api/v1/keys/%d?force=true", alice.AccountKey), nil, "account key"},
		{"account key edited directly", "PATCH", fmt.Sprintf("/api/v1/keys/%d", alice.AccountKey), map[string]any{"label": "x"}, "account key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.send(t, request{method: tc.method, path: tc.path, body: tc.body})
			if r.Status != 409 {
				t.Fatalf("status %d, want 409: %s", r.Status, r.Body)
			}
			if e := r.err(t); !strings.Contains(e.Error, tc.wantInError) {
				t.Errorf("error %q lacks %q", e.Error, tc.wantInError)
			}
		})
	}

	// force=true detaches and deletes.
	ts.call(t, "DELETE", fmt.Sprintf("/api/v1/keys/%d?force=true", blf.ID), nil, 204, nil)
	var layout []appliance.LayoutEntry
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/keys", nil, 200, &layout)
	if len(layout) != 1 || layout[0].KeyID != alice.AccountKey {
		t.Fatalf("layout after forced delete %+v", layout)
	}
	ts.call(t, "DELETE", fmt.Sprintf("/api/v1/locations/%d?force=true", loc.ID), nil, 204, nil)
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc", nil, 200, &p)
	if p.LocationID != nil {
		t.Fatalf("phone still at location %d", *p.LocationID)
	}
	ts.call(t, "DELETE", fmt.Sprintf("/api/v1/extensions/%d?force=true", alice.ID), nil, 204, nil)
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/keys", nil, 200, &layout)
	if len(layout) != 0 {
		t.Fatalf("layout after forced extension delete %+v", layout)
	}
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	big := `{"name": "` + strings.Repeat("x", 1<<20) + `"}`
	for _, tc := range []struct{ method, path string }{
		{"POST", "/api/v1/locations"},
		{"PATCH", "/api/v1/locations/1"},
		{"PUT", "/api/v1/phones/001565aabbcc/keys"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := ts.send(t, request{method: tc.method, path: tc.path, body: big})
			if r.Status != 413 {
				t.Fatalf("status %d, want 413: %.200s", r.Status, r.Body)
			}
			if e := r.err(t); e.Field != "body" {
				t.Errorf("field %q, want body", e.Field)
			}
		})
	}
	// A valid object followed by padding past the limit is too large too,
	// not "trailing data".
	r := ts.send(t, request{method: "POST", path: "/api/v1/locations", body: `{"name": "x"}` + strings.Repeat(" ", 1<<20)})
	if r.Status != 413 {
		t.Fatalf("padded: status %d: %s", r.Status, r.Body)
	}
}

// The answers are plain JSON a client can decode generically too.
func TestListsAreArrays(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	for _, path := range []string{"/api/v1/extensions", "/api/v1/locations", "/api/v1/phones", "/api/v1/keys", "/api/v1/keys?type=blf"} {
		r := ts.call(t, "GET", path, nil, 200, nil)
		var v any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatal(err)
		}
		if _, ok := v.([]any); !ok {
			t.Errorf("GET %s: %s is not an array", path, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
}

// TestAPI_ExpansionModules: a T54W with two EXP50 modules gets a full
// three-panel layout through the API (a key typed by value is created in
// the same request), its config writes every key of both modules, and the
// domain refuses what the hardware lacks.
func TestAPI_ExpansionModules(t *testing.T) {
	t.Parallel()
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", Registrar: "pbx.example.com"}, 0)
	alice := ts.mustExtension(t, "1001", "Alice")
	ts.mustExtension(t, "1002", "Bob")
	var ph appliance.Phone
	ts.call(t, "POST", "/api/v1/phones", map[string]any{"mac": "001565000054", "model": "T54W", "expansion_modules": 2, "extension": "1001"}, 201, &ph)
	if ph.ExpansionModules != 2 {
		t.Fatalf("created %+v", ph)
	}
	blf := ts.mustKey(t, appliance.KeyBLF, "1002", "Bob")
	layout := []map[string]any{
		{"position": 1, "key_id": alice.AccountKey},
		{"position": 2, "key_id": alice.AccountKey, "module": 0},
		{"position": 1, "key_id": blf.ID, "module": 1},
		{"position": 60, "module": 1, "type": "speed_dial", "value": "5551234", "label": "Pizza"},
		{"position": 1, "module": 2, "type": "park", "value": "701"},
		{"position": 60, "key_id": blf.ID, "module": 2},
	}
	var got []appliance.LayoutEntry
	ts.call(t, "PUT", "/api/v1/phones/001565000054/keys", layout, 200, &got)
	if len(got) != 6 || got[3].Module != 1 || got[3].Position != 60 || got[3].Type != "speed_dial" || got[3].Label != "Pizza" || got[4].Value != "701" || got[4].Label != "701" {
		t.Fatalf("layout %+v", got)
	}
	cfg := string(ts.call(t, "GET", "/api/v1/phones/001565000054/config", nil, 200, nil).Body)
	for _, want := range []string{
		"expansion_module.1.key.1.type = 16\n", "expansion_module.1.key.1.value = 1002\n",
		"expansion_module.1.key.60.type = 13\n", "expansion_module.1.key.60.label = Pizza\n",
		"expansion_module.2.key.1.type = 16\n", "expansion_module.2.key.1.value = 701\n",
		"expansion_module.2.key.2.type = 0\n", "expansion_module.2.key.60.type = 16\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if strings.Contains(cfg, "expansion_module.3.") || strings.Contains(cfg, "expansion_module.1.key.61.") {
		t.Error("config writes a key the phone lacks")
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
		field, msg         string
	}{
		{"fewer modules than the layout uses", "PATCH", "/api/v1/phones/001565000054", map[string]any{"expansion_modules": 1}, "expansion_modules", "does not fit this phone's keys"},
		{"more modules than the model takes", "PATCH", "/api/v1/phones/001565000054", map[string]any{"expansion_modules": 4}, "expansion_modules", "outside 0..3, the EXP50 modules the T54W takes"},
		{"a module on a phone without", "POST", "/api/v1/phones", map[string]any{"mac": "001565000055", "model": "T33G", "expansion_modules": 1}, "expansion_modules", "the T33G takes no expansion module"},
		{"a key past the module", "PUT", "/api/v1/phones/001565000054/keys", []map[string]any{{"position": 1, "key_id": alice.AccountKey}, {"position": 61, "key_id": blf.ID, "module": 1}}, "keys[1].position", "61 is outside 1..60"},
		{"a typed key of a bad value", "PUT", "/api/v1/phones/001565000054/keys", []map[string]any{{"position": 1, "key_id": alice.AccountKey}, {"position": 3, "type": "speed_dial", "value": "abc"}}, "keys[1].value", "is not a dial string"},
		{"an account key on a DECT base only", "POST", "/api/v1/phones", map[string]any{"mac": "001565000056", "model": "W70B", "expansion_modules": 0, "extension": "1001"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.field == "" {
				ts.call(t, tc.method, tc.path, tc.body, 201, nil)
				return
			}
			r := ts.call(t, tc.method, tc.path, tc.body, 400, nil)
			var e struct{ Error, Field string }
			mustUnmarshal(t, r.Body, &e)
			if e.Field != tc.field || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("%+v, want field %s and %q", e, tc.field, tc.msg)
			}
		})
	}
	// The DECT base: its extension is account 1; a BLF does not fit.
	var dect []appliance.LayoutEntry
	ts.call(t, "GET", "/api/v1/phones/001565000056/keys", nil, 200, &dect)
	if len(dect) != 1 || dect[0].Position != 1 || dect[0].Type != appliance.KeyAccount {
		t.Fatalf("W70B layout %+v", dect)
	}
	r := ts.call(t, "PUT", "/api/v1/phones/001565000056/keys", []map[string]any{{"position": 1, "key_id": alice.AccountKey}, {"position": 2, "key_id": blf.ID}}, 400, nil)
	if !strings.Contains(string(r.Body), "no line keys, only accounts") {
		t.Errorf("BLF on a DECT base: %s", r.Body)
	}
	if cfg := string(ts.call(t, "GET", "/api/v1/phones/001565000056/config", nil, 200, nil).Body); strings.Contains(cfg, "linekey.") || !strings.Contains(cfg, "account.1.user_name = 1001\n") || !strings.Contains(cfg, "account.10.enable = 0\n") {
		t.Errorf("W70B config:\n%s", cfg)
	}
}
