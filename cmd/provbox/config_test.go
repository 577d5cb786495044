package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loadTest writes text as a config file (none when text is "-"), parses
// args as serve flags and returns what loadConfig makes of them.
func loadTest(t *testing.T, text string, args ...string) (*Config, error) {
	t.Helper()
	path := ""
	if text != "-" {
		path = filepath.Join(t.TempDir(), "provbox.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fs := newFlagSet("test")
	var g globalFlags
	g.register(fs)
	var sf serveFlags
	sf.register(fs)
	if _, err := parseInterspersed(fs, args); err != nil {
		return nil, err
	}
	if g.config != "" {
		path = g.config
	}
	cfg, _, err := loadConfig(path, &sf, flagsSet(fs))
	return cfg, err
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadTest(t, "")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("empty file:\n got %+v\nwant %+v", *cfg, want)
	}
	if cfg.HTTP.Listen != ":8080" || cfg.TFTP.Listen != ":69" || cfg.SIP.Listen != ":5060" ||
		cfg.DHCP.Interface != "" || cfg.SIP.NotifyRate != 500 || cfg.SIP.NotifyWindow != 100 || cfg.SIP.SyncTrigger != "notify" || cfg.SIP.PhonePort != 5060 || !cfg.SIP.PnP ||
		cfg.Provisioning.MissLimit != 20 || cfg.LeaseDuration() != 24*time.Hour || cfg.LogLevel != "info" {
		t.Fatalf("defaults differ from SPEC §2: %+v", cfg)
	}
}

// TestConfigEveryKey sets every key of SPEC §2 to a non-default value and
// checks each arrives.
func TestConfigEveryKey(t *testing.T) {
	cfg, err := loadTest(t, `
data_dir = "/var/lib/provbox"
log_level = "debug"
allowed_hosts = ["provbox.office.lan"]
[http]
listen = "192.168.1.2:8081"
public_url = "https://prov.example.com/prov/"
[https]
listen = ":9443"
cert_file = "/etc/provbox/cert.pem"
key_file = "/etc/provbox/key.pem"
[tftp]
listen = "off"
[sip]
listen = ":5062"
registrar = "pbx.example.com:5070"
phone_port = 5061
notify_rate = 100
notify_window = 20
sync_trigger = "action_uri"
action_uri_port = 8443
report_timeout = "30s"
pnp = false
pnp_interface = "eth1"
pickup_prefix = "*8"
[provisioning]
claim_window = "2h"
open = true
miss_limit = 0
[dhcp]
interface = "eth0"
range_start = "192.168.1.100"
range_end = "192.168.1.200"
netmask = "255.255.255.0"
router = "192.168.1.1"
dns = ["192.168.1.1", "9.9.9.9"]
ntp = ["192.168.1.1"]
lease_time = "12h"
phones_only = true
allow_other_servers = true
option66 = "http"
conflict_check = false
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DataDir:      "/var/lib/provbox",
		LogLevel:     "debug",
		AllowedHosts: []string{"provbox.office.lan"},
		HTTP:         HTTPConfig{Listen: "192.168.1.2:8081", PublicURL: "https://prov.example.com/prov/"},
		HTTPS:        HTTPSConfig{Listen: ":9443", CertFile: "/etc/provbox/cert.pem", KeyFile: "/etc/provbox/key.pem"},
		TFTP:         TFTPConfig{Listen: "off"},
		SIP: SIPConfig{Listen: ":5062", Registrar: "pbx.example.com:5070", PhonePort: 5061, NotifyRate: 100, NotifyWindow: 20, SyncTrigger: "action_uri", ActionURIPort: 8443, ReportTimeout: "30s",
			PnP: false, PnPInterface: "eth1", PickupPrefix: "*8"},
		Provisioning: ProvisioningConfig{ClaimWindow: "2h", Open: true, MissLimit: 0},
		DHCP: DHCPConfig{Interface: "eth0", RangeStart: "192.168.1.100", RangeEnd: "192.168.1.200",
			Netmask: "255.255.255.0", Router: "192.168.1.1", DNS: []string{"192.168.1.1", "9.9.9.9"},
			NTP: []string{"192.168.1.1"}, LeaseTime: "12h", PhonesOnly: true, AllowOtherServers: true,
			Option66: "http", ConflictCheck: false},
	}
	if !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("\n got %+v\nwant %+v", *cfg, want)
	}
}

func TestConfigErrors(t *testing.T) {
	dhcpOn := "[dhcp]\ninterface = \"eth0\"\nrange_start = \"192.168.1.100\"\nrange_end = \"192.168.1.200\"\nnetmask = \"255.255.255.0\"\n"
	for _, tc := range []struct {
		name string
		toml string
		args []string
		want []string // substrings of the error, which must be a usage error
	}{
		{"unknown top key", "colour = \"blue\"\n", nil, []string{`unknown key "colour"`}},
		{"unknown table key", "[http]\nlisten = \":8080\"\nport = 80\n", nil, []string{`"http.port"`}},
		{"unknown table", "[ldap]\nurl = \"x\"\n", nil, []string{`"ldap`}},
		{"syntax", "[http\n", nil, []string{"config", "line 2"}},
		{"wrong type", "[sip]\nphone_port = \"5060\"\n", nil, []string{"phone_port"}},
		{"log level", "log_level = \"verbose\"\n", nil, []string{"log_level", `"verbose"`}},
		{"http off", "[http]\nlisten = \"off\"\n", nil, []string{"http.listen", "cannot be off"}},
		{"http empty", "[http]\nlisten = \"\"\n", nil, []string{"http.listen", "required"}},
		{"http no port", "[http]\nlisten = \"8080\"\n", nil, []string{"http.listen", "host:port"}},
		{"http bad port", "[http]\nlisten = \":70000\"\n", nil, []string{"http.listen", "port"}},
		{"http bad host", "[http]\nlisten = \"bad_host!:80\"\n", nil, []string{"http.listen", "host"}},
		{"tftp bad", "[tftp]\nlisten = \"on\"\n", nil, []string{"tftp.listen"}},
		{"sip bad", "[sip]\nlisten = \"5060\"\n", nil, []string{"sip.listen"}},
		{"public url scheme", "[http]\npublic_url = \"ftp://x/prov/\"\n", nil, []string{"http.public_url", "http://"}},
		{"public url slash", "[http]\npublic_url = \"http://x:8080/prov\"\n", nil, []string{"http.public_url", "end in /"}},
		{"public url host", "[http]\npublic_url = \"http:///prov/\"\n", nil, []string{"http.public_url", "no host"}},
		{"public url creds", "[http]\npublic_url = \"http://a:b@x/prov/\"\n", nil, []string{"http.public_url", "credentials"}},
		{"registrar", "[sip]\nregistrar = \"pbx:0\"\n", nil, []string{"sip.registrar", "port"}},
		{"registrar host", "[sip]\nregistrar = \"pbx one\"\n", nil, []string{"sip.registrar"}},
		{"phone port 0", "[sip]\nphone_port = 0\n", nil, []string{"sip.phone_port", "1-65535"}},
		{"phone port big", "[sip]\nphone_port = 65536\n", nil, []string{"sip.phone_port"}},
		{"notify rate 0", "[sip]\nnotify_rate = 0\n", nil, []string{"sip.notify_rate", "1-10000"}},
		{"notify rate big", "[sip]\nnotify_rate = 10001\n", nil, []string{"sip.notify_rate"}},
		{"notify window 0", "[sip]\nnotify_window = 0\n", nil, []string{"sip.notify_window", "1-10000"}},
		{"unknown trigger", "[sip]\nsync_trigger = \"http\"\n", nil, []string{"sip.sync_trigger", "action_uri"}},
		{"action uri port", "[sip]\naction_uri_port = 70000\n", nil, []string{"sip.action_uri_port", "1-65535"}},
		{"report timeout", "[sip]\nreport_timeout = \"2h\"\n", nil, []string{"sip.report_timeout", "1s to 1h"}},
		{"pickup prefix", "[sip]\npickup_prefix = \"*8x\"\n", nil, []string{"sip.pickup_prefix", "feature code"}},
		{"pnp interface", "[sip]\npnp_interface = \"eth0/x\"\n", nil, []string{"sip.pnp_interface"}},
		{"miss limit", "[provisioning]\nmiss_limit = -1\n", nil, []string{"provisioning.miss_limit"}},
		{"old shared user name", "[provisioning]\nusername = \"p\"\n", nil, []string{"provisioning.username", "replaced by per-phone secrets"}},
		{"old shared password", "[provisioning]\npassword = \"p\"\n", nil, []string{"provisioning.password", "replaced by per-phone secrets"}},
		{"claim window", "[provisioning]\nclaim_window = \"forever\"\n", nil, []string{"provisioning.claim_window", "not a duration"}},
		{"claim window short", "[provisioning]\nclaim_window = \"10s\"\n", nil, []string{"provisioning.claim_window", "outside 1m-720h"}},
		{"cert without key", "[https]\ncert_file = \"/x.pem\"\n", nil, []string{"https.key_file", "together"}},
		{"https listen", "[https]\nlisten = \"8443\"\n", nil, []string{"https.listen"}},
		{"allowed host with port", "allowed_hosts = [\"box:8080\"]\n", nil, []string{"allowed_hosts[0]"}},
		{"lease time", "[dhcp]\nlease_time = \"1 day\"\n", nil, []string{"dhcp.lease_time", "duration"}},
		{"lease time short", "[dhcp]\nlease_time = \"30s\"\n", nil, []string{"dhcp.lease_time", "1m"}},
		{"ip parses when off", "[dhcp]\nrouter = \"192.168.1.300\"\n", nil, []string{"dhcp.router", "IPv4"}},
		{"dns entry", "[dhcp]\ndns = [\"1.1.1.1\", \"dns.example\"]\n", nil, []string{"dhcp.dns[1]"}},
		{"ntp entry", "[dhcp]\nntp = [\"::1\"]\n", nil, []string{"dhcp.ntp[0]"}},
		{"netmask", "[dhcp]\nnetmask = \"255.0.255.0\"\n", nil, []string{"dhcp.netmask"}},
		{"option66", "[dhcp]\noption66 = \"ftp\"\n", nil, []string{"dhcp.option66", "http", "tftp"}},
		{"option66 tftp needs tftp", "[tftp]\nlisten = \"off\"\n[dhcp]\noption66 = \"tftp\"\n", nil, []string{"dhcp.option66", "tftp.listen is off"}},
		{"option66 tftp", "[dhcp]\noption66 = \"tftp\"\n", nil, nil},
		{"dhcp on needs range", "[dhcp]\ninterface = \"eth0\"\n", nil, []string{"dhcp.range_start", "dhcp.range_end", "dhcp.netmask"}},
		{"valid dhcp", dhcpOn + "router = \"192.168.1.1\"\n", []string{"--dhcp", "eth0"}, nil},
		{"range end other subnet", strings.Replace(dhcpOn, "192.168.1.200", "192.168.2.200", 1), nil, []string{"dhcp.range_end", "subnet"}},
		{"range reversed", strings.Replace(dhcpOn, "192.168.1.200", "192.168.1.50", 1), nil, []string{"dhcp.range_end", "before"}},
		{"range network address", strings.Replace(dhcpOn, "192.168.1.100", "192.168.1.0", 1), nil, []string{"dhcp.range_start", "network address"}},
		{"range broadcast", strings.Replace(dhcpOn, "192.168.1.200", "192.168.1.255", 1), nil, []string{"dhcp.range_end", "broadcast"}},
		{"router other subnet", dhcpOn + "router = \"10.0.0.1\"\n", nil, []string{"dhcp.router", "subnet"}},
		{"several at once", "log_level = \"x\"\n[sip]\nphone_port = 0\n", nil, []string{"log_level", "sip.phone_port"}},
		// Flags are named as flags, not as the keys they override.
		{"flag http", "", []string{"--http", "nope"}, []string{"--http:", "host:port"}},
		{"flag tftp", "", []string{"--tftp=69"}, []string{"--tftp:"}},
		{"flag sip", "", []string{"--sip", "x:y"}, []string{"--sip:"}},
		{"flag public url", "", []string{"--public-url", "http://x/prov"}, []string{"--public-url:", "end in /"}},
		{"flag log level", "", []string{"--log-level", "loud"}, []string{"--log-level:"}},
		{"flag dhcp needs range", "", []string{"--dhcp", "eth0"}, []string{"dhcp.range_start"}},
		{"unknown flag", "", []string{"--htp", ":80"}, []string{"--htp"}},
		{"flag without value", "", []string{"--http"}, []string{"--http", "value"}},
		{"missing config file", "-", []string{"--config", "/nonexistent/provbox.toml"}, []string{"--config", "does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadTest(t, tc.toml, tc.args...)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %q, got none", tc.want)
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("want a usage error (exit 2), got %T %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigFlagOverride(t *testing.T) {
	file := `
log_level = "warn"
[http]
listen = ":9000"
public_url = "http://file.example/prov/"
[tftp]
listen = ":69"
[sip]
listen = ":5060"
[dhcp]
interface = "eth0"
range_start = "10.0.0.10"
range_end = "10.0.0.20"
netmask = "255.255.255.0"
`
	for _, tc := range []struct {
		name  string
		args  []string
		check func(*Config) bool
	}{
		{"file alone", nil, func(c *Config) bool {
			return c.HTTP.Listen == ":9000" && c.LogLevel == "warn" && c.DHCP.Interface == "eth0"
		}},
		{"http", []string{"--http", "127.0.0.1:0"}, func(c *Config) bool { return c.HTTP.Listen == "127.0.0.1:0" }},
		{"http equals", []string{"--http=:8081"}, func(c *Config) bool { return c.HTTP.Listen == ":8081" }},
		{"tftp off", []string{"--tftp", "off"}, func(c *Config) bool { return Off(c.TFTP.Listen) }},
		{"tftp port", []string{"-tftp", ":6969"}, func(c *Config) bool { return c.TFTP.Listen == ":6969" }},
		{"sip off", []string{"--sip", "off"}, func(c *Config) bool { return Off(c.SIP.Listen) }},
		{"dhcp off", []string{"--dhcp", "off"}, func(c *Config) bool { return c.DHCP.Interface == "" }},
		{"dhcp iface", []string{"--dhcp", "eth1"}, func(c *Config) bool { return c.DHCP.Interface == "eth1" }},
		{"public url", []string{"--public-url", "http://10.0.0.1:8080/prov/"}, func(c *Config) bool {
			return c.HTTP.PublicURL == "http://10.0.0.1:8080/prov/"
		}},
		{"log level", []string{"--log-level", "DEBUG"}, func(c *Config) bool { return c.LogLevel == "debug" }},
		{"untouched keys stay", []string{"--http", ":1"}, func(c *Config) bool {
			return c.HTTP.PublicURL == "http://file.example/prov/" && c.LogLevel == "warn"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadTest(t, file, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Fatalf("flags %q: unexpected config %+v", tc.args, cfg)
			}
		})
	}
}

func TestResolveDataDir(t *testing.T) {
	for _, tc := range []struct {
		name, flag, key, env, want string
	}{
		{"flag wins", "/flag", "/key", "/env", "/flag"},
		{"config next", "", "/key", "/env", "/key"},
		{"state directory", "", "", "/env", "/env"},
		{"first of several", "", "", "/env1:/env2", "/env1"},
		{"fallback", "", "", "", "provbox-data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STATE_DIRECTORY", tc.env)
			c := DefaultConfig()
			c.DataDir = tc.key
			if got := c.ResolveDataDir(tc.flag); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRelativeDataDirFollowsConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "provbox.toml")
	if err := os.WriteFile(path, []byte("data_dir = \"state\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "state"); cfg.DataDir != want {
		t.Fatalf("data_dir = %q, want %q", cfg.DataDir, want)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantPos []string
		data    string
		stdin   bool
		wantErr string
	}{
		{"flags after positionals", []string{"add", "alice", "--password-stdin", "--data", "/x"}, []string{"add", "alice"}, "/x", true, ""},
		{"flags between", []string{"add", "--data=/y", "alice"}, []string{"add", "alice"}, "/y", false, ""},
		{"single dash flag", []string{"-data", "/z", "list"}, []string{"list"}, "/z", false, ""},
		{"bool with value", []string{"--password-stdin=false", "add"}, []string{"add"}, "", false, ""},
		{"double dash ends flags", []string{"add", "--", "--data"}, []string{"add", "--data"}, "", false, ""},
		{"lone dash positional", []string{"import", "-"}, []string{"import", "-"}, "", false, ""},
		{"unknown", []string{"add", "--frob"}, nil, "", false, "unknown flag --frob"},
		{"missing value", []string{"add", "--data"}, nil, "", false, "needs a value"},
		{"bad bool", []string{"--password-stdin=maybe"}, nil, "", false, "password-stdin"},
		{"triple dash", []string{"---data", "x"}, nil, "", false, "bad flag syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("test")
			var g globalFlags
			g.register(fs)
			stdin := fs.Bool("password-stdin", false, "")
			pos, err := parseInterspersed(fs, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tc.wantPos) || g.data != tc.data || *stdin != tc.stdin {
				t.Fatalf("pos %q data %q stdin %v; want %q %q %v", pos, g.data, *stdin, tc.wantPos, tc.data, tc.stdin)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		cmd  string
		rest []string
	}{
		{[]string{"serve", "--http", ":1"}, "serve", []string{"--http", ":1"}},
		{[]string{"--data", "/x", "user", "list"}, "user", []string{"--data", "/x", "list"}},
		{[]string{"--config=/c", "version"}, "version", []string{"--config=/c"}},
		{[]string{"--http", ":1", "serve"}, "serve", []string{"--http", ":1"}},
		{[]string{"--password-stdin", "user", "add", "a"}, "user", []string{"--password-stdin", "add", "a"}},
		{[]string{"--data", "/x"}, "", []string{"--data", "/x"}},
	} {
		cmd, rest := splitCommand(tc.args)
		if cmd != tc.cmd || !reflect.DeepEqual(rest, tc.rest) {
			t.Errorf("splitCommand(%q) = %q %q, want %q %q", tc.args, cmd, rest, tc.cmd, tc.rest)
		}
	}
}

func TestDefaultRouteInterface(t *testing.T) {
	const header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	for _, tc := range []struct {
		name, table, want string
	}{
		{"one default", header +
			"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
			"eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n", "eth0"},
		{"lowest metric", header +
			"wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
			"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", "eth0"},
		{"down route skipped", header +
			"eth0\t00000000\t0101A8C0\t0002\t0\t0\t100\t00000000\t0\t0\t0\n" +
			"eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n", "eth1"},
		{"no default", header + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := defaultRouteInterface(strings.NewReader(tc.table))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("want an error, got %q", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestDerivePublicURL(t *testing.T) {
	for _, tc := range []struct {
		listen string
		port   int
		want   string // "" when it depends on the machine's default route
	}{
		{"192.0.2.7:8080", 8080, "http://192.0.2.7:8080/prov/"},
		{"prov.example:8080", 8080, "http://prov.example:8080/prov/"},
		{":0", 41234, ""},
		{"0.0.0.0:8080", 8080, ""},
	} {
		got, _ := derivePublicURL(tc.listen, tc.port)
		if tc.want != "" && got != tc.want {
			t.Errorf("derivePublicURL(%q, %d) = %q, want %q", tc.listen, tc.port, got, tc.want)
		}
		if !strings.HasPrefix(got, "http://") || !strings.HasSuffix(got, ":"+strconv.Itoa(tc.port)+"/prov/") {
			t.Errorf("derivePublicURL(%q, %d) = %q, want http://<ip>:%d/prov/", tc.listen, tc.port, got, tc.port)
		}
	}
}
