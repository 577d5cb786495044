package configs

import (
	"testing"

	"github.com/provbox/provbox/appliance"
)

// FuzzIsMACCfg: the hand-written <mac>.cfg check of every fetch answers
// as CleanName and macCfgRe do, and lowerMAC as appliance.ParseMAC.
func FuzzIsMACCfg(f *testing.F) {
	for _, s := range []string{"001565aabbcc.cfg", "/001565AABBCC.cfg", "001565aabbcc.CFG", "001565aabbc.cfg", "../01565aabbcc.cfg", "00:15:65:aa:bb:cc", "001565aabbcg.cfg", "001565aabbcc.cfg\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		name := path
		if len(name) > 0 && name[0] == '/' {
			name = name[1:]
		}
		clean := CleanName(path)
		if want := clean != "" && macCfgRe.MatchString(clean); isMACCfg(name) != want {
			t.Fatalf("isMACCfg(%q) = %v, CleanName and macCfgRe say %v", name, !want, want)
		}
		if len(path) >= 12 {
			if lowerMAC(path[:12]) != parseMAC(path[:12]) {
				t.Fatalf("lowerMAC(%q) = %q, want %q", path[:12], lowerMAC(path[:12]), parseMAC(path[:12]))
			}
		}
	})
}

func parseMAC(s string) string {
	mac, _ := appliance.ParseMAC(s)
	return mac
}
