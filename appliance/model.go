package appliance

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Model is one phone model as the catalog describes it (SPEC §3). The
// facts are data: package configs loads them from its embedded catalog
// files, each with its source; no model fact lives in Go code.
type Model struct {
	Manufacturer string   `json:"manufacturer" toml:"-"`
	Name         string   `json:"name" toml:"name"`           // canonical, e.g. "T46U"
	Aliases      []string `json:"aliases" toml:"aliases"`     // other names for it ("T58V")
	Family       string   `json:"family" toml:"family"`       // firmware family ("T4xU")
	DeviceID     string   `json:"device_id" toml:"device_id"` // Yealink common file y000000000<id>.cfg; "" unknown
	// UserAgents are the model as the phone names itself in its HTTP
	// User-Agent, after the vendor ("SIP-T46U", "W70B").
	UserAgents []string `json:"user_agents" toml:"user_agents"`
	// LineKeys are the programmable line keys over all pages (0: a DECT
	// base or a phone without line keys: accounts only).
	LineKeys int `json:"line_keys" toml:"line_keys"`
	// KeysPerPage is how many line keys one page of the screen shows;
	// Columns how they stand: 2 is a left column (the first half of a
	// page) and a right one, 1 a single column on the left.
	KeysPerPage int `json:"keys_per_page" toml:"keys_per_page"`
	Columns     int `json:"columns" toml:"columns"`
	Accounts    int `json:"accounts" toml:"accounts"`
	// Module is the expansion module type it takes ("EXP50"), "" none;
	// MaxModules how many may chain.
	Module     string `json:"module" toml:"module"`
	MaxModules int    `json:"max_modules" toml:"max_modules"`
	// LabelChars is how many characters of a line-key label the screen
	// shows (longer labels are cut on the phone).
	LabelChars int      `json:"label_chars" toml:"label_chars"`
	KeyTypes   []string `json:"key_types" toml:"key_types"` // key types it supports (KeyTypes)
	Quirks     []string `json:"quirks" toml:"quirks"`       // Quirk* names
	// Sources names where each fact comes from (the Yealink guide page,
	// or the Wazo or FusionPBX template path), by fact name.
	Sources map[string]string `json:"sources" toml:"sources"`
}

// Quirks a catalog model may carry.
const (
	// QuirkPlainAdminPassword: the model wants its web admin password
	// without the "admin:" user prefix.
	QuirkPlainAdminPassword = "plain_admin_password"
)

var knownQuirks = []string{QuirkPlainAdminPassword}

// Has reports whether the model has the quirk.
func (m Model) Has(quirk string) bool { return slices.Contains(m.Quirks, quirk) }

// Supports reports whether the model's keys can be of type typ.
func (m Model) Supports(typ string) bool { return slices.Contains(m.KeyTypes, typ) }

// Pages is how many screen pages its line keys take.
func (m Model) Pages() int {
	if m.KeysPerPage <= 0 {
		return 0
	}
	return (m.LineKeys + m.KeysPerPage - 1) / m.KeysPerPage
}

// ExpansionModule is a key module that chains to a phone's side.
type ExpansionModule struct {
	Name        string            `json:"name" toml:"name"` // "EXP50"
	Keys        int               `json:"keys" toml:"keys"` // per module, all pages
	KeysPerPage int               `json:"keys_per_page" toml:"keys_per_page"`
	Columns     int               `json:"columns" toml:"columns"`
	LabelChars  int               `json:"label_chars" toml:"label_chars"`
	Sources     map[string]string `json:"sources" toml:"sources"`
}

// Pages is how many pages the module's keys take.
func (x ExpansionModule) Pages() int {
	if x.KeysPerPage <= 0 {
		return 0
	}
	return (x.Keys + x.KeysPerPage - 1) / x.KeysPerPage
}

// Vendor is a phone maker: its name and the MAC prefixes (OUIs) its
// phones use, so discovery and DHCP's phones_only know a phone by its MAC.
type Vendor struct {
	Name        string            `toml:"name"`
	MACPrefixes []string          `toml:"mac_prefixes"` // 6 lowercase hex digits
	Sources     map[string]string `toml:"sources"`
}

// Catalog is every model, module and vendor provbox knows. Build it with
// NewCatalog, which validates it; it does not change afterwards.
type Catalog struct {
	models  []Model // sorted by manufacturer and name
	modules map[string]ExpansionModule
	byName  map[string]int // "yealink/T46U" and aliases → models index
	byUA    map[string]int // "yealink/SIP-T46U" → models index
	vendors map[string]string
	names   map[string]string // lower-case vendor → its name
}

var (
	deviceIDRe = regexp.MustCompile(`^\d{3}$`)
	prefixRe   = regexp.MustCompile(`^[0-9a-f]{6}$`)
	nameRe     = regexp.MustCompile(`^[A-Z0-9]{2,12}$`)
)

// modelFacts are the facts of a model that need a source, when set.
var modelFacts = []string{"line_keys", "accounts", "device_id", "module", "label_chars", "keys_per_page", "user_agents"}

// NewCatalog checks the catalog data and indexes it: names unique (aliases
// included), counts in range, a module for every model that takes one,
// key types and quirks known, and a source for every fact.
func NewCatalog(vendors []Vendor, models []Model, modules []ExpansionModule) (*Catalog, error) {
	c := &Catalog{modules: map[string]ExpansionModule{}, byName: map[string]int{}, byUA: map[string]int{},
		vendors: map[string]string{}, names: map[string]string{}}
	for _, v := range vendors {
		if v.Name == "" {
			return nil, fmt.Errorf("catalog: a vendor without a name")
		}
		c.names[strings.ToLower(v.Name)] = v.Name
		if len(v.MACPrefixes) > 0 && v.Sources["mac_prefixes"] == "" {
			return nil, fmt.Errorf("catalog: vendor %s: mac_prefixes have no source", v.Name)
		}
		for _, p := range v.MACPrefixes {
			p = strings.ToLower(strings.NewReplacer(":", "", "-", "").Replace(p))
			if !prefixRe.MatchString(p) {
				return nil, fmt.Errorf("catalog: vendor %s: MAC prefix %q is not 6 hex digits", v.Name, p)
			}
			if other, dup := c.vendors[p]; dup {
				return nil, fmt.Errorf("catalog: MAC prefix %s is listed for %s and %s", p, other, v.Name)
			}
			c.vendors[p] = v.Name
		}
	}
	for _, x := range modules {
		switch {
		case !nameRe.MatchString(x.Name):
			return nil, fmt.Errorf("catalog: module name %q", x.Name)
		case x.Keys < 1 || x.KeysPerPage < 1 || x.KeysPerPage > x.Keys:
			return nil, fmt.Errorf("catalog: module %s: keys %d, keys_per_page %d", x.Name, x.Keys, x.KeysPerPage)
		case x.Columns < 1 || x.Columns > 2:
			return nil, fmt.Errorf("catalog: module %s: columns must be 1 or 2", x.Name)
		case x.LabelChars < 1:
			return nil, fmt.Errorf("catalog: module %s: label_chars missing", x.Name)
		}
		for _, f := range []string{"keys", "keys_per_page", "label_chars", "phones"} {
			if x.Sources[f] == "" {
				return nil, fmt.Errorf("catalog: module %s: %s has no source", x.Name, f)
			}
		}
		if _, dup := c.modules[x.Name]; dup {
			return nil, fmt.Errorf("catalog: module %s twice", x.Name)
		}
		c.modules[x.Name] = x
	}
	c.models = append([]Model(nil), models...)
	sort.SliceStable(c.models, func(i, j int) bool {
		if c.models[i].Manufacturer != c.models[j].Manufacturer {
			return c.models[i].Manufacturer < c.models[j].Manufacturer
		}
		return c.models[i].Name < c.models[j].Name
	})
	for i, m := range c.models {
		if err := c.checkModel(m); err != nil {
			return nil, fmt.Errorf("catalog: model %s %s: %w", m.Manufacturer, m.Name, err)
		}
		mf := strings.ToLower(m.Manufacturer)
		for _, n := range append([]string{m.Name}, m.Aliases...) {
			if _, dup := c.byName[mf+"/"+n]; dup {
				return nil, fmt.Errorf("catalog: model name %s %s is used twice", m.Manufacturer, n)
			}
			c.byName[mf+"/"+n] = i
		}
		for _, ua := range m.UserAgents {
			k := mf + "/" + strings.ToUpper(ua)
			if _, dup := c.byUA[k]; dup {
				return nil, fmt.Errorf("catalog: User-Agent name %s is used twice", ua)
			}
			c.byUA[k] = i
		}
	}
	return c, nil
}

func (c *Catalog) checkModel(m Model) error {
	switch {
	case c.names[strings.ToLower(m.Manufacturer)] != m.Manufacturer:
		return fmt.Errorf("manufacturer %q is not a catalog vendor", m.Manufacturer)
	case !nameRe.MatchString(m.Name):
		return fmt.Errorf("name must be 2-12 upper-case letters and digits")
	case m.LineKeys < 0 || m.LineKeys > 200:
		return fmt.Errorf("line_keys %d", m.LineKeys)
	case m.LineKeys > 0 && (m.KeysPerPage < 1 || m.KeysPerPage > m.LineKeys):
		return fmt.Errorf("keys_per_page %d for %d line keys", m.KeysPerPage, m.LineKeys)
	case m.LineKeys > 0 && (m.Columns < 1 || m.Columns > 2):
		return fmt.Errorf("columns must be 1 or 2")
	case m.LineKeys > 0 && m.LabelChars < 1:
		return fmt.Errorf("label_chars missing")
	case m.Accounts < 1 || m.Accounts > 256:
		return fmt.Errorf("accounts %d", m.Accounts)
	case m.DeviceID != "" && !deviceIDRe.MatchString(m.DeviceID):
		return fmt.Errorf("device_id %q is not 3 digits", m.DeviceID)
	case len(m.UserAgents) == 0:
		return fmt.Errorf("no user_agents")
	case (m.Module == "") != (m.MaxModules == 0) || m.MaxModules < 0 || m.MaxModules > 6:
		return fmt.Errorf("module %q with max_modules %d", m.Module, m.MaxModules)
	case m.LineKeys == 0 && (m.Module != "" || len(m.KeyTypes) > 0):
		return fmt.Errorf("a model without line keys takes no module and no key types")
	case m.LineKeys > 0 && !slices.Contains(m.KeyTypes, KeyAccount):
		return fmt.Errorf("key_types must hold %q", KeyAccount)
	}
	if m.Module != "" {
		if _, ok := c.modules[m.Module]; !ok {
			return fmt.Errorf("module %q is not in the catalog", m.Module)
		}
	}
	for _, t := range m.KeyTypes {
		if !slices.Contains(KeyTypes, t) {
			return fmt.Errorf("key type %q is not one of %s", t, strings.Join(KeyTypes, ", "))
		}
	}
	for _, q := range m.Quirks {
		if !slices.Contains(knownQuirks, q) {
			return fmt.Errorf("unknown quirk %q", q)
		}
		if m.Sources["quirk."+q] == "" {
			return fmt.Errorf("quirk %s has no source", q)
		}
	}
	set := map[string]bool{"line_keys": true, "accounts": true, "device_id": m.DeviceID != "", "module": m.Module != "",
		"label_chars": m.LabelChars > 0, "keys_per_page": m.KeysPerPage > 0, "user_agents": true}
	for _, f := range modelFacts {
		if set[f] && m.Sources[f] == "" {
			return fmt.Errorf("%s has no source", f)
		}
	}
	return nil
}

// Models returns the models, sorted by manufacturer and name.
func (c *Catalog) Models() []Model { return append([]Model(nil), c.models...) }

// Module returns an expansion module by name.
func (c *Catalog) Module(name string) (ExpansionModule, bool) {
	x, ok := c.modules[name]
	return x, ok
}

// Modules returns the expansion modules, sorted by name.
func (c *Catalog) Modules() []ExpansionModule {
	var out []ExpansionModule
	for _, x := range c.modules {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ModuleOf returns the expansion module a model takes, if any.
func (c *Catalog) ModuleOf(m Model) (ExpansionModule, bool) {
	if m.Module == "" {
		return ExpansionModule{}, false
	}
	return c.Module(m.Module)
}

// ModelNames lists the model names of a manufacturer ("T30, T31, …").
func (c *Catalog) ModelNames(manufacturer string) string {
	var names []string
	for _, m := range c.models {
		if m.Manufacturer == manufacturer {
			names = append(names, m.Name)
		}
	}
	return strings.Join(names, ", ")
}

// Lookup returns the model with the given canonical name.
func (c *Catalog) Lookup(manufacturer, name string) (Model, bool) {
	i, ok := c.byName[strings.ToLower(manufacturer)+"/"+name]
	if !ok || c.models[i].Name != name {
		return Model{}, false
	}
	return c.models[i], true
}

// ByUserAgent returns the model a User-Agent's model token names
// ("SIP-T46U", "T46U", "W70B"), if the catalog knows it.
func (c *Catalog) ByUserAgent(vendor, token string) (Model, bool) {
	mf := strings.ToLower(vendor)
	t := strings.ToUpper(strings.TrimSpace(token))
	if i, ok := c.byUA[mf+"/"+t]; ok {
		return c.models[i], true
	}
	if m, err := c.Normalize(vendor, t); err == nil {
		return m, true
	}
	return Model{}, false
}

// VendorByMAC returns the phone vendor owning a canonical MAC's prefix,
// or "".
func (c *Catalog) VendorByMAC(mac string) string {
	if len(mac) < 6 {
		return ""
	}
	return c.vendors[strings.ToLower(mac[:6])]
}

// MACPrefixes returns the known prefixes of a vendor, sorted.
func (c *Catalog) MACPrefixes(vendor string) []string {
	var out []string
	for p, v := range c.vendors {
		if v == vendor {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Manufacturer returns the canonical name of a vendor with models ("" and
// "yealink" give "Yealink", the first), ok false for one without.
func (c *Catalog) Manufacturer(name string) (string, bool) {
	makers := c.Manufacturers()
	name = strings.TrimSpace(name)
	if name == "" && len(makers) > 0 {
		return makers[0], true
	}
	n, ok := c.names[strings.ToLower(name)]
	return n, ok && slices.Contains(makers, n)
}

// Manufacturers lists the vendors that have models, sorted.
func (c *Catalog) Manufacturers() []string {
	var out []string
	for _, m := range c.models {
		if len(out) == 0 || out[len(out)-1] != m.Manufacturer {
			out = append(out, m.Manufacturer)
		}
	}
	return out
}

// Normalize turns what an admin or a User-Agent says ("yealink",
// "T-46g", "SIP-T46G", "Yealink SIP-T46G") into the catalog's model. A
// blank manufacturer means the first vendor with models (Yealink). An
// unknown pair is an EINVALID error listing the supported models.
func (c *Catalog) Normalize(manufacturer, model string) (Model, error) {
	mf, ok := c.Manufacturer(manufacturer)
	if !ok {
		return Model{}, Errorf(EINVALID, "manufacturer", "%q is not supported (supported: %s)", manufacturer, strings.Join(c.Manufacturers(), ", "))
	}
	name := strings.ToUpper(strings.TrimSpace(model))
	if name == "" {
		return Model{}, Errorf(EINVALID, "model", "required (supported %s models: %s)", mf, c.ModelNames(mf))
	}
	name = strings.TrimSpace(strings.TrimPrefix(name, strings.ToUpper(mf)))
	name = strings.TrimPrefix(name, "SIP")
	name = strings.NewReplacer("-", "", " ", "", "_", "").Replace(name)
	i, found := c.byName[strings.ToLower(mf)+"/"+name]
	if !found {
		return Model{}, Errorf(EINVALID, "model", "%q is not a supported %s model (supported: %s)", model, mf, c.ModelNames(mf))
	}
	return c.models[i], nil
}

// Position is a place for a key on a phone: Module 0 is the phone's own
// line keys, 1.. its expansion modules.
type Position struct {
	Module   int
	Position int
}

// Positions counts the key positions of a phone: its line keys, and each of
// its modules' keys. It is an EINVALID error when the model does not take
// that many modules.
func (c *Catalog) Positions(m Model, modules int) (lineKeys int, moduleKeys int, err error) {
	if modules < 0 || modules > m.MaxModules {
		if m.MaxModules == 0 {
			return 0, 0, Errorf(EINVALID, "expansion_modules", "%d, but the %s takes no expansion module", modules, m.Name)
		}
		return 0, 0, Errorf(EINVALID, "expansion_modules", "%d is outside 0..%d, the %s modules the %s takes", modules, m.MaxModules, m.Module, m.Name)
	}
	if modules > 0 {
		x, _ := c.ModuleOf(m)
		moduleKeys = x.Keys
	}
	return m.LineKeys, moduleKeys, nil
}
