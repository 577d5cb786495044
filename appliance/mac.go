package appliance

import (
	"strings"
)

// ParseMAC accepts a MAC address in any of the notations phones and admins
// use — 001565AABBCC, 00:15:65:aa:bb:cc, 00-15-65-AA-BB-CC, 0015.65aa.bbcc —
// and returns it as 12 lowercase hex digits, the form used in file names
// (<mac>.cfg), the database and the API. Multicast and all-zero addresses
// are refused: no phone can have one.
func ParseMAC(s string) (string, error) {
	in := strings.TrimSpace(s)
	var hex string
	switch {
	case len(in) == 12:
		hex = in
	case len(in) == 17 && (in[2] == ':' || in[2] == '-'):
		sep := in[2]
		for i := 2; i < 17; i += 3 {
			if in[i] != sep {
				return "", macError(s)
			}
		}
		hex = strings.ReplaceAll(in, string(sep), "")
	case len(in) == 14 && in[4] == '.' && in[9] == '.':
		hex = strings.ReplaceAll(in, ".", "")
	default:
		return "", macError(s)
	}
	if len(hex) != 12 {
		return "", macError(s)
	}
	out := make([]byte, 12)
	for i := 0; i < 12; i++ {
		c := hex[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			out[i] = c
		case c >= 'A' && c <= 'F':
			out[i] = c + ('a' - 'A')
		default:
			return "", macError(s)
		}
	}
	mac := string(out)
	if mac == "000000000000" {
		return "", Errorf(EINVALID, "mac", "%q is the all-zero address, which no phone has", s)
	}
	if unhex(out[1])&1 == 1 {
		return "", Errorf(EINVALID, "mac", "%q is a multicast address, which no phone has", s)
	}
	return mac, nil
}

// FormatMAC writes a canonical MAC with colons, as phones show it.
func FormatMAC(mac string) string {
	if len(mac) != 12 {
		return mac
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(mac[i : i+2])
	}
	return b.String()
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

func macError(s string) error {
	return Errorf(EINVALID, "mac", "%q is not a MAC address (use 12 hex digits, e.g. 00:15:65:aa:bb:cc)", s)
}
