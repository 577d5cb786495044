package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// newest returns the newest audit entry.
func newest(t *testing.T, svc appliance.Services) *appliance.AuditEntry {
	t.Helper()
	list, err := svc.Audit.FindAudit(context.Background(), appliance.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		t.Fatal("no audit entry")
	}
	return list[0]
}

func hasChange(e *appliance.AuditEntry, want appliance.AuditChange) bool {
	for _, c := range e.Changes {
		if c == want {
			return true
		}
	}
	return false
}

// TestAudit_RecordsChanges: every kind of change is one entry saying who,
// what, and the fields before → after; secrets only that they changed.
func TestAudit_RecordsChanges(t *testing.T) {
	db := MustOpenDB(t)
	svc := db.Services()
	ctx := appliance.WithActor(context.Background(), "alice")
	alice := mustExt(t, svc, "1001", "Alice")
	mustExt(t, svc, "1002", "Bob")
	p := mustPhone(t, svc, "001565aabbcc", "T46G", "1001")
	blf := mustKey(t, svc, "blf", "1002", "Bob")
	str := func(s string) *string { return &s }

	for _, tc := range []struct {
		name           string
		change         func() error
		action, object string
		want           []appliance.AuditChange
		phones         int // phones the change moved
	}{{
		name: "extension renamed",
		change: func() error {
			_, err := svc.Extensions.UpdateExtension(ctx, alice.ID, appliance.ExtensionUpdate{Name: str("Alice Smith")})
			return err
		},
		action: "extension.update", object: "extension 1001 “Alice Smith”",
		want:   []appliance.AuditChange{{Field: "name", Before: "Alice", After: "Alice Smith"}},
		phones: 1,
	}, {
		name: "extension password",
		change: func() error {
			_, err := svc.Extensions.UpdateExtension(ctx, alice.ID, appliance.ExtensionUpdate{Password: str("n3w-Secret-pw")})
			return err
		},
		action: "extension.update", object: "extension 1001 “Alice Smith”",
		want:   []appliance.AuditChange{{Field: "password", Before: appliance.AuditSecret, After: appliance.AuditSecretChanged}},
		phones: 1,
	}, {
		name: "phone renamed",
		change: func() error {
			_, err := svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: str("Front desk")})
			return err
		},
		action: "phone.update", object: "phone Front desk (00:15:65:aa:bb:cc)",
		want:   []appliance.AuditChange{{Field: "name", Before: "001565aabbcc", After: "Front desk"}},
		phones: 1,
	}, {
		name: "layout",
		change: func() error {
			_, err := svc.Phones.ReplaceLayout(ctx, p.MAC, []appliance.LayoutEntry{{Position: 1, KeyID: alice.AccountKey}, {Position: 3, KeyID: blf.ID}})
			return err
		},
		action: "layout.replace", object: "phone Front desk (00:15:65:aa:bb:cc)",
		want: []appliance.AuditChange{
			{Field: "key 2", Before: "account 1001 “Alice Smith”", After: ""},
			{Field: "key 3", Before: "", After: "BLF 1002 “Bob”"},
		},
		phones: 1,
	}, {
		name: "key label",
		change: func() error {
			_, err := svc.Keys.UpdateKey(ctx, blf.ID, appliance.KeyUpdate{Label: str("Bob S")})
			return err
		},
		action: "key.update", object: fmt.Sprintf("key %d BLF 1002 “Bob S”", blf.ID),
		want:   []appliance.AuditChange{{Field: "label", Before: "Bob", After: "Bob S"}},
		phones: 1,
	}, {
		name: "location created",
		change: func() error {
			_, err := svc.Locations.CreateLocation(ctx, &appliance.Location{Name: "HQ", City: "Springfield"})
			return err
		},
		action: "location.create", object: "location “HQ”",
		want: []appliance.AuditChange{{Field: "name", After: "HQ"}, {Field: "city", After: "Springfield"}},
	}, {
		name: "settings",
		change: func() error {
			return svc.Settings.SetOverrides(ctx, appliance.SettingsOverrides{Registrar: str("pbx.example.com")})
		},
		action: "settings.update", object: "settings",
		want:   []appliance.AuditChange{{Field: "registrar", After: "pbx.example.com"}},
		phones: 1, // its extension has no SIP server of its own
	}, {
		name: "admin password",
		change: func() error {
			if _, err := svc.Users.CreateUser(ctx, "bob", "first-Passw0rd-long"); err != nil {
				return err
			}
			return svc.Users.SetPassword(ctx, "bob", "second-Passw0rd-long")
		},
		action: "user.password", object: "user “bob”",
		want: []appliance.AuditChange{{Field: "password", Before: appliance.AuditSecret, After: appliance.AuditSecretChanged}},
	}, {
		name:   "secret rotated",
		change: func() error { _, err := svc.Phones.RotateSecret(ctx, p.MAC); return err },
		action: "phone.rotate_secret", object: "phone Front desk (00:15:65:aa:bb:cc)",
		want:   []appliance.AuditChange{{Field: "secret", Before: appliance.AuditSecret, After: appliance.AuditSecretChanged}},
		phones: 1,
	}, {
		name:   "key deleted by force",
		change: func() error { return svc.Keys.DeleteKey(ctx, blf.ID, true) },
		action: "key.delete", object: fmt.Sprintf("key %d BLF 1002 “Bob S”", blf.ID),
		want:   []appliance.AuditChange{{Field: "label", Before: "Bob S"}},
		phones: 1,
	}, {
		name:   "phone deleted",
		change: func() error { return svc.Phones.DeletePhone(ctx, p.MAC) },
		action: "phone.delete", object: "phone Front desk (00:15:65:aa:bb:cc)",
		want: []appliance.AuditChange{{Field: "model", Before: "T46G"}, {Field: "key 1", Before: "account 1001 “Alice Smith”"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			e := newest(t, svc)
			if e.Actor != "alice" || e.Action != tc.action || e.Object != tc.object || e.At.Before(before) {
				t.Fatalf("entry %+v, want alice %s %q", e, tc.action, tc.object)
			}
			for _, w := range tc.want {
				if !hasChange(e, w) {
					t.Errorf("no change %+v in %+v", w, e.Changes)
				}
			}
			if len(e.Phones) != tc.phones {
				t.Errorf("phones %+v, want %d", e.Phones, tc.phones)
			}
			for _, ph := range e.Phones {
				if ph.MAC != p.MAC || ph.Version == "" || ph.ReachedAt != nil {
					t.Errorf("phone %+v", ph)
				}
			}
		})
	}

	// No secret anywhere in the trail as stored.
	raw, err := sql.Open("sqlite3", "file:"+db.Path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT actor || action || object || changes FROM audit`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		n++
		for _, secret := range []string{"pw-1001", "n3w-Secret-pw", "first-Passw0rd-long", "second-Passw0rd-long", p.Secret, p.Token} {
			if strings.Contains(s, secret) {
				t.Fatalf("secret %q stored in the audit trail: %s", secret, s)
			}
		}
	}
	if n < 12 {
		t.Fatalf("%d entries stored", n)
	}
	// Changes made without an actor are the system's.
	if _, err := svc.Locations.CreateLocation(context.Background(), &appliance.Location{Name: "Branch"}); err != nil {
		t.Fatal(err)
	}
	if e := newest(t, svc); e.Actor != "system" || e.Action != "location.create" {
		t.Fatalf("entry %+v", e)
	}
}

// TestAudit_ReachedAndConfirmed follows a change to the phones: reached
// when a phone fetches that version (or a later one), confirmed when it
// reports applying it; an edit undone is at once where the phone is.
func TestAudit_ReachedAndConfirmed(t *testing.T) {
	db, advance := clockDB(t)
	svc := db.Services()
	ctx := appliance.WithActor(context.Background(), "alice")
	mustExt(t, svc, "1001", "Alice")
	mustExt(t, svc, "1002", "Bob")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	quiet := mustPhone(t, svc, "001565000002", "T46G", "1002") // never reports
	blf := mustKey(t, svc, "blf", "1002", "Bob")
	for _, ph := range []*appliance.Phone{p, quiet} {
		if _, err := svc.Phones.ReplaceLayout(ctx, ph.MAC, []appliance.LayoutEntry{{Position: 1, KeyID: ph0Account(t, svc, ph)}, {Position: 2, KeyID: blf.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	version := func(ph *appliance.Phone) string {
		t.Helper()
		got, err := svc.Phones.FindPhone(ctx, ph.MAC)
		if err != nil {
			t.Fatal(err)
		}
		return got.Sync.ConfigVersion
	}
	fetch := func(ph *appliance.Phone, v string) {
		t.Helper()
		if err := svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: ph.MAC, Version: v, IP: "10.0.0.7", Auth: appliance.AuthSecret}); err != nil {
			t.Fatal(err)
		}
	}
	report := func() {
		t.Helper()
		if err := svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: appliance.ReportProvisioned, MAC: p.MAC}); err != nil {
			t.Fatal(err)
		}
	}
	// Both phones hold their config; p reports.
	fetch(p, version(p))
	fetch(quiet, version(quiet))
	report()

	label := func(s string) *appliance.AuditEntry {
		t.Helper()
		advance(time.Minute)
		if _, err := svc.Keys.UpdateKey(ctx, blf.ID, appliance.KeyUpdate{Label: &s}); err != nil {
			t.Fatal(err)
		}
		return newest(t, svc)
	}
	entry := func(id int64) *appliance.AuditEntry {
		t.Helper()
		list, err := svc.Audit.FindAudit(ctx, appliance.AuditFilter{Before: id + 1, Limit: 1})
		if err != nil || len(list) != 1 || list[0].ID != id {
			t.Fatalf("entry %d: %+v %v", id, list, err)
		}
		return list[0]
	}
	progress := func(id int64) string { return entry(id).ProgressText() }

	first := label("Bob S")
	if len(first.Phones) != 2 || first.ProgressText() != "2 phones: 2 waiting" {
		t.Fatalf("first change %+v: %s", first.Phones, first.ProgressText())
	}
	v1 := version(p)
	second := label("Bob Smith")
	v2 := version(p)
	if v1 == v2 || second.Phones[0].Version != v2 {
		t.Fatalf("versions %s %s, phones %+v", v1, v2, second.Phones)
	}

	// p fetches the first change only (a fetch that raced the second).
	advance(time.Second)
	fetch(p, v1)
	if got := progress(first.ID); got != "2 phones: 1 reached, 1 waiting" {
		t.Fatalf("after fetching v1: %s", got)
	}
	if got := progress(second.ID); got != "2 phones: 2 waiting" {
		t.Fatalf("second after fetching v1: %s", got)
	}
	// Then the newest: both changes reached it; its report confirms both.
	fetch(p, v2)
	fetch(quiet, version(quiet))
	if got := progress(second.ID); got != "2 phones: 2 reached" {
		t.Fatalf("after fetching v2: %s", got)
	}
	report()
	for _, id := range []int64{first.ID, second.ID} {
		e := entry(id)
		if got := e.ProgressText(); got != "2 phones: 1 confirmed, 1 reached" {
			t.Fatalf("entry %d after the report: %s", id, got)
		}
		for _, ph := range e.Phones {
			if ph.MAC == p.MAC && (ph.ConfirmedAt == nil || ph.ReachedAt == nil || ph.ReachedAt.After(*ph.ConfirmedAt)) {
				t.Fatalf("confirmed phone %+v", ph)
			}
		}
	}

	// An edit undone: the phones still hold that config, nothing is
	// fetched, and the undoing entry is where they are.
	label("Bob X")
	undo := label("Bob Smith")
	if got := progress(undo.ID); got != "2 phones: 1 confirmed, 1 reached" {
		t.Fatalf("undo: %s", got)
	}
}

// ph0Account is the account key of the phone's first line key.
func ph0Account(t *testing.T, svc appliance.Services, p *appliance.Phone) int64 {
	t.Helper()
	l, err := svc.Phones.FindLayout(context.Background(), p.MAC)
	if err != nil || len(l) == 0 {
		t.Fatalf("layout %+v %v", l, err)
	}
	return l[0].KeyID
}

// TestAudit_Retention: the trail keeps the newest AuditKeep entries and
// none older than AuditMaxAge.
func TestAudit_Retention(t *testing.T) {
	db, advance := clockDB(t)
	db.AuditKeep = 3
	svc := db.Services()
	ctx := context.Background()
	names := func() []string {
		t.Helper()
		list, err := svc.Audit.FindAudit(ctx, appliance.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			out = append(out, e.Object)
		}
		return out
	}
	for i := 1; i <= 5; i++ {
		if _, err := svc.Locations.CreateLocation(ctx, &appliance.Location{Name: fmt.Sprint("L", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(names(), ", "); got != "location “L5”, location “L4”, location “L3”" {
		t.Fatalf("kept %s", got)
	}
	db.AuditKeep = 0 // the default
	advance(appliance.AuditMaxAge - time.Hour)
	if _, err := svc.Locations.CreateLocation(ctx, &appliance.Location{Name: "L6"}); err != nil {
		t.Fatal(err)
	}
	if got := len(names()); got != 4 {
		t.Fatalf("%d entries within a year", got)
	}
	advance(2 * time.Hour)
	if _, err := svc.Locations.CreateLocation(ctx, &appliance.Location{Name: "L7"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(), ", "); got != "location “L7”, location “L6”" {
		t.Fatalf("after a year: %s", got)
	}
}

// TestAudit_Filter: by text, by phone (also a deleted one), and page by
// page with the id cursor.
func TestAudit_Filter(t *testing.T) {
	db := MustOpenDB(t)
	svc := db.Services()
	ctx := appliance.WithActor(context.Background(), "carol")
	mustExt(t, svc, "1001", "Alice")
	p1 := mustPhone(t, svc, "001565000001", "T46G", "1001")
	p2 := mustPhone(t, svc, "001565000002", "T46G", "1001")
	name := "Lobby"
	if _, err := svc.Phones.UpdatePhone(ctx, p2.MAC, appliance.PhoneUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Phones.DeletePhone(ctx, p1.MAC); err != nil {
		t.Fatal(err)
	}
	find := func(f appliance.AuditFilter) []string {
		t.Helper()
		list, err := svc.Audit.FindAudit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			out = append(out, e.Action)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    appliance.AuditFilter
		want string
	}{
		{"all", appliance.AuditFilter{}, "phone.delete phone.update phone.create phone.create extension.create"},
		{"actor", appliance.AuditFilter{Q: "carol"}, "phone.delete phone.update"},
		{"field value", appliance.AuditFilter{Q: "lobby"}, "phone.update"},
		{"phone", appliance.AuditFilter{MAC: "00-15-65-00-00-02"}, "phone.update phone.create"},
		{"deleted phone", appliance.AuditFilter{MAC: "001565000001"}, "phone.delete phone.create"},
		{"mac as text", appliance.AuditFilter{Q: "00:15:65:00:00:01"}, "phone.delete phone.create"},
		{"page", appliance.AuditFilter{Limit: 2}, "phone.delete phone.update"},
		{"like is literal", appliance.AuditFilter{Q: "%"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(find(tc.f), " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// The cursor: older than the second entry of the first page.
	list, _ := svc.Audit.FindAudit(ctx, appliance.AuditFilter{Limit: 2})
	if got := strings.Join(find(appliance.AuditFilter{Before: list[1].ID, Limit: 2}), " "); got != "phone.create phone.create" {
		t.Fatalf("older page %q", got)
	}
	for _, bad := range []appliance.AuditFilter{{MAC: "nope"}, {Before: -1}, {Limit: appliance.MaxAuditPage + 1}} {
		_, err := svc.Audit.FindAudit(ctx, bad)
		if appliance.ErrorCode(err) != appliance.EINVALID {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// TestAudit_ManyPhones: a bulk update, an import and a resync are one
// entry each, naming their phones.
func TestAudit_ManyPhones(t *testing.T) {
	db := MustOpenDB(t)
	svc := db.Services()
	ctx := appliance.WithActor(context.Background(), "cli:root")
	mustExt(t, svc, "1001", "Alice")
	res, err := svc.Import.ImportPhones(ctx, parse(t, `mac,name,model,position,key_type,key_value
00:15:65:00:00:01,A,T46G,1,account,1001
00:15:65:00:00:02,B,T46G,1,account,1001
`), false)
	if err != nil || res.Phones != 2 {
		t.Fatalf("import %+v %v", res, err)
	}
	e := newest(t, svc)
	if e.Action != "phones.import" || e.Actor != "cli:root" || len(e.Phones) != 2 ||
		!hasChange(e, appliance.AuditChange{Field: "phones", After: "2 (2 created, 0 updated)"}) {
		t.Fatalf("import entry %+v", e)
	}
	// A dry run records nothing.
	if _, err := svc.Import.ImportPhones(ctx, parse(t, "mac,name,model\n00:15:65:00:00:03,C,T46G\n"), true); err != nil {
		t.Fatal(err)
	}
	if newest(t, svc).ID != e.ID {
		t.Fatal("a dry run was recorded")
	}

	desc := "2nd floor"
	if _, err := svc.Phones.UpdatePhones(ctx, []string{"001565000001", "001565000002"}, appliance.PhoneUpdate{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	e = newest(t, svc)
	if e.Action != "phones.bulk_update" || e.Object != "2 phones: A (00:15:65:00:00:01), B (00:15:65:00:00:02)" || len(e.Phones) != 2 ||
		!hasChange(e, appliance.AuditChange{Field: "description", After: "2nd floor"}) {
		t.Fatalf("bulk entry %+v", e)
	}
	for _, mac := range []string{"001565000001", "001565000002"} {
		if err := svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: mac, Version: e.Phones[0].Version, IP: "10.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Sync.Resync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e = newest(t, svc)
	if e.Action != "phone.resync" || e.Object != "all phones (2)" || len(e.Phones) != 2 || e.Phones[0].ReachedAt != nil {
		t.Fatalf("resync entry %+v", e)
	}
	if err := svc.Phones.DeletePhones(ctx, []string{"001565000001", "001565000002"}); err != nil {
		t.Fatal(err)
	}
	e = newest(t, svc)
	b, _ := json.Marshal(e)
	if e.Action != "phones.bulk_delete" || e.Object != "2 phones" || !strings.Contains(string(b), "B (00:15:65:00:00:02)") {
		t.Fatalf("bulk delete %s", b)
	}
}
