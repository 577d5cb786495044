package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/provbox/provbox/appliance"
)

// defaultConfigPath is read when --config is not given and the file exists.
const defaultConfigPath = "/etc/provbox/provbox.toml"

// Config is the TOML config file of SPEC §2. Every key is optional; a key
// the file does not set keeps the value of DefaultConfig. Keys provbox does
// not know are an error, so a typo never silently falls back to a default.
//
// The reload tag says what a reload (SIGHUP) does with a key: "live" is
// applied at once, "settings" at once through the store's settings
// (settingsFor), and a key without it needs a restart (reload.go).
type Config struct {
	DataDir      string             `toml:"data_dir"`
	LogLevel     string             `toml:"log_level" reload:"live"`
	AllowedHosts []string           `toml:"allowed_hosts"` // extra Host names the admin pages answer to
	HTTP         HTTPConfig         `toml:"http"`
	HTTPS        HTTPSConfig        `toml:"https"`
	TFTP         TFTPConfig         `toml:"tftp"`
	SIP          SIPConfig          `toml:"sip"`
	Provisioning ProvisioningConfig `toml:"provisioning"`
	DHCP         DHCPConfig         `toml:"dhcp"`
}

// HTTPConfig is the [http] table: admin pages, JSON API and /prov/.
type HTTPConfig struct {
	Listen    string `toml:"listen"`                       // host:port
	PublicURL string `toml:"public_url" reload:"settings"` // base URL phones are told; empty: derived
}

// HTTPSConfig is the [https] table: admin pages, API and /prov/ over TLS.
type HTTPSConfig struct {
	Listen   string `toml:"listen"`    // host:port, or "off"
	CertFile string `toml:"cert_file"` // PEM; empty: issued by provbox's own CA in <data>/tls/
	KeyFile  string `toml:"key_file"`
}

// TFTPConfig is the [tftp] table.
type TFTPConfig struct {
	Listen string `toml:"listen"` // host:port, or "off"
}

// SIPConfig is the [sip] table.
type SIPConfig struct {
	Listen       string `toml:"listen"`                        // host:port, or "off"
	Registrar    string `toml:"registrar" reload:"settings"`   // default sip_server of new extensions
	PhonePort    int    `toml:"phone_port" reload:"settings"`  // a phone's SIP port when only its IP is known
	NotifyRate   int    `toml:"notify_rate" reload:"settings"` // triggers per second, at most (a ceiling)
	NotifyWindow int    `toml:"notify_window"`                 // phones told to sync and not fetched yet, at most
	SyncTrigger  string `toml:"sync_trigger"`                  // "notify" (SIP check-sync) or "action_uri" (HTTPS GET to the phone)
	// ActionURIPort is the phones' HTTPS port the action_uri trigger calls.
	ActionURIPort int `toml:"action_uri_port"`
	// ReportTimeout is how long a phone that reports has, once told to
	// sync (or given an account change), before it is stuck.
	ReportTimeout string `toml:"report_timeout"`
	PnP           bool   `toml:"pnp"`                             // answer SIP plug-and-play
	PnPInterface  string `toml:"pnp_interface"`                   // default: the default route's
	PickupPrefix  string `toml:"pickup_prefix" reload:"settings"` // directed-pickup code before a BLF's extension ("**"); "" none
}

// ProvisioningConfig is the [provisioning] table.
type ProvisioningConfig struct {
	// ClaimWindow is how long after a phone is added (or its claim is
	// reopened) it may fetch its config once without its secret.
	ClaimWindow string `toml:"claim_window" reload:"settings"`
	// Open turns per-phone secrets off (a lab setting; warned at start).
	Open      bool `toml:"open" reload:"settings"`
	MissLimit int  `toml:"miss_limit" reload:"live"` // failures (wrong secrets, unknown files) a minute per address
	// Username and Password were one shared pair for every phone; per-phone
	// secrets replaced them. Read only to say so.
	Username string `toml:"username,removed"`
	Password string `toml:"password,removed"`
	// PhoneAdminPassword is the phones' web admin password (user admin);
	// empty: the one generated once for this installation.
	PhoneAdminPassword string `toml:"phone_admin_password" reload:"settings"`
}

// DHCPConfig is the [dhcp] table. DHCP is off while Interface is empty.
type DHCPConfig struct {
	Interface         string   `toml:"interface"`
	RangeStart        string   `toml:"range_start"`
	RangeEnd          string   `toml:"range_end"`
	Netmask           string   `toml:"netmask"`
	Router            string   `toml:"router"`
	DNS               []string `toml:"dns"`
	NTP               []string `toml:"ntp"`
	LeaseTime         string   `toml:"lease_time"` // Go duration, at least 1m
	PhonesOnly        bool     `toml:"phones_only"`
	AllowOtherServers bool     `toml:"allow_other_servers"`
	// Option66 is what option 66 carries: "http" (the provisioning URL) or
	// "tftp" ("tftp://<this server>", for phones that only speak TFTP;
	// needs tftp.listen on). README, DHCP.
	Option66 string `toml:"option66"`
	// ConflictCheck ARP-probes an address before offering it to a new
	// client (up to 400 ms); off only for benchmarks.
	ConflictCheck bool `toml:"conflict_check"`
}

// DefaultConfig returns the defaults of SPEC §2.
func DefaultConfig() Config {
	return Config{
		LogLevel:     "info",
		AllowedHosts: []string{},
		HTTP:         HTTPConfig{Listen: ":8080"},
		HTTPS:        HTTPSConfig{Listen: ":8443"},
		TFTP:         TFTPConfig{Listen: ":69"},
		SIP: SIPConfig{
			Listen:        ":5060",
			PhonePort:     5060,
			NotifyRate:    500,
			NotifyWindow:  100,
			SyncTrigger:   "notify",
			ActionURIPort: 443,
			ReportTimeout: "60s",
			PickupPrefix:  "**",
			PnP:           true,
		},
		Provisioning: ProvisioningConfig{MissLimit: 20, ClaimWindow: "24h"},
		DHCP:         DHCPConfig{LeaseTime: "24h", Option66: "http", ConflictCheck: true},
	}
}

// ReportDuration returns sip.report_timeout; Validate has checked it.
func (c *Config) ReportDuration() time.Duration {
	d, _ := time.ParseDuration(c.SIP.ReportTimeout)
	return d
}

// ClaimDuration returns provisioning.claim_window; Validate has checked it.
func (c *Config) ClaimDuration() time.Duration {
	d, _ := time.ParseDuration(c.Provisioning.ClaimWindow)
	return d
}

// LeaseDuration returns dhcp.lease_time; Validate has checked it parses.
func (c *Config) LeaseDuration() time.Duration {
	d, _ := time.ParseDuration(c.DHCP.LeaseTime)
	return d
}

// Off reports whether a listen value turns its service off.
func Off(listen string) bool {
	return listen == "" || strings.EqualFold(listen, "off")
}

// ResolveDataDir picks the state directory: the --data flag, else the
// config's data_dir, else $STATE_DIRECTORY (set by systemd's
// StateDirectory=; the first one when several are listed), else
// ./provbox-data.
func (c *Config) ResolveDataDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if c.DataDir != "" {
		return c.DataDir
	}
	if s := os.Getenv("STATE_DIRECTORY"); s != "" {
		first, _, _ := strings.Cut(s, ":")
		return first
	}
	return "provbox-data"
}

// configProblem is one bad value: the key it is under and why.
type configProblem struct {
	Key    string
	Reason string
}

// problems collects the bad values found, each under its key (with
// prefix, the section's "dhcp.", in front).
type problems struct {
	prefix string
	list   []configProblem
}

func (p *problems) bad(key, format string, args ...any) {
	p.list = append(p.list, configProblem{p.prefix + key, fmt.Sprintf(format, args...)})
}

// ConfigError lists every bad value found, each named by the flag that set
// it or by its key in the config file.
type ConfigError struct {
	File     string // config file, empty when none was read
	Problems []configProblem
	Flags    map[string]string // key → flag that set it, e.g. "http.listen" → "--http"
}

func (e *ConfigError) Error() string {
	var lines []string
	for _, p := range e.Problems {
		switch {
		case e.Flags[p.Key] != "":
			lines = append(lines, fmt.Sprintf("%s: %s", e.Flags[p.Key], p.Reason))
		case e.File != "":
			lines = append(lines, fmt.Sprintf("config %s: %s: %s", e.File, p.Key, p.Reason))
		default:
			lines = append(lines, fmt.Sprintf("config: %s: %s", p.Key, p.Reason))
		}
	}
	return strings.Join(lines, "\n")
}

// Validate checks every value and returns a *ConfigError listing each bad
// one, or nil.
func (c *Config) Validate() error {
	var probs problems
	bad := probs.bad

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}

	if r := checkListen(c.HTTP.Listen, false); r != "" {
		bad("http.listen", "%s", r)
	}
	if u := c.HTTP.PublicURL; u != "" {
		if r := checkPublicURL(u); r != "" {
			bad("http.public_url", "%s", r)
		}
	}
	if r := checkListen(c.TFTP.Listen, true); r != "" {
		bad("tftp.listen", "%s", r)
	}
	if r := checkListen(c.SIP.Listen, true); r != "" {
		bad("sip.listen", "%s", r)
	}
	probs.list = append(probs.list, c.SIP.validate()...)

	if r := checkListen(c.HTTPS.Listen, true); r != "" {
		bad("https.listen", "%s", r)
	}
	if (c.HTTPS.CertFile == "") != (c.HTTPS.KeyFile == "") {
		bad("https.key_file", "set https.cert_file and https.key_file together (or neither: provbox's own CA issues the certificate)")
	}
	for i, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, " /:@") || hasControl(h) {
			bad(fmt.Sprintf("allowed_hosts[%d]", i), "%q is not a host name or address (no port, scheme or path)", h)
		}
	}

	probs.list = append(probs.list, c.Provisioning.validate()...)

	probs.list = append(probs.list, c.DHCP.validate()...)
	if c.DHCP.Option66 == "tftp" && Off(c.TFTP.Listen) {
		bad("dhcp.option66", "is \"tftp\" but tftp.listen is off: phones would be sent to a TFTP server that does not run")
	}
	if len(probs.list) > 0 {
		return &ConfigError{Problems: probs.list}
	}
	return nil
}

// validate checks the [sip] keys but listen (Validate checks the listeners).
func (s *SIPConfig) validate() []configProblem {
	var probs problems
	bad := probs.bad
	if s.Registrar != "" {
		if err := appliance.ValidateHostPort("sip.registrar", s.Registrar); err != nil {
			bad("sip.registrar", "%s", domainReason(err))
		}
	}
	if p := s.PhonePort; p < 1 || p > 65535 {
		bad("sip.phone_port", "%d is outside 1-65535", p)
	}
	if n := s.NotifyRate; n < 1 || n > 10000 {
		bad("sip.notify_rate", "%d is outside 1-10000 (triggers per second)", n)
	}
	if n := s.NotifyWindow; n < 1 || n > 10000 {
		bad("sip.notify_window", "%d is outside 1-10000 (phones told to sync and not fetched yet)", n)
	}
	if t := s.SyncTrigger; t != "notify" && t != "action_uri" {
		bad("sip.sync_trigger", "%q: want \"notify\" (SIP check-sync) or \"action_uri\" (HTTPS GET to the phone)", t)
	}
	if p := s.ActionURIPort; p < 1 || p > 65535 {
		bad("sip.action_uri_port", "%d is outside 1-65535", p)
	}
	if d, err := time.ParseDuration(s.ReportTimeout); err != nil || d < time.Second || d > time.Hour {
		bad("sip.report_timeout", "%q: want a duration from 1s to 1h, such as \"60s\"", s.ReportTimeout)
	}
	if r := checkInterface(s.PnPInterface); r != "" {
		bad("sip.pnp_interface", "%s", r)
	}
	if p := s.PickupPrefix; len(p) > 8 || strings.Trim(p, "0123456789*#") != "" {
		bad("sip.pickup_prefix", "%q is not a feature code (0-9 * #, at most 8)", p)
	}
	return probs.list
}

// validate checks the [provisioning] keys.
func (p *ProvisioningConfig) validate() []configProblem {
	var probs problems
	bad := probs.bad
	for _, k := range []struct{ key, v string }{{"provisioning.username", p.Username}, {"provisioning.password", p.Password}} {
		if k.v != "" {
			bad(k.key, "was replaced by per-phone secrets: every phone now gets its own user name and secret (on its page), "+
				"and a new phone fetches its first config without one during provisioning.claim_window; remove provisioning.username and provisioning.password")
		}
	}
	if d, err := time.ParseDuration(p.ClaimWindow); err != nil {
		bad("provisioning.claim_window", "%q is not a duration (e.g. \"24h\", \"90m\")", p.ClaimWindow)
	} else if d < time.Minute || d > 30*24*time.Hour {
		bad("provisioning.claim_window", "%s is outside 1m-720h", d)
	}
	if pw := p.PhoneAdminPassword; pw != "" {
		if err := appliance.ValidatePhoneAdminPassword("provisioning.phone_admin_password", pw); err != nil {
			bad("provisioning.phone_admin_password", "%s", domainReason(err))
		}
	}
	if p.MissLimit < 0 {
		bad("provisioning.miss_limit", "%d is negative (0 turns the limit off)", p.MissLimit)
	}
	return probs.list
}

func (d *DHCPConfig) validate() []configProblem {
	probs := problems{prefix: "dhcp."}
	bad := probs.bad
	if r := checkInterface(d.Interface); r != "" {
		bad("interface", "%s", r)
	}
	// Every address given must parse, whether or not DHCP is on.
	ips := map[string]net.IP{}
	for _, f := range []struct{ key, v string }{
		{"range_start", d.RangeStart}, {"range_end", d.RangeEnd}, {"netmask", d.Netmask}, {"router", d.Router},
	} {
		if f.v == "" {
			continue
		}
		ip := net.ParseIP(f.v).To4()
		if ip == nil {
			bad(f.key, "%q is not an IPv4 address", f.v)
			continue
		}
		ips[f.key] = ip
	}
	for _, list := range []struct {
		key string
		v   []string
	}{{"dns", d.DNS}, {"ntp", d.NTP}} {
		for i, s := range list.v {
			if net.ParseIP(s).To4() == nil {
				bad(fmt.Sprintf("%s[%d]", list.key, i), "%q is not an IPv4 address", s)
			}
		}
	}
	if d.Option66 != "http" && d.Option66 != "tftp" {
		bad("option66", "%q is neither \"http\" (the provisioning URL) nor \"tftp\" (tftp://<this server>)", d.Option66)
	}
	if lt, err := time.ParseDuration(d.LeaseTime); err != nil {
		bad("lease_time", "%q is not a duration (e.g. \"24h\", \"90m\")", d.LeaseTime)
	} else if lt < time.Minute {
		bad("lease_time", "%s is shorter than 1m", lt)
	}
	var mask net.IPMask
	if m, ok := ips["netmask"]; ok {
		mask = net.IPMask(m)
		if ones, bits := mask.Size(); bits == 0 || ones == 0 || ones > 30 {
			bad("netmask", "%q is not a usable netmask (contiguous, /1 to /30)", d.Netmask)
			mask = nil
		}
	}
	if d.Interface == "" {
		return probs.list
	}
	// DHCP is on: the pool must be complete and fit in one subnet.
	for _, key := range []string{"range_start", "range_end", "netmask"} {
		if (key == "range_start" && d.RangeStart == "") || (key == "range_end" && d.RangeEnd == "") || (key == "netmask" && d.Netmask == "") {
			bad(key, "required when dhcp.interface is set")
		}
	}
	start, end := ips["range_start"], ips["range_end"]
	if start == nil || end == nil || mask == nil {
		return probs.list
	}
	if bytes.Compare(start, end) > 0 {
		bad("range_end", "%s is before range_start %s", end, start)
	}
	network := start.Mask(mask)
	if !network.Equal(end.Mask(mask)) {
		bad("range_end", "%s is not in the subnet of range_start (%s/%s)", end, network, d.Netmask)
	}
	broadcast := make(net.IP, 4)
	for i := range broadcast {
		broadcast[i] = network[i] | ^mask[i]
	}
	if start.Equal(network) {
		bad("range_start", "%s is the network address of %s/%s", start, network, d.Netmask)
	}
	if end.Equal(broadcast) {
		bad("range_end", "%s is the broadcast address of %s/%s", end, network, d.Netmask)
	}
	if r, ok := ips["router"]; ok && !r.Mask(mask).Equal(network) {
		bad("router", "%s is not in the subnet %s/%s", r, network, d.Netmask)
	}
	return probs.list
}

// checkListen returns why s is not a listen address ("" when it is one).
func checkListen(s string, offOK bool) string {
	if Off(s) {
		if offOK {
			return ""
		}
		if s == "" {
			return "required (host:port, e.g. \":8080\")"
		}
		return "cannot be off"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (e.g. \":8080\" or \"192.168.1.2:8080\")", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q has a bad port (0-65535)", s)
	}
	if host != "" && net.ParseIP(host) == nil && appliance.ValidateHostPort("", host) != nil {
		return fmt.Sprintf("%q has a bad host (an IP address, a host name, or empty for all)", s)
	}
	return ""
}

func checkPublicURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q must start with http:// or https://", s)
	case u.Host == "":
		return fmt.Sprintf("%q has no host", s)
	case u.User != nil:
		return fmt.Sprintf("%q must not hold credentials (each phone gets its own secret)", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q must not have a query or fragment", s)
	case !strings.HasSuffix(u.Path, "/"):
		return fmt.Sprintf("%q must end in / (e.g. http://192.168.1.2:8080/prov/)", s)
	}
	return ""
}

func checkInterface(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 15 || strings.ContainsAny(s, "/ \t\n") || hasControl(s) {
		return fmt.Sprintf("%q is not a network interface name", s)
	}
	return ""
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// domainReason returns the message of an appliance error without its field.
func domainReason(err error) string {
	var e *appliance.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// serveFlags are the serve flags that override config keys.
type serveFlags struct {
	http, https, tftp, sip, dhcp, publicURL, logLevel string
}

// serveFlagKeys maps each serve flag to the config key it overrides.
var serveFlagKeys = map[string]string{
	"http":       "http.listen",
	"https":      "https.listen",
	"tftp":       "tftp.listen",
	"sip":        "sip.listen",
	"dhcp":       "dhcp.interface",
	"public-url": "http.public_url",
	"log-level":  "log_level",
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.http, "http", "", "admin, API and /prov/ `ADDR` (default :8080)")
	fs.StringVar(&f.https, "https", "", "HTTPS `ADDR` or off (default :8443)")
	fs.StringVar(&f.tftp, "tftp", "", "TFTP `ADDR` or off (default :69)")
	fs.StringVar(&f.sip, "sip", "", "SIP `ADDR` or off (default :5060)")
	fs.StringVar(&f.dhcp, "dhcp", "", "serve DHCP on `IFACE`, or off (default off)")
	fs.StringVar(&f.publicURL, "public-url", "", "base `URL` phones are told (default http://<default interface>:<http port>/prov/)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default info)")
}

// apply copies the flags that were given onto c and returns, for error
// messages, which key each of them set.
func (f *serveFlags) apply(c *Config, set map[string]bool) map[string]string {
	byKey := map[string]string{}
	for name, key := range serveFlagKeys {
		if set[name] {
			byKey[key] = "--" + name
		}
	}
	if set["http"] {
		c.HTTP.Listen = f.http
	}
	if set["https"] {
		c.HTTPS.Listen = f.https
	}
	if set["tftp"] {
		c.TFTP.Listen = f.tftp
	}
	if set["sip"] {
		c.SIP.Listen = f.sip
	}
	if set["dhcp"] {
		c.DHCP.Interface = f.dhcp
		if Off(f.dhcp) {
			c.DHCP.Interface = ""
		}
	}
	if set["public-url"] {
		c.HTTP.PublicURL = f.publicURL
	}
	if set["log-level"] {
		c.LogLevel = f.logLevel
	}
	return byKey
}

// parseConfig decodes a config file's text over the defaults. An unknown
// key is an error naming it.
func parseConfig(name string, data []byte) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return cfg, usagef("config %s: %s", name, pe.Error())
		}
		return cfg, usagef("config %s: %v", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, strconv.Quote(k.String()))
		}
		sort.Strings(keys)
		return cfg, usagef("config %s: unknown key %s (see the README for the keys provbox knows)", name, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// loadConfig reads the config file (--config, else defaultConfigPath when it
// exists, else none), applies the serve flags given, and validates the
// result. Every mistake in a value is a *usageError naming the flag or key.
func loadConfig(path string, sf *serveFlags, set map[string]bool) (*Config, string, error) {
	explicit := path != ""
	if !explicit {
		if _, err := os.Stat(defaultConfigPath); err == nil {
			path = defaultConfigPath
		}
	}
	cfg := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, "", usagef("--config: %s does not exist", path)
			}
			return nil, "", fmt.Errorf("read config: %w", err)
		}
		if cfg, err = parseConfig(path, data); err != nil {
			return nil, "", err
		}
	}
	var byFlag map[string]string
	if sf != nil {
		byFlag = sf.apply(&cfg, set)
	}
	cfg.LogLevel = strings.ToLower(cfg.LogLevel)
	if err := cfg.Validate(); err != nil {
		ce := err.(*ConfigError)
		ce.File, ce.Flags = path, byFlag
		return nil, "", &usageError{msg: ce.Error()}
	}
	if cfg.DataDir != "" && !filepath.IsAbs(cfg.DataDir) && path != "" {
		// A relative data_dir in a config file is relative to the file, not
		// to wherever provbox happens to be started.
		cfg.DataDir = filepath.Join(filepath.Dir(path), cfg.DataDir)
	}
	return &cfg, path, nil
}
