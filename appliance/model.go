package appliance

import (
	"sort"
	"strings"
)

// Model is what the domain needs to know about a phone model: how many
// programmable line keys it has (positions 1..LineKeys, all pages) and how
// many SIP accounts it can register. Vendor file details (device ids,
// templates) live in package configs.
type Model struct {
	Manufacturer string
	Name         string // canonical, e.g. "T46G"
	LineKeys     int
	Accounts     int
}

// Key and account counts from shared/reference/yealink.md §2 and §3 (Wazo
// _NB_LINEKEY/_NB_SIP_ACCOUNTS, FusionPBX comments). Only models whose key
// count, account count and device id the reference gives are listed; where
// the sources conflict (T43U, T53/T53W) the smaller count is used, since a
// key written past the real count is silently lost on the phone.
var models = []Model{
	{"Yealink", "T40P", 3, 3},
	{"Yealink", "T41P", 15, 6},
	{"Yealink", "T41S", 15, 6},
	{"Yealink", "T42G", 15, 12},
	{"Yealink", "T42S", 15, 12},
	{"Yealink", "T42U", 15, 12},
	{"Yealink", "T43U", 15, 12},
	{"Yealink", "T44W", 24, 12},
	{"Yealink", "T46G", 27, 16},
	{"Yealink", "T46S", 27, 16},
	{"Yealink", "T46U", 27, 16},
	{"Yealink", "T48G", 29, 16},
	{"Yealink", "T48S", 29, 16},
	{"Yealink", "T48U", 29, 16},
	{"Yealink", "T53", 21, 12},
	{"Yealink", "T53W", 21, 12},
	{"Yealink", "T54S", 27, 16},
	{"Yealink", "T54W", 27, 16},
	{"Yealink", "T57W", 29, 16},
	{"Yealink", "T58", 27, 16},
	{"Yealink", "T58W", 27, 16},
}

// modelAliases maps names some phones report to the model they share a
// profile with (T58V and T58A are sold as the T58).
var modelAliases = map[string]string{"T58V": "T58", "T58A": "T58"}

// Models returns the supported models, sorted by manufacturer and name.
func Models() []Model {
	out := append([]Model(nil), models...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Manufacturer != out[j].Manufacturer {
			return out[i].Manufacturer < out[j].Manufacturer
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// ModelNames lists the supported model names ("T40P, T41P, …").
func ModelNames() string {
	var names []string
	for _, m := range Models() {
		names = append(names, m.Name)
	}
	return strings.Join(names, ", ")
}

// LookupModel returns the model with the given canonical name.
func LookupModel(manufacturer, name string) (Model, bool) {
	for _, m := range models {
		if m.Manufacturer == manufacturer && m.Name == name {
			return m, true
		}
	}
	return Model{}, false
}

// NormalizeModel turns what an admin or a User-Agent says ("yealink",
// "T-46g", "SIP-T46G", "Yealink SIP-T46G") into the canonical pair
// ("Yealink", "T46G"). A blank manufacturer means Yealink, the only vendor
// supported so far. An unknown pair is an EINVALID error listing the
// supported models.
func NormalizeModel(manufacturer, model string) (Model, error) {
	mf := strings.TrimSpace(manufacturer)
	if mf == "" || strings.EqualFold(mf, "yealink") {
		mf = "Yealink"
	} else {
		return Model{}, Errorf(EINVALID, "manufacturer", "%q is not supported (supported: Yealink)", manufacturer)
	}
	name := strings.ToUpper(strings.TrimSpace(model))
	if name == "" {
		return Model{}, Errorf(EINVALID, "model", "required (supported %s models: %s)", mf, ModelNames())
	}
	name = strings.TrimPrefix(name, "YEALINK")
	name = strings.TrimSpace(name)
	name = strings.TrimPrefix(name, "SIP")
	name = strings.NewReplacer("-", "", " ", "", "_", "").Replace(name)
	if a, ok := modelAliases[name]; ok {
		name = a
	}
	m, ok := LookupModel(mf, name)
	if !ok {
		return Model{}, Errorf(EINVALID, "model", "%q is not a supported %s model (supported: %s)", model, mf, ModelNames())
	}
	return m, nil
}
