package configs_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
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

// testAdminPassword stands for the installation's phones' admin password.
const testAdminPassword = "k7Q2m9XvR4tZp8Wd"

// testSecret stands for the phone's own provisioning secret.
const testSecret = "Ph9nSecr3tHxQ7wKe4ZtB2mD"

// testToken stands for the phone's report token.
const testToken = "tK3n0fTh1sPh0neAbCdEf"

func phoneConfig(model string, accounts []appliance.Account, keys []appliance.LineKey) *appliance.PhoneConfig {
	m, ok := configs.MustCatalog().Lookup("Yealink", model)
	if !ok {
		panic(model)
	}
	return &appliance.PhoneConfig{
		Phone:    appliance.Phone{MAC: "001565aabbcc", Name: "Front desk", Manufacturer: "Yealink", Model: model, Token: testToken},
		Model:    m,
		Accounts: accounts,
		LineKeys: keys,
		Settings: appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", Registrar: "pbx.example.com", PickupPrefix: "**",
			PhoneAdminPassword: testAdminPassword},
		Secret: testSecret,
	}
}

// accts2 is Alice and Bob as accounts 1 and 2.
func accts2() []appliance.Account {
	accounts, _, _ := goldenFixture()
	return accounts
}

// goldenFixture is the layout every model's golden holds: two accounts (the
// first on the default registrar over UDP, the second on its own server
// over TCP with voicemail), then one key of every kind. The last key goes
// on the model's last position.
func goldenFixture() ([]appliance.Account, []appliance.LineKey, []appliance.LineKey) {
	alice := ext(1, "1001", "Alice", "", "udp")
	bob := ext(2, "1002", "Bob", "pbx2.example.com:5080", "tcp")
	bob.Voicemail = "*97"
	accounts := []appliance.Account{{Index: 1, Extension: alice, Password: alice.Password}, {Index: 2, Extension: bob, Password: bob.Password}}
	accountKeys := []appliance.LineKey{
		{Type: "account", Value: "1001", Label: "Alice", Line: 1},
		{Type: "account", Value: "1002", Label: "Bob", Line: 2},
	}
	others := []appliance.LineKey{
		{Type: "blf", Value: "1005", Label: "Reception # 1 = main", Line: 1},
		{Type: "blf", Value: "2001@pbx.example.com", Label: "Same server", Line: 1},
		{Type: "blf", Value: "3001@other.example.net", Label: "Other server", Line: 1},
		{Type: "park", Value: "701", Label: "Park 1", Line: 1},
		{Type: "park", Value: "*85", Label: "Park", Line: 1},
		{Type: "speed_dial", Value: "+15551234,,42#", Label: "Pizza", Line: 1},
		{Type: "prefix", Value: "9", Label: "Outside", Line: 1},
		{Type: "blf", Value: "1009", Label: "Last key", Line: 1},
	}
	return accounts, accountKeys, others
}

// modelCases renders the fixture on every supported model. A model with
// fewer line keys than the fixture needs gets it in parts: part 1 holds
// both accounts, the later parts account 1 and as many other keys as fit,
// so every model's goldens together cover every key kind.
func modelCases() map[string]*appliance.PhoneConfig {
	accounts, accountKeys, others := goldenFixture()
	cases := map[string]*appliance.PhoneConfig{}
	cat := configs.MustCatalog()
	for _, m := range cat.Models() {
		if m.LineKeys == 0 {
			// Accounts only (a DECT base, an AX8x): as many of the two
			// accounts as it has, the rest cleared.
			cases[m.Name] = phoneConfig(m.Name, accounts[:min(2, m.Accounts)], nil)
			continue
		}
		if x, ok := cat.ModuleOf(m); ok && m.LineKeys >= len(accountKeys)+len(others) {
			// One module, with a BLF on its first key and a speed dial on
			// its last: every key of it written.
			keys := append([]appliance.LineKey{}, accountKeys...)
			keys = append(keys, others...)
			for i := range keys {
				keys[i].Position = i + 1
			}
			keys[len(keys)-1].Position = m.LineKeys
			keys = append(keys,
				appliance.LineKey{Module: 1, Position: 1, Type: "blf", Value: "1010", Label: "Module BLF", Line: 1},
				appliance.LineKey{Module: 1, Position: x.Keys, Type: "speed_dial", Value: "1011", Label: "Module last", Line: 1})
			cfg := phoneConfig(m.Name, accounts, keys)
			cfg.Phone.ExpansionModules, cfg.Module = 1, x
			cases[m.Name] = cfg
			continue
		}
		if m.LineKeys >= len(accountKeys)+len(others) {
			keys := append([]appliance.LineKey{}, accountKeys...)
			keys = append(keys, others...)
			for i := range keys {
				keys[i].Position = i + 1
			}
			keys[len(keys)-1].Position = m.LineKeys
			cases[m.Name] = phoneConfig(m.Name, accounts, keys)
			continue
		}
		rest := others
		for part := 1; len(rest) > 0; part++ {
			keys, accts := append([]appliance.LineKey{}, accountKeys...), accounts
			if part > 1 {
				keys, accts = keys[:1], accounts[:1]
			}
			n := min(m.LineKeys-len(keys), len(rest))
			keys = append(keys, rest[:n]...)
			rest = rest[n:]
			for i := range keys {
				keys[i].Position = i + 1
			}
			cases[fmt.Sprintf("%s-part%d", m.Name, part)] = phoneConfig(m.Name, accts, keys)
		}
	}
	return cases
}

// goldenCases: every model (modelCases), and the settings variants.
func goldenCases() map[string]*appliance.PhoneConfig {
	cases := modelCases()
	tls := ext(3, "1003", "", "sbc.example.com", "tls")
	tls.Voicemail = "*97"
	cases["T54W-tls-voicemail"] = phoneConfig("T54W", []appliance.Account{{Index: 1, Extension: tls, Password: tls.Password}},
		[]appliance.LineKey{{Position: 1, Type: "account", Value: "1003", Label: "1003", Line: 1}})
	cases["T48U-empty"] = phoneConfig("T48U", nil, nil)
	// A T54W with two EXP50 modules: keys on the phone and on both modules
	// (an account key on module 2 too: expansion keys take every type).
	x, _ := configs.MustCatalog().Module("EXP50")
	threePanels := phoneConfig("T54W", accts2(), []appliance.LineKey{
		{Position: 1, Type: "account", Value: "1001", Label: "Alice", Line: 1},
		{Position: 2, Type: "account", Value: "1001", Label: "Alice", Line: 1},
		{Module: 1, Position: 1, Type: "blf", Value: "1005", Label: "Reception", Line: 1},
		{Module: 1, Position: 21, Type: "park", Value: "701", Label: "Park 1", Line: 1},
		{Module: 1, Position: 60, Type: "speed_dial", Value: "+15551234", Label: "Pizza", Line: 1},
		{Module: 2, Position: 1, Type: "account", Value: "1002", Label: "Bob", Line: 2},
		{Module: 2, Position: 2, Type: "prefix", Value: "9", Label: "Outside", Line: 1},
		{Module: 2, Position: 60, Type: "park", Value: "*85", Label: "Park", Line: 1},
	})
	threePanels.Phone.ExpansionModules, threePanels.Module = 2, x
	cases["T54W-2xEXP50"] = threePanels
	alice := ext(1, "1001", "Alice", "", "udp")
	one := []appliance.Account{{Index: 1, Extension: alice, Password: alice.Password}}
	secure := phoneConfig("T58", one, []appliance.LineKey{{Position: 1, Type: "account", Value: "1001", Label: "Alice", Line: 1}})
	secure.Settings.SecureURL = "https://10.0.0.2:8443/prov/"
	secure.Settings.CACertURL = "http://10.0.0.2:8080/prov/ca.crt"
	cases["T58-https"] = secure
	noPickup := phoneConfig("T46U", one, []appliance.LineKey{
		{Position: 1, Type: "account", Value: "1001", Label: "Alice", Line: 1},
		{Position: 2, Type: "blf", Value: "1002", Label: "Bob", Line: 1},
	})
	noPickup.Settings.PickupPrefix = ""
	cases["T46U-no-pickup-prefix"] = noPickup
	actionURI := phoneConfig("T46U", accts2(), []appliance.LineKey{
		{Position: 1, Type: "account", Value: "1001", Label: "Alice", Line: 1},
		{Position: 2, Type: "account", Value: "1002", Label: "Bob", Line: 2},
	})
	actionURI.Settings.SyncTrigger, actionURI.Settings.BoxIP = appliance.TriggerActionURI, "10.0.0.2"
	cases["T46U-action-uri"] = actionURI
	return cases
}

func TestRenderPhoneConfig_Golden(t *testing.T) {
	r := &configs.Renderer{}
	cases := goldenCases()
	for name, cfg := range cases {
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
	// No stale goldens: every file in testdata/yealink is a case.
	files, _ := filepath.Glob(filepath.Join("testdata", "yealink", "*.golden"))
	for _, f := range files {
		if _, ok := cases[strings.TrimSuffix(filepath.Base(f), ".golden")]; !ok {
			t.Errorf("%s is no case's golden (remove it)", f)
		}
	}
}

// TestGoldens_CoverEveryKeyKindPerModel: for each supported model, its
// goldens hold every key kind of the fixture, two accounts and an unused
// account.
func TestGoldens_CoverEveryKeyKindPerModel(t *testing.T) {
	_, _, others := goldenFixture()
	cases := modelCases()
	for _, m := range configs.MustCatalog().Models() {
		seen := map[string]bool{}
		accounts := 0
		for name, cfg := range cases {
			if name != m.Name && !strings.HasPrefix(name, m.Name+"-part") {
				continue
			}
			for _, k := range cfg.LineKeys {
				seen[k.Type+" "+k.Value] = true
			}
			accounts = max(accounts, len(cfg.Accounts))
		}
		if m.LineKeys == 0 {
			if accounts != min(2, m.Accounts) {
				t.Errorf("%s: goldens hold %d accounts of %d", m.Name, accounts, m.Accounts)
			}
			continue
		}
		for _, k := range others {
			if !seen[k.Type+" "+k.Value] {
				t.Errorf("%s: no golden holds %s %s", m.Name, k.Type, k.Value)
			}
		}
		if accounts != 2 { // the T31's 2 accounts: its later parts leave account 2 unused
			t.Errorf("%s: goldens hold %d accounts of %d (want 2 and an unused one)", m.Name, accounts, m.Accounts)
		}
	}
}

// yealinkParams are the settings a generated file may write, each with
// where reference/yealink.md or reference/yealink-audit.md confirms the
// name and its values. checkYealinkFile refuses any other line.
var yealinkParams = []struct {
	re     *regexp.Regexp
	source string
}{
	{regexp.MustCompile(`^account\.\d+\.(enable|label|display_name|auth_name|user_name|password)$`), "reference §2; WZ v86 base.tpl (unused: %NULL%)"},
	{regexp.MustCompile(`^account\.\d+\.sip_server\.1\.(address|port|transport_type)$`), "reference §2 (V81+ names)"},
	{regexp.MustCompile(`^account\.\d+\.transport$`), "reference §2 (pre-V81 name); audit §1: redundant but harmless"},
	{regexp.MustCompile(`^voice_mail\.number\.\d+$`), "reference §2; audit §1"},
	{regexp.MustCompile(`^linekey\.\d+\.(type|value|label|line|extension|pickup_value)$`), "reference §3; audit §1"},
	{regexp.MustCompile(`^expansion_module\.[1-6]\.key\.\d+\.(type|value|label|line|extension|pickup_value)$`), "reference §3 (FP t46s/{$mac}.cfg, t54w/y000000000096.cfg; WZ v86 common.py iterator); audit §5"},
	{regexp.MustCompile(`^features\.pickup\.direct_pickup_(enable|code)$`), "audit §1 (FP t46u/y000000000108.cfg l.1702-1704)"},
	{regexp.MustCompile(`^sip\.(notify_reboot_enable|trust_ctrl)$`), "reference §5; audit §2"},
	{regexp.MustCompile(`^account\.\d+\.sip_trust_ctrl$`), "reference §5 (pre-V80/V81 name; Yealink FAQ 559 says V81)"},
	{regexp.MustCompile(`^action_url\.(setup_autop_finish|registered|register_failed|unregistered|ip_change)$`), "audit, Confirmed after the audit; T2/T4/T5 guide p.444 (t21pe2 manual p.450), T27G guide p.492"},
	{regexp.MustCompile(`^features\.(action_uri\.enable|action_uri_limit_ip|show_action_uri_option|direct_ip_call_enable)$`), "audit §2 (T21P E2 guide p.459-465; t40g p.523); Yealink FAQ 559 (direct IP calls with trust_ctrl)"},
	{regexp.MustCompile(`^(static\.)?security\.user_password$`), "reference §4; WZ v86 base.tpl"},
	{regexp.MustCompile(`^(static\.)?auto_provision\.pnp_enable$`), "reference §4; audit §3 (WZ base.tpl writes 0)"},
	{regexp.MustCompile(`^(static\.)?auto_provision\.server\.(url|username|password)$`), "reference §4; audit §1 (both names for a mixed fleet)"},
	{regexp.MustCompile(`^(static\.)?trusted_certificates\.url$`), "audit, Confirmed after the audit (T48G guide p.217); FP y000000000066.cfg"},
	{regexp.MustCompile(`^(static\.)?security\.(trust_certificates|ca_cert|cn_validation)$`), "audit, Confirmed after the audit (T48G guide p.217); FP t46s/y000000000066.cfg l.336-339, t56a/y000000000056.cfg l.1045-1063 (values, defaults)"},
}

// checkYealinkFile reads a generated file line by line as a phone would,
// and holds every line to what the audit (shared/reference/yealink-audit.md
// §1–§3) says a real Yealink expects.
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
		for _, p := range yealinkParams {
			known = known || p.re.MatchString(k)
		}
		if !known {
			t.Errorf("line %d: %q is not a setting the reference or the audit confirms", n, k)
		}
		if _, dup := settings[k]; dup {
			t.Errorf("line %d: %s set twice", n, k)
		}
		settings[k] = v
	}
	get := func(format string, args ...any) string { return settings[fmt.Sprintf(format, args...)] }
	serverURL := cfg.Settings.ProvisioningURL
	if cfg.Settings.SecureURL != "" {
		serverURL = cfg.Settings.SecureURL
	}
	if ca := cfg.Settings.CACertURL; ca != "" {
		for k, want := range map[string]string{"static.trusted_certificates.url": ca, "trusted_certificates.url": ca,
			"static.security.trust_certificates": "1", "static.security.ca_cert": "2", "static.security.cn_validation": "1"} {
			if settings[k] != want {
				t.Errorf("%s = %q, want %q", k, settings[k], want)
			}
		}
	} else if _, ok := settings["static.trusted_certificates.url"]; ok {
		t.Error("a CA URL without provbox's CA")
	}
	report := cfg.Settings.ProvisioningURL
	if cfg.Settings.SecureURL != "" {
		report = cfg.Settings.SecureURL
	}
	report += "ev/" + cfg.Phone.Token + "/"
	trust := "0"
	if cfg.Settings.SyncTrigger == appliance.TriggerActionURI {
		trust = "1"
		for k, want := range map[string]string{"features.action_uri_limit_ip": cfg.Settings.BoxIP, "features.show_action_uri_option": "0",
			"features.action_uri.enable": "1", "features.direct_ip_call_enable": "0"} {
			if settings[k] != want {
				t.Errorf("%s = %q, want %q", k, settings[k], want)
			}
		}
		for _, a := range cfg.Accounts {
			if got := get("account.%d.sip_trust_ctrl", a.Index); got != "1" {
				t.Errorf("account.%d.sip_trust_ctrl = %q", a.Index, got)
			}
		}
	} else if _, ok := settings["features.action_uri_limit_ip"]; ok {
		t.Error("Action URI settings with the notify trigger")
	}
	for k, want := range map[string]string{
		"action_url.setup_autop_finish": report + "provisioned?mac=$mac&ip=$ip&model=$model&firmware=$firmware",
		"action_url.registered":         report + "registered?mac=$mac&ip=$ip&user=$active_user",
		"action_url.register_failed":    report + "register_failed?mac=$mac&ip=$ip&user=$active_user",
		"action_url.unregistered":       report + "unregistered?mac=$mac&ip=$ip&user=$active_user",
		"action_url.ip_change":          report + "ip_change?mac=$mac&ip=$ip",
	} {
		if settings[k] != want {
			t.Errorf("%s = %q, want %q", k, settings[k], want)
		}
		if len(want) > 511 {
			t.Errorf("%s is %d characters; a Yealink takes 511", k, len(want))
		}
	}
	for k, want := range map[string]string{
		"sip.notify_reboot_enable":              "0",
		"sip.trust_ctrl":                        trust,
		"static.auto_provision.pnp_enable":      "0",
		"auto_provision.pnp_enable":             "0",
		"static.auto_provision.server.url":      serverURL,
		"auto_provision.server.url":             serverURL,
		"static.auto_provision.server.username": cfg.Phone.MAC,
		"static.auto_provision.server.password": cfg.Secret,
		"auto_provision.server.username":        cfg.Phone.MAC,
		"auto_provision.server.password":        cfg.Secret,
		"static.security.user_password":         "admin:" + cfg.Settings.PhoneAdminPassword,
		"security.user_password":                "admin:" + cfg.Settings.PhoneAdminPassword,
		"features.pickup.direct_pickup_code":    map[bool]string{true: cfg.Settings.PickupPrefix, false: "%NULL%"}[cfg.Settings.PickupPrefix != ""],
		"features.pickup.direct_pickup_enable":  map[bool]string{true: "1", false: "0"}[cfg.Settings.PickupPrefix != ""],
	} {
		if got, ok := settings[k]; !ok || got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if strings.HasSuffix(settings["static.security.user_password"], ":admin") {
		t.Error("the phone keeps the factory admin password")
	}
	for p := 1; p <= cfg.Model.LineKeys; p++ {
		if _, ok := settings["linekey."+itoa(p)+".type"]; !ok {
			t.Errorf("linekey.%d.type missing (model has %d)", p, cfg.Model.LineKeys)
		}
	}
	if _, ok := settings["linekey."+itoa(cfg.Model.LineKeys+1)+".type"]; ok {
		t.Errorf("a line key beyond the model's %d", cfg.Model.LineKeys)
	}
	servers := map[int]string{}
	for _, a := range cfg.Accounts {
		servers[a.Index] = get("account.%d.sip_server.1.address", a.Index)
	}
	for n := 1; n <= cfg.Phone.ExpansionModules; n++ {
		for p := 1; p <= cfg.Module.Keys; p++ {
			if _, ok := settings[fmt.Sprintf("expansion_module.%d.key.%d.type", n, p)]; !ok {
				t.Errorf("expansion_module.%d.key.%d.type missing (%s has %d)", n, p, cfg.Module.Name, cfg.Module.Keys)
			}
		}
		if _, ok := settings[fmt.Sprintf("expansion_module.%d.key.%d.type", n, cfg.Module.Keys+1)]; ok {
			t.Errorf("a module key beyond the %s's %d", cfg.Module.Name, cfg.Module.Keys)
		}
	}
	if _, ok := settings[fmt.Sprintf("expansion_module.%d.key.1.type", cfg.Phone.ExpansionModules+1)]; ok {
		t.Errorf("a module beyond the phone's %d", cfg.Phone.ExpansionModules)
	}
	for _, k := range cfg.LineKeys {
		p := k.Position
		prefix := "linekey." + itoa(p)
		if k.Module > 0 {
			prefix = fmt.Sprintf("expansion_module.%d.key.%d", k.Module, p)
		}
		get := func(format string, _ int) string { return settings[prefix+strings.TrimPrefix(format, "linekey.%d")] }
		typ, value := get("linekey.%d.type", p), get("linekey.%d.value", p)
		ext, pickup := get("linekey.%d.extension", p), get("linekey.%d.pickup_value", p)
		if get("linekey.%d.label", p) != k.Label {
			t.Errorf("%s.label = %q, want %q", prefix, get("linekey.%d.label", p), k.Label)
		}
		switch {
		case k.Type == "account":
			if typ != "15" || value != "%NULL%" || get("linekey.%d.line", p) != itoa(k.Line) {
				t.Errorf("account key %s: type %s value %s line %s", prefix, typ, value, get("linekey.%d.line", p))
			}
		case k.Type == "blf":
			// The phone dials pickup code + monitored number itself.
			want := cfg.Settings.PickupPrefix
			if want == "" {
				want = "%NULL%"
			}
			if typ != "16" || ext != want || pickup != want {
				t.Errorf("BLF %d: type %s, .extension %q, .pickup_value %q, want 16 and the prefix %q alone", p, typ, ext, pickup, want)
			}
			user, host, hasHost := strings.Cut(k.Value, "@")
			wantValue := k.Value
			if hasHost && host == servers[k.Line] {
				wantValue = user
			}
			if value != wantValue {
				t.Errorf("BLF %d: value %q, want %q", p, value, wantValue)
			}
		case k.Type == "park" && appliance.IsParkSlot(k.Value):
			if typ != "16" || value != k.Value || ext != "%NULL%" {
				t.Errorf("park slot %d: type %s value %s extension %s, want a BLF (16) on the slot", p, typ, value, ext)
			}
		case k.Type == "park":
			if typ != "10" || value != k.Value {
				t.Errorf("park code %d: type %s value %s, want 10 (Call Park) with the code", p, typ, value)
			}
		case k.Type == "speed_dial" && (typ != "13" || value != k.Value), k.Type == "prefix" && (typ != "40" || value != k.Value):
			t.Errorf("%s %d: type %s value %s", k.Type, p, typ, value)
		}
	}
	for _, a := range cfg.Accounts {
		if settings["account."+itoa(a.Index)+".password"] != a.Password || get("account.%d.enable", a.Index) != "1" {
			t.Errorf("account %d password or enable", a.Index)
		}
	}
	for i := len(cfg.Accounts) + 1; i <= cfg.Model.Accounts; i++ {
		if settings["account."+itoa(i)+".enable"] != "0" {
			t.Errorf("unused account %d not disabled", i)
		}
		for _, f := range []string{"label", "display_name", "auth_name", "user_name", "password", "sip_server.1.address", "sip_server.1.port", "sip_server.1.transport_type"} {
			if got := get("account.%d.%s", i, f); got != "%NULL%" {
				t.Errorf("unused account.%d.%s = %q, want %%NULL%%", i, f, got)
			}
		}
	}
	if _, ok := settings["account."+itoa(cfg.Model.Accounts+1)+".enable"]; ok {
		t.Errorf("an account beyond the model's %d", cfg.Model.Accounts)
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
	for _, m := range configs.MustCatalog().Models() {
		f := configs.YealinkModelFile(m)
		if m.DeviceID == "" {
			continue // no source gives one: the phone's request gets 404
		}
		if !regexp.MustCompile(`^y0{9}\d{3}\.cfg$`).MatchString(f) {
			t.Errorf("%s: model file %q", m.Name, f)
		}
		b, ok, err := r.RenderModelFile(f, appliance.Settings{ProvisioningURL: "http://10.0.0.2/prov/"})
		if !ok || err != nil || !bytes.HasPrefix(b, []byte("#!version:1.0.0.1\n")) {
			t.Errorf("%s: %q %v %v", f, b, ok, err)
		}
	}
	if m, _ := configs.MustCatalog().Lookup("Yealink", "T46G"); configs.YealinkModelFile(m) != "y000000000028.cfg" {
		got := configs.YealinkModelFile(m)
		t.Errorf("T46G → %s", got)
	}
	if _, ok, _ := r.RenderModelFile("y000000000999.cfg", appliance.Settings{}); ok {
		t.Error("unknown model file rendered")
	}
}

func TestRendererProblems(t *testing.T) {
	alice := ext(1, "1001", "Alice", "pbx.example.com", "udp")
	cfg := phoneConfig("T46G", []appliance.Account{{Index: 1, Extension: alice, Password: alice.Password}},
		[]appliance.LineKey{{Position: 1, Type: "account", Value: "1001", Label: "Alice", Line: 1}})
	dir := t.TempDir()
	r := &configs.Renderer{TemplateDir: dir}
	if got := r.Problems(cfg); len(got) != 0 {
		t.Fatalf("ready phone has problems %q", got)
	}
	// A model-file override that cannot render: the phone will ask for
	// y000000000028.cfg and get a 500.
	os.MkdirAll(filepath.Join(dir, "yealink"), 0o755)
	os.WriteFile(filepath.Join(dir, "yealink", configs.ModelTemplate), []byte("#!version:1.0.0.1\n{{.Nope}}\n"), 0o644)
	got := r.Problems(cfg)
	if len(got) != 1 || !strings.Contains(got[0], "y000000000028.cfg") || !strings.Contains(got[0], "cannot serve") {
		t.Fatalf("problems %q, want the model file named", got)
	}
	// The domain's checks come along.
	cfg.Accounts, cfg.LineKeys = nil, nil
	if got := r.Problems(cfg); len(got) != 2 || !strings.Contains(got[0], "no account key") {
		t.Fatalf("problems %q", got)
	}
	if s1, s2 := (&configs.Renderer{}).Stamp(), r.Stamp(); s1 != "embedded" || s2 == "embedded" {
		t.Errorf("stamps %q %q: a model-file override must change the stamp", s1, s2)
	}
}

func TestRender_RefusesNoAdminPassword(t *testing.T) {
	cfg := phoneConfig("T46G", nil, nil)
	cfg.Settings.PhoneAdminPassword = ""
	if _, err := (&configs.Renderer{}).RenderPhoneConfig(cfg); err == nil {
		t.Fatal("rendered a config that would leave the phone's admin without a password")
	}
}

// TestRenderer_TakeRendered: the file Version rendered is handed out once,
// and only for its own version.
func TestRenderer_TakeRendered(t *testing.T) {
	r := &configs.Renderer{}
	accounts, keys, _ := goldenFixture()
	cfg := phoneConfig("T46U", accounts, keys[:2])
	v, err := r.Version(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.TakeRendered(cfg.Phone.MAC, "other"); ok {
		t.Fatal("handed out for another version")
	}
	b, ok := r.TakeRendered(cfg.Phone.MAC, v)
	want, _ := r.RenderPhoneConfig(cfg)
	if !ok || !bytes.Equal(b, want) || configs.HashFile(b) != v {
		t.Fatalf("taken %v, %d bytes", ok, len(b))
	}
	if _, ok := r.TakeRendered(cfg.Phone.MAC, v); ok {
		t.Fatal("handed out twice")
	}
	// A refresh that does not move the version keeps nothing.
	cfg.StoredVersion = v
	if _, err := r.Version(cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.TakeRendered(cfg.Phone.MAC, v); ok {
		t.Fatal("kept a file whose version did not move")
	}
}

// BenchmarkRenderPhoneConfig renders a T46G's <mac>.cfg with two accounts
// and a key of every kind: the per-phone cost of a change's new versions.
func BenchmarkRenderPhoneConfig(b *testing.B) {
	cfg := goldenCases()["T46G"]
	r := &configs.Renderer{}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := r.Version(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
