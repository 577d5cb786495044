package configs

import "github.com/provbox/provbox/appliance"

// Yealink file facts from shared/reference/yealink.md; the model facts
// are in catalog/yealink.toml.

// parkSlot is the rendering type of a park key whose value is a slot.
const parkSlot = "park_slot"

// Line-key type codes (reference §3, DSS type codes; SPEC §5; audit §1: a
// park slot is a BLF on the slot, type 10 is the park feature-code key).
var yealinkKeyCodes = map[string]int{
	"":           0, // unused position
	"account":    15,
	"blf":        16,
	"speed_dial": 13,
	"park":       10,
	parkSlot:     16,
	"prefix":     40,
}

// Transport codes, the same in account.N.transport (pre-V81) and
// account.N.sip_server.M.transport_type (V81+) for these three.
var yealinkTransports = map[string]int{"udp": 0, "tcp": 1, "tls": 2}

// YealinkModelFile returns a model's common file name
// ("y000000000028.cfg" for the T46G): y000000000 + its catalog device id,
// or "" when no source gives one.
func YealinkModelFile(m appliance.Model) string {
	if m.DeviceID == "" {
		return ""
	}
	return "y000000000" + m.DeviceID + ".cfg"
}

// yealinkModelsByFile lists the catalog models whose common file is file
// (a file may serve several: T53 and T53W share 095).
func yealinkModelsByFile(c *appliance.Catalog, file string) []string {
	var out []string
	for _, m := range c.Models() {
		if m.Manufacturer == "Yealink" && YealinkModelFile(m) == file {
			out = append(out, m.Name)
		}
	}
	return out
}
