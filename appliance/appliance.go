// Package appliance is the domain of provbox: extensions, e911 locations,
// phones, line keys ("button configurations") and their layouts, the rules
// of SPEC.md §3, sync state, and the services other packages call.
//
// It imports nothing else of provbox. Storage (appliance/sqlite), the web
// UI and API (webui), the file servers (webui /prov/, tftpd), SIP (sip) and
// DHCP (dhcpopt) all speak in terms of these types. For example, creating a
// phone with one extension:
//
//	ext, _ := svc.Extensions.CreateExtension(ctx, &appliance.Extension{Number: "1001", Name: "Alice"})
//	ph, _ := svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "00:15:65:aa:bb:cc", Model: "T-46g"}, ext.Number)
//	// ph.MAC == "001565aabbcc", ph.Model == "T46G"; its layout holds ext's
//	// account key at positions 1 and 2, and a PhonesChanged event for it is
//	// published after the commit.
package appliance

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// checkText enforces the rule shared by every free-text field: valid UTF-8,
// no control characters (so no value can add a line to a generated config
// file), at most max characters.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, field, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return Errorf(EINVALID, field, "must not contain control characters or line breaks")
		}
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Errorf(EINVALID, field, "too long (%d characters, at most %d)", n, max)
	}
	return nil
}

// isHost reports whether s is a DNS name or IPv4 address (no port).
func isHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func allIn(s, set string) bool {
	for _, c := range s {
		if !strings.ContainsRune(set, c) {
			return false
		}
	}
	return true
}

const digits = "0123456789"
