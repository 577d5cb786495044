package configs_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
	"github.com/provbox/provbox/configs"
)

type fixture struct {
	db       *sqlite.DB
	svc      appliance.Services
	resolver *configs.Resolver
	fwDir    string
}

func newFixture(t *testing.T, missLimit int) *fixture {
	t.Helper()
	dir := t.TempDir()
	r := &configs.Renderer{}
	db := sqlite.NewDB(filepath.Join(dir, "provbox.db"), configs.MustCatalog(), r.Version)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	db.SetSettings(ctx, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", Registrar: "pbx.example.com", PickupPrefix: "**"})
	svc := db.Services()
	if _, err := svc.Extensions.CreateExtension(ctx, &appliance.Extension{Number: "1001", Name: "Alice", Password: "s3cret-pw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "001565aabbcc", Model: "T46G"}, "1001"); err != nil {
		t.Fatal(err)
	}
	fw := filepath.Join(dir, "firmware")
	os.MkdirAll(fw, 0o755)
	os.WriteFile(filepath.Join(fw, "T46-28.86.0.10.rom"), []byte("firmware-bytes"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("outside"), 0o644)
	os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(fw, "link.rom"))
	os.Mkdir(filepath.Join(fw, "sub"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(fw, "fifo.rom"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, svc: svc, fwDir: fw, resolver: &configs.Resolver{
		Services: svc, Renderer: r, FirmwareDir: fw,
		Guard: &appliance.Guard{Limit: missLimit}, Logger: slog.New(slog.DiscardHandler),
	}}
}

// open makes the store publish on bus and opens the resolver on it until
// the test ends.
func (fx *fixture) open(t *testing.T, bus *appliance.EventBus) {
	t.Helper()
	fx.db.Events, fx.resolver.Services.Events = bus, bus
	if err := fx.resolver.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.resolver.Close() })
}

// auth adds phone 001565aabbcc's own secret to req.
func (fx *fixture) auth(req appliance.FileRequest) appliance.FileRequest {
	p, err := fx.svc.Phones.FindPhone(context.Background(), "001565aabbcc")
	if err != nil {
		panic(err)
	}
	req.HasAuth, req.User, req.Password = true, p.MAC, p.Secret
	return req
}

func read(t *testing.T, f *appliance.ServedFile) string {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f.Reader())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestResolve_KnownPhoneConfirmsSync(t *testing.T) {
	fx := newFixture(t, 20)
	ctx := context.Background()
	req := fx.auth(appliance.FileRequest{UA: "Yealink SIP-T46G 28.83.0.35 00:15:65:aa:bb:cc", IP: "10.0.0.50", Source: "http"})
	for _, name := range []string{"001565aabbcc.cfg", "/001565AABBCC.cfg"} {
		req.Name = name
		f, err := fx.resolver.ResolveFile(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		body := read(t, f)
		if f.Phone == nil || f.Version != configs.HashFile([]byte(body)) || f.Name != "001565aabbcc.cfg" {
			t.Fatalf("file %+v", f)
		}
	}
	p, _ := fx.svc.Phones.FindPhone(ctx, "001565aabbcc")
	if p.Sync.State != appliance.SyncFetched || p.Sync.FetchedVersion != p.Sync.ConfigVersion || p.Sync.LastFetchIP != "10.0.0.50" || p.Sync.LastFetchUA != req.UA {
		t.Fatalf("sync %+v", p.Sync)
	}
	// The store's version is the hash of the rendered file.
	req.Name = "001565aabbcc.cfg"
	f, _ := fx.resolver.ResolveFile(ctx, req)
	read(t, f)
	if f.Version != p.Sync.ConfigVersion {
		t.Fatalf("served version %s, stored %s", f.Version, p.Sync.ConfigVersion)
	}
}

func TestResolve_Files(t *testing.T) {
	fx := newFixture(t, 0)
	ctx := context.Background()
	req := appliance.FileRequest{IP: "10.0.0.60", Source: "tftp"}
	for _, tc := range []struct {
		name string
		want string // "" = not found
	}{
		{"y000000000028.cfg", "#!version:1.0.0.1"},
		{"y000000000000.boot", ""},
		{"001565aabbcc.boot", ""},
		{"y000000000999.cfg", ""},
		{"T46-28.86.0.10.rom", "firmware-bytes"},
		{"link.rom", ""}, // symlink out of the firmware folder
		{"sub", ""},      // a directory
		{"fifo.rom", ""}, // a FIFO: refused at once, not a hung read
		{"nope.rom", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req.Name = tc.name
			f, err := fx.resolver.ResolveFile(ctx, req)
			if tc.want == "" {
				if appliance.ErrorCode(err) != appliance.ENOTFOUND {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := read(t, f); len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// Hostile paths never resolve outside the served set.
func TestCleanName_Hostile(t *testing.T) {
	for _, p := range []string{
		"", "/", "..", "../provbox.db", "/etc/passwd", "firmware/../../secret.txt", "..%2fsecret.txt", "%2e%2e/x",
		"a/b.rom", `..\secret.txt`, `a\b`, "x\x00.cfg", ".hidden", "./x.rom", "001565aabbcc.cfg/", "//etc/passwd",
		"x..y", "name with space.rom", "ünï.rom", string(make([]byte, 200)),
	} {
		if got := configs.CleanName(p); got != "" {
			t.Errorf("CleanName(%q) = %q", p, got)
		}
	}
	for _, p := range []string{"001565aabbcc.cfg", "/y000000000028.cfg", "T46-28.86.0.10.rom", "fw_1+2.bin"} {
		if configs.CleanName(p) == "" {
			t.Errorf("CleanName(%q) refused", p)
		}
	}
}

func TestResolve_UnknownPhoneDiscoveredAndLimited(t *testing.T) {
	fx := newFixture(t, 3)
	ctx := context.Background()
	// Guessers offer some secret (without credentials nothing counts: a
	// phone's first request comes without them, before the challenge).
	get := func(name, ip string) (*appliance.ServedFile, error) {
		return fx.resolver.ResolveFile(ctx, fx.auth(appliance.FileRequest{Name: name, IP: ip, Source: "http", UA: "Yealink SIP-T54W 96.86.0.45 00:15:65:11:22:33"}))
	}
	_, err := get("001565112233.cfg", "10.0.0.70")
	if appliance.ErrorCode(err) != appliance.EUNAUTHORIZED {
		t.Fatal(err)
	}
	list, _ := fx.svc.Discovery.FindDiscovered(ctx)
	if len(list) != 1 || list[0].MAC != "001565112233" || list[0].Model != "T54W" || list[0].Firmware != "96.86.0.45" || list[0].Vendor != "Yealink" || list[0].IP != "10.0.0.70" {
		t.Fatalf("discovered %+v", list)
	}
	// Guessing MACs: after 3 misses in a minute the address is refused,
	// even for files that exist; other addresses are not.
	for i := 0; i < 3; i++ {
		get("00156500000"+string(rune('0'+i))+".cfg", "10.0.0.70")
	}
	if _, err := get("001565aabbcc.cfg", "10.0.0.70"); appliance.ErrorCode(err) != appliance.ETOOMANY {
		t.Fatalf("not refused: %v", err)
	}
	if f, err := get("001565aabbcc.cfg", "10.0.0.71"); err != nil {
		t.Fatalf("other address refused: %v", err)
	} else {
		f.Close()
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"001565aabbcc.cfg", "../x", "/y000000000028.cfg", "a/b", "x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := configs.CleanName(s)
		if got == "" {
			return
		}
		if filepath.Base(got) != got || got == "." || got == ".." || got[0] == '.' || len(got) > 128 {
			t.Fatalf("CleanName(%q) = %q escapes", s, got)
		}
		for _, c := range []byte(got) {
			if c == '/' || c == '\\' || c == 0 || c == '%' {
				t.Fatalf("CleanName(%q) = %q", s, got)
			}
		}
	})
}

func TestRenderFile_NoFetchRecorded(t *testing.T) {
	fx := newFixture(t, 0)
	ctx := context.Background()
	b, err := fx.resolver.RenderFile(ctx, "00:15:65:AA:BB:CC", "")
	if err != nil || !strings.Contains(string(b), "account.1.password = s3cret-pw") {
		t.Fatalf("%s %v", b, err)
	}
	f, err := fx.resolver.ResolveFile(ctx, fx.auth(appliance.FileRequest{Name: "001565aabbcc.cfg", IP: "10.0.0.1", Source: "http"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, f); got != string(b) {
		t.Fatal("render differs from what the phone gets")
	}
	if m, err := fx.resolver.RenderFile(ctx, "001565aabbcc", "y000000000028.cfg"); err != nil || !strings.HasPrefix(string(m), "#!version") {
		t.Fatalf("model file %q %v", m, err)
	}
	if _, err := fx.resolver.RenderFile(ctx, "001565aabbcc", "y000000000066.cfg"); appliance.ErrorCode(err) != appliance.ENOTFOUND {
		t.Fatalf("other model's file: %v", err)
	}
	if _, err := fx.resolver.RenderFile(ctx, "001565000000", ""); appliance.ErrorCode(err) != appliance.ENOTFOUND {
		t.Fatalf("unknown phone: %v", err)
	}
	p, _ := fx.svc.Phones.FindPhone(ctx, "001565aabbcc")
	if p.Sync.LastFetchIP != "10.0.0.1" {
		t.Fatalf("render recorded a fetch: %+v", p.Sync)
	}
}

// Editing a template override changes what phones get once the templates
// are checked (at start, on SIGHUP): the versions move then, the phones
// are told, and a fetch of the new file confirms the sync. A fetch alone
// never moves a version nor publishes a change.
func TestResolve_TemplateOverrideCheckedNotFetched(t *testing.T) {
	fx := newFixture(t, 0)
	ctx := context.Background()
	dir := t.TempDir()
	fx.resolver.Renderer = &configs.Renderer{TemplateDir: dir}
	fx.db.Version = fx.resolver.Renderer.Version
	bus := appliance.NewEventBus(nil)
	fx.open(t, bus)
	changes := bus.Subscribe(10, appliance.EventPhonesChanged)
	defer changes.Close()
	get := func() (string, *appliance.Phone) {
		t.Helper()
		f, err := fx.resolver.ResolveFile(ctx, fx.auth(appliance.FileRequest{Name: "001565aabbcc.cfg", IP: "10.0.0.1", Source: "http"}))
		if err != nil {
			t.Fatal(err)
		}
		body := read(t, f)
		p, _ := fx.svc.Phones.FindPhone(ctx, "001565aabbcc")
		return body, p
	}
	_, before := get()
	if before.Sync.State != appliance.SyncFetched {
		t.Fatalf("after the first fetch: %+v", before.Sync)
	}
	os.MkdirAll(filepath.Join(dir, "yealink"), 0o755)
	os.WriteFile(filepath.Join(dir, "yealink", configs.MACTemplate), []byte("#!version:1.0.0.1\ncustom = {{val .Model}}\n"), 0o644)
	for i := 0; i < 3; i++ {
		if _, p := get(); p.Sync.ConfigVersion != before.Sync.ConfigVersion || p.Sync.State != appliance.SyncFetched {
			t.Fatalf("fetch %d moved the stored version: %+v", i, p.Sync)
		}
	}
	select {
	case e := <-changes.C:
		t.Fatalf("a fetch published %+v", e)
	default:
	}

	if moved, err := fx.resolver.CheckTemplates(ctx); err != nil || !moved {
		t.Fatalf("check after the edit: moved %v, %v", moved, err)
	}
	select {
	case e := <-changes.C:
		if len(e.MACs) != 1 || e.MACs[0] != "001565aabbcc" {
			t.Fatalf("change %+v", e)
		}
	case <-time.After(time.Second):
		t.Fatal("no change published for the phone")
	}
	if p, _ := fx.svc.Phones.FindPhone(ctx, "001565aabbcc"); p.Sync.ConfigVersion == before.Sync.ConfigVersion {
		t.Fatalf("after the check: %+v", p.Sync)
	}
	body, after := get()
	if body != "#!version:1.0.0.1\ncustom = T46G\n" || after.Sync.State != appliance.SyncFetched || after.Sync.FetchedVersion != after.Sync.ConfigVersion {
		t.Fatalf("after the check: %q, %+v", body, after.Sync)
	}
	if moved, err := fx.resolver.CheckTemplates(ctx); err != nil || moved {
		t.Fatalf("second check: moved %v, %v", moved, err)
	}
}

// With the resolver open, an edit reaches the next fetch at once, and a deleted
// phone's file is gone at once.
func TestResolve_OpenInvalidates(t *testing.T) {
	fx := newFixture(t, 0)
	bus := appliance.NewEventBus(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fx.open(t, bus)
	req := fx.auth(appliance.FileRequest{Name: "001565aabbcc.cfg", IP: "10.0.0.1", Source: "http"})
	fetch := func() (string, error) {
		f, err := fx.resolver.ResolveFile(ctx, req)
		if err != nil {
			return "", err
		}
		return read(t, f), nil
	}
	fetch()
	for i, label := range []string{"Alpha", "Beta", "Gamma"} {
		name := label
		if _, err := fx.svc.Extensions.UpdateExtension(ctx, 1, appliance.ExtensionUpdate{Name: &name}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			body, _ := fetch()
			if strings.Contains(body, "account.1.display_name = "+label) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("edit %d not served after 1 s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	fx.svc.Phones.DeletePhone(ctx, "001565aabbcc")
	time.Sleep(50 * time.Millisecond)
	if _, err := fetch(); appliance.ErrorCode(err) != appliance.EUNAUTHORIZED {
		t.Fatalf("deleted phone still served: %v", err)
	}
}

// A subscriber acting on a change (the sync loop sending a NOTIFY) already
// gets the new file: the cache is dropped before subscribers hear of it.
func TestResolve_NoStaleFileAfterEvent(t *testing.T) {
	fx := newFixture(t, 0)
	bus := appliance.NewEventBus(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fx.open(t, bus)
	sub := bus.Subscribe(10)
	defer sub.Close()
	get := func() string {
		f, err := fx.resolver.ResolveFile(ctx, fx.auth(appliance.FileRequest{Name: "001565aabbcc.cfg", IP: "10.0.0.1", Source: "http"}))
		if err != nil {
			t.Fatal(err)
		}
		return read(t, f)
	}
	for i := 0; i < 20; i++ {
		get() // warm the cache
		name := fmt.Sprintf("Name%d", i)
		if _, err := fx.svc.Extensions.UpdateExtension(ctx, 1, appliance.ExtensionUpdate{Name: &name}); err != nil {
			t.Fatal(err)
		}
		<-sub.C
		if body := get(); !strings.Contains(body, "display_name = "+name) {
			t.Fatalf("round %d: the file fetched right after the event is stale", i)
		}
	}
}

// Per-phone secrets (SPEC §5): a phone's file opens with its own secret
// only, once without it while its claim window is open, and a refusal is
// the same for a known and an unknown MAC and changes nothing.
func TestResolve_Secrets(t *testing.T) {
	fx := newFixture(t, 0)
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	fx.db.Now, fx.resolver.Now = clock, clock
	if _, err := fx.svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "001565000b0b", Model: "T46G"}, "1001"); err != nil {
		t.Fatal(err)
	}
	secretOf := func(mac string) (string, *appliance.Phone) {
		p, err := fx.svc.Phones.FindPhone(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		return p.Secret, p
	}
	a, pa := secretOf("001565aabbcc")
	b, _ := secretOf("001565000b0b")
	if len(a) != 24 || a == b || pa.Sync.ClaimOpenUntil == nil {
		t.Fatalf("secrets %q %q, claim %v", a, b, pa.Sync.ClaimOpenUntil)
	}
	type try struct {
		name     string
		mac      string
		source   string
		user     string // "" no credentials
		password string
		want     string // "" served, else the error code
		auth     string // how it was allowed
	}
	run := func(t *testing.T, steps []try) {
		for _, st := range steps {
			req := appliance.FileRequest{Name: st.mac + ".cfg", IP: "10.0.0.9", Source: st.source}
			if st.user != "" {
				req.HasAuth, req.User, req.Password = true, st.user, st.password
			}
			before, _ := fx.svc.Phones.FindPhone(ctx, st.mac)
			f, err := fx.resolver.ResolveFile(ctx, req)
			if appliance.ErrorCode(err) != st.want {
				t.Fatalf("%s: got %v, want %q", st.name, err, st.want)
			}
			if err != nil {
				if after, _ := fx.svc.Phones.FindPhone(ctx, st.mac); before != nil && (after.Sync.LastFetchAt != before.Sync.LastFetchAt && !after.Sync.LastFetchAt.Equal(*before.Sync.LastFetchAt) ||
					after.Sync.State != before.Sync.State || after.Sync.SIPAddress != before.Sync.SIPAddress || after.Sync.LastFetchIP != before.Sync.LastFetchIP) {
					t.Fatalf("%s: a refused request changed the phone: %+v → %+v", st.name, before.Sync, after.Sync)
				}
				continue
			}
			body := read(t, f)
			if !strings.Contains(body, "static.auto_provision.server.password = ") {
				t.Fatalf("%s: no secret in the file", st.name)
			}
		}
	}
	now = now.Add(time.Minute)
	run(t, []try{
		{"A's secret opens A's file", "001565aabbcc", "http", "001565aabbcc", a, "", ""},
		// B never fetched: one fetch without a secret (TFTP too), then no more.
		{"B claims over TFTP", "001565000b0b", "tftp", "", "", "", ""},
		{"B a second time without secret", "001565000b0b", "http", "", "", appliance.EUNAUTHORIZED, ""},
		{"A's secret does not open B's file", "001565000b0b", "http", "001565000b0b", a, appliance.EUNAUTHORIZED, ""},
		{"B's secret under A's name", "001565000b0b", "http", "001565aabbcc", b, appliance.EUNAUTHORIZED, ""},
		{"wrong secret, unknown MAC", "001565999999", "http", "001565999999", a, appliance.EUNAUTHORIZED, ""},
		{"no secret, unknown MAC", "001565999999", "http", "", "", appliance.EUNAUTHORIZED, ""},
		{"no secret, unknown MAC, tftp", "001565999998", "tftp", "", "", appliance.EUNAUTHORIZED, ""},
		// A fetched with its secret: its claim window closed.
		{"A without secret after its fetch", "001565aabbcc", "http", "", "", appliance.EUNAUTHORIZED, ""},
		{"A over TFTP after its fetch", "001565aabbcc", "tftp", "", "", appliance.EUNAUTHORIZED, ""},
		{"B with its secret", "001565000b0b", "http", "001565000b0b", b, "", ""},
	})
	if p, _ := fx.svc.Phones.FindPhone(ctx, "001565aabbcc"); p.Sync.ClaimOpenUntil != nil {
		t.Fatalf("claim still open after a fetch with the secret: %v", p.Sync.ClaimOpenUntil)
	}
	if list, _ := fx.svc.Discovery.FindDiscovered(ctx); len(list) != 2 {
		t.Fatalf("unknown MACs not discovered: %+v", list)
	}

	// Rotation: the old secret still opens the file (the phone learns the
	// new one from it) until the phone fetches with the new one.
	if _, err := fx.svc.Phones.RotateSecret(ctx, "001565aabbcc"); err != nil {
		t.Fatal(err)
	}
	a2, _ := secretOf("001565aabbcc")
	run(t, []try{
		{"old secret after rotation", "001565aabbcc", "http", "001565aabbcc", a, "", ""},
		{"new secret", "001565aabbcc", "http", "001565aabbcc", a2, "", ""},
		{"old secret once the new one was used", "001565aabbcc", "http", "001565aabbcc", a, appliance.EUNAUTHORIZED, ""},
	})

	// Reopen: one more fetch without the secret (a factory-reset phone).
	p, err := fx.svc.Phones.OpenClaim(ctx, "001565aabbcc")
	if err != nil || p.Sync.ClaimOpenUntil == nil || !p.Sync.ClaimOpenUntil.After(now.Add(23*time.Hour)) {
		t.Fatalf("reopen: %v %+v", err, p)
	}
	run(t, []try{
		{"reopened: stale credentials count as none", "001565aabbcc", "http", "001565aabbcc", "stale", "", ""},
		{"reopened window used", "001565aabbcc", "http", "", "", appliance.EUNAUTHORIZED, ""},
	})

	// A window that has ended is closed.
	fx.svc.Phones.OpenClaim(ctx, "001565aabbcc")
	now = now.Add(25 * time.Hour)
	run(t, []try{{"after the window", "001565aabbcc", "tftp", "", "", appliance.EUNAUTHORIZED, ""}})

	// provisioning.open: no secrets at all.
	set := fx.db.BaseSettings()
	set.OpenProvisioning = true
	if err := fx.db.SetSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	run(t, []try{{"open provisioning", "001565aabbcc", "tftp", "", "", "", ""}})
}

// countingPhones counts the store's reads of phones (FindPhone) and
// renders' inputs (PhoneConfig): a cached file needs neither.
type countingPhones struct {
	appliance.PhoneService
	finds, configs atomic.Int64
}

func (c *countingPhones) FindPhone(ctx context.Context, mac string) (*appliance.Phone, error) {
	c.finds.Add(1)
	return c.PhoneService.FindPhone(ctx, mac)
}

// countingSync counts fetch records.
type countingSync struct {
	appliance.SyncService
	fetches atomic.Int64
}

func (c *countingSync) RecordFetch(ctx context.Context, f appliance.Fetch) error {
	c.fetches.Add(1)
	return c.SyncService.RecordFetch(ctx, f)
}

// A fetch reads: while the resolver is open, fetches of an unchanged file
// read nothing from the store and render nothing. The first is recorded
// before the answer, its repeats at most every 10 s and in the
// background, and a resync ends the repeat: the next fetch is recorded
// before the answer again (the sync loop waits for it).
func TestResolve_UnchangedFetchesReadNothing(t *testing.T) {
	fx := newFixture(t, 0)
	ctx := context.Background()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	phones := &countingPhones{PhoneService: fx.svc.Phones}
	records := &countingSync{SyncService: fx.svc.Sync}
	fx.resolver.Services.Phones, fx.resolver.Services.Sync = phones, records
	fx.resolver.Now = clock
	fx.open(t, appliance.NewEventBus(nil))
	req := fx.auth(appliance.FileRequest{Name: "001565aabbcc.cfg", IP: "10.0.0.1", Source: "http", UA: "Yealink SIP-T46G 28.83.0.35 00:15:65:aa:bb:cc"})
	fetch := func() {
		t.Helper()
		f, err := fx.resolver.ResolveFile(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		read(t, f)
	}
	fetch() // closes the claim window (its event drops the entry)
	fetch()
	phones.finds.Store(0)
	phones.configs.Store(0)
	records.fetches.Store(0)
	for i := 0; i < 100; i++ {
		fetch()
	}
	if f, c, r := phones.finds.Load(), phones.configs.Load(), records.fetches.Load(); f+c+r != 0 {
		t.Fatalf("100 fetches of an unchanged file: %d phone reads, %d renders' reads, %d records; want none", f, c, r)
	}

	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	fetch()
	for deadline := time.Now().Add(2 * time.Second); records.fetches.Load() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a repeat after 11 s: %d records, want 1 (in the background)", records.fetches.Load())
		}
	}
	if f := phones.finds.Load(); f != 1 {
		t.Fatalf("a fetch after the cache's 10 s: %d phone reads, want 1", f)
	}

	if err := fx.svc.Sync.Resync(ctx, []string{"001565aabbcc"}); err != nil {
		t.Fatal(err)
	}
	fetch()
	if r := records.fetches.Load(); r != 2 {
		t.Fatalf("the fetch after a resync: %d records in all, want 2 (recorded before the answer)", r)
	}
}

func (c *countingPhones) PhoneConfig(ctx context.Context, mac string) (*appliance.PhoneConfig, error) {
	c.configs.Add(1)
	return c.PhoneService.PhoneConfig(ctx, mac)
}

// Requests for made-up MACs fill the cache only until their entries are
// stale: a full cache sweeps them, and a phone's file is cached again.
func TestResolve_CacheNotCrowdedOutByUnknownMACs(t *testing.T) {
	fx := newFixture(t, 0)
	bus := appliance.NewEventBus(nil)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	phones := &countingPhones{PhoneService: fx.svc.Phones}
	fx.resolver.Services.Phones = phones
	fx.resolver.Now, fx.resolver.CacheSize = clock, 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fx.open(t, bus)
	req := fx.auth(appliance.FileRequest{Name: "001565aabbcc.cfg", IP: "10.0.0.1", Source: "http"})
	fetch := func() {
		t.Helper()
		f, err := fx.resolver.ResolveFile(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		read(t, f)
	}
	fetch() // closes the claim window (its event drops the entry)
	for i := 0; i < 5; i++ {
		fx.resolver.ResolveFile(ctx, appliance.FileRequest{Name: fmt.Sprintf("00156599990%d.cfg", i), IP: "10.0.0.9", Source: "http"})
	}
	phones.configs.Store(0)
	mu.Lock()
	now = now.Add(11 * time.Second) // the made-up MACs' entries are stale
	mu.Unlock()
	for i := 0; i < 3; i++ {
		fetch()
	}
	if n := phones.configs.Load(); n != 1 {
		t.Fatalf("the phone's file was rendered %d times for 3 fetches: not cached", n)
	}
}

// TestResolve_DiscoversCatalogModels: an unknown phone of each kind the
// catalog knows is recorded under its catalog name — a DECT base and an AX
// by their User-Agents (no "SIP-"), a T58V as the T58 — and a TFTP fetch
// (no User-Agent) by the vendor of its MAC prefix.
func TestResolve_DiscoversCatalogModels(t *testing.T) {
	fx := newFixture(t, 100)
	ctx := context.Background()
	for _, tc := range []struct{ mac, ua, source, vendor, model string }{
		{"805e0c1d654e", "Yealink W70B 146.87.0.15 80:5e:0c:1d:65:4e", "http", "Yealink", "W70B"},
		{"44dbd2bdb569", "Yealink SIP-T77U 185.87.0.10 44:db:d2:bd:b5:69", "http", "Yealink", "T77U"},
		{"249ad8000001", "Yealink AX86R 180.87.0.15 24:9a:d8:00:00:01", "http", "Yealink", "AX86R"},
		{"001565000058", "Yealink SIP-T58V 58.86.0.20 001565000058", "http", "Yealink", "T58"},
		{"c4fc22000001", "", "tftp", "Yealink", ""},
	} {
		_, err := fx.resolver.ResolveFile(ctx, appliance.FileRequest{Name: tc.mac + ".cfg", IP: "10.0.0.80", Source: tc.source, UA: tc.ua})
		if appliance.ErrorCode(err) != appliance.EUNAUTHORIZED {
			t.Fatalf("%s: %v", tc.mac, err)
		}
		list, _ := fx.svc.Discovery.FindDiscovered(ctx)
		var got *appliance.Discovered
		for _, d := range list {
			if d.MAC == tc.mac {
				got = d
			}
		}
		if got == nil || got.Vendor != tc.vendor || got.Model != tc.model {
			t.Errorf("%s: discovered %+v, want %s %s", tc.mac, got, tc.vendor, tc.model)
		}
	}
}

// Concurrent fetches share one prepared file per version while changes
// land; after the last change every fetch gets the last file (run with
// -race).
func TestResolve_ConcurrentFetchesAndChanges(t *testing.T) {
	fx := newFixture(t, 0)
	ctx := context.Background()
	fx.open(t, appliance.NewEventBus(nil))
	req := fx.auth(appliance.FileRequest{Name: "001565aabbcc.cfg", IP: "10.0.0.1", Source: "http"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				f, err := fx.resolver.ResolveFile(ctx, req)
				if err != nil {
					errs <- err
					return
				}
				if b, _ := io.ReadAll(f.Reader()); configs.HashFile(b) != f.Version {
					errs <- fmt.Errorf("served version %s is not the hash of the bytes served", f.Version)
					return
				}
			}
		}()
	}
	last := ""
	for i := 0; i < 10; i++ {
		last = fmt.Sprintf("Name%d", i)
		if _, err := fx.svc.Extensions.UpdateExtension(ctx, 1, appliance.ExtensionUpdate{Name: &last}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f, err := fx.resolver.ResolveFile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if body := read(t, f); !strings.Contains(body, "display_name = "+last) {
		t.Fatalf("after the last change the file is stale:\n%s", body)
	}
}

// NoWait (the HTTP poll loop's ask) answers only from memory: a phone not
// in the cache, its first fetch (recorded before the answer), an open
// claim, a new version after a change and any other file get
// ErrWouldWait with nothing done — no read, no record, no guard count —
// and the same request without NoWait answers; a cached file whose fetch
// was recorded answers.
func TestResolve_NoWaitAnswersOnlyFromMemory(t *testing.T) {
	fx := newFixture(t, 0)
	ctx := context.Background()
	phones := &countingPhones{PhoneService: fx.svc.Phones}
	records := &countingSync{SyncService: fx.svc.Sync}
	fx.resolver.Services.Phones, fx.resolver.Services.Sync = phones, records
	fx.open(t, appliance.NewEventBus(nil))
	claim := appliance.FileRequest{Name: "001565aabbcc.cfg", IP: "10.0.0.1", Source: "http", UA: "Yealink SIP-T46G 28.83.0.35 00:15:65:aa:bb:cc"}
	own := fx.auth(claim)
	noWait := func(r appliance.FileRequest) appliance.FileRequest { r.NoWait = true; return r }
	wouldWait := func(what string, req appliance.FileRequest) {
		t.Helper()
		f0, c0, r0 := phones.finds.Load(), phones.configs.Load(), records.fetches.Load()
		if f, err := fx.resolver.ResolveFile(ctx, noWait(req)); err != appliance.ErrWouldWait {
			if f != nil {
				f.Close()
			}
			t.Fatalf("%s with NoWait: %v, want ErrWouldWait", what, err)
		}
		if f, c, r := phones.finds.Load()-f0, phones.configs.Load()-c0, records.fetches.Load()-r0; f+c+r != 0 {
			t.Fatalf("%s with NoWait: %d phone reads, %d renders' reads, %d records; want none", what, f, c, r)
		}
	}
	answers := func(what string, req appliance.FileRequest) string {
		t.Helper()
		f, err := fx.resolver.ResolveFile(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return read(t, f)
	}

	wouldWait("a phone not in the cache, in its claim window", claim)
	answers("the claim fetch, allowed to wait", claim)
	wouldWait("the phone's first fetch with its secret (recorded before the answer)", own)
	first := answers("that fetch, allowed to wait", own)
	if got := answers("a repeat from memory", noWait(own)); got != first {
		t.Fatalf("from memory: another file")
	}
	moved := own
	moved.IP = "10.0.0.9"
	wouldWait("the cached file fetched from another address (a new fetch, recorded before the answer)", moved)
	wouldWait("another file than a <mac>.cfg", appliance.FileRequest{Name: "y000000000028.cfg", IP: "10.0.0.1", Source: "http"})

	name := "Alice B"
	if _, err := fx.svc.Extensions.UpdateExtension(ctx, 1, appliance.ExtensionUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	wouldWait("a new version after a change", own)
	if got := answers("the new version, allowed to wait", own); got == first || !strings.Contains(got, "Alice B") {
		t.Fatalf("after the change: the old file")
	}
	answers("the new version's repeat from memory", noWait(own))

	// A refusal needs no store: answered at once, as without NoWait.
	bad := own
	bad.Password = "wrong"
	if _, err := fx.resolver.ResolveFile(ctx, noWait(bad)); appliance.ErrorCode(err) != appliance.EUNAUTHORIZED {
		t.Fatalf("a wrong secret with NoWait: %v, want EUNAUTHORIZED", err)
	}
}
