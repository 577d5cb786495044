package appliance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Settings are the appliance-wide values that go into every phone's config.
type Settings struct {
	ProvisioningURL string `json:"provisioning_url"` // base URL phones are told, ends in /
	ProvUsername    string `json:"prov_username"`    // HTTP Basic for /prov/, empty: off
	ProvPassword    string `json:"prov_password"`
	Registrar       string `json:"registrar"`     // default sip_server
	PickupPrefix    string `json:"pickup_prefix"` // directed pickup code before a BLF's extension ("**")
	NotifyRate      int    `json:"notify_rate"`
	PhoneSIPPort    int    `json:"phone_sip_port"`
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
	Position int    `json:"position"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	Label    string `json:"label"`
	Line     int    `json:"line"`
}

// PhoneConfig is everything a phone's generated files depend on. Two equal
// PhoneConfigs render to the same bytes.
type PhoneConfig struct {
	Phone    Phone     `json:"phone"` // without Sync
	Model    Model     `json:"model"`
	Location *Location `json:"location"`
	Accounts []Account `json:"accounts"`
	LineKeys []LineKey `json:"line_keys"`
	Settings Settings  `json:"settings"`
}

// VersionFunc computes a phone's config version. The default, HashConfig,
// hashes the inputs; cmd/provbox wires one that hashes the rendered file.
type VersionFunc func(*PhoneConfig) (string, error)

// HashConfig returns a short hash of the config inputs.
func HashConfig(c *PhoneConfig) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// BuildAccounts numbers the distinct extensions of a layout in order of
// first appearance (account.1, account.2…) and resolves each line key's
// account index. layout must be sorted by position; ext returns the
// extension an account key belongs to.
func BuildAccounts(layout []LayoutEntry, ext func(keyID int64) *Extension) ([]Account, []LineKey) {
	var accounts []Account
	index := map[int64]int{}
	var keys []LineKey
	for _, e := range layout {
		lk := LineKey{Position: e.Position, Type: e.Type, Value: e.Value, Label: e.Label, Line: 1}
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
	ProvUsername    *string `json:"prov_username,omitempty"`
	ProvPassword    *string `json:"prov_password,omitempty"`
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
	if o.ProvUsername != nil {
		base.ProvUsername = *o.ProvUsername
	}
	if o.ProvPassword != nil {
		base.ProvPassword = *o.ProvPassword
	}
	if o.NotifyRate != nil {
		base.NotifyRate = *o.NotifyRate
	}
	return base
}

// Validate checks the overrides that are set.
func (o SettingsOverrides) Validate() error {
	if o.ProvisioningURL != nil {
		u := *o.ProvisioningURL
		if err := checkText("provisioning_url", u, 256); err != nil {
			return err
		}
		if !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) || !strings.HasSuffix(u, "/") || strings.ContainsAny(u, " \"'<>") || len(u) < 10 {
			return Errorf(EINVALID, "provisioning_url", "%q is not an http(s) URL ending in / (e.g. http://192.168.1.10:8080/prov/)", u)
		}
	}
	if o.Registrar != nil && *o.Registrar != "" {
		if err := ValidateHostPort("registrar", *o.Registrar); err != nil {
			return err
		}
	}
	if o.ProvUsername != nil {
		if err := checkText("prov_username", *o.ProvUsername, 64); err != nil {
			return err
		}
		if strings.Contains(*o.ProvUsername, ":") {
			return Errorf(EINVALID, "prov_username", "must not contain ':'")
		}
	}
	if o.ProvPassword != nil {
		if err := checkText("prov_password", *o.ProvPassword, 128); err != nil {
			return err
		}
	}
	if (o.ProvUsername != nil && *o.ProvUsername != "") != (o.ProvPassword != nil && *o.ProvPassword != "") && (o.ProvUsername != nil || o.ProvPassword != nil) {
		return Errorf(EINVALID, "prov_password", "set the provisioning user name and password together (or both empty)")
	}
	if o.NotifyRate != nil && (*o.NotifyRate < 1 || *o.NotifyRate > 10000) {
		return Errorf(EINVALID, "notify_rate", "%d is outside 1-10000 NOTIFYs per second", *o.NotifyRate)
	}
	return nil
}
