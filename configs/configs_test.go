package configs_test

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/configs"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func ext(id int64, number, name, server, transport string) *appliance.Extension {
	return &appliance.Extension{ID: id, Number: number, Name: name, AuthUser: number, Password: "secret-" + number, SIPServer: server, Transport: transport}
}

func phoneConfig(model string, accounts []appliance.Account, keys []appliance.LineKey) *appliance.PhoneConfig {
	m, ok := appliance.LookupModel("Yealink", model)
	if !ok {
		panic(model)
	}
	return &appliance.PhoneConfig{
		Phone:    appliance.Phone{MAC: "001565aabbcc", Name: "Front desk", Manufacturer: "Yealink", Model: model},
		Model:    m,
		Accounts: accounts,
		LineKeys: keys,
		Settings: appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", Registrar: "pbx.example.com", PickupPrefix: "**"},
	}
}

// goldenCases: several models and key mixes.
func goldenCases() map[string]*appliance.PhoneConfig {
	alice := ext(1, "1001", "Alice", "", "udp")
	bob := ext(2, "1002", "Bob", "pbx2.example.com:5080", "tcp")
	tls := ext(3, "1003", "", "sbc.example.com", "tls")
	tls.Voicemail = "*97"
	one := []appliance.Account{{Index: 1, Extension: alice, Password: alice.Password}}
	cases := map[string]*appliance.PhoneConfig{
		"T46G-two-accounts-mixed": phoneConfig("T46G",
			[]appliance.Account{{Index: 1, Extension: alice, Password: alice.Password}, {Index: 2, Extension: bob, Password: bob.Password}},
			[]appliance.LineKey{
				{Position: 1, Type: "account", Value: "1001", Label: "Alice", Line: 1},
				{Position: 2, Type: "account", Value: "1001", Label: "Alice", Line: 1},
				{Position: 3, Type: "account", Value: "1002", Label: "Bob", Line: 2},
				{Position: 4, Type: "blf", Value: "1005", Label: "Reception # 1 = main", Line: 1},
				{Position: 5, Type: "blf", Value: "2001@pbx.example.com", Label: "Remote", Line: 1},
				{Position: 6, Type: "speed_dial", Value: "+15551234,,42#", Label: "Pizza", Line: 1},
				{Position: 7, Type: "park", Value: "701", Label: "Park 1", Line: 1},
				{Position: 8, Type: "prefix", Value: "9", Label: "Outside", Line: 1},
				{Position: 27, Type: "blf", Value: "1009", Label: "Last key", Line: 1},
			}),
		"T41S-one-account": phoneConfig("T41S", one, []appliance.LineKey{
			{Position: 1, Type: "account", Value: "1001", Label: "Alice", Line: 1},
			{Position: 2, Type: "account", Value: "1001", Label: "Alice", Line: 1},
		}),
		"T54W-tls-voicemail": phoneConfig("T54W", []appliance.Account{{Index: 1, Extension: tls, Password: tls.Password}},
			[]appliance.LineKey{{Position: 1, Type: "account", Value: "1003", Label: "1003", Line: 1}}),
		"T48U-empty": phoneConfig("T48U", nil, nil),
	}
	creds := phoneConfig("T58", one, []appliance.LineKey{{Position: 1, Type: "account", Value: "1001", Label: "Alice", Line: 1}})
	creds.Settings.ProvUsername, creds.Settings.ProvPassword = "phones", "prov-pass"
	cases["T58-http-credentials"] = creds
	return cases
}

func TestRenderPhoneConfig_Golden(t *testing.T) {
	r := &configs.Renderer{}
	for name, cfg := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			got, err := r.RenderPhoneConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "yealink", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from golden (run go test ./configs -update and review):\n%s", name, got)
			}
			checkYealinkFile(t, got, cfg)
		})
	}
}

// referenceKeys are the setting names shared/reference/yealink.md lists
// (N = account, P = position); a generated file may use no other.
var referenceKeys = []*regexp.Regexp{
	regexp.MustCompile(`^account\.\d+\.(enable|label|display_name|auth_name|user_name|password|transport)$`),
	regexp.MustCompile(`^account\.\d+\.sip_server\.1\.(address|port|transport_type)$`),
	regexp.MustCompile(`^voice_mail\.number\.\d+$`),
	regexp.MustCompile(`^linekey\.\d+\.(type|value|label|line|extension|pickup_value)$`),
	regexp.MustCompile(`^sip\.(notify_reboot_enable|trust_ctrl)$`),
	regexp.MustCompile(`^(static\.)?auto_provision\.server\.(url|username|password)$`),
}

// checkYealinkFile reads a generated file line by line as a phone would.
func checkYealinkFile(t *testing.T, b []byte, cfg *appliance.PhoneConfig) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	settings := map[string]string{}
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			if line != "#!version:1.0.0.1" {
				t.Fatalf("first line %q", line)
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			if k, ok = strings.CutSuffix(line, " ="); !ok {
				t.Fatalf("line %d not key = value: %q", n, line)
			}
		}
		known := false
		for _, re := range referenceKeys {
			known = known || re.MatchString(k)
		}
		if !known {
			t.Errorf("line %d: %q is not a setting the reference lists", n, k)
		}
		if _, dup := settings[k]; dup {
			t.Errorf("line %d: %s set twice", n, k)
		}
		settings[k] = v
	}
	for _, want := range []string{"sip.notify_reboot_enable", "sip.trust_ctrl", "static.auto_provision.server.url", "auto_provision.server.url"} {
		if _, ok := settings[want]; !ok {
			t.Errorf("missing %s", want)
		}
	}
	if settings["sip.notify_reboot_enable"] != "0" || settings["sip.trust_ctrl"] != "0" {
		t.Errorf("check-sync settings wrong")
	}
	for p := 1; p <= cfg.Model.LineKeys; p++ {
		if _, ok := settings["linekey."+itoa(p)+".type"]; !ok {
			t.Errorf("linekey.%d.type missing (model has %d)", p, cfg.Model.LineKeys)
		}
	}
	if _, ok := settings["linekey."+itoa(cfg.Model.LineKeys+1)+".type"]; ok {
		t.Errorf("a line key beyond the model's %d", cfg.Model.LineKeys)
	}
	codes := map[string]string{"account": "15", "blf": "16", "speed_dial": "13", "park": "10", "prefix": "40"}
	for _, k := range cfg.LineKeys {
		if got := settings["linekey."+itoa(k.Position)+".type"]; got != codes[k.Type] {
			t.Errorf("linekey.%d.type = %s, want %s for %s", k.Position, got, codes[k.Type], k.Type)
		}
		if k.Type == "blf" && (settings["linekey."+itoa(k.Position)+".pickup_value"] == "%NULL%" || settings["linekey."+itoa(k.Position)+".extension"] != settings["linekey."+itoa(k.Position)+".pickup_value"]) {
			t.Errorf("BLF %d pickup not in both .extension and .pickup_value", k.Position)
		}
	}
	for _, a := range cfg.Accounts {
		if settings["account."+itoa(a.Index)+".password"] != a.Password {
			t.Errorf("account %d password", a.Index)
		}
	}
	for i := len(cfg.Accounts) + 1; i <= cfg.Model.Accounts; i++ {
		if settings["account."+itoa(i)+".enable"] != "0" {
			t.Errorf("unused account %d not disabled", i)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestRender_RefusesControlCharacters(t *testing.T) {
	r := &configs.Renderer{}
	for _, bad := range []string{"a\nlinekey.1.type = 0", "a\rb", "nul\x00", "esc\x1b", "ls\u2028"} {
		cfg := phoneConfig("T46G", nil, []appliance.LineKey{{Position: 1, Type: "blf", Value: "1002", Label: bad, Line: 1}})
		if _, err := r.RenderPhoneConfig(cfg); err == nil {
			t.Errorf("rendered label %q", bad)
		}
		a := ext(1, "1001", "x", "", "udp")
		cfg = phoneConfig("T46G", []appliance.Account{{Index: 1, Extension: a, Password: bad}}, nil)
		if _, err := r.RenderPhoneConfig(cfg); err == nil {
			t.Errorf("rendered password %q", bad)
		}
	}
	cfg := phoneConfig("T46G", nil, nil)
	cfg.Settings.ProvisioningURL = "http://x/\n"
	if _, err := r.RenderPhoneConfig(cfg); err == nil {
		t.Error("rendered URL with newline")
	}
}

func TestRender_Override(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "yealink"), 0o755)
	path := filepath.Join(dir, "yealink", configs.MACTemplate)
	os.WriteFile(path, []byte("#!version:1.0.0.1\ncustom = {{val .Model}}\n"), 0o644)
	r := &configs.Renderer{TemplateDir: dir}
	got, err := r.RenderPhoneConfig(phoneConfig("T46G", nil, nil))
	if err != nil || string(got) != "#!version:1.0.0.1\ncustom = T46G\n" {
		t.Fatalf("%q %v", got, err)
	}
	os.WriteFile(path, []byte("#!version:1.0.0.1\n{{.Nope}}\n"), 0o644)
	if _, err := r.RenderPhoneConfig(phoneConfig("T46G", nil, nil)); err == nil {
		t.Fatal("bad override rendered")
	}
}

func TestModelFiles(t *testing.T) {
	r := &configs.Renderer{}
	for _, m := range appliance.Models() {
		f := configs.YealinkModelFile(m.Name)
		if !regexp.MustCompile(`^y0{9}\d{3}\.cfg$`).MatchString(f) {
			t.Errorf("%s: model file %q", m.Name, f)
		}
		b, ok, err := r.RenderModelFile(f, appliance.Settings{ProvisioningURL: "http://10.0.0.2/prov/"})
		if !ok || err != nil || !bytes.HasPrefix(b, []byte("#!version:1.0.0.1\n")) {
			t.Errorf("%s: %q %v %v", f, b, ok, err)
		}
	}
	if got := configs.YealinkModelFile("T46G"); got != "y000000000028.cfg" {
		t.Errorf("T46G → %s", got)
	}
	if _, ok, _ := r.RenderModelFile("y000000000999.cfg", appliance.Settings{}); ok {
		t.Error("unknown model file rendered")
	}
}
