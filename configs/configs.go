// Package configs turns a phone's config inputs (appliance.PhoneConfig) into
// the files the phone fetches, per vendor: for Yealink the per-phone
// <mac>.cfg and the model file y0000000000XX.cfg (SPEC §5).
//
// Templates are text/template files embedded in the binary; a file of the
// same name in <data>/templates/yealink/ (mac.cfg.tmpl, model.cfg.tmpl)
// overrides the embedded one, and is re-read when it changes. Every text
// value a template gets is checked before it runs: the render fails when a
// value holds a CR, LF or any other control character, so no input can add
// a line to a config file, whatever the template. (The "val" function,
// which checked each value as it was written, stays for overrides that
// use it; checking once is a third of the cost of a render.) For example:
//
//	r := &configs.Renderer{TemplateDir: "/var/lib/provbox/templates"}
//	b, err := r.RenderPhoneConfig(cfg) // "#!version:1.0.0.1\n…account.1.enable = 1\n…"
package configs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode"

	"github.com/provbox/provbox/appliance"
)

//go:embed templates
var embedded embed.FS

// Template file names, relative to the vendor folder.
const (
	MACTemplate   = "mac.cfg.tmpl"
	ModelTemplate = "model.cfg.tmpl"
)

// Renderer renders vendor files from embedded or overriding templates.
type Renderer struct {
	// Catalog is the model catalog (nil: the embedded one).
	Catalog *appliance.Catalog
	// TemplateDir holds overrides: <TemplateDir>/yealink/mac.cfg.tmpl. Empty:
	// embedded templates only.
	TemplateDir string

	mu    sync.Mutex
	cache map[string]cachedTemplate

	// rendered keeps the file Version rendered for each phone, until the
	// resolver serves it (TakeRendered): a change re-renders every phone it
	// touches to compute its version, and the fetch that follows need not
	// render it again. Keyed by MAC, one file each.
	renderedMu    sync.Mutex
	rendered      map[string]renderedFile
	renderedSwept time.Time
}

type renderedFile struct {
	version string
	body    []byte
	at      time.Time
}

// renderedFor is how long a rendered file waits for its phone's fetch: a
// change's fetches come within seconds; a phone that does not fetch should
// not keep its file in memory (every start renders every phone).
const renderedFor = time.Minute

// TakeRendered returns, and forgets, the <mac>.cfg Version rendered for the
// phone if its version is version (the hash of the bytes: the same file).
func (r *Renderer) TakeRendered(mac, version string) ([]byte, bool) {
	r.renderedMu.Lock()
	defer r.renderedMu.Unlock()
	r.sweepRenderedLocked(time.Now())
	f, ok := r.rendered[mac]
	if !ok || f.version != version {
		return nil, false
	}
	delete(r.rendered, mac)
	if time.Since(f.at) >= renderedFor {
		return nil, false
	}
	return f.body, true
}

type cachedTemplate struct {
	mod  time.Time
	size int64
	t    *template.Template
}

// funcs are the template functions. val refuses control characters
// (values are checked before a template runs; overrides may still use it).
var funcs = template.FuncMap{"val": safeValue}

func safeValue(v any) (string, error) {
	s := fmt.Sprint(v)
	return s, checkValue(s)
}

// checkValue refuses a value that holds a control character or a line
// break: it could add a line to a config file.
func checkValue(s string) error {
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("value %q holds a control character or line break", s)
		}
	}
	return nil
}

// checkValues checks every text value of a phone's template data.
func (v *YealinkPhone) checkValues() error {
	vals := []string{v.MAC, v.MACColons, v.Model, v.Name, v.PickupPrefix, v.AdminUserPrefix, v.AdminPassword, v.ServerURL,
		v.CACertURL, v.ProvUsername, v.ProvPassword, v.ReportURL, v.BoxIP}
	for _, a := range v.Accounts {
		vals = append(vals, a.Label, a.DisplayName, a.AuthName, a.UserName, a.Password, a.Server, a.Voicemail)
	}
	keys := v.LineKeys
	for _, m := range v.Modules {
		vals = append(vals, m.Name)
		keys = append(keys[:len(keys):len(keys)], m.Keys...)
	}
	for _, k := range keys {
		vals = append(vals, k.Line, k.Value, k.Label, k.Extension, k.PickupValue)
	}
	for _, s := range vals {
		if err := checkValue(s); err != nil {
			return err
		}
	}
	return nil
}

// template returns the parsed template vendor/name, preferring an override.
func (r *Renderer) template(vendor, name string) (*template.Template, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = map[string]cachedTemplate{}
	}
	key := vendor + "/" + name
	if r.TemplateDir != "" {
		path := filepath.Join(r.TemplateDir, vendor, name)
		if fi, err := os.Stat(path); err == nil {
			if c, ok := r.cache[path]; ok && c.mod.Equal(fi.ModTime()) && c.size == fi.Size() {
				return c.t, nil
			}
			body, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", path, err)
			}
			t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(string(body))
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", path, err)
			}
			r.cache[path] = cachedTemplate{mod: fi.ModTime(), size: fi.Size(), t: t}
			return t, nil
		}
	}
	if c, ok := r.cache[key]; ok {
		return c.t, nil
	}
	body, err := embedded.ReadFile("templates/" + key)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", key, err)
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(string(body))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", key, err)
	}
	r.cache[key] = cachedTemplate{t: t}
	return t, nil
}

// Stamp identifies the templates in force: "embedded", or the override
// files' sizes and modification times. It changes when an override is
// added, edited or removed, so the phones' versions (mac.cfg.tmpl) and
// ready checks (model.cfg.tmpl) are recomputed.
func (r *Renderer) Stamp() string {
	if r.TemplateDir == "" {
		return "embedded"
	}
	stamp := ""
	for _, name := range []string{MACTemplate, ModelTemplate} {
		if fi, err := os.Stat(filepath.Join(r.TemplateDir, "yealink", name)); err == nil {
			stamp += fmt.Sprintf("%s:%d.%d;", name, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	if stamp == "" {
		return "embedded"
	}
	return stamp
}

// YealinkPhone is what mac.cfg.tmpl gets.
type YealinkPhone struct {
	MAC, MACColons, Model, Name string
	LineKeyCount                int
	Accounts                    []YealinkAccount
	UnusedAccounts              []int // account indexes to disable
	LineKeys                    []YealinkLineKey
	// Modules are the chained expansion modules, each with every key up
	// to the module's count (expansion_module.N.key.M.*).
	Modules      []YealinkModule
	PickupPrefix string // directed-pickup code of BLF keys ("" none)
	// AdminUserPrefix is "admin:" (user:password), or "" for a model with
	// the catalog's plain_admin_password quirk.
	AdminUserPrefix string
	AdminPassword   string // the phones' web admin password (user admin)
	// ServerURL is where the phone provisions from next: the HTTPS URL
	// once it trusts provbox's CA, else the bootstrap URL.
	ServerURL string
	// CACertURL is where the phone downloads provbox's CA ("" none).
	CACertURL string
	// ProvUsername and ProvPassword are the phone's own: its MAC and its
	// secret, which open its file only.
	ProvUsername, ProvPassword string
	// ReportURL is the base of the phone's action URLs, ending in '/':
	// <ServerURL>ev/<token>/ (SPEC §6).
	ReportURL string
	// ActionURI: provbox triggers syncs through the phone's Action URI
	// from BoxIP, so SIP stays restricted to the registrar (trust_ctrl).
	ActionURI bool
	BoxIP     string
}

// YealinkAccount is one account.N block.
type YealinkAccount struct {
	Index                                  int
	Label, DisplayName, AuthName, UserName string
	Password, Server, Voicemail            string
	Port, Transport                        int
}

// YealinkModule is one expansion module: its index (1..), type and keys.
type YealinkModule struct {
	Index int
	Name  string // "EXP50"
	Keys  []YealinkLineKey
}

// YealinkLineKey is one linekey.P (or expansion_module.N.key.P) block;
// unused positions have Type 0 and "%NULL%" values.
type YealinkLineKey struct {
	Position                                   int
	Type                                       int
	Line, Value, Label, Extension, PickupValue string
}

// YealinkModel is what model.cfg.tmpl gets.
type YealinkModel struct {
	File            string
	Models          string // "T53, T53W"
	ProvisioningURL string
}

const null = "%NULL%"

// yealinkPhone builds the template data of a phone.
func yealinkPhone(cfg *appliance.PhoneConfig) (*YealinkPhone, error) {
	m := cfg.Model
	if m.Name == "" || m.Accounts == 0 {
		return nil, fmt.Errorf("render %s: unsupported model %s %s", cfg.Phone.MAC, cfg.Phone.Manufacturer, cfg.Phone.Model)
	}
	s := cfg.Settings
	if s.PhoneAdminPassword == "" {
		// The store always has one (configured or generated); an empty one
		// would leave the phone's web admin without a password.
		return nil, fmt.Errorf("render %s: no phones' admin password in the settings", cfg.Phone.MAC)
	}
	v := &YealinkPhone{
		MAC: cfg.Phone.MAC, MACColons: appliance.FormatMAC(cfg.Phone.MAC), Model: m.Name, Name: cfg.Phone.Name,
		LineKeyCount: m.LineKeys, PickupPrefix: s.PickupPrefix, AdminPassword: s.PhoneAdminPassword,
		ServerURL: s.ProvisioningURL, CACertURL: s.CACertURL, ProvUsername: cfg.Phone.MAC, ProvPassword: cfg.Secret,
		AdminUserPrefix: "admin:",
	}
	if m.Has(appliance.QuirkPlainAdminPassword) {
		v.AdminUserPrefix = ""
	}
	if s.SecureURL != "" {
		v.ServerURL = s.SecureURL
	}
	if cfg.Phone.Token == "" {
		return nil, fmt.Errorf("render %s: the phone has no report token", cfg.Phone.MAC)
	}
	v.ReportURL = v.ServerURL + "ev/" + cfg.Phone.Token + "/"
	v.ActionURI, v.BoxIP = s.SyncTrigger == appliance.TriggerActionURI, s.BoxIP
	if cfg.Secret == "" {
		// Every phone has one from the moment it is added.
		return nil, fmt.Errorf("render %s: the phone has no provisioning secret", cfg.Phone.MAC)
	}
	for _, a := range cfg.Accounts {
		e := a.Extension
		server := e.SIPServer
		if server == "" {
			server = s.Registrar
		}
		host, port := splitHostPort(server, e.Transport)
		display := e.Name
		if display == "" {
			display = e.Number
		}
		v.Accounts = append(v.Accounts, YealinkAccount{
			Index: a.Index, Label: e.AccountLabel(), DisplayName: display, AuthName: e.AuthUser, UserName: e.Number,
			Password: a.Password, Server: host, Port: port, Transport: yealinkTransports[e.Transport], Voicemail: e.Voicemail,
		})
	}
	for i := len(cfg.Accounts) + 1; i <= m.Accounts; i++ {
		v.UnusedAccounts = append(v.UnusedAccounts, i)
	}
	byPos := map[appliance.Position]appliance.LineKey{}
	for _, k := range cfg.LineKeys {
		byPos[appliance.Position{Module: k.Module, Position: k.Position}] = k
	}
	// Every position up to the counts, unused ones as type 0, so a removed
	// key disappears from the phone (SPEC §5).
	keys := func(module, count int) ([]YealinkLineKey, error) {
		var out []YealinkLineKey
		for p := 1; p <= count; p++ {
			k, ok := byPos[appliance.Position{Module: module, Position: p}]
			if !ok {
				out = append(out, YealinkLineKey{Position: p, Line: null, Value: null, Label: null, Extension: null, PickupValue: null})
				continue
			}
			lk, err := yealinkLineKey(p, k, v.Accounts, s.PickupPrefix)
			if err != nil {
				return nil, fmt.Errorf("render %s: %w", cfg.Phone.MAC, err)
			}
			out = append(out, lk)
		}
		return out, nil
	}
	var err error
	if v.LineKeys, err = keys(0, m.LineKeys); err != nil {
		return nil, err
	}
	if cfg.Module.Keys > 0 {
		for n := 1; n <= cfg.Phone.ExpansionModules; n++ {
			mk, err := keys(n, cfg.Module.Keys)
			if err != nil {
				return nil, err
			}
			v.Modules = append(v.Modules, YealinkModule{Index: n, Name: cfg.Module.Name, Keys: mk})
		}
	}
	if err := v.checkValues(); err != nil {
		return nil, fmt.Errorf("render %s: %w", cfg.Phone.MAC, err)
	}
	return v, nil
}

// yealinkLineKey writes one used line key (reference §3; audit §1):
//   - account: type 15 on its line, no value;
//   - blf: type 16 on the extension; the pickup prefix alone in .extension
//     and .pickup_value (the phone dials prefix + monitored number, so
//     prefix + number there would dial the number twice); "user@host" is
//     written as "user" when host is the account's own server;
//   - park: a slot (digits) is a BLF (16) on the slot, so the lamp shows it
//     taken; a feature code (* or #) is the Call Park key (10);
//   - speed_dial 13, prefix 40 with their value.
func yealinkLineKey(p int, k appliance.LineKey, accounts []YealinkAccount, prefix string) (YealinkLineKey, error) {
	typ := k.Type
	if typ == appliance.KeyPark && appliance.IsParkSlot(k.Value) {
		typ = parkSlot
	}
	code, ok := yealinkKeyCodes[typ]
	if !ok {
		return YealinkLineKey{}, fmt.Errorf("key type %q has no Yealink code", k.Type)
	}
	lk := YealinkLineKey{Position: p, Type: code, Line: strconv.Itoa(k.Line), Value: k.Value, Label: k.Label, Extension: null, PickupValue: null}
	switch typ {
	case appliance.KeyAccount:
		lk.Value = null // a Line key is its account (line); no value
	case appliance.KeyBLF:
		if user, host, ok := strings.Cut(k.Value, "@"); ok {
			for _, a := range accounts {
				if a.Index == k.Line && strings.EqualFold(a.Server, host) {
					lk.Value = user
				}
			}
		}
		if prefix != "" {
			lk.Extension, lk.PickupValue = prefix, prefix
		}
	}
	return lk, nil
}

// splitHostPort splits "host[:port]", defaulting the port by transport.
func splitHostPort(s, transport string) (string, int) {
	port := 5060
	if transport == "tls" {
		port = 5061
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if n, err := strconv.Atoi(s[i+1:]); err == nil {
			return s[:i], n
		}
	}
	return s, port
}

// RenderPhoneConfig renders the phone's <mac>.cfg.
func (r *Renderer) RenderPhoneConfig(cfg *appliance.PhoneConfig) ([]byte, error) {
	data, err := yealinkPhone(cfg)
	if err != nil {
		return nil, err
	}
	t, err := r.template("yealink", MACTemplate)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(8 << 10)
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render %s.cfg: %w", cfg.Phone.MAC, err)
	}
	return tidy(buf.Bytes()), nil
}

// RenderModelFile renders a Yealink model file such as y000000000028.cfg,
// or returns ok false when no supported model uses that name.
func (r *Renderer) RenderModelFile(file string, s appliance.Settings) ([]byte, bool, error) {
	models := yealinkModelsByFile(r.catalog(), file)
	if len(models) == 0 {
		return nil, false, nil
	}
	sortStrings(models)
	t, err := r.template("yealink", ModelTemplate)
	if err != nil {
		return nil, true, err
	}
	data := YealinkModel{File: file, Models: strings.Join(models, ", "), ProvisioningURL: s.ProvisioningURL}
	for _, v := range []string{data.File, data.Models, data.ProvisioningURL} {
		if err := checkValue(v); err != nil {
			return nil, true, fmt.Errorf("render %s: %w", file, err)
		}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, true, fmt.Errorf("render %s: %w", file, err)
	}
	return tidy(buf.Bytes()), true, nil
}

// Version is an appliance.VersionFunc: the hash of the rendered <mac>.cfg,
// so a phone's version moves exactly when its file does.
func (r *Renderer) Version(cfg *appliance.PhoneConfig) (string, error) {
	b, err := r.RenderPhoneConfig(cfg)
	if err != nil {
		return "", err
	}
	v := HashFile(b)
	r.keepRendered(cfg.Phone.MAC, v, b, v != cfg.StoredVersion)
	return v, nil
}

// keepRendered keeps a file Version rendered for its phone's fetch when
// keep (the version moved: the phone is about to be told), and sweeps the
// files that waited longer than renderedFor. A refresh that moves no
// version (every start renders every phone) keeps nothing.
func (r *Renderer) keepRendered(mac, version string, b []byte, keep bool) {
	now := time.Now()
	r.renderedMu.Lock()
	defer r.renderedMu.Unlock()
	r.sweepRenderedLocked(now)
	if !keep {
		delete(r.rendered, mac)
		return
	}
	if r.rendered == nil || len(r.rendered) >= maxRendered {
		r.rendered = map[string]renderedFile{} // phones deleted, or never fetching: start over
	}
	r.rendered[mac] = renderedFile{version: version, body: b, at: now}
}

// sweepRenderedLocked drops the files older than renderedFor, at most once
// per renderedFor/4 (renderedMu held).
func (r *Renderer) sweepRenderedLocked(now time.Time) {
	if now.Sub(r.renderedSwept) < renderedFor/4 {
		return
	}
	r.renderedSwept = now
	for mac, f := range r.rendered {
		if now.Sub(f.at) >= renderedFor {
			delete(r.rendered, mac)
		}
	}
}

// maxRendered bounds the files Version keeps for the resolver.
const maxRendered = 20000

// Problems is the store's ready check (sqlite.DB.Check): the domain's
// (appliance.PhoneConfig.Problems) and the files the phone will ask for
// that provbox could not serve: its model file y0000000000XX.cfg.
func (r *Renderer) Problems(cfg *appliance.PhoneConfig) []string {
	out := cfg.Problems()
	file := YealinkModelFile(cfg.Model)
	if file == "" {
		// No source gives its device id: its request for a model file gets
		// 404, which Yealink phones tolerate (they go on to <mac>.cfg).
		return out
	}
	if _, _, err := r.RenderModelFile(file, cfg.Settings); err != nil {
		out = append(out, fmt.Sprintf("the %s asks for its model file %s, which provbox cannot serve: %v", cfg.Model.Name, file, err))
	}
	return out
}

// catalog returns the renderer's catalog, the embedded one by default.
func (r *Renderer) catalog() *appliance.Catalog {
	if r.Catalog != nil {
		return r.Catalog
	}
	return MustCatalog()
}

// HashFile returns the version string of a file's bytes.
func HashFile(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// tidy drops blank lines runs left by template actions, keeping one blank
// line between sections, trims trailing blanks, and ends the file with a
// newline.
func tidy(b []byte) []byte {
	rest := bytes.TrimSpace(b)
	out := make([]byte, 0, len(rest)+1)
	blank := true // the last line kept was blank, or none was
	for {
		line, tail, more := bytes.Cut(rest, []byte{'\n'})
		line = bytes.TrimRight(line, " \t")
		if len(line) > 0 || !blank {
			out = append(append(out, line...), '\n')
			blank = len(line) == 0
		}
		if !more {
			break
		}
		rest = tail
	}
	if len(out) == 0 {
		return []byte("\n")
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
