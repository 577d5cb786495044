package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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

// TestUpdateKey_ManyPhones: a change to more phones than a call waits for
// answers before their versions are computed; every read after it sees the
// new versions (pending, never "synced" with the file before), one event
// names every phone, the audit entry lists them, and a fetch of the new
// version reaches them.
func TestUpdateKey_ManyPhones(t *testing.T) {
	ctx := context.Background()
	db, r := openRendered(t)
	const n = 150
	k := bulkPhones(t, db, n)
	svc := db.Services()
	before, err := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{})
	if err != nil {
		t.Fatal(err)
	}
	sub := db.Events.Subscribe(10, appliance.EventPhonesChanged, appliance.EventAccessChanged)
	defer sub.Close()
	label := "Robert"
	if _, err := svc.Keys.UpdateKey(ctx, k.ID, appliance.KeyUpdate{Label: &label}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func() (*appliance.Phone, error)
	}{
		{"one phone", func() (*appliance.Phone, error) { return svc.Phones.FindPhone(ctx, before[n-1].MAC) }},
		{"the list", func() (*appliance.Phone, error) {
			list, err := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{})
			if err != nil {
				return nil, err
			}
			return list[0], nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.read()
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := svc.Phones.PhoneConfig(ctx, p.MAC)
			if err != nil {
				t.Fatal(err)
			}
			body, err := r.RenderPhoneConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if s := p.Sync; s.State != appliance.SyncPending || s.ConfigVersion != configs.HashFile(body) || s.ConfigVersion == s.FetchedVersion ||
				!strings.Contains(string(body), "label = Robert") {
				t.Fatalf("after the edit: %+v", s)
			}
		})
	}
	// The files' caches heard first (the change, committed), then the sync
	// loop (the versions, moved).
	var got []appliance.Event
	for len(got) < 2 {
		select {
		case e := <-sub.C:
			got = append(got, e)
		case <-time.After(5 * time.Second):
			t.Fatalf("events %v", got)
		}
	}
	if got[0].Type != appliance.EventAccessChanged || len(got[0].MACs) != n || got[1].Type != appliance.EventPhonesChanged || len(got[1].MACs) != n {
		t.Fatalf("events %s %d, %s %d", got[0].Type, len(got[0].MACs), got[1].Type, len(got[1].MACs))
	}
	entries, err := svc.Audit.FindAudit(ctx, appliance.AuditFilter{})
	if err != nil || len(entries) == 0 || entries[0].Action != "key.update" || len(entries[0].Phones) != n {
		t.Fatalf("audit %+v %v", entries, err)
	}
	ph := entries[0].Phones[0]
	p, _ := svc.Phones.FindPhone(ctx, ph.MAC)
	if ph.Version != p.Sync.ConfigVersion || ph.ReachedAt != nil {
		t.Fatalf("audit phone %+v, phone at %s", ph, p.Sync.ConfigVersion)
	}
	if err := svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: ph.MAC, Version: ph.Version, IP: "10.0.0.1", Auth: appliance.AuthSecret}); err != nil {
		t.Fatal(err)
	}
	entries, _ = svc.Audit.FindAudit(ctx, appliance.AuditFilter{})
	for _, e := range entries[0].Phones {
		if (e.MAC == ph.MAC) != (e.ReachedAt != nil) {
			t.Fatalf("reached marks %+v", entries[0].Phones)
		}
	}
}

// TestVersions_ConcurrentChanges: changes racing each other's versions
// (big and small, from several goroutines) leave every phone at the
// version of its final inputs.
func TestVersions_ConcurrentChanges(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	k := bulkPhones(t, db, 120)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				label := fmt.Sprintf("Bob %d.%d", g, i)
				if _, err := svc.Keys.UpdateKey(ctx, k.ID, appliance.KeyUpdate{Label: &label}); err != nil {
					t.Error(err)
				}
				name := fmt.Sprintf("Phone %d.%d", g, i)
				if _, err := svc.Phones.UpdatePhone(ctx, k.AttachedTo[g], appliance.PhoneUpdate{Name: &name}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	phones, err := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range phones {
		cfg, err := svc.Phones.PhoneConfig(ctx, p.MAC)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := appliance.HashConfig(cfg); p.Sync.ConfigVersion != want {
			t.Fatalf("%s at version %s, its inputs give %s", p.MAC, p.Sync.ConfigVersion, want)
		}
	}
}

// TestOpen_ComputesVersionsLeftDue: versions a crash left due (the change
// committed, its versions not) are computed when the store opens.
func TestOpen_ComputesVersionsLeftDue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "provbox.db")
	db := sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	k := mustKey(t, svc, "blf", "1002", "Bob")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	layout, err := svc.Phones.FindLayout(ctx, p.MAC)
	if err != nil {
		t.Fatal(err)
	}
	entries := []appliance.LayoutEntry{{Position: 1, KeyID: layout[0].KeyID}, {Position: 2, KeyID: k.ID}}
	if _, err := svc.Phones.ReplaceLayout(ctx, p.MAC, entries); err != nil {
		t.Fatal(err)
	}
	old, _ := svc.Phones.FindPhone(ctx, p.MAC)
	db.Close()
	// What a crash after the change's commit leaves: the key changed, the
	// phone due, its version not computed.
	raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE keys SET label = 'Robert' WHERE id = ?; INSERT INTO versions_due (phone_id) VALUES (?)`, k.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db = sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Services().Phones.FindPhone(ctx, p.MAC)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := db.Services().Phones.PhoneConfig(ctx, p.MAC)
	if want, _ := appliance.HashConfig(cfg); got.Sync.ConfigVersion == old.Sync.ConfigVersion || got.Sync.ConfigVersion != want {
		t.Fatalf("version %s (before %s, inputs %s)", got.Sync.ConfigVersion, old.Sync.ConfigVersion, want)
	}
}

// TestVersions_ChangeWithoutAuditEntry: a change that touches phones but
// records no audit entry (a setting the trail does not show) still has
// their versions computed.
func TestVersions_ChangeWithoutAuditEntry(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	s := db.BaseSettings()
	s.OpenProvisioning = true // json:"-": no field of the entry changes
	if err := db.SetSettings(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := svc.Phones.FindPhone(ctx, p.MAC)
	if err != nil || got.Sync.ConfigVersion != p.Sync.ConfigVersion {
		t.Fatalf("%+v %v", got, err)
	}
}

// BenchmarkEditToEvent: one phone's extension password edit, from the call
// to the EventPhonesChanged the sync loop acts on (edit → NOTIFY, SPEC §8:
// p99 < 50 ms).
func BenchmarkEditToEvent(b *testing.B) {
	db, _ := openRendered(b)
	ctx := context.Background()
	svc := db.Services()
	bulkPhones(b, db, 10)
	exts, _ := svc.Extensions.FindExtensions(ctx)
	sub := db.Events.Subscribe(16, appliance.EventPhonesChanged)
	defer sub.Close()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pw := fmt.Sprintf("pw-%d", i)
		t0 := time.Now()
		if _, err := svc.Extensions.UpdateExtension(ctx, exts[0].ID, appliance.ExtensionUpdate{Password: &pw}); err != nil {
			b.Fatal(err)
		}
		<-sub.C
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// TestVersions_RenderFails: a phone whose file does not render keeps its
// version (logged, tried again by the next round) while the others of
// the same change move, and no read waits for it.
func TestVersions_RenderFails(t *testing.T) {
	ctx := context.Background()
	const broken = "001565200007"
	version := func(cfg *appliance.PhoneConfig) (string, error) {
		if cfg.Phone.MAC == broken && cfg.Phone.Name == "Broken" {
			return "", fmt.Errorf("template: bad")
		}
		return appliance.HashConfig(cfg)
	}
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "provbox.db"), configs.MustCatalog(), version)
	db.Events = appliance.NewEventBus(nil)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := db.Services()
	k := bulkPhones(t, db, sqlite.InlineVersions+10)
	before, _ := svc.Phones.FindPhone(ctx, broken)
	name := "Broken"
	if _, err := svc.Phones.UpdatePhone(ctx, broken, appliance.PhoneUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	label := "Robert"
	if _, err := svc.Keys.UpdateKey(ctx, k.ID, appliance.KeyUpdate{Label: &label}); err != nil {
		t.Fatal(err)
	}
	phones, err := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range phones {
		if moved := p.Sync.ConfigVersion != before.Sync.ConfigVersion; moved == (p.MAC == broken) {
			t.Fatalf("%s at %s (before %s)", p.MAC, p.Sync.ConfigVersion, before.Sync.ConfigVersion)
		}
	}
	// Fixed: the next change computes it.
	name = "Fixed"
	if _, err := svc.Phones.UpdatePhone(ctx, broken, appliance.PhoneUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if p, _ := svc.Phones.FindPhone(ctx, broken); p.Sync.ConfigVersion == before.Sync.ConfigVersion {
		t.Fatal("version not computed once the file renders")
	}
}

// TestVersions_ReadsProgressWhileChangesStream: a reader waits for the
// changes made before it, not for a stream of later ones.
func TestVersions_ReadsProgressWhileChangesStream(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	k := bulkPhones(t, db, sqlite.InlineVersions+40)
	var writing atomic.Bool
	writing.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer writing.Store(false)
		for i := 0; i < 60; i++ {
			label := fmt.Sprintf("Bob %d", i)
			if _, err := svc.Keys.UpdateKey(ctx, k.ID, appliance.KeyUpdate{Label: &label}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	readsDuring := 0
	for writing.Load() {
		if _, err := svc.Phones.FindPhone(ctx, k.AttachedTo[0]); err != nil {
			t.Fatal(err)
		}
		if writing.Load() {
			readsDuring++
		}
	}
	<-done
	if readsDuring == 0 {
		t.Fatal("no read finished while the changes streamed")
	}
}
