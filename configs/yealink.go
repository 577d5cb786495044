package configs

// Yealink facts from shared/reference/yealink.md.

// yealinkDeviceIDs maps a model to its model-file id: the phone fetches
// y0000000000XX.cfg with XX = the id (reference §1, device-id table). Every
// id matches a FusionPBX template directory and boot file (audit §1),
// T48G's 035 included (FusionPBX t48g/y000000000035.cfg).
var yealinkDeviceIDs = map[string]string{
	"T40P": "054",
	"T41P": "036",
	"T41S": "068",
	"T42G": "029",
	"T42S": "067",
	"T42U": "116",
	"T43U": "107",
	"T44W": "174",
	"T46G": "028",
	"T46S": "066",
	"T46U": "108",
	"T48G": "035",
	"T48S": "065",
	"T48U": "109",
	"T53":  "095",
	"T53W": "095",
	"T54S": "070",
	"T54W": "096",
	"T57W": "097",
	"T58":  "058",
	"T58W": "150",
}

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

// YealinkModelFile returns the model file name for a model
// ("y000000000028.cfg" for the T46G), or "" for an unknown model.
func YealinkModelFile(model string) string {
	id, ok := yealinkDeviceIDs[model]
	if !ok {
		return ""
	}
	return "y000000000" + id + ".cfg"
}

// yealinkModelsByFile is the inverse of YealinkModelFile (a file may serve
// several models: T53 and T53W share 095).
func yealinkModelsByFile(file string) []string {
	var out []string
	for m := range yealinkDeviceIDs {
		if YealinkModelFile(m) == file {
			out = append(out, m)
		}
	}
	return out
}
