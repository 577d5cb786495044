package webui_test

import (
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/webui"
)

func (ts *testServer) importCSV(tb testing.TB, query, csv string) response {
	tb.Helper()
	return ts.send(tb, request{method: "POST", path: "/api/v1/phones.csv" + query, body: csv,
		header: map[string]string{"Content-Type": "text/csv"}})
}

// TestCSV_ExpansionModules: a T54W with two EXP50 modules, keys on the
// phone and on both modules, imports, exports with its module columns and
// re-imports to the same; a key past a module's 60, on a third module, or
// modules on a phone that takes none, is refused naming its line.
func TestCSV_ExpansionModules(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustExtension(t, "1002", "Bob")
	const in = `mac,model,expansion_modules,module,position,key_type,key_value,key_label
001565000054,T54W,2,0,1,account,1001,
001565000054,,,0,2,account,1001,
001565000054,,,1,1,blf,1002,Bob
001565000054,,,1,60,speed_dial,5551234,Pizza
001565000054,,,2,1,park,701,Park 1
001565000054,,,2,60,blf,1003@pbx.example.com,Carol
`
	r := ts.importCSV(t, "", in)
	if r.Status != 200 {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	var p appliance.Phone
	ts.call(t, "GET", "/api/v1/phones/001565000054", nil, 200, &p)
	if p.ExpansionModules != 2 {
		t.Fatalf("expansion_modules %d", p.ExpansionModules)
	}
	var layout []appliance.LayoutEntry
	ts.call(t, "GET", "/api/v1/phones/001565000054/keys", nil, 200, &layout)
	if len(layout) != 6 || layout[2].Module != 1 || layout[3].Position != 60 || layout[5].Module != 2 || layout[5].Value != "1003@pbx.example.com" {
		t.Fatalf("layout %+v", layout)
	}
	exported := string(ts.call(t, "GET", "/api/v1/phones.csv", nil, 200, nil).Body)
	for _, want := range []string{"001565000054,001565000054,,,Yealink,T54W,2,1,60,speed_dial,5551234,Pizza", "001565000054,001565000054,,,Yealink,T54W,2,2,1,park,701,Park 1"} {
		if !strings.Contains(exported, want+"\n") {
			t.Errorf("export lacks %q:\n%s", want, exported)
		}
	}
	if r := ts.importCSV(t, "", exported); r.Status != 200 {
		t.Fatalf("re-import: %d %s", r.Status, r.Body)
	}
	if again := string(ts.call(t, "GET", "/api/v1/phones.csv", nil, 200, nil).Body); again != exported {
		t.Errorf("re-export differs:\n%s\n%s", again, exported)
	}
	for _, tc := range []struct{ name, csv, want string }{
		{"past the module", "mac,model,expansion_modules,module,position,key_type,key_value\n001565000055,T54W,1,0,1,account,1001\n001565000055,,,1,61,blf,1002\n", `line 3: position: 61 is outside 1..60, the keys of expansion module 1 (EXP50)`},
		{"a module it lacks", "mac,model,expansion_modules,module,position,key_type,key_value\n001565000055,T54W,1,0,1,account,1001\n001565000055,,,2,1,blf,1002\n", `line 3: module: 2 is outside 0..1`},
		{"a phone without modules", "mac,model,expansion_modules\n001565000055,T42U,1\n", `line 2: expansion_modules: 1, but the T42U takes no expansion module`},
		{"too many modules", "mac,model,expansion_modules\n001565000055,T54W,4\n", `line 2: expansion_modules: 4 is outside 0..3, the EXP50 modules the T54W takes`},
		{"not a number", "mac,model,expansion_modules\n001565000055,T54W,two\n", `is not a number from 0 to 99`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.importCSV(t, "", tc.csv)
			if r.Status != 400 || !strings.Contains(string(r.Body), tc.want) {
				t.Errorf("%d %s, want 400 with %q", r.Status, r.Body, tc.want)
			}
		})
	}
	ts.call(t, "GET", "/api/v1/phones/001565000055", nil, 404, nil)
}

func TestCSV_RoundTrip(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustExtension(t, "1002", "Bob")
	ts.mustLocation(t, "HQ")

	const in = `mac,name,description,location,manufacturer,model,position,key_type,key_value,key_label
00:15:65:aa:bb:cc,Front desk,"lobby, left",HQ,yealink,T-46g,1,account,1001,
00:15:65:aa:bb:cc,,,,,,2,account,1001,
00:15:65:aa:bb:cc,,,,,,3,blf,1002,Bob
001565112233,,,,,T54W,1,account,1002,
0015.6511.2244,,,,,T41P,,,,
`
	// A dry run checks and counts but writes nothing.
	r := ts.importCSV(t, "?dry_run=true", in)
	if r.Status != 200 {
		t.Fatalf("dry run: status %d: %s", r.Status, r.Body)
	}
	var res appliance.ImportResult
	mustUnmarshal(t, r.Body, &res)
	if want := (appliance.ImportResult{DryRun: true, Phones: 3, PhonesCreated: 3, KeysCreated: 1, LineKeys: 4}); res != want {
		t.Fatalf("dry run result %+v, want %+v", res, want)
	}
	var phones []appliance.Phone
	ts.call(t, "GET", "/api/v1/phones", nil, 200, &phones)
	if len(phones) != 0 {
		t.Fatalf("dry run created %+v", phones)
	}

	r = ts.importCSV(t, "", in)
	if r.Status != 200 {
		t.Fatalf("import: status %d: %s", r.Status, r.Body)
	}
	mustUnmarshal(t, r.Body, &res)
	if want := (appliance.ImportResult{Phones: 3, PhonesCreated: 3, KeysCreated: 1, LineKeys: 4}); res != want {
		t.Fatalf("import result %+v, want %+v", res, want)
	}
	var p appliance.Phone
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc", nil, 200, &p)
	if p.Name != "Front desk" || p.Description != "lobby, left" || p.Model != "T46G" || p.LocationID == nil {
		t.Fatalf("imported %+v", p)
	}

	r = ts.call(t, "GET", "/api/v1/phones.csv", nil, 200, nil)
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.Contains(cd, "phones.csv") {
		t.Errorf("Content-Disposition %q", cd)
	}
	exported := string(r.Body)
	if !strings.HasPrefix(exported, strings.Join(appliance.CSVColumns, ",")+"\n") {
		t.Fatalf("export header:\n%s", exported)
	}
	for _, want := range []string{
		`001565aabbcc,Front desk,"lobby, left",HQ,Yealink,T46G,0,0,3,blf,1002,Bob`,
		`001565112244,001565112244,,,Yealink,T41P,0,,,,,`,
	} {
		if !strings.Contains(exported, want+"\n") {
			t.Errorf("export lacks %q:\n%s", want, exported)
		}
	}

	// Importing the export changes nothing, and exports the same again.
	r = ts.importCSV(t, "", exported)
	if r.Status != 200 {
		t.Fatalf("re-import: status %d: %s", r.Status, r.Body)
	}
	mustUnmarshal(t, r.Body, &res)
	if want := (appliance.ImportResult{Phones: 3, PhonesUpdated: 3, LineKeys: 4}); res != want {
		t.Fatalf("re-import result %+v, want %+v", res, want)
	}
	if again := string(ts.call(t, "GET", "/api/v1/phones.csv", nil, 200, nil).Body); again != exported {
		t.Fatalf("export changed:\n%s\nwas:\n%s", again, exported)
	}
}

func TestCSV_ImportErrors(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	const header = "mac,name,location,model,position,key_type,key_value,key_label\n"
	for _, tc := range []struct {
		name      string
		csv       string
		wantLine  int
		wantField string
	}{
		{"bad MAC", header + "001565aabbcc,,,T46G,1,account,1001,\n00156511,,,T46G,,,,\n", 3, "mac"},
		{"unsupported model", header + "001565aabbcc,,,T99,,,,\n", 2, "model"},
		{"bad key value", header + "001565aabbcc,,,T46G,1,account,1001,\n001565aabbcc,,,,2,speed_dial,call mom,\n", 3, "key_value"},
		{"bad position", header + "001565aabbcc,,,T46G,one,account,1001,\n", 2, "position"},
		{"unknown column", "mac,model,colour\n", 1, "header"},
		{"empty file", "", 1, "header"},
		{"unknown extension", header + "001565aabbcc,,,T46G,1,account,1001,\n001565aabbdd,,,T46G,1,account,4242,\n", 3, "key_value"},
		{"unknown location", header + "001565aabbcc,,Mars,T46G,1,account,1001,\n", 2, "location"},
		{"position out of range", header + "001565aabbcc,,,T46G,1,account,1001,\n001565aabbcc,,,,30,speed_dial,123,\n", 3, "position"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.importCSV(t, "", tc.csv)
			if r.Status != 400 {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
			}
			e := r.err(t)
			if e.Line != tc.wantLine || e.Field != tc.wantField {
				t.Errorf("line %d field %q, want line %d field %q (error %q)", e.Line, e.Field, tc.wantLine, tc.wantField, e.Error)
			}
		})
	}
	// All or nothing: the good first phones were not created.
	var phones []appliance.Phone
	ts.call(t, "GET", "/api/v1/phones", nil, 200, &phones)
	if len(phones) != 0 {
		t.Fatalf("a failed import created %+v", phones)
	}
}

func TestCSV_TooLarge(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, func(s *webui.Server) { webui.SetCSVMaxBody(s, 1024) })
	csv := "mac,model\n" + strings.Repeat("001565aabbcc,T46G\n", 100)
	r := ts.importCSV(t, "", csv)
	if r.Status != 413 {
		t.Fatalf("status %d, want 413: %s", r.Status, r.Body)
	}
	if e := r.err(t); e.Field != "body" {
		t.Errorf("field %q", e.Field)
	}
}
