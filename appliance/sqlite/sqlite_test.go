package sqlite_test

import (
	"context"
	"fmt"
	"github.com/provbox/provbox/configs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
)

// MustOpenDB opens a store in a temporary directory with an event bus.
func MustOpenDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db := sqlite.NewDB(filepath.Join(tb.TempDir(), "provbox.db"), configs.MustCatalog(), appliance.HashConfig)
	db.Events = appliance.NewEventBus(nil)
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func mustExt(tb testing.TB, svc appliance.Services, number, name string) *appliance.Extension {
	tb.Helper()
	e, err := svc.Extensions.CreateExtension(context.Background(), &appliance.Extension{Number: number, Name: name, Password: "pw-" + number})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func mustPhone(tb testing.TB, svc appliance.Services, mac, model, ext string) *appliance.Phone {
	tb.Helper()
	p, err := svc.Phones.CreatePhone(context.Background(), &appliance.Phone{MAC: mac, Model: model}, ext)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func mustKey(tb testing.TB, svc appliance.Services, typ, value, label string) *appliance.Key {
	tb.Helper()
	k, err := svc.Keys.CreateKey(context.Background(), &appliance.Key{Type: typ, Value: value, Label: label})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func wantErr(tb testing.TB, err error, code, field string) {
	tb.Helper()
	if appliance.ErrorCode(err) != code || appliance.ErrorField(err) != field {
		tb.Fatalf("got error %v (code %q field %q), want code %q field %q", err, appliance.ErrorCode(err), appliance.ErrorField(err), code, field)
	}
}

// drain returns the MACs of the events published so far.
func drain(sub *appliance.Subscription) []string {
	var macs []string
	for {
		select {
		case e := <-sub.C:
			macs = append(macs, e.MACs...)
		case <-time.After(20 * time.Millisecond):
			return macs
		}
	}
}

func TestOpen_MigratesAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "provbox.db")
	db := sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(); err != nil || v != 14 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	mustExt(t, db.Services(), "1001", "Alice")
	if err := db.SetSettings(context.Background(), appliance.Settings{ProvisioningURL: "http://10.0.0.2/prov/"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Services().Extensions.FindExtensionByNumber(context.Background(), "1001"); err != nil {
		t.Fatal(err)
	}
	if db.Settings().ProvisioningURL != "http://10.0.0.2/prov/" {
		t.Fatalf("settings not kept: %+v", db.Settings())
	}
}

func TestExtension_AccountKeyFollows(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	e := mustExt(t, svc, "1001", "Alice")
	if e.AuthUser != "1001" || e.Transport != "udp" || !e.PasswordSet {
		t.Fatalf("defaults not applied: %+v", e)
	}
	k, err := svc.Keys.FindKey(ctx, e.AccountKey)
	if err != nil || k.Type != "account" || k.Value != "1001" || k.Label != "Alice" {
		t.Fatalf("account key %+v %v", k, err)
	}
	num, name := "2001", "Alice Smith"
	if _, err := svc.Extensions.UpdateExtension(ctx, e.ID, appliance.ExtensionUpdate{Number: &num, Name: &name}); err != nil {
		t.Fatal(err)
	}
	k, _ = svc.Keys.FindKey(ctx, e.AccountKey)
	if k.Value != "2001" || k.Label != "Alice Smith" {
		t.Fatalf("account key not kept in step: %+v", k)
	}
	label := "x"
	_, err = svc.Keys.UpdateKey(ctx, k.ID, appliance.KeyUpdate{Label: &label})
	wantErr(t, err, appliance.ECONFLICT, "id")
	wantErr(t, svc.Keys.DeleteKey(ctx, k.ID, true), appliance.ECONFLICT, "id")
	_, err = svc.Keys.CreateKey(ctx, &appliance.Key{Type: "account", Value: "3001"})
	wantErr(t, err, appliance.EINVALID, "type")
	_, err = svc.Extensions.CreateExtension(ctx, &appliance.Extension{Number: "2001"})
	wantErr(t, err, appliance.ECONFLICT, "number")
	if err := svc.Extensions.DeleteExtension(ctx, e.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Keys.FindKey(ctx, k.ID)
	wantErr(t, err, appliance.ENOTFOUND, "id")
}

func TestExtension_RegistrarDefault(t *testing.T) {
	db := MustOpenDB(t)
	if err := db.SetSettings(context.Background(), appliance.Settings{Registrar: "pbx.example.com:5060"}); err != nil {
		t.Fatal(err)
	}
	e := mustExt(t, db.Services(), "1001", "")
	if e.SIPServer != "pbx.example.com:5060" {
		t.Fatalf("sip_server %q", e.SIPServer)
	}
}

func TestPhone_CreateWithExtension(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	e := mustExt(t, svc, "1001", "Alice")
	p := mustPhone(t, svc, "00-15-65-AA-BB-CC", "T-46g", "1001")
	if p.MAC != "001565aabbcc" || p.Name != "001565aabbcc" || p.Manufacturer != "Yealink" || p.Model != "T46G" {
		t.Fatalf("not normalised: %+v", p)
	}
	if p.Sync.State != appliance.SyncNew || p.Sync.ConfigVersion == "" {
		t.Fatalf("sync %+v", p.Sync)
	}
	layout, err := svc.Phones.FindLayout(ctx, "0015.65aa.bbcc")
	if err != nil {
		t.Fatal(err)
	}
	if len(layout) != 2 || layout[0].Position != 1 || layout[1].Position != 2 || layout[0].KeyID != e.AccountKey || layout[1].KeyID != e.AccountKey {
		t.Fatalf("layout %+v", layout)
	}
	cfg, err := svc.Phones.PhoneConfig(ctx, p.MAC)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 1 || cfg.Accounts[0].Password != "pw-1001" || len(cfg.LineKeys) != 2 || cfg.LineKeys[1].Line != 1 {
		t.Fatalf("config %+v", cfg)
	}
	_, err = svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "001565AABBCC", Model: "T46G"}, "")
	wantErr(t, err, appliance.ECONFLICT, "mac")
	_, err = svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "001565AABBCD", Model: "T46G"}, "9999")
	wantErr(t, err, appliance.EINVALID, "extension")
	if _, err := svc.Phones.FindPhone(ctx, "001565AABBCD"); appliance.ErrorCode(err) != appliance.ENOTFOUND {
		t.Fatalf("half-created phone left behind: %v", err)
	}
}

func TestPhone_Rules(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	loc := int64(99)
	for _, tc := range []struct {
		name  string
		phone appliance.Phone
		field string
	}{
		{"bad mac", appliance.Phone{MAC: "xyz", Model: "T46G"}, "mac"},
		{"multicast", appliance.Phone{MAC: "01:00:5e:00:00:01", Model: "T46G"}, "mac"},
		{"zero", appliance.Phone{MAC: "000000000000", Model: "T46G"}, "mac"},
		{"model", appliance.Phone{MAC: "001565000001", Model: "T99"}, "model"},
		{"no model", appliance.Phone{MAC: "001565000001"}, "model"},
		{"vendor", appliance.Phone{MAC: "001565000001", Manufacturer: "Polycom", Model: "VVX400"}, "manufacturer"},
		{"name newline", appliance.Phone{MAC: "001565000001", Model: "T46G", Name: "a\nb"}, "name"},
		{"location", appliance.Phone{MAC: "001565000001", Model: "T46G", LocationID: &loc}, "location_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Phones.CreatePhone(ctx, &tc.phone, "")
			wantErr(t, err, appliance.EINVALID, tc.field)
		})
	}
}

func TestLayout_Rules(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	var accounts []*appliance.Extension
	for _, n := range []string{"1001", "1002", "1003", "1004", "1005", "1006", "1007"} {
		accounts = append(accounts, mustExt(t, svc, n, ""))
	}
	blf := mustKey(t, svc, "blf", "1002", "Bob")
	mustPhone(t, svc, "001565000001", "T41S", "") // 15 keys, 6 accounts
	acct := accounts[0].AccountKey
	for _, tc := range []struct {
		name   string
		layout []appliance.LayoutEntry
		field  string
	}{
		{"position 0", []appliance.LayoutEntry{{Position: 0, KeyID: acct}}, "keys[0].position"},
		{"beyond model", []appliance.LayoutEntry{{Position: 1, KeyID: acct}, {Position: 16, KeyID: blf.ID}}, "keys[1].position"},
		{"twice", []appliance.LayoutEntry{{Position: 1, KeyID: acct}, {Position: 1, KeyID: blf.ID}}, "keys[1].position"},
		{"no account", []appliance.LayoutEntry{{Position: 1, KeyID: blf.ID}}, "keys"},
		{"unknown key", []appliance.LayoutEntry{{Position: 1, KeyID: acct}, {Position: 2, KeyID: 9999}}, "keys[1].key_id"},
		{"too many accounts", func() (l []appliance.LayoutEntry) {
			for i, a := range accounts {
				l = append(l, appliance.LayoutEntry{Position: i + 1, KeyID: a.AccountKey})
			}
			return l
		}(), "keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Phones.ReplaceLayout(ctx, "001565000001", tc.layout)
			wantErr(t, err, appliance.EINVALID, tc.field)
		})
	}
	got, err := svc.Phones.ReplaceLayout(ctx, "001565000001", []appliance.LayoutEntry{{Position: 3, KeyID: blf.ID}, {Position: 1, KeyID: acct}, {Position: 15, KeyID: accounts[1].AccountKey}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Position != 1 || got[1].Type != "blf" || got[1].Label != "Bob" {
		t.Fatalf("layout %+v", got)
	}
	cfg, _ := svc.Phones.PhoneConfig(ctx, "001565000001")
	if len(cfg.Accounts) != 2 || cfg.Accounts[1].Extension.Number != "1002" || cfg.LineKeys[2].Line != 2 {
		t.Fatalf("accounts in order of appearance: %+v", cfg)
	}
	// A model with fewer keys no longer fits.
	small := "T40P"
	_, err = svc.Phones.UpdatePhone(ctx, "001565000001", appliance.PhoneUpdate{Model: &small})
	wantErr(t, err, appliance.EINVALID, "model")
	// An empty layout is allowed.
	if _, err := svc.Phones.ReplaceLayout(ctx, "001565000001", nil); err != nil {
		t.Fatal(err)
	}
}

func TestConfigVersion_MovesWithEveryInput(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	sub := db.Events.Subscribe(100, appliance.EventPhonesChanged)
	defer sub.Close()
	e := mustExt(t, svc, "1001", "Alice")
	blf := mustKey(t, svc, "blf", "1002", "Bob")
	other := mustPhone(t, svc, "001565000002", "T46G", "") // unrelated phone
	loc, err := svc.Locations.CreateLocation(ctx, &appliance.Location{Name: "HQ", City: "Springfield"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "001565000001", Model: "T46G", LocationID: &loc.ID}, "1001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Phones.ReplaceLayout(ctx, p.MAC, []appliance.LayoutEntry{{Position: 1, KeyID: e.AccountKey}, {Position: 2, KeyID: blf.ID}}); err != nil {
		t.Fatal(err)
	}
	drain(sub)
	version := func(mac string) string {
		p, err := svc.Phones.FindPhone(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		return p.Sync.ConfigVersion
	}
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name   string
		change func() error
	}{
		{"key label", func() error {
			_, err := svc.Keys.UpdateKey(ctx, blf.ID, appliance.KeyUpdate{Label: s("Robert")})
			return err
		}},
		{"key value", func() error {
			_, err := svc.Keys.UpdateKey(ctx, blf.ID, appliance.KeyUpdate{Value: s("1003")})
			return err
		}},
		{"extension name", func() error {
			_, err := svc.Extensions.UpdateExtension(ctx, e.ID, appliance.ExtensionUpdate{Name: s("Al")})
			return err
		}},
		{"extension password", func() error {
			_, err := svc.Extensions.UpdateExtension(ctx, e.ID, appliance.ExtensionUpdate{Password: s("new-secret")})
			return err
		}},
		{"location", func() error {
			_, err := svc.Locations.UpdateLocation(ctx, loc.ID, appliance.LocationUpdate{Street: s("1 Main St")})
			return err
		}},
		{"phone name", func() error {
			_, err := svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: s("Desk")})
			return err
		}},
		{"layout", func() error {
			_, err := svc.Phones.ReplaceLayout(ctx, p.MAC, []appliance.LayoutEntry{{Position: 1, KeyID: e.AccountKey}})
			return err
		}},
		{"setting", func() error { return db.SetSettings(ctx, appliance.Settings{ProvisioningURL: "http://10.0.0.1/prov/"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, otherBefore := version(p.MAC), version(other.MAC)
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			if version(p.MAC) == before {
				t.Fatal("config version did not change")
			}
			macs := drain(sub)
			if !slices.Contains(macs, p.MAC) {
				t.Fatalf("event macs %v", macs)
			}
			if tc.name != "setting" && (version(other.MAC) != otherBefore || len(macs) != 1) {
				t.Fatalf("unrelated phone touched: %v", macs)
			}
		})
	}
	// A change that does not alter anything publishes nothing.
	if _, err := svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: s("Desk")}); err != nil {
		t.Fatal(err)
	}
	if macs := drain(sub); len(macs) != 0 {
		t.Fatalf("no-op published %v", macs)
	}
	// A failed change publishes nothing and changes nothing.
	before := version(p.MAC)
	if _, err := svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: s("bad\rname")}); err == nil {
		t.Fatal("want error")
	}
	if macs := drain(sub); len(macs) != 0 || version(p.MAC) != before {
		t.Fatalf("failed change leaked: %v", macs)
	}
}

func TestDelete_InUseAndForce(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	e := mustExt(t, svc, "1001", "Alice")
	mustExt(t, svc, "1002", "Bob")
	blf := mustKey(t, svc, "blf", "1002", "Bob")
	loc, _ := svc.Locations.CreateLocation(ctx, &appliance.Location{Name: "HQ"})
	p, err := svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "001565000001", Name: "Front desk", Model: "T46G", LocationID: &loc.ID}, "1001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Phones.ReplaceLayout(ctx, p.MAC, []appliance.LayoutEntry{{Position: 1, KeyID: e.AccountKey}, {Position: 2, KeyID: blf.ID}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		del  func(force bool) error
		gone func() bool
	}{
		{"key", func(f bool) error { return svc.Keys.DeleteKey(ctx, blf.ID, f) }, func() bool {
			l, _ := svc.Phones.FindLayout(ctx, p.MAC)
			return len(l) == 1
		}},
		{"location", func(f bool) error { return svc.Locations.DeleteLocation(ctx, loc.ID, f) }, func() bool {
			p, _ := svc.Phones.FindPhone(ctx, p.MAC)
			return p.LocationID == nil
		}},
		{"extension", func(f bool) error { return svc.Extensions.DeleteExtension(ctx, e.ID, f) }, func() bool {
			l, _ := svc.Phones.FindLayout(ctx, p.MAC)
			return len(l) == 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.del(false)
			wantErr(t, err, appliance.ECONFLICT, "id")
			if !strings.Contains(err.Error(), "Front desk (00:15:65:00:00:01)") {
				t.Fatalf("conflict does not name the phone: %v", err)
			}
			if tc.gone() {
				t.Fatal("refused delete changed something")
			}
			if err := tc.del(true); err != nil {
				t.Fatal(err)
			}
			if !tc.gone() {
				t.Fatal("force did not detach")
			}
		})
	}
}

func TestFindKeys_Filters(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	mustKey(t, svc, "blf", "1002", "Bob")
	mustKey(t, svc, "speed_dial", "5551234", "Pizza 100%")
	mustKey(t, svc, "park", "*85", "")
	mustPhone(t, svc, "001565000001", "T46G", "1001")
	yes, no := true, false
	for _, tc := range []struct {
		name string
		f    appliance.KeyFilter
		want []string // values
	}{
		{"all, account keys first", appliance.KeyFilter{}, []string{"1001", "1002", "5551234", "*85"}},
		{"type", appliance.KeyFilter{Type: "blf"}, []string{"1002"}},
		{"value", appliance.KeyFilter{Value: "555"}, []string{"5551234"}},
		{"label", appliance.KeyFilter{Label: "bob"}, []string{"1002"}},
		{"q matches label", appliance.KeyFilter{Q: "alice"}, []string{"1001"}},
		{"q percent literal", appliance.KeyFilter{Q: "100%"}, []string{"5551234"}},
		{"q underscore literal", appliance.KeyFilter{Q: "_"}, nil},
		{"attached", appliance.KeyFilter{Attached: &yes}, []string{"1001"}},
		{"unattached", appliance.KeyFilter{Attached: &no}, []string{"1002", "5551234", "*85"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := svc.Keys.FindKeys(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.Value)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
	keys, _ := svc.Keys.FindKeys(ctx, appliance.KeyFilter{Type: "account"})
	if len(keys[0].AttachedTo) != 1 || keys[0].AttachedTo[0] != "001565000001" {
		t.Fatalf("attached_to %v", keys[0].AttachedTo)
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	u := db.Services().Users
	if _, err := u.CreateUser(ctx, "admin", "short"); appliance.ErrorField(err) != "password" {
		t.Fatalf("short password: %v", err)
	}
	if _, err := u.CreateUser(ctx, "bad name", "long enough"); appliance.ErrorField(err) != "name" {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := u.CreateUser(ctx, "admin", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.CreateUser(ctx, "admin", "correct horse"); appliance.ErrorCode(err) != appliance.ECONFLICT {
		t.Fatalf("dup: %v", err)
	}
	if _, err := u.Authenticate(ctx, "admin", "correct horse"); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{"admin", "wrong"}, {"nobody", "correct horse"}} {
		if _, err := u.Authenticate(ctx, pair[0], pair[1]); appliance.ErrorCode(err) != appliance.EUNAUTHORIZED {
			t.Fatalf("%v: %v", pair, err)
		}
	}
	// A password change ends the admin's sessions and changes its stamp.
	before, err := u.FindUser(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := db.Services().Sessions.CreateSession(ctx, before.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.SetPassword(ctx, "admin", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Services().Sessions.FindSession(ctx, token, time.Hour); appliance.ErrorCode(err) == "" {
		t.Fatal("the session outlived the password change")
	}
	if after, err := u.FindUser(ctx, "admin"); err != nil || after.Stamp == before.Stamp || after.Stamp == "" {
		t.Fatalf("stamp %q → %v, %v", before.Stamp, after, err)
	}
	if _, err := u.Authenticate(ctx, "admin", "battery staple"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, u.DeleteUser(ctx, "admin"), appliance.ECONFLICT, "name")
	if _, err := u.CreateUser(ctx, "second", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if err := u.DeleteUser(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, u.DeleteUser(ctx, "admin"), appliance.ENOTFOUND, "name")
}

// TestCreateFirstUser: racing first-run setups create one admin (SPEC §9).
func TestCreateFirstUser(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	u := db.Services().Users
	var wg sync.WaitGroup
	var made atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := u.CreateFirstUser(ctx, fmt.Sprintf("racer%d", i), "correct horse")
			switch appliance.ErrorCode(err) {
			case "":
				made.Add(1)
			case appliance.ECONFLICT:
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if users, _ := u.FindUsers(ctx); made.Load() != 1 || len(users) != 1 {
		t.Fatalf("%d created, %d admins", made.Load(), len(users))
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	mustExt(t, db.Services(), "1001", "Alice")
	dest := filepath.Join(t.TempDir(), "copy.db")
	if err := db.Backup(ctx, dest); err != nil {
		t.Fatal(err)
	}
	wantErr(t, db.Backup(ctx, dest), appliance.ECONFLICT, "file")
	cp := sqlite.NewDB(dest, configs.MustCatalog(), appliance.HashConfig)
	if err := cp.Open(); err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if _, err := cp.Services().Extensions.FindExtensionByNumber(ctx, "1001"); err != nil {
		t.Fatal(err)
	}
}

// TestDiscovery_Limits: one source records at most 60 new MACs a minute,
// and the list keeps the most recently seen MaxDiscovered (SPEC §9).
func TestDiscovery_Limits(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Unix(1_800_000_000, 0)
	db.Now = func() time.Time { return now }
	db.MaxDiscovered = 100
	svc := db.Services()
	record := func(mac int, ip string) {
		t.Helper()
		if err := svc.Sync.Sighted(ctx, appliance.Sighting{MAC: fmt.Sprintf("001565%06x", mac), IP: ip, Source: "http"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 70 {
		record(i, "10.0.0.40")
	}
	if _, total, _ := svc.Discovery.PageDiscovered(ctx, 0, 10); total != 60 {
		t.Fatalf("one source, 70 new MACs in a minute: %d recorded, want 60", total)
	}
	record(1, "10.0.0.40") // a MAC already listed is still updated
	record(500, "10.0.0.41")
	now = now.Add(61 * time.Second)
	record(600, "10.0.0.40")
	page, total, err := svc.Discovery.PageDiscovered(ctx, 0, 2)
	if err != nil || total != 62 || len(page) != 2 || page[0].MAC != "001565000258" {
		t.Fatalf("page %v total %d: %v", page, total, err)
	}
	// Past the cap the least recently seen go.
	for i := range 60 {
		now = now.Add(time.Second)
		record(1000+i, fmt.Sprintf("10.0.1.%d", i))
	}
	list, _ := svc.Discovery.FindDiscovered(ctx)
	if len(list) != 100 || list[0].MAC != fmt.Sprintf("001565%06x", 1059) {
		t.Fatalf("%d rows, newest %s", len(list), list[0].MAC)
	}
	for _, d := range list {
		if d.MAC == "001565000000" {
			t.Fatal("the least recently seen row was kept")
		}
	}
}

func TestDiscovery_RecordAdopt(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	d := appliance.Sighting{MAC: "00:15:65:12:34:56", Model: "T46G", Firmware: "28.83.0.35", IP: "10.0.0.50", Source: "http", UA: "Yealink SIP-T46G 28.83.0.35 00:15:65:12:34:56\x1b[2J"}
	for i := 0; i < 2; i++ {
		if err := svc.Sync.Sighted(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	// A later sighting without a model keeps the model.
	if err := svc.Sync.Sighted(ctx, appliance.Sighting{MAC: "001565123456", IP: "10.0.0.51", Source: "dhcp"}); err != nil {
		t.Fatal(err)
	}
	list, err := svc.Discovery.FindDiscovered(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("%v %v", list, err)
	}
	got := list[0]
	if got.Vendor != "Yealink" || got.Model != "T46G" || got.IP != "10.0.0.51" || got.Source != "dhcp" || got.Seen != 3 || strings.Contains(got.UserAgent, "\x1b") {
		t.Fatalf("discovered %+v", got)
	}
	_, err = svc.Discovery.AdoptDiscovered(ctx, "001565999999", nil, "")
	wantErr(t, err, appliance.ENOTFOUND, "mac")
	p, err := svc.Discovery.AdoptDiscovered(ctx, "001565123456", &appliance.Phone{Name: "Lobby"}, "1001")
	if err != nil {
		t.Fatal(err)
	}
	if p.Model != "T46G" || p.Name != "Lobby" || p.Sync.SIPAddress != "10.0.0.51:5060" {
		t.Fatalf("adopted %+v", p)
	}
	if list, _ := svc.Discovery.FindDiscovered(ctx); len(list) != 0 {
		t.Fatal("adopted phone still listed")
	}
	// Known phones are not recorded as discovered.
	svc.Sync.Sighted(ctx, d)
	if list, _ := svc.Discovery.FindDiscovered(ctx); len(list) != 0 {
		t.Fatal("known phone recorded")
	}
}

func TestRecordFetch_SyncStates(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	state := func() appliance.SyncStatus {
		p, _ := svc.Phones.FindPhone(ctx, "001565000001")
		return p.Sync
	}
	v1 := p.Sync.ConfigVersion
	if err := svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: v1, IP: "10.0.0.9", UA: "Yealink SIP-T46G", Source: "http"}); err != nil {
		t.Fatal(err)
	}
	s := state()
	if s.State != appliance.SyncFetched || s.FetchedVersion != v1 || s.LastFetchIP != "10.0.0.9" || s.SIPAddress != "10.0.0.9:5060" || s.LastFetchAt == nil {
		t.Fatalf("after fetch %+v", s)
	}
	name := "Desk"
	svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: &name})
	if s := state(); s.State != appliance.SyncPending || s.ConfigVersion == v1 {
		t.Fatalf("after edit %+v", s)
	}
	// A fetch of the old version (raced the edit) leaves it pending.
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: v1, IP: "10.0.0.9"})
	if s := state(); s.State != appliance.SyncPending {
		t.Fatalf("stale fetch %+v", s)
	}
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: state().ConfigVersion, IP: "10.0.0.9"})
	if s := state(); s.State != appliance.SyncFetched || s.StateText() != "fetched (phone does not confirm)" {
		t.Fatalf("fresh fetch %+v", s)
	}
	wantErr(t, svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: "001565000099"}), appliance.ENOTFOUND, "mac")
}

func TestRecordNotify_States(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	mustPhone(t, svc, "001565000001", "T46G", "1001")
	get := func() appliance.SyncStatus {
		p, _ := svc.Phones.FindPhone(ctx, "001565000001")
		return p.Sync
	}
	// Make it pending: fetched once, then edited.
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: "001565000001", Version: get().ConfigVersion, IP: "10.0.0.5"})
	name := "x"
	svc.Phones.UpdatePhone(ctx, "001565000001", appliance.PhoneUpdate{Name: &name})
	v := get().ConfigVersion
	for _, tc := range []struct {
		name   string
		n      appliance.NotifyResult
		state  string
		result string
	}{
		{"no answer", appliance.NotifyResult{Version: v}, "unreachable", "no answer"},
		{"refused keeps state", appliance.NotifyResult{Version: v, Status: 489, Reason: "Bad Event"}, "unreachable", "489 Bad Event"},
		{"stale version", appliance.NotifyResult{Version: "old", Status: 200, Reason: "OK"}, "unreachable", "200 OK"},
		{"answered", appliance.NotifyResult{Version: v, Status: 200, Reason: "OK"}, "notified", "200 OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.n.MAC = "00:15:65:00:00:01"
			if err := svc.Sync.RecordNotify(ctx, tc.n); err != nil {
				t.Fatal(err)
			}
			if s := get(); s.State != tc.state || s.LastNotifyResult != tc.result || s.LastNotifyAt == nil {
				t.Fatalf("%+v", s)
			}
		})
	}
	// A fetch that beat the NOTIFY's answer wins.
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: "001565000001", Version: v, IP: "10.0.0.5"})
	svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: "001565000001", Version: v, Status: 200, Reason: "OK"})
	if s := get(); s.State != appliance.SyncFetched {
		t.Fatalf("notify overwrote fetched: %+v", s)
	}
	wantErr(t, svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: "001565000099"}), appliance.ENOTFOUND, "mac")
}

func TestRecordFetch_GroupCommit(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	var macs []string
	for i := 0; i < 50; i++ {
		p := mustPhone(t, svc, fmt.Sprintf("0015650001%02x", i), "T46G", "")
		macs = append(macs, p.MAC)
	}
	errs := make(chan error, len(macs)+1)
	var wg sync.WaitGroup
	for _, m := range append(macs, "001565ffffff") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := svc.Phones.FindPhone(ctx, m)
			v := "x"
			if err == nil {
				v = p.Sync.ConfigVersion
			}
			errs <- svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: m, Version: v, IP: "10.0.0.1"})
		}()
	}
	wg.Wait()
	close(errs)
	notFound := 0
	for err := range errs {
		if appliance.ErrorCode(err) == appliance.ENOTFOUND {
			notFound++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if notFound != 1 {
		t.Fatalf("%d not found", notFound)
	}
	for _, m := range macs {
		if p, _ := svc.Phones.FindPhone(ctx, m); p.Sync.State != appliance.SyncFetched {
			t.Fatalf("%s: %+v", m, p.Sync)
		}
	}
}

func TestSettingsOverrides(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	db.SetSettings(ctx, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", NotifyRate: 50})
	mustPhone(t, db.Services(), "001565000001", "T46G", "")
	p0, _ := db.Services().Phones.FindPhone(ctx, "001565000001")
	url, rate, bad := "http://pbx.example.com/prov/", 200, "ftp://x/"
	for _, tc := range []struct {
		o     appliance.SettingsOverrides
		field string
	}{
		{appliance.SettingsOverrides{ProvisioningURL: &bad}, "provisioning_url"},
		{appliance.SettingsOverrides{NotifyRate: new(int)}, "notify_rate"},
	} {
		wantErr(t, db.SetOverrides(ctx, tc.o), appliance.EINVALID, tc.field)
	}
	if err := db.SetOverrides(ctx, appliance.SettingsOverrides{ProvisioningURL: &url, NotifyRate: &rate}); err != nil {
		t.Fatal(err)
	}
	// The config file changes at the next start; the override still wins.
	db.SetSettings(ctx, appliance.Settings{ProvisioningURL: "http://10.0.0.3:8080/prov/", NotifyRate: 50, Registrar: "pbx"})
	s := db.Settings()
	if s.ProvisioningURL != url || s.NotifyRate != 200 || s.Registrar != "pbx" {
		t.Fatalf("%+v", s)
	}
	if p, _ := db.Services().Phones.FindPhone(ctx, "001565000001"); p.Sync.ConfigVersion == p0.Sync.ConfigVersion {
		t.Fatal("override did not move the version")
	}
	path := db.Path
	db.Close()
	db2 := sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if db2.Settings().ProvisioningURL != url || db2.BaseSettings().ProvisioningURL != "http://10.0.0.3:8080/prov/" {
		t.Fatalf("after reopen %+v", db2.Settings())
	}
}

// TestProblems_FollowTheConfig: the ready problems are stored with the
// config version and move with every input they depend on.
func TestProblems_FollowTheConfig(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	if err := db.SetSettings(ctx, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}); err != nil {
		t.Fatal(err)
	}
	problems := func() []string {
		t.Helper()
		p, err := svc.Phones.FindPhone(ctx, "001565000001")
		if err != nil {
			t.Fatal(err)
		}
		return p.Sync.Problems
	}
	want := func(step string, subs ...string) {
		t.Helper()
		got := problems()
		if got == nil || len(got) != len(subs) {
			t.Fatalf("%s: problems %q, want %d", step, got, len(subs))
		}
		for i, s := range subs {
			if !strings.Contains(got[i], s) {
				t.Fatalf("%s: problem %q, want %q", step, got[i], s)
			}
		}
	}
	e := mustExt(t, svc, "101", "Alice") // no registrar: no SIP server
	mustPhone(t, svc, "001565000001", "T46G", "101")
	want("extension without server", "extension 101 has no SIP server")

	// The default registrar in Settings covers it.
	reg := "pbx.example.com"
	if err := db.SetOverrides(ctx, appliance.SettingsOverrides{Registrar: &reg}); err != nil {
		t.Fatal(err)
	}
	want("registrar set")
	if err := db.SetOverrides(ctx, appliance.SettingsOverrides{}); err != nil {
		t.Fatal(err)
	}
	want("registrar unset", "extension 101 has no SIP server")
	server := "pbx2.example.com"
	if _, err := svc.Extensions.UpdateExtension(ctx, e.ID, appliance.ExtensionUpdate{SIPServer: &server}); err != nil {
		t.Fatal(err)
	}
	want("extension has a server")

	// Force-deleting the extension leaves the phone without an account key.
	if err := svc.Extensions.DeleteExtension(ctx, e.ID, true); err != nil {
		t.Fatal(err)
	}
	want("extension force-deleted", "no account key")

	// A loopback provisioning URL is named too.
	if err := db.SetSettings(ctx, appliance.Settings{ProvisioningURL: "http://127.0.0.1:8080/prov/"}); err != nil {
		t.Fatal(err)
	}
	want("loopback URL", "no account key", "loopback")
}

// TestPhoneAdminPassword: generated once per installation and kept across
// reopens; the config file's wins while set.
func TestPhoneAdminPassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "provbox.db")
	db := sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	pw := db.Settings().PhoneAdminPassword
	if err := appliance.ValidatePhoneAdminPassword("pw", pw); err != nil || pw == "admin" {
		t.Fatalf("generated %q: %v", pw, err)
	}
	if db.BaseSettings().PhoneAdminPassword != "" {
		t.Error("the generated password shows as the config file's")
	}
	if err := db.SetSettings(context.Background(), appliance.Settings{PhoneAdminPassword: "from-the-config"}); err != nil {
		t.Fatal(err)
	}
	if got := db.Settings().PhoneAdminPassword; got != "from-the-config" {
		t.Fatalf("config file's password not in force: %q", got)
	}
	db.Close()
	db = sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.SetSettings(context.Background(), appliance.Settings{}); err != nil {
		t.Fatal(err)
	}
	if got := db.Settings().PhoneAdminPassword; got != pw {
		t.Fatalf("after reopen %q, want the generated %q again", got, pw)
	}
	other := MustOpenDB(t)
	if other.Settings().PhoneAdminPassword == pw {
		t.Error("two installations share a generated password")
	}
}

// TestResync_NeverFetched: a phone that never fetched gets no check-sync
// (it would reboot): named, it is refused; with all, it is skipped.
func TestResync_NeverFetched(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	fresh := mustPhone(t, svc, "001565000001", "T46G", "1001")
	old := mustPhone(t, svc, "001565000002", "T46G", "1001")
	if err := svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: old.MAC, Version: old.Sync.ConfigVersion, IP: "10.0.0.9"}); err != nil {
		t.Fatal(err)
	}
	sub := db.Events.Subscribe(10)
	defer sub.Close()
	err := svc.Sync.Resync(ctx, []string{old.MAC, fresh.MAC})
	wantErr(t, err, appliance.ECONFLICT, "mac")
	if !strings.Contains(err.Error(), "never fetched") {
		t.Errorf("error %q does not say why", err)
	}
	if got := drain(sub); len(got) != 0 {
		t.Fatalf("refused resync published %v", got)
	}
	if err := svc.Sync.Resync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := drain(sub); !slices.Equal(got, []string{old.MAC}) {
		t.Fatalf("resync all notified %v, want only the phone that fetched", got)
	}
}
