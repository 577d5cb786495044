package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"github.com/provbox/provbox/configs"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

func parse(t *testing.T, s string) []appliance.PhoneImport {
	t.Helper()
	rows, err := appliance.ParseCSV(strings.NewReader(s), configs.MustCatalog())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestImport_CreateUpdateRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	mustExt(t, svc, "1002", "Bob")
	if _, err := svc.Locations.CreateLocation(ctx, &appliance.Location{Name: "HQ"}); err != nil {
		t.Fatal(err)
	}
	csv := `mac,name,description,location,manufacturer,model,position,key_type,key_value,key_label
00:15:65:00:00:01,Front desk,"Lobby, left",HQ,Yealink,T46G,1,account,1001,
00:15:65:00:00:01,,,,,,2,account,1001,
00:15:65:00:00:01,,,,,,3,blf,1002,Bob
00:15:65:00:00:02,,,,yealink,SIP-T54W,1,account,1002,
00:15:65:00:00:02,,,,,,2,blf,1002,Bob
00:15:65:00:00:03,Spare,,,,T41S,,,,
`
	dry, err := svc.Import.ImportPhones(ctx, parse(t, csv), true)
	if err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || dry.PhonesCreated != 3 || dry.KeysCreated != 1 || dry.LineKeys != 5 {
		t.Fatalf("dry run %+v", dry)
	}
	if phones, _ := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{}); len(phones) != 0 {
		t.Fatal("dry run wrote")
	}
	res, err := svc.Import.ImportPhones(ctx, parse(t, csv), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.PhonesCreated != 3 || res.KeysCreated != 1 {
		t.Fatalf("result %+v", res)
	}
	layout, _ := svc.Phones.FindLayout(ctx, "001565000001")
	if len(layout) != 3 || layout[2].Type != "blf" || layout[2].Label != "Bob" {
		t.Fatalf("layout %+v", layout)
	}
	// Export, then import the export: everything updated, nothing new.
	exported, err := svc.Import.ExportPhones(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := appliance.WriteCSV(&buf, exported); err != nil {
		t.Fatal(err)
	}
	res, err = svc.Import.ImportPhones(ctx, parse(t, buf.String()), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.PhonesUpdated != 3 || res.PhonesCreated != 0 || res.KeysCreated != 0 {
		t.Fatalf("re-import %+v", res)
	}
	again, _ := svc.Import.ExportPhones(ctx)
	var buf2 bytes.Buffer
	appliance.WriteCSV(&buf2, again)
	if buf.String() != buf2.String() {
		t.Fatalf("round trip differs:\n%s\n%s", buf.String(), buf2.String())
	}
	if !strings.Contains(buf.String(), `"Lobby, left"`) {
		t.Fatalf("export lost quoting:\n%s", buf.String())
	}
}

func TestImport_AllOrNothing(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	header := "mac,name,model,position,key_type,key_value,key_label\n"
	good := "001565000001,A,T46G,1,account,1001,\n"
	for _, tc := range []struct {
		name  string
		rows  string
		line  int
		field string
	}{
		{"unknown extension", good + "001565000002,B,T46G,1,account,9999,\n", 3, "key_value"},
		{"position beyond model", good + "001565000002,B,T41S,1,account,1001,\n001565000002,,,16,blf,1001,\n", 4, "position"},
		{"no account key", good + "001565000002,B,T46G,1,blf,1001,\n", 3, "key_type"},
		{"duplicate position", good + "001565000002,B,T46G,1,account,1001,\n001565000002,,,1,blf,1002,\n", 4, "position"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Import.ImportPhones(ctx, parse(t, header+tc.rows), false)
			if appliance.ErrorLine(err) != tc.line || appliance.ErrorField(err) != tc.field {
				t.Fatalf("got %v (line %d field %q), want line %d field %q", err, appliance.ErrorLine(err), appliance.ErrorField(err), tc.line, tc.field)
			}
			if phones, _ := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{}); len(phones) != 0 {
				t.Fatalf("partial import left %d phones", len(phones))
			}
			if keys, _ := svc.Keys.FindKeys(ctx, appliance.KeyFilter{Type: "blf"}); len(keys) != 0 {
				t.Fatalf("partial import left keys")
			}
		})
	}
}

func TestImport_Location(t *testing.T) {
	db := MustOpenDB(t)
	_, err := db.Services().Import.ImportPhones(context.Background(), parse(t, "mac,model,location\n001565000001,T46G,Nowhere\n"), false)
	if appliance.ErrorLine(err) != 2 || appliance.ErrorField(err) != "location" {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkImport1000(b *testing.B) {
	ctx := context.Background()
	var sb strings.Builder
	sb.WriteString("mac,model,position,key_type,key_value\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "0015650%05x,T46G,1,account,1001\n0015650%05x,,2,blf,1002\n", i, i)
	}
	for i := 0; i < b.N; i++ {
		db := MustOpenDB(b)
		mustExt(b, db.Services(), "1001", "")
		rows, _ := appliance.ParseCSV(strings.NewReader(sb.String()), configs.MustCatalog())
		if _, err := db.Services().Import.ImportPhones(ctx, rows, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestImport_EveryErrorAndDetails: errors in two phones are both reported
// (each at its line) and nothing is written; a clean run says per phone
// whether it is added, changed (and what) or unchanged, and which keys it
// creates.
func TestImport_EveryErrorAndDetails(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	mustExt(t, svc, "1002", "Bob")
	header := "mac,name,location,model,position,key_type,key_value,key_label\n"
	bad := header +
		"001565000001,A,,T46G,1,account,1001,\n" +
		"001565000002,B,Nowhere,T46G,1,account,1001,\n" +
		"001565000003,C,,T46G,1,account,9999,\n" +
		"001565000003,,,,2,blf,1002,Bob\n"
	_, err := svc.Import.ImportPhones(ctx, parse(t, bad), true)
	all := appliance.AllErrors(err)
	if len(all) != 2 || all[0].Line != 3 || all[0].Field != "location" || all[1].Line != 4 || all[1].Field != "key_value" {
		t.Fatalf("errors %v", err)
	}
	if _, err := svc.Import.ImportPhones(ctx, parse(t, bad), false); len(appliance.AllErrors(err)) != 2 {
		t.Fatalf("import: %v", err)
	}
	if phones, _ := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{}); len(phones) != 0 {
		t.Fatalf("import with errors wrote %d phones", len(phones))
	}

	first := header + "001565000001,A,,T46G,1,account,1001,\n001565000002,B,,T46G,1,account,1002,\n"
	if _, err := svc.Import.ImportPhones(ctx, parse(t, first), false); err != nil {
		t.Fatal(err)
	}
	next := header +
		"001565000001,A,,T46G,1,account,1001,\n" +
		"001565000002,Bee,,T48G,1,account,1002,\n" +
		"001565000002,,,,2,speed_dial,5551234,Pizza\n" +
		"001565000003,,,T41S,,,,\n"
	res, err := svc.Import.ImportPhones(ctx, parse(t, next), true)
	if err != nil {
		t.Fatal(err)
	}
	d := res.Details
	if d == nil || len(d.Phones) != 3 {
		t.Fatalf("details %+v", d)
	}
	if p := d.Phones[0]; p.Action != appliance.ImportUnchanged || len(p.Changes) != 0 {
		t.Errorf("unchanged phone: %+v", p)
	}
	want := []appliance.FieldChange{
		{Field: "name", Old: "B", New: "Bee"},
		{Field: "model", Old: "Yealink T46G", New: "Yealink T48G"},
		{Field: "key 2", Old: "", New: "speed_dial 5551234 Pizza"},
	}
	if p := d.Phones[1]; p.Action != appliance.ImportChanged || p.Line != 3 || fmt.Sprint(p.Changes) != fmt.Sprint(want) || p.LineKeys != 2 {
		t.Errorf("changed phone: %+v", p)
	}
	if p := d.Phones[2]; p.Action != appliance.ImportAdded || p.MAC != "001565000003" || p.Line != 5 {
		t.Errorf("added phone: %+v", p)
	}
	if len(d.NewKeys) != 1 || d.NewKeys[0].Line != 4 || d.NewKeys[0].Label != "Pizza" {
		t.Errorf("new keys %+v", d.NewKeys)
	}
}
