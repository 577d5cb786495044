package configs

import (
	"regexp"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// Requester is who asked for a file: parsed from the HTTP User-Agent (or
// the file name for TFTP), plus where the request came from.
type Requester struct {
	Vendor   string // "Yealink", "Polycom", …; "" when unknown
	Model    string // "T46G"
	Firmware string // "28.83.0.35"
	MAC      string // canonical, "" when the UA carries none
	IP       string
	Source   string // "http" or "tftp"
	UA       string
}

type uaPattern struct {
	vendor string
	re     *regexp.Regexp // groups: model, firmware, optional mac
}

const uaMAC = `(?:\s+([\da-f]{2}(?::[\da-f]{2}){5}|[\da-f]{12}))?`

// User-Agent formats from shared/reference/yealink.md §8.
var uaPatterns = []uaPattern{
	// Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37 / yealink SIP-T28P … /
	// Yealink SIP VP-T49G … / Yealink SIP-T56A 58.80.0.25 001565f429a4 /
	// SIP-T38G  38.70… (double space)
	{"Yealink", regexp.MustCompile(`(?i)^\s*yealink\s+sip(?:\s+vp)?-(\w+)\s+([\d.]+)` + uaMAC + `\s*$`)},
	// DECT bases and AX phones name themselves without "SIP-": Yealink
	// W70B 146.87.0.15 80:5e:0c:1d:65:4e, Yealink W90DM …, Yealink AX86R …
	// (Wazo v87/common.py _UA_REGEX_LIST)
	{"Yealink", regexp.MustCompile(`(?i)^\s*yealink\s+(w\d\d[a-z]{0,2}|ax\d\d[a-z]?|vp530p?)\s+([\d.]+)` + uaMAC + `\s*$`)},
	// W52P 25.30.0.2 <mac> / VP530 … (no vendor word)
	{"Yealink", regexp.MustCompile(`(?i)^\s*(w\d\dp|vp530p?)\s+([\d.]+)` + uaMAC + `\s*$`)},
	// old firmware without MAC: Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0
	{"Yealink", regexp.MustCompile(`(?i)^\s*yealink-(\w+)\s+([\d.]+)(?:\s+[\d.]+)?()\s*$`)},
	// FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application
	{"Polycom", regexp.MustCompile(`(?i)polycom\w*-(\w+?)-UA/([\d.]+)()`)},
	// Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872
	{"Grandstream", regexp.MustCompile(`(?i)^\s*grandstream\s+model\s+hw\s+(\S+)(?:\s+V[\w.]+)?\s+sw\s+([\d.]+)(?:\s+devid\s+([\da-f]{12}))?`)},
	// Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 … 000413922D24 …)
	{"Snom", regexp.MustCompile(`(?i)snom(\w+)-SIP\s+([\d.]+)(?:.*?\b([\da-f]{12})\b)?`)},
	// Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK), Linksys/SPA-942-6.1.5(a) (88019FA42805)
	{"Cisco", regexp.MustCompile(`(?i)^\s*(?:cisco|linksys)/(SPA-?\d+\w*)-([\d.]+(?:\([a-z]\))?)(?:\s*\(([\da-f]{12})\))?`)},
	// Fanvil X5U-V2 2.12.16.17 0c383e557eb1
	{"Fanvil", regexp.MustCompile(`(?i)^\s*fanvil\s+(\S+)\s+([\d.]+)` + uaMAC)},
}

// ParseUserAgent identifies a phone from an HTTP User-Agent. Unknown
// formats give a Requester with only UA set.
func ParseUserAgent(ua string) Requester {
	r := Requester{UA: ua}
	if len(ua) > 512 {
		return r
	}
	for _, p := range uaPatterns {
		m := p.re.FindStringSubmatch(ua)
		if m == nil {
			continue
		}
		r.Vendor, r.Model, r.Firmware = p.vendor, strings.ToUpper(m[1]), m[2]
		if p.vendor == "Cisco" && strings.HasPrefix(strings.ToLower(ua), "linksys") {
			r.Vendor = "Linksys"
		}
		if len(m) > 3 && m[3] != "" {
			if mac, err := appliance.ParseMAC(m[3]); err == nil {
				r.MAC = mac
			}
		}
		return r
	}
	return r
}
