package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
	"github.com/provbox/provbox/configs"
)

// openRendered opens a store that versions configs as serve does: the
// hash of the rendered <mac>.cfg, with the vendor's ready checks.
func openRendered(tb testing.TB) (*sqlite.DB, *configs.Renderer) {
	tb.Helper()
	r := &configs.Renderer{Catalog: configs.MustCatalog()}
	db := sqlite.NewDB(filepath.Join(tb.TempDir(), "provbox.db"), r.Catalog, r.Version)
	db.Check = r.Problems
	db.Events = appliance.NewEventBus(nil)
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.SetSettings(context.Background(), appliance.Settings{ProvisioningURL: "http://192.0.2.1:8080/prov/", Registrar: "192.0.2.2"}); err != nil {
		tb.Fatal(err)
	}
	return db, r
}

// bulkPhones imports n T46G phones as bench/sync.sh does (the shared line
// 1001 on keys 1-2, the BLF key 1002 "Bob" on key 3), lets each fetch its
// config, and returns the BLF key.
func bulkPhones(tb testing.TB, db *sqlite.DB, n int) *appliance.Key {
	tb.Helper()
	ctx := context.Background()
	svc := db.Services()
	mustExt(tb, svc, "1001", "Main line")
	var b strings.Builder
	b.WriteString("mac,name,description,location,manufacturer,model,position,key_type,key_value,key_label\n")
	for i := 0; i < n; i++ {
		mac := fmt.Sprintf("001565%06x", 0x200000+i)
		fmt.Fprintf(&b, "%s,Phone %d,bench,,Yealink,T46G,1,account,1001,\n%s,,,,,,2,account,1001,\n%s,,,,,,3,blf,1002,Bob\n", mac, i, mac, mac)
	}
	rows, err := appliance.ParseCSV(strings.NewReader(b.String()), configs.MustCatalog())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.Import.ImportPhones(ctx, rows, false); err != nil {
		tb.Fatal(err)
	}
	phones, err := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{})
	if err != nil || len(phones) != n {
		tb.Fatalf("%d phones, %v", len(phones), err)
	}
	for _, p := range phones {
		if err := svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: p.Sync.ConfigVersion, IP: "10.0.0.1", Auth: appliance.AuthSecret}); err != nil {
			tb.Fatal(err)
		}
	}
	keys, err := svc.Keys.FindKeys(ctx, appliance.KeyFilter{Type: appliance.KeyBLF})
	if err != nil || len(keys) != 1 || len(keys[0].AttachedTo) != n {
		tb.Fatalf("keys %v, %v", keys, err)
	}
	return keys[0]
}

// BenchmarkUpdateKey_1000Phones is the key edit of bench/sync.sh (SPEC §8:
// the API round trip of a key PATCH on 1,000 phones, < 100 ms) without
// HTTP: UpdateKey of a label on a key every phone uses (ns/op and
// call-ms), and then until a read sees the phones' new versions
// (versions-ms).
//
//	go test ./appliance/sqlite/ -run '^$' -bench UpdateKey_1000 -benchtime 10x -count 3
func BenchmarkUpdateKey_1000Phones(b *testing.B) {
	db, _ := openRendered(b)
	k := bulkPhones(b, db, 1000)
	ctx := context.Background()
	svc := db.Services()
	var call, ready time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		label := fmt.Sprintf("Bob %d", i)
		t0 := time.Now()
		if _, err := svc.Keys.UpdateKey(ctx, k.ID, appliance.KeyUpdate{Label: &label}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		b.StopTimer()
		p, err := svc.Phones.FindPhone(ctx, k.AttachedTo[0])
		if err != nil || p.Sync.State != appliance.SyncPending {
			b.Fatalf("%+v %v", p, err)
		}
		call, ready = call+t1.Sub(t0), ready+time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(call.Milliseconds())/float64(b.N), "call-ms")
	b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "versions-ms")
}
