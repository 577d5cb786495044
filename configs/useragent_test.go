package configs_test

import (
	"testing"

	"github.com/provbox/provbox/configs"
)

func TestParseUserAgent(t *testing.T) {
	for _, tc := range []struct {
		ua                           string
		vendor, model, firmware, mac string
	}{
		{"Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37", "Yealink", "T46G", "28.72.0.1", "0015654aa937"},
		{"yealink SIP-T28P 2.73.0.50 00:15:65:11:22:33", "Yealink", "T28P", "2.73.0.50", "001565112233"},
		{"Yealink SIP VP-T49G 51.80.0.100 00:15:65:11:22:33", "Yealink", "T49G", "51.80.0.100", "001565112233"},
		{"Yealink W52P 25.30.0.2 00:15:65:11:22:33", "Yealink", "W52P", "25.30.0.2", "001565112233"},
		{"W52P 25.30.0.2 00:15:65:11:22:33", "Yealink", "W52P", "25.30.0.2", "001565112233"},
		{"VP530 23.70.0.40 00:15:65:11:22:33", "Yealink", "VP530", "23.70.0.40", "001565112233"},
		{"Yealink SIP-T56A 58.80.0.25 001565f429a4", "Yealink", "T56A", "58.80.0.25", "001565f429a4"},
		{"Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0", "Yealink", "T46G", "28.71.0.81", ""},
		{"Yealink SIP-T38G  38.70.0.185 00:15:65:11:22:33", "Yealink", "T38G", "38.70.0.185", "001565112233"},
		{"Yealink SIP-T54W 96.86.0.45", "Yealink", "T54W", "96.86.0.45", ""},
		{"FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application", "Polycom", "VVX_400", "4.1.4.7430", ""},
		{"Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872", "Grandstream", "GXP2135", "1.0.7.97", "000b828aa872"},
		{"Grandstream Model HW GXP2135 V2.2A SW 1.0.7.97 DevId 000b828aa872", "Grandstream", "GXP2135", "1.0.7.97", "000b828aa872"},
		{"Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 1.1.5-IS 000413922D24 pl)", "Snom", "D785", "10.1.33.33", "000413922d24"},
		{"Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK)", "Cisco", "SPA508G", "7.4.4", "0002fdff2103"},
		{"Linksys/SPA-942-6.1.5(a) (88019FA42805)", "Linksys", "SPA-942", "6.1.5(a)", "88019fa42805"},
		{"Fanvil X5U-V2 2.12.16.17 0c383e557eb1", "Fanvil", "X5U-V2", "2.12.16.17", "0c383e557eb1"},
		{"curl/7.88.1", "", "", "", ""},
		{"", "", "", "", ""},
		{"Yealink SIP-T46G 28.72.0.1 01:00:5e:00:00:01", "Yealink", "T46G", "28.72.0.1", ""}, // multicast MAC ignored
	} {
		t.Run(tc.ua, func(t *testing.T) {
			r := configs.ParseUserAgent(tc.ua)
			if r.Vendor != tc.vendor || r.Model != tc.model || r.Firmware != tc.firmware || r.MAC != tc.mac {
				t.Fatalf("got %+v", r)
			}
		})
	}
}

func FuzzParseUserAgent(f *testing.F) {
	f.Add("Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37")
	f.Add("Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872")
	f.Add("Linksys/SPA-942-6.1.5(a) (88019FA42805)")
	f.Fuzz(func(t *testing.T, ua string) {
		r := configs.ParseUserAgent(ua)
		if r.MAC != "" && len(r.MAC) != 12 {
			t.Fatalf("bad MAC %q from %q", r.MAC, ua)
		}
		if r.Vendor == "" && (r.Model != "" || r.MAC != "") {
			t.Fatalf("model without vendor: %+v", r)
		}
	})
}
