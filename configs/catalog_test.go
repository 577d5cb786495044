package configs_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/configs"
)

// TestCatalog_Golden: the embedded catalog loads and validates (every fact
// sourced), holds the models the product promises, and its table is the
// reviewed one (testdata/catalog.golden; -update rewrites it).
func TestCatalog_Golden(t *testing.T) {
	c, err := configs.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%-6s %-7s %-13s %-10s %5s %5s %4s %4s %-6s %3s %5s\n", "model", "aliases", "family", "file", "keys", "/page", "cols", "acc", "module", "max", "label")
	for _, m := range c.Models() {
		file := configs.YealinkModelFile(m)
		if file == "" {
			file = "(none)"
		}
		fmt.Fprintf(&buf, "%-6s %-7s %-13s %-10s %5d %5d %4d %4d %-6s %3d %5d\n", m.Name, strings.Join(m.Aliases, ","), m.Family,
			strings.TrimSuffix(strings.TrimPrefix(file, "y000000000"), ".cfg"), m.LineKeys, m.KeysPerPage, m.Columns, m.Accounts, m.Module, m.MaxModules, m.LabelChars)
	}
	for _, x := range c.Modules() {
		fmt.Fprintf(&buf, "module %s: %d keys, %d a page (%d pages), %d columns, label %d\n", x.Name, x.Keys, x.KeysPerPage, x.Pages(), x.Columns, x.LabelChars)
	}
	for _, v := range []string{"Yealink", "Polycom", "Grandstream", "Fanvil"} {
		fmt.Fprintf(&buf, "vendor %s: %s\n", v, strings.Join(c.MACPrefixes(v), " "))
	}
	path := filepath.Join("testdata", "catalog.golden")
	if *update {
		os.WriteFile(path, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("catalog differs from %s (go test ./configs -update, then review):\n%s", path, buf.Bytes())
	}
	// The line-up of 2026 (issue 14), every one supported.
	for _, name := range strings.Fields(`T30 T31 T31G T31P T33G T33P T34W T41U T44U T44W T53 T53W T57W T58W T73U T73W T74U T74W
		T77U T85W T87W T88W T88V W70B W75DM W80DM W90DM AX83H AX86R T40P T41P T41S T42G T42S T42U T43U T46G T46S T46U T48G T48S T48U T54S T54W T58`) {
		if _, ok := c.Lookup("Yealink", name); !ok {
			t.Errorf("%s is not in the catalog", name)
		}
	}
	for alias, want := range map[string]string{"T58V": "T58", "W80": "W80DM", "w90": "W90DM", "SIP-T33G": "T33G", "t-87w": "T87W"} {
		if m, err := c.Normalize("", alias); err != nil || m.Name != want {
			t.Errorf("%s → %v %v, want %s", alias, m.Name, err, want)
		}
	}
	for model, want := range map[string]string{"T46S": "EXP40", "T48G": "EXP40", "T46U": "EXP43", "T54W": "EXP50", "T58W": "EXP50", "T74W": "EXP55", "T88V": "EXP55", "T33G": "", "T42U": ""} {
		if m, _ := c.Lookup("Yealink", model); m.Module != want {
			t.Errorf("%s takes %q, want %q", model, m.Module, want)
		}
	}
}

// TestCatalog_Refused: LoadCatalog refuses what would make a wrong file or
// an unsourced fact: each case breaks the minimal good catalog one way.
func TestCatalog_Refused(t *testing.T) {
	const vendor = "[vendor]\nname = \"Yealink\"\nmac_prefixes = [\"001565\"]\n[vendor.sources]\nmac_prefixes = \"x\"\n"
	const module = "[[module]]\nname = \"EXP50\"\nkeys = 60\nkeys_per_page = 20\ncolumns = 2\nlabel_chars = 10\n[module.sources]\nkeys = \"s\"\nkeys_per_page = \"s\"\nlabel_chars = \"s\"\nphones = \"s\"\n"
	model := func(extra string) string {
		return "[[model]]\nname = \"T54W\"\ndevice_id = \"096\"\nuser_agents = [\"SIP-T54W\"]\nline_keys = 27\nkeys_per_page = 9\ncolumns = 2\naccounts = 16\nmodule = \"EXP50\"\nmax_modules = 3\nlabel_chars = 10\nkey_types = [\"account\", \"blf\"]\n" + extra +
			"[model.sources]\nline_keys = \"s\"\naccounts = \"s\"\ndevice_id = \"s\"\nmodule = \"s\"\nlabel_chars = \"s\"\nkeys_per_page = \"s\"\nuser_agents = \"s\"\n"
	}
	load := func(files ...string) error {
		fsys := fstest.MapFS{}
		for i, f := range files {
			fsys[fmt.Sprintf("catalog/%d.toml", i)] = &fstest.MapFile{Data: []byte(f)}
		}
		_, err := configs.LoadCatalog(fsys)
		return err
	}
	if err := load(vendor + module + model("")); err != nil {
		t.Fatalf("the good catalog: %v", err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"unsourced fact", strings.Replace(vendor+module+model(""), "line_keys = \"s\"\n", "", 1), "line_keys has no source"},
		{"unknown module", strings.Replace(vendor+model(""), "", "", 1), `module "EXP50" is not in the catalog`},
		{"misspelt key", vendor + module + model("linekeys = 3\n"), "unknown keys"},
		{"bad device id", vendor + module + strings.Replace(model(""), `"096"`, `"96"`, 1), "not 3 digits"},
		{"no account type", vendor + module + strings.Replace(model(""), `"account", `, "", 1), `key_types must hold "account"`},
		{"unknown key type", vendor + module + strings.Replace(model(""), `"blf"`, `"intercom"`, 1), `key type "intercom"`},
		{"unknown quirk", vendor + module + model("quirks = [\"fast\"]\n"), `unknown quirk "fast"`},
		{"quirk unsourced", vendor + module + model("quirks = [\"plain_admin_password\"]\n"), "quirk plain_admin_password has no source"},
		{"too many modules", vendor + module + strings.Replace(model(""), "max_modules = 3", "max_modules = 9", 1), "max_modules 9"},
		{"bad MAC prefix", strings.Replace(vendor, "001565", "0015", 1) + module + model(""), "not 6 hex digits"},
		{"page bigger than keys", vendor + module + strings.Replace(model(""), "keys_per_page = 9", "keys_per_page = 30", 1), "keys_per_page 30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := load(tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// The same model in two files.
	if err := load(vendor+module+model(""), "[vendor]\nname = \"Yealink\"\n"+model("")); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate model: %v", err)
	}
}

// TestCatalog_Discovery: every catalog model is recognised from each
// User-Agent form it names (Yealink's "Yealink <model> <firmware> <mac>")
// and every Yealink MAC prefix is Yealink's, so discovery and DHCP's
// phones_only know the whole line-up.
func TestCatalog_Discovery(t *testing.T) {
	c := configs.MustCatalog()
	for _, m := range c.Models() {
		for _, token := range m.UserAgents {
			for _, ua := range []string{
				fmt.Sprintf("Yealink %s 96.86.0.45 80:5e:c0:d5:7d:72", token),
				fmt.Sprintf("Yealink %s 96.86.0.45 805ec0d57d72", token),
			} {
				r := configs.ParseUserAgent(ua)
				got, ok := c.ByUserAgent(r.Vendor, r.Model)
				if r.Vendor != "Yealink" || !ok || got.Name != m.Name || r.MAC != "805ec0d57d72" {
					t.Errorf("%q → vendor %q model %q (%s, %v) mac %q, want %s", ua, r.Vendor, r.Model, got.Name, ok, r.MAC, m.Name)
				}
			}
		}
	}
	for _, p := range c.MACPrefixes("Yealink") {
		if v := c.VendorByMAC(p + "010203"); v != "Yealink" {
			t.Errorf("%s → %q", p, v)
		}
	}
	if len(c.MACPrefixes("Yealink")) < 12 {
		t.Errorf("Yealink prefixes: %v", c.MACPrefixes("Yealink"))
	}
	if v := c.VendorByMAC("0004f2010203"); v != "Polycom" {
		t.Errorf("Polycom prefix → %q", v)
	}
}

// TestGoldens_PublicTemplateNames: every setting name a golden writes is
// one a public Yealink template writes (FusionPBX's templates, which carry
// Yealink's own, and Wazo's; testdata/yealink/public-keys.tsv, made by
// extract_keys.py), with every index as N.
func TestGoldens_PublicTemplateNames(t *testing.T) {
	public := map[string]string{}
	f, err := os.Open(filepath.Join("testdata", "yealink", "public-keys.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, src, _ := strings.Cut(sc.Text(), "\t")
		public[name] = src
	}
	if len(public) < 1000 {
		t.Fatalf("public-keys.tsv holds %d names", len(public))
	}
	index := regexp.MustCompile(`\.\d+(\.|$)`)
	files, _ := filepath.Glob(filepath.Join("testdata", "yealink", "*.golden"))
	seen := map[string]bool{}
	for _, file := range files {
		b, _ := os.ReadFile(file)
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, _, _ := strings.Cut(line, " =")
			name := index.ReplaceAllString(index.ReplaceAllString(k, ".N$1"), ".N$1")
			if seen[name] {
				continue
			}
			seen[name] = true
			if _, ok := public[name]; !ok {
				t.Errorf("%s (%s) is in no public Yealink template", k, filepath.Base(file))
			}
		}
	}
	if !seen["expansion_module.N.key.N.type"] {
		t.Error("no golden writes expansion module keys")
	}
}

var _ = appliance.KeyAccount

// TestRender_PlainAdminPasswordQuirk: a model with the catalog quirk
// plain_admin_password gets its web password without the "admin:" user
// (no model in today's catalog has it: FusionPBX and Wazo write admin: for
// the T7x too, refuting the claim; the quirk stays for a model a
// source shows needs it).
func TestRender_PlainAdminPasswordQuirk(t *testing.T) {
	cfg := phoneConfig("T74W", nil, nil)
	cfg.Model.Quirks = []string{appliance.QuirkPlainAdminPassword}
	b, err := (&configs.Renderer{}).RenderPhoneConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("\nstatic.security.user_password = "+testAdminPassword+"\n")) || bytes.Contains(b, []byte("admin:")) {
		t.Errorf("quirk not applied:\n%s", b)
	}
}
