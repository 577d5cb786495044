package appliance

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// DefaultClaimWindow is provisioning.claim_window's default.
const DefaultClaimWindow = 24 * time.Hour

// Settings are the appliance-wide values that go into every phone's config.
type Settings struct {
	ProvisioningURL string `json:"provisioning_url"` // bootstrap base URL phones are told (DHCP, PnP), ends in /
	// SecureURL is the HTTPS base URL a phone is moved to by its config
	// (ends in /); empty while HTTPS is off.
	SecureURL string `json:"secure_url"`
	// CACertURL is where a phone downloads provbox's CA certificate before
	// it is moved to SecureURL (the bootstrap URL's ca.crt); empty when
	// the certificate is the admin's own (https.cert_file).
	CACertURL string `json:"ca_cert_url"`
	// ClaimWindow is how long after a phone is added (or its claim is
	// reopened) it may fetch its config once without its secret.
	ClaimWindow time.Duration `json:"-"`
	// OpenProvisioning (provisioning.open) turns per-phone secrets off: any
	// request gets any known phone's file. A lab setting.
	OpenProvisioning bool   `json:"-"`
	Registrar        string `json:"registrar"`     // default sip_server
	PickupPrefix     string `json:"pickup_prefix"` // directed pickup code before a BLF's extension ("**")
	NotifyRate       int    `json:"notify_rate"`
	PhoneSIPPort     int    `json:"phone_sip_port"`
	// SyncTrigger is how phones are told to sync: TriggerNotify (SIP
	// check-sync; configs set sip.trust_ctrl = 0) or TriggerActionURI
	// (HTTPS GET of the phone's Action URI; configs keep sip.trust_ctrl = 1
	// and allow only BoxIP to send it). Empty is TriggerNotify.
	SyncTrigger string `json:"sync_trigger"`
	// BoxIP is the IPv4 address phones see provbox's requests come from
	// (features.action_uri_limit_ip).
	BoxIP string `json:"box_ip"`
	// PhoneAdminPassword is the web admin password every provisioned phone
	// gets (user "admin"): provisioning.phone_admin_password, else the one
	// the store generated once for this installation.
	PhoneAdminPassword string `json:"phone_admin_password"`
}

// Account is one SIP account of a phone, account.<Index>.
type Account struct {
	Index     int        `json:"index"`
	Extension *Extension `json:"extension"`
	Password  string     `json:"password"`
}

// LineKey is a line key as it will be written: position, type, value, label,
// and Line, the account index it uses (the extension's for account keys,
// 1 otherwise).
type LineKey struct {
	Module   int    `json:"module"` // 0 the phone's own line keys, N expansion module N
	Position int    `json:"position"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	Label    string `json:"label"`
	Line     int    `json:"line"`
}

// PhoneConfig is everything a phone's generated files depend on. Two equal
// PhoneConfigs render to the same bytes.
type PhoneConfig struct {
	Phone Phone `json:"phone"` // without Sync
	Model Model `json:"model"`
	// Module is the expansion module type of the model (zero when it takes
	// none); Phone.ExpansionModules of them are chained.
	Module   ExpansionModule `json:"module"`
	Location *Location       `json:"location"`
	Accounts []Account       `json:"accounts"`
	LineKeys []LineKey       `json:"line_keys"`
	Settings Settings        `json:"settings"`
	// Secret is the phone's provisioning secret, which its file carries.
	Secret string `json:"secret"`
	// StoredVersion is the config version the store holds for the phone
	// as this config was read: a renderer computing a new version can tell
	// whether the file moved.
	StoredVersion string `json:"-"`
}

// VersionFunc computes a phone's config version. The store requires one:
// cmd/provbox gives it package configs' Renderer.Version, the hash of the
// rendered <mac>.cfg (SPEC §6). It must be safe for concurrent use (the
// store computes many phones' versions at once).
type VersionFunc func(*PhoneConfig) (string, error)

// HashConfig returns a short hash of the config inputs: a VersionFunc for
// tests of the store that need no rendered files.
func HashConfig(c *PhoneConfig) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// AccountsHash is a short hash of what the phone's accounts register with
// (user, auth name, password, server, transport, per account index): a
// phone applying a file where it changed re-registers those accounts, and
// its registration reports confirm the change (SPEC §6). Settings supply
// the default registrar.
func (c *PhoneConfig) AccountsHash() string {
	h := sha256.New()
	for _, a := range c.Accounts {
		e := a.Extension
		server := e.SIPServer
		if server == "" {
			server = c.Settings.Registrar
		}
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s\x00%s\x00", a.Index, e.Number, e.AuthUser, a.Password, server, e.Transport)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// BuildAccounts numbers the distinct extensions of a layout in order of
// first appearance (account.1, account.2…) and resolves each line key's
// account index. layout must be sorted by module and position (SortLayout:
// the phone's own keys first); ext returns the
// extension an account key belongs to.
func BuildAccounts(layout []LayoutEntry, ext func(keyID int64) *Extension) ([]Account, []LineKey) {
	var accounts []Account
	index := map[int64]int{}
	var keys []LineKey
	for _, e := range layout {
		lk := LineKey{Module: e.Module, Position: e.Position, Type: e.Type, Value: e.Value, Label: e.Label, Line: 1}
		if e.Type == KeyAccount {
			x := ext(e.KeyID)
			if x == nil {
				continue
			}
			n, ok := index[x.ID]
			if !ok {
				n = len(accounts) + 1
				index[x.ID] = n
				accounts = append(accounts, Account{Index: n, Extension: x, Password: x.Password})
			}
			lk.Line = n
		}
		keys = append(keys, lk)
	}
	return accounts, keys
}

// SettingsOverrides are the settings an admin changed on the Settings page;
// they win over the config file. A nil field follows the config file.
type SettingsOverrides struct {
	ProvisioningURL *string `json:"provisioning_url,omitempty"`
	Registrar       *string `json:"registrar,omitempty"`
	NotifyRate      *int    `json:"notify_rate,omitempty"`
}

// Apply returns base with the overrides in force.
func (o SettingsOverrides) Apply(base Settings) Settings {
	if o.ProvisioningURL != nil {
		base.ProvisioningURL = *o.ProvisioningURL
	}
	if o.Registrar != nil {
		base.Registrar = *o.Registrar
	}
	if o.NotifyRate != nil {
		base.NotifyRate = *o.NotifyRate
	}
	return base
}

// Validate checks the overrides that are set and reports every one that
// breaks a rule (Errors).
func (o SettingsOverrides) Validate() error {
	var errs Errors
	if o.ProvisioningURL != nil {
		u := *o.ProvisioningURL
		if err := checkText("provisioning_url", u, 256); err != nil {
			errs.Add(err)
		} else if !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) || !strings.HasSuffix(u, "/") || strings.ContainsAny(u, " \"'<>") || len(u) < 10 {
			errs.Add(Errorf(EINVALID, "provisioning_url", "%q is not an http(s) URL ending in / (e.g. http://192.168.1.10:8080/prov/)", u))
		}
	}
	if o.Registrar != nil && *o.Registrar != "" {
		errs.Add(ValidateHostPort("registrar", *o.Registrar))
	}
	if o.NotifyRate != nil && (*o.NotifyRate < 1 || *o.NotifyRate > 10000) {
		errs.Add(Errorf(EINVALID, "notify_rate", "%d is outside 1-10000 NOTIFYs per second", *o.NotifyRate))
	}
	return errs.Err()
}

// Problems are the ready checks of a phone (SPEC §3, §4): each sentence
// names something the phone needs and does not have, so it could not
// register or provision as configured. Empty when it is ready. The vendor
// side (a model file provbox cannot serve) is added by package configs.
func (c *PhoneConfig) Problems() []string {
	out := []string{}
	if len(c.Accounts) == 0 {
		out = append(out, "no account key: the phone registers no extension; put an extension's account key on one of its line keys")
	}
	for _, a := range c.Accounts {
		if a.Extension != nil && a.Extension.SIPServer == "" && c.Settings.Registrar == "" {
			out = append(out, fmt.Sprintf("extension %s has no SIP server: set one on the extension, or the default registrar in Settings (sip.registrar)", a.Extension.Number))
		}
	}
	switch u := c.Settings.ProvisioningURL; {
	case u == "":
		out = append(out, "no provisioning URL: set http.public_url (or --public-url), or the URL in Settings")
	case IsLoopbackURL(u):
		out = append(out, fmt.Sprintf("the provisioning URL %s points at this machine's loopback address, which phones cannot reach: set http.public_url (or --public-url), or the URL in Settings, to this machine's address on the office network", u))
	}
	return out
}

// IsLoopbackURL reports whether u's host is 127.0.0.0/8, ::1 or localhost:
// an address that names the box only to itself.
func IsLoopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := parsed.Hostname()
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback()
	}
	return strings.EqualFold(h, "localhost")
}

// passwordAlphabet has no look-alikes (0/O, 1/l/I), so a generated password
// can be read off a screen and typed into a phone.
const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GeneratePassword returns n random characters of passwordAlphabet
// (rejection sampling, so every character is equally likely).
func GeneratePassword(n int) string {
	const limit = 256 - 256%len(passwordAlphabet)
	out := make([]byte, 0, n)
	b := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(b)
		for _, c := range b {
			if int(c) < limit && len(out) < n {
				out = append(out, passwordAlphabet[int(c)%len(passwordAlphabet)])
			}
		}
	}
	return string(out)
}

// ValidatePhoneAdminPassword checks a password for the phones' web admin:
// 8-32 printable ASCII characters without spaces or ':' (the config line is
// "admin:<password>"), and never the factory "admin".
func ValidatePhoneAdminPassword(field, pw string) error {
	if len(pw) < 8 || len(pw) > 32 {
		return Errorf(EINVALID, field, "must be 8-32 characters (it has %d)", len(pw))
	}
	for _, r := range pw {
		if r <= ' ' || r > '~' || r == ':' {
			return Errorf(EINVALID, field, "may hold printable ASCII characters only, without spaces or ':'")
		}
	}
	return nil
}
