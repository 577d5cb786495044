package configs

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/provbox/provbox/appliance"
)

// Resolver is the one path from a requested file name to its bytes, used by
// both HTTP (/prov/) and TFTP. It renders <mac>.cfg for known phones
// (recording the fetch, which confirms the sync), model files, and serves
// firmware from FirmwareDir; it records unknown phones as discovered and
// refuses addresses that miss too often (MAC guessing).
//
// A fetch reads; the only write it makes is its record. It never moves a
// config version: a phone's file is rendered once per version and served
// from memory, under the version the store computed. Template overrides
// are checked in one place, CheckTemplates (by Open, and by cmd/provbox on
// SIGHUP). Between Open and Close the cache follows the store's change
// events, so an unchanged file costs no store read:
//
//	r := &configs.Resolver{Services: svc, Renderer: renderer, Logger: logger}
//	if err := r.Open(ctx); err != nil { … }
//	defer r.Close()
//	f, err := r.ResolveFile(ctx, appliance.FileRequest{Name: "001565aabbcc.cfg", …})
type Resolver struct {
	Services    appliance.Services
	Renderer    *Renderer
	FirmwareDir string
	// Guard counts misses and wrong secrets per address and protocol and
	// refuses an address that makes too many (nil: never).
	Guard *appliance.Guard
	// CACert gives the PEM of provbox's CA certificate, served as ca.crt
	// (nil or empty: 404, e.g. with the admin's own certificate).
	CACert func() []byte
	// CacheSize bounds the files (and known/unknown MACs) cached; default
	// 100,000.
	CacheSize int
	Logger    *slog.Logger
	Now       func() time.Time

	mu         sync.Mutex
	stamp      string                 // templates in force when last checked (CheckTemplates)
	cache      map[string]*cachedFile // mac → its file at a config version
	watching   bool                   // open: change events invalidate the cache
	gen        uint64                 // change events seen while open
	swept      time.Time              // when roomLocked last swept the cache
	recorded   map[string]recordedFetch
	repeats    map[string]appliance.Fetch // repeated fetches to record in the background
	repeatC    chan struct{}              // wakes the repeat recorder; set while open
	discoverQ  chan Requester             // set while open
	discovered *appliance.Recent          // MAC+IP queued for discovery within 10 s
	stop       func()                     // ends what Open started

	mismatchLogged bool // a file that differs from its stored version was logged
}

var (
	macCfgRe  = regexp.MustCompile(`^([0-9a-fA-F]{12})\.cfg$`)
	macBootRe = regexp.MustCompile(`^([0-9a-fA-F]{12})(?:\.boot|-local\.cfg|-contact\.xml)$`)
	modelRe   = regexp.MustCompile(`^y0{9}\d{3}\.(cfg|boot)$`)
	safeRe    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$`)
)

// CleanName turns a requested path into a served file name, or "" when the
// path is not one a phone may ask for: anything but a single plain segment
// (after an optional leading "/"), so "..", encoded or real slashes,
// backslashes, absolute paths, NUL bytes and hidden files never resolve.
func CleanName(p string) string {
	p = strings.TrimPrefix(p, "/")
	if !safeRe.MatchString(p) || strings.Contains(p, "..") {
		return ""
	}
	return p
}

func notFound(name string) error {
	return appliance.Errorf(appliance.ENOTFOUND, "file", "%s not found", name)
}

var _ appliance.FileResolver = (*Resolver)(nil)

// ResolveFile returns the file a phone asked for. Errors: ENOTFOUND (unknown
// file), EUNAUTHORIZED (a <mac>.cfg without that phone's secret, or of an
// unknown phone: the same answer), ETOOMANY (the address is refused a
// while), EINTERNAL.
func (r *Resolver) ResolveFile(ctx context.Context, fr appliance.FileRequest) (*appliance.ServedFile, error) {
	return r.resolve(ctx, fr.Name, Requester{UA: fr.UA, IP: fr.IP, Source: fr.Source}, credentials{fr.HasAuth, fr.User, fr.Password}, fr.NoWait)
}

// credentials are what a request offered to prove a phone's secret.
type credentials struct {
	ok             bool
	user, password string
}

// identify fills in who is asking from the User-Agent, falling back to the
// MAC in the file name (TFTP has no User-Agent), and names the model as the
// catalog does ("SIP-T58V" → T58) and the vendor by MAC prefix when the
// User-Agent did not. Only needed off the hot path: a known phone's
// <mac>.cfg names its phone.
func identify(c *appliance.Catalog, req Requester, name string) Requester {
	id := ParseUserAgent(req.UA)
	id.UA, id.IP, id.Source = req.UA, req.IP, req.Source
	if id.MAC == "" {
		if m := macCfgRe.FindStringSubmatch(name); m != nil {
			id.MAC, _ = appliance.ParseMAC(m[1])
		} else if m := macBootRe.FindStringSubmatch(name); m != nil {
			id.MAC, _ = appliance.ParseMAC(m[1])
		}
	}
	if id.Vendor == "" && id.MAC != "" {
		id.Vendor = c.VendorByMAC(id.MAC)
	}
	if id.Vendor == "" && id.Model == "" {
		// A model file names its models: y000000000108.cfg is a T46U.
		if models := yealinkModelsByFile(c, strings.ToLower(name)); len(models) == 1 {
			id.Vendor, id.Model = "Yealink", models[0]
		}
	}
	if id.Vendor != "" && id.Model != "" {
		if m, ok := c.ByUserAgent(id.Vendor, id.Model); ok {
			id.Model = m.Name
		}
	}
	return id
}

// CACertFile is the name provbox's CA certificate is served under.
const CACertFile = "ca.crt"

func (r *Resolver) resolve(ctx context.Context, path string, req Requester, cred credentials, noWait bool) (*appliance.ServedFile, error) {
	if r.Guard.Wait(proto(req), req.IP) > 0 {
		return nil, appliance.Errorf(appliance.ETOOMANY, "file", "too many requests for unknown files from %s; try again later", req.IP)
	}
	if name := strings.TrimPrefix(path, "/"); isMACCfg(name) {
		return r.resolvePhone(ctx, name, req, cred, noWait) // what CleanName and macCfgRe pass, without them
	}
	if noWait {
		return nil, appliance.ErrWouldWait
	}
	name := CleanName(path)
	if name == "" {
		r.miss(req, path)
		return nil, notFound("file")
	}
	if name == CACertFile {
		if r.CACert == nil {
			return nil, notFound(name)
		}
		if b := r.CACert(); len(b) > 0 {
			return r.bytesFile(name, b), nil
		}
		return nil, notFound(name)
	}
	req = identify(r.Renderer.catalog(), req, name)
	switch {
	case modelRe.MatchString(name), macBootRe.MatchString(name):
		r.discover(ctx, req)
		if strings.HasSuffix(name, ".cfg") && modelRe.MatchString(name) {
			b, ok, err := r.Renderer.RenderModelFile(strings.ToLower(name), r.settings())
			if err != nil {
				return nil, err
			} else if ok {
				return r.bytesFile(name, b), nil
			}
		}
		// Boot files, unsupported models' files and optional per-phone
		// extras are a normal 404 (the phone falls back); not a miss.
		return nil, notFound(name)
	default:
		return r.firmware(name, req)
	}
}

// RenderFile renders what phone mac would get for name (default
// <mac>.cfg), without recording a fetch.
func (r *Resolver) RenderFile(ctx context.Context, macIn, name string) ([]byte, error) {
	mac, err := appliance.ParseMAC(macIn)
	if err != nil {
		return nil, err
	}
	cfg, err := r.Services.Phones.PhoneConfig(ctx, mac)
	if err != nil {
		return nil, err
	}
	if name == "" || strings.EqualFold(name, mac+".cfg") {
		return r.Renderer.RenderPhoneConfig(cfg)
	}
	if strings.EqualFold(name, YealinkModelFile(cfg.Model)) {
		b, _, err := r.Renderer.RenderModelFile(strings.ToLower(name), r.settings())
		return b, err
	}
	return nil, appliance.Errorf(appliance.ENOTFOUND, "file", "%q is not a file of phone %s (try %s.cfg or %s)", name, appliance.FormatMAC(mac), mac, YealinkModelFile(cfg.Model))
}

// settings are the settings in force (Services.Settings; none without it).
func (r *Resolver) settings() appliance.Settings {
	if r.Services.Settings == nil {
		return appliance.Settings{}
	}
	return r.Services.Settings.Settings()
}

func (r *Resolver) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Resolver) bytesFile(name string, b []byte) *appliance.ServedFile {
	return &appliance.ServedFile{Name: name, Size: int64(len(b)), ModTime: r.now(), Body: b}
}

// isMACCfg reports whether name is a <mac>.cfg (macCfgRe), by hand: it is
// every fetch's question.
func isMACCfg(name string) bool {
	if len(name) != 16 || name[12:] != ".cfg" {
		return false
	}
	for i := 0; i < 12; i++ {
		if c := name[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// lowerMAC returns s as a MAC in the store's form (12 lowercase hex
// digits), "" when it is none; the common case, already in that form,
// costs no allocation.
func lowerMAC(s string) string {
	if len(s) == 12 {
		plain := true
		for i := 0; i < 12 && plain; i++ {
			c := s[i]
			plain = '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
		}
		// ParseMAC's other rules: no all-zero and no multicast address
		// (FuzzIsMACCfg holds the two to the same answers).
		if plain && s != "000000000000" && !strings.ContainsRune("13579bdf", rune(s[1])) {
			return s
		}
	}
	mac, _ := appliance.ParseMAC(s)
	return mac
}

// resolvePhone answers a <mac>.cfg. For a known phone asking with its
// secret and an unchanged file it takes no store read, no render and no
// allocation: the file is prepared once per config version and shared.
func (r *Resolver) resolvePhone(ctx context.Context, name string, req Requester, cred credentials, noWait bool) (*appliance.ServedFile, error) {
	mac := lowerMAC(name[:12])
	if mac == "" {
		r.miss(req, name)
		return nil, notFound(name)
	}
	p, c, gen, err := r.lookup(ctx, mac, noWait)
	if err == appliance.ErrWouldWait {
		return nil, err
	}
	if err != nil && appliance.ErrorCode(err) != appliance.ENOTFOUND {
		return nil, fmt.Errorf("find %s: %w", name, err)
	}
	auth, err := r.authorize(ctx, mac, p, req, cred, noWait)
	if err == appliance.ErrWouldWait {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", name, err)
	}
	if auth == "" {
		if p == nil {
			// Identified from the User-Agent in the background, with the
			// record: the refusal takes no longer than a known phone's.
			req.MAC = mac
			r.discover(ctx, req)
		}
		// Every refusal counts, with or without credentials and for a known
		// or an unknown MAC alike (so the guard tells nothing about which
		// MACs are phones). Over HTTP a phone's first request comes without
		// its secret (a client sends credentials after the 401 challenge);
		// the proven secret that follows takes that failure back.
		r.miss(req, name)
		return nil, unauthorized(name)
	}
	if noWait {
		// Only a cached file whose fetch is recorded later or was lately.
		if c == nil || c.file == nil || c.stored != p.Sync.ConfigVersion ||
			r.recordNow(fetchKey{mac, c.file.Version, req.IP, req.UA, req.Source, auth}) {
			return nil, appliance.ErrWouldWait
		}
	}
	if auth == appliance.AuthSecret || auth == appliance.AuthPrevSecret {
		r.Guard.Succeed(proto(req), req.IP)
	}
	f, err := r.phoneFile(ctx, mac, p, c, gen)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	r.recordFetch(ctx, appliance.Fetch{MAC: mac, Version: f.Version, IP: req.IP, UA: req.UA, Source: req.Source, Auth: auth, Body: f.Body})
	return f, nil
}

// unauthorized is the one answer to a <mac>.cfg request without the
// phone's secret, for a known and an unknown MAC alike.
func unauthorized(name string) error {
	return appliance.Errorf(appliance.EUNAUTHORIZED, "file", "%s needs the phone's own provisioning secret", name)
}

// noSecret is compared against when the phone is unknown or has no
// previous secret, so every refusal costs the same comparisons.
const noSecret = "-no-such-secret-for-timing-only-"

// authorize decides how a request may have phone mac's file (p nil: no
// such phone): with its secret, the secret before a rotation, the one
// fetch of an open claim window, or provisioning.open; "" refuses.
func (r *Resolver) authorize(ctx context.Context, mac string, p *appliance.Phone, req Requester, cred credentials, noWait bool) (string, error) {
	if p != nil && r.settings().OpenProvisioning {
		return appliance.AuthOpen, nil
	}
	if cred.ok {
		secret, prev := noSecret, noSecret
		if p != nil {
			secret = p.Secret
			if p.PrevSecret != "" {
				prev = p.PrevSecret
			}
		}
		okUser := lowerMAC(cred.user) == mac
		okSecret := subtle.ConstantTimeCompare([]byte(cred.password), []byte(secret)) == 1
		okPrev := subtle.ConstantTimeCompare([]byte(cred.password), []byte(prev)) == 1
		switch {
		case p == nil || !okUser:
		case okSecret:
			return appliance.AuthSecret, nil
		case okPrev && p.PrevSecret != "":
			return appliance.AuthPrevSecret, nil
		}
	}
	// Without (the right) credentials: the one fetch of an open claim
	// window. A phone that sends stale credentials up front (it was
	// deleted and added again) is treated like one that sends none.
	if p != nil && p.ClaimOpen(r.now()) {
		if noWait {
			return "", appliance.ErrWouldWait
		}
		ok, err := r.Services.Sync.ConsumeClaim(ctx, mac)
		if err != nil {
			return "", err
		}
		if ok {
			r.Logger.Info("claim window used: config fetched without a secret", "mac", mac, "ip", req.IP, "source", req.Source)
			return appliance.AuthClaim, nil
		}
	}
	return "", nil
}

// cacheValid is how long a cached file is served without asking the store
// whether it is still current, while the resolver is open (receiving the
// change events). The store is asked again at all only for writers that
// publish no events here (another process on the same database, such as
// the CLI's import): their changes reach fetches within this time.
const cacheValid = 10 * time.Second

// lookup returns a phone (nil and ENOTFOUND when unknown) and its cached
// file entry: while open, an entry checked within cacheValid needs no
// database at all (a change event drops it at once). gen is the change
// count the read was made under. noWait: ErrWouldWait rather than a read.
func (r *Resolver) lookup(ctx context.Context, mac string, noWait bool) (*appliance.Phone, *cachedFile, uint64, error) {
	now := r.now()
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]*cachedFile{}
	}
	gen := r.gen // a change event after this makes what we read below suspect
	c := r.cache[mac]
	if c != nil && r.watching && now.Sub(c.checked) < cacheValid {
		r.mu.Unlock()
		if c.phone == nil {
			return nil, nil, gen, errNoPhone
		}
		return c.phone, c, gen, nil
	}
	watching := r.watching
	r.mu.Unlock()
	if noWait {
		return nil, nil, gen, appliance.ErrWouldWait
	}
	p, err := r.Services.Phones.FindPhone(ctx, mac)
	if appliance.ErrorCode(err) == appliance.ENOTFOUND && watching {
		// Remembered as unknown like a known phone is remembered, so a
		// refusal takes as long for an unknown MAC as for a known one (no
		// timing tells which MACs are phones). Adding the phone drops it.
		r.mu.Lock()
		if r.gen == gen && r.roomLocked(now) {
			r.cache[mac] = &cachedFile{checked: now}
		}
		r.mu.Unlock()
	}
	if err != nil {
		return nil, nil, gen, err
	}
	r.mu.Lock()
	switch {
	case r.gen != gen:
	case c != nil && c.file != nil && c.stored == p.Sync.ConfigVersion:
		// The cached file is still current: a new entry, as one in the
		// map is never changed (fetches read it without the lock).
		c = &cachedFile{stored: c.stored, file: c.file, phone: p, checked: now}
		r.cache[mac] = c
	case watching && r.roomLocked(now):
		// The phone without its file yet (rendered on its first allowed
		// fetch): refusals need no database either.
		c = &cachedFile{phone: p, checked: now}
		r.cache[mac] = c
	default:
		c = nil
	}
	r.mu.Unlock()
	return p, c, gen, nil
}

// errNoPhone is a cached unknown MAC: made once, so answering one costs
// no more than answering a known phone.
var errNoPhone = appliance.Errorf(appliance.ENOTFOUND, "mac", "no such phone")

// phoneFile returns phone p's prepared <mac>.cfg. It is rendered once per
// config version (or taken from the store, which rendered it to compute
// the version) and shared by every fetch of that version.
//
// The version is the store's; a fetch never moves it. A render that does
// not match it (a change committed between the two reads, or a template
// override changed since the last CheckTemplates) is served as rendered,
// under its own hash, and not cached; the store's versions move with the
// change, or at the next CheckTemplates (SIGHUP), never here.
func (r *Resolver) phoneFile(ctx context.Context, mac string, p *appliance.Phone, c *cachedFile, gen uint64) (*appliance.ServedFile, error) {
	if c != nil && c.file != nil && c.stored == p.Sync.ConfigVersion {
		return c.file, nil
	}
	b, ok := r.Renderer.TakeRendered(mac, p.Sync.ConfigVersion)
	if !ok {
		cfg, err := r.Services.Phones.PhoneConfig(ctx, mac)
		if err != nil {
			return nil, err
		}
		if b, err = r.Renderer.RenderPhoneConfig(cfg); err != nil {
			return nil, err
		}
	}
	now := r.now()
	f := &appliance.ServedFile{Name: mac + ".cfg", Size: int64(len(b)), ModTime: now, Body: b, Phone: p, Version: HashFile(b)}
	if f.Version != p.Sync.ConfigVersion {
		r.mu.Lock()
		warn := !r.mismatchLogged
		r.mismatchLogged = true
		r.mu.Unlock()
		if warn {
			r.Logger.Warn("a phone's file differs from its stored config version: a change landed while it was read, "+
				"or a template override changed (then reload, systemctl reload provbox, to recompute the versions and tell the phones)", "mac", mac)
		}
		return f, nil
	}
	r.mu.Lock()
	if r.roomLocked(now) {
		checked := now
		if r.gen != gen {
			checked = time.Time{} // read across a change: check again next time
		}
		r.cache[mac] = &cachedFile{stored: p.Sync.ConfigVersion, file: f, phone: p, checked: checked}
	}
	r.mu.Unlock()
	return f, nil
}

// roomLocked reports whether the cache may take one more entry (r.mu
// held). When it is full, entries without a file (an unknown MAC, a phone
// refused before its first fetch) that are past cacheValid are swept, at
// most once per cacheValid, so requests for made-up MACs cannot crowd the
// phones' files out of it.
func (r *Resolver) roomLocked(now time.Time) bool {
	size := r.CacheSize
	if size <= 0 {
		size = 100000
	}
	if len(r.cache) >= size && now.Sub(r.swept) >= cacheValid {
		r.swept = now
		for m, c := range r.cache {
			if c.file == nil && now.Sub(c.checked) >= cacheValid {
				delete(r.cache, m)
			}
		}
	}
	return len(r.cache) < size
}

// cachedFile is one phone's entry in the resolver's cache. An entry is
// never changed once it is in the cache (lookup's callers read it without
// the lock); it is replaced.
type cachedFile struct {
	stored  string                // the phone's config version file was rendered under
	file    *appliance.ServedFile // nil before the phone's first allowed fetch
	phone   *appliance.Phone      // nil: no such phone
	checked time.Time             // when the store last confirmed stored
}

// refetchEvery is how often a repeated fetch is recorded: the same phone
// fetching the same version again, from the same address, with the same
// User-Agent and credentials, changes nothing in the store but the time
// of its last fetch. A change, claim or resync naming the phone ends the
// repeat (the fetch after it is recorded at once).
const refetchEvery = 10 * time.Second

// recordFetch records a fetch (which confirms the phone's sync) and logs
// it. A new fetch is recorded before the answer; a repeat at most every
// refetchEvery, and while open in the background, off the request.
func (r *Resolver) recordFetch(ctx context.Context, f appliance.Fetch) {
	key := fetchKey{f.MAC, f.Version, f.IP, f.UA, f.Source, f.Auth} // the version stands for the bytes
	now := r.now()
	r.mu.Lock()
	if r.recorded == nil {
		r.recorded = map[string]recordedFetch{}
	}
	repeat, recent := r.repeatLocked(key, now)
	if recent {
		r.mu.Unlock()
		return
	}
	if len(r.recorded) > 100000 {
		clear(r.recorded)
	}
	r.recorded[f.MAC] = recordedFetch{key: key, at: now}
	if repeat && r.repeatC != nil {
		r.repeats[f.MAC] = f
		select {
		case r.repeatC <- struct{}{}:
		default:
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.writeFetch(ctx, f)
}

// repeatLocked reports whether a fetch repeats the phone's last one, and
// whether that one was recorded within refetchEvery (r.mu held).
func (r *Resolver) repeatLocked(key fetchKey, now time.Time) (repeat, recent bool) {
	last, ok := r.recorded[key.mac]
	repeat = ok && last.key == key
	return repeat, repeat && now.Sub(last.at) < refetchEvery
}

// recordNow reports whether recordFetch would record a fetch before the
// answer (a new one, or a repeat while the resolver is not open).
func (r *Resolver) recordNow(key fetchKey) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	repeat, recent := r.repeatLocked(key, now)
	return !recent && !(repeat && r.repeatC != nil)
}

func (r *Resolver) writeFetch(ctx context.Context, f appliance.Fetch) {
	if err := r.Services.Sync.RecordFetch(ctx, f); err != nil {
		r.Logger.Error("record fetch", "mac", f.MAC, "err", err)
		r.mu.Lock()
		delete(r.recorded, f.MAC) // the next fetch tries again
		r.mu.Unlock()
		return
	}
	if r.Logger.Enabled(ctx, slog.LevelInfo) {
		r.Logger.Info("config fetched", "mac", f.MAC, "file", f.MAC+".cfg", "ip", f.IP, "source", f.Source, "version", f.Version, "user_agent", f.UA)
	}
}

// recordRepeats writes the repeated fetches recordFetch queued, until ctx
// ends: all at once, so the store commits them together.
func (r *Resolver) recordRepeats(ctx context.Context, wake <-chan struct{}) {
	sem := make(chan struct{}, 256)
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		r.mu.Lock()
		batch := r.repeats
		r.repeats = map[string]appliance.Fetch{}
		r.mu.Unlock()
		var wg sync.WaitGroup
		for _, f := range batch {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				r.writeFetch(ctx, f)
			}()
		}
		wg.Wait()
	}
}

type recordedFetch struct {
	key fetchKey
	at  time.Time
}

// fetchKey is what tells two fetches apart: an appliance.Fetch without
// its body.
type fetchKey struct{ mac, version, ip, ua, source, auth string }

// Open checks the templates (CheckTemplates) and starts following the
// store's change events (Services.Events). A change drops the cached files
// of the phones it names inside its publication, before the sync loop
// hears of it, so a phone told to re-fetch never gets the previous file.
// Until Close, fetches of unchanged files skip the store, and unknown
// phones and repeated fetches are recorded in the background (a refusal
// answers at once, the same for a known and an unknown MAC).
func (r *Resolver) Open(ctx context.Context) error {
	if _, err := r.CheckTemplates(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		return errors.New("resolver: already open")
	}
	bg, cancel := context.WithCancel(context.Background())
	remove := func() {}
	if bus := r.Services.Events; bus != nil {
		remove = bus.Hook(r.changed)
		r.watching = true
	}
	queue, wake := make(chan Requester, 256), make(chan struct{}, 1)
	r.discoverQ, r.repeatC, r.repeats = queue, wake, map[string]appliance.Fetch{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-bg.Done():
				return
			case req := <-queue:
				r.recordDiscovered(bg, req)
			}
		}
	}()
	go func() {
		defer wg.Done()
		r.recordRepeats(bg, wake)
	}()
	r.stop = func() {
		remove()
		cancel()
		wg.Wait()
	}
	return nil
}

// Close stops following changes and the background records; repeated
// fetches not yet written (their time only) are dropped.
func (r *Resolver) Close() error {
	r.mu.Lock()
	stop := r.stop
	r.stop, r.watching, r.discoverQ, r.repeatC, r.repeats = nil, false, nil, nil, nil
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	return nil
}

// changed is the resolver's hook on the event bus: a change or a claim
// drops the phones' cached files, and with a resync it ends their
// repeats, so the fetch that follows is recorded (and frees the phone's
// place in the sync loop's window) at once.
func (r *Resolver) changed(e appliance.Event) {
	switch e.Type {
	case appliance.EventPhonesChanged, appliance.EventAccessChanged, appliance.EventResync:
	default:
		return
	}
	r.mu.Lock()
	if e.Type != appliance.EventResync {
		r.gen++
	}
	for _, m := range e.MACs {
		if e.Type != appliance.EventResync {
			delete(r.cache, m)
		}
		delete(r.recorded, m)
	}
	r.mu.Unlock()
}

// CheckTemplates compares the template overrides (<data>/templates/) with
// those of the last check and, when they moved (an override added,
// edited or removed), drops every cached file and recomputes every
// phone's config version (Sync.RefreshVersions, which publishes the
// phones whose file changed, so the sync loop tells them). It reports
// whether they moved. The first check only notes them: the store computes
// every version when serve starts (SetSettings). Open checks, and
// cmd/provbox on SIGHUP.
func (r *Resolver) CheckTemplates(ctx context.Context) (bool, error) {
	stamp := r.Renderer.Stamp()
	r.mu.Lock()
	old := r.stamp
	moved := old != "" && old != stamp
	r.stamp = stamp
	if moved {
		r.gen++
		clear(r.cache)
		r.mismatchLogged = false
	}
	r.mu.Unlock()
	if !moved {
		return false, nil
	}
	r.Logger.Info("templates changed: recomputing every phone's config version")
	if err := r.Services.Sync.RefreshVersions(ctx, nil); err != nil {
		r.mu.Lock()
		r.stamp = old // the next check tries again
		r.mu.Unlock()
		return true, fmt.Errorf("templates changed: recompute config versions: %w", err)
	}
	return true, nil
}

// discover records a phone that is not provisioned, when its MAC is known:
// in the background while Watch runs (dropped when 256 wait), else now.
func (r *Resolver) discover(ctx context.Context, req Requester) {
	if req.MAC == "" || r.Services.Sync == nil {
		return
	}
	r.mu.Lock()
	q := r.discoverQ
	// The same MAC from the same address is recorded once in 10 s: a
	// phone retrying (or a flood) costs no write per request.
	key := req.MAC + " " + req.IP
	now := r.now()
	if q != nil {
		if r.discovered == nil {
			r.discovered = appliance.NewRecent(10*time.Second, 10000)
		}
		if !r.discovered.First(key, now) {
			r.mu.Unlock()
			return
		}
	}
	r.mu.Unlock()
	if q == nil {
		r.recordDiscovered(ctx, req)
		return
	}
	select {
	case q <- req:
	default:
	}
}

// recordDiscovered tells the store a phone asked for a file and got none
// it could prove a right to: an unknown one is recorded as discovered, a
// known one learns nothing from it (SPEC §6; its authenticated fetch
// teaches its address, RecordFetch).
func (r *Resolver) recordDiscovered(ctx context.Context, req Requester) {
	if req.Vendor == "" {
		// Not identified yet (a <mac>.cfg refusal queues the raw request):
		// from its User-Agent, else its MAC's prefix. The MAC recorded is
		// the one the file named.
		mac := req.MAC
		req = identify(r.Renderer.catalog(), req, mac+".cfg")
		req.MAC = mac
	}
	g := appliance.Sighting{MAC: req.MAC, Vendor: req.Vendor, Model: req.Model, Firmware: req.Firmware, IP: req.IP, Source: req.Source, UA: req.UA}
	if err := r.Services.Sync.Sighted(ctx, g); err != nil {
		r.Logger.Error("record discovered", "mac", req.MAC, "err", err)
	}
}

// firmware serves a file from FirmwareDir through os.Root, which refuses
// any path (or symlink) leading outside it.
func (r *Resolver) firmware(name string, req Requester) (*appliance.ServedFile, error) {
	if r.FirmwareDir == "" {
		r.miss(req, name)
		return nil, notFound(name)
	}
	root, err := os.OpenRoot(r.FirmwareDir)
	if err != nil {
		r.miss(req, name)
		return nil, notFound(name)
	}
	defer root.Close()
	// O_NONBLOCK: opening a FIFO (or a device) must not hang the request;
	// anything but a regular file is refused below.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.Logger.Warn("firmware refused", "file", name, "ip", req.IP, "err", err)
		}
		r.miss(req, name)
		return nil, notFound(name)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			r.Logger.Warn("firmware refused: not a regular file", "file", name, "mode", fi.Mode().Type().String())
		}
		r.miss(req, name)
		return nil, notFound(name)
	}
	r.Logger.Info("firmware fetched", "file", name, "ip", req.IP, "source", req.Source, "size", fi.Size())
	return &appliance.ServedFile{Name: name, Size: fi.Size(), ModTime: fi.ModTime(), Content: f, Closer: f}, nil
}

// proto is the guard protocol a request came over: a spoofable UDP (TFTP)
// miss never refuses the same address over HTTP.
func proto(req Requester) string {
	if req.Source == "tftp" {
		return appliance.ProtoTFTP
	}
	return appliance.ProtoHTTP
}

func (r *Resolver) miss(req Requester, name string) {
	r.Logger.Info("unknown or refused file", "file", strings.ToValidUTF8(fmt.Sprintf("%.128q", name), ""), "ip", req.IP, "source", req.Source)
	if r.Guard.Fail(proto(req), req.IP) {
		r.Logger.Warn("refusing address for a while: too many requests for unknown files or wrong secrets (MAC guessing?)",
			"ip", req.IP, "source", req.Source, "limit_per_minute", r.Guard.CurrentLimit())
	}
}
