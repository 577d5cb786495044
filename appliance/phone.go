package appliance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sync states of a phone (SPEC §6).
const (
	SyncNew         = "new"         // never fetched its config
	SyncPending     = "pending"     // config changed since its last fetch
	SyncNotified    = "notified"    // check-sync NOTIFY answered 2xx
	SyncUnreachable = "unreachable" // NOTIFY got no answer after retries
	SyncSynced      = "synced"      // fetched the current version
)

// Phone is a desk phone the appliance provisions.
type Phone struct {
	ID           int64      `json:"id"`
	MAC          string     `json:"mac"`
	Name         string     `json:"name"`
	Description  string     `json:"description"`
	LocationID   *int64     `json:"location_id"`
	Manufacturer string     `json:"manufacturer"`
	Model        string     `json:"model"`
	Sync         SyncStatus `json:"sync"`
	// Secret is the phone's own provisioning password (HTTP Basic, user
	// name: its MAC), generated when it is added. Never in JSON: the API
	// shows it only at /phones/{mac}/secret.
	Secret string `json:"-"`
	// PrevSecret is the secret before the last rotation, still accepted for
	// its <mac>.cfg until the phone fetches with the new one (it learns the
	// new one from the file it fetches with the old).
	PrevSecret string `json:"-"`
}

// ProvUsername is the user name a phone proves its secret with: its MAC.
func (p *Phone) ProvUsername() string { return p.MAC }

// ClaimOpen reports whether the phone may fetch its config once without
// its secret at now (its claim window is open).
func (p *Phone) ClaimOpen(now time.Time) bool {
	return p.Sync.ClaimOpenUntil != nil && now.Before(*p.Sync.ClaimOpenUntil)
}

// SyncStatus is where a phone stands in the sync loop.
type SyncStatus struct {
	State            string     `json:"state"`
	ConfigVersion    string     `json:"config_version"`
	FetchedVersion   string     `json:"fetched_version"`
	LastFetchAt      *time.Time `json:"last_fetch_at"`
	LastFetchIP      string     `json:"last_fetch_ip"`
	LastFetchUA      string     `json:"last_fetch_ua"`
	LastNotifyAt     *time.Time `json:"last_notify_at"`
	LastNotifyResult string     `json:"last_notify_result"`
	SIPAddress       string     `json:"sip_address"`
	// Problems are the ready checks (PhoneConfig.Problems plus the
	// vendor's): sentences, empty when the phone is ready. Recomputed with
	// its config version.
	Problems []string `json:"problems"`
	// ClaimOpenUntil is when the phone's claim window closes: until then
	// it may fetch its config once without its secret (a factory phone
	// knows none). Nil when closed: after that fetch, any fetch with its
	// secret, or the window's end.
	ClaimOpenUntil *time.Time `json:"claim_open_until"`
}

// Title names the phone in messages: "Front desk (00:15:65:aa:bb:cc)", or
// the MAC alone when the phone has no name of its own.
func (p *Phone) Title() string {
	if p.Name == "" || p.Name == p.MAC {
		return FormatMAC(p.MAC)
	}
	return p.Name + " (" + FormatMAC(p.MAC) + ")"
}

// HasFetched reports whether the phone has fetched its config at least
// once. Only such a phone is sent check-sync: a factory phone reboots on
// it (sip.notify_reboot_enable defaults to 1 until its first config).
func (s SyncStatus) HasFetched() bool { return s.LastFetchAt != nil }

// PhoneUpdate holds the fields to change; nil means unchanged. LocationID
// set to 0 clears the location.
type PhoneUpdate struct {
	MAC          *string `json:"mac"`
	Name         *string `json:"name"`
	Description  *string `json:"description"`
	LocationID   *int64  `json:"location_id"`
	Manufacturer *string `json:"manufacturer"`
	Model        *string `json:"model"`
}

// LayoutEntry places a key at a line-key position. On reads the key's type,
// value and label come along.
type LayoutEntry struct {
	Position int    `json:"position"`
	KeyID    int64  `json:"key_id"`
	Type     string `json:"type,omitempty"`
	Value    string `json:"value,omitempty"`
	Label    string `json:"label,omitempty"`
}

// PhoneFilter selects phones; Q matches MAC, name or description.
type PhoneFilter struct {
	Q string
}

// PhoneService manages phones and their layouts. Errors: EINVALID,
// ENOTFOUND, ECONFLICT (duplicate MAC).
type PhoneService interface {
	FindPhones(ctx context.Context, f PhoneFilter) ([]*Phone, error)
	// FindPhone takes a MAC in any accepted notation.
	FindPhone(ctx context.Context, mac string) (*Phone, error)
	// CreatePhone normalises MAC, name, manufacturer and model. With
	// extension (a number) set, that extension's account key goes to
	// positions 1 and 2.
	CreatePhone(ctx context.Context, p *Phone, extension string) (*Phone, error)
	UpdatePhone(ctx context.Context, mac string, upd PhoneUpdate) (*Phone, error)
	DeletePhone(ctx context.Context, mac string) error
	FindLayout(ctx context.Context, mac string) ([]LayoutEntry, error)
	// ReplaceLayout validates against the phone's model and replaces the
	// whole layout.
	ReplaceLayout(ctx context.Context, mac string, layout []LayoutEntry) ([]LayoutEntry, error)
	// PhoneConfig gathers everything the phone's generated files depend on.
	PhoneConfig(ctx context.Context, mac string) (*PhoneConfig, error)
	// RotateSecret gives the phone a new provisioning secret; the old one
	// stays valid for its <mac>.cfg until the phone fetches with the new
	// one. The config changes, so the phone is told to sync.
	RotateSecret(ctx context.Context, mac string) (*Phone, error)
	// OpenClaim (re)opens the phone's claim window for one fetch without
	// its secret (a factory-reset phone has lost it), for
	// Settings.ClaimWindow from now.
	OpenClaim(ctx context.Context, mac string) (*Phone, error)
}

// Normalize canonicalises MAC, name, manufacturer and model and validates
// the phone. It returns the model's facts.
func (p *Phone) Normalize() (Model, error) {
	mac, err := ParseMAC(p.MAC)
	if err != nil {
		return Model{}, err
	}
	p.MAC = mac
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		p.Name = mac
	}
	if err := checkText("name", p.Name, 64); err != nil {
		return Model{}, err
	}
	if err := checkText("description", p.Description, 256); err != nil {
		return Model{}, err
	}
	if p.LocationID != nil && *p.LocationID <= 0 {
		p.LocationID = nil
	}
	m, err := NormalizeModel(p.Manufacturer, p.Model)
	if err != nil {
		return Model{}, err
	}
	p.Manufacturer, p.Model = m.Manufacturer, m.Name
	return m, nil
}

// Apply copies the set fields of upd onto p.
func (upd PhoneUpdate) Apply(p *Phone) {
	if upd.MAC != nil {
		p.MAC = *upd.MAC
	}
	if upd.Name != nil {
		p.Name = *upd.Name
	}
	if upd.Description != nil {
		p.Description = *upd.Description
	}
	if upd.LocationID != nil {
		if *upd.LocationID == 0 {
			p.LocationID = nil
		} else {
			id := *upd.LocationID
			p.LocationID = &id
		}
	}
	if upd.Manufacturer != nil {
		p.Manufacturer = *upd.Manufacturer
	}
	if upd.Model != nil {
		p.Model = *upd.Model
	}
}

// ValidateLayout checks a layout against a model: positions within
// 1..LineKeys and unique, and at least one account key when it holds keys,
// and no more distinct extensions than the model has accounts. keys gives
// the type of every key id used (an unknown id is an error). The layout is
// sorted by position.
func ValidateLayout(m Model, layout []LayoutEntry, keyType func(id int64) (string, bool)) error {
	sort.SliceStable(layout, func(i, j int) bool { return layout[i].Position < layout[j].Position })
	seen := map[int]bool{}
	accounts := map[int64]bool{}
	for i, e := range layout {
		field := fmt.Sprintf("keys[%d].position", i)
		if e.Position < 1 || e.Position > m.LineKeys {
			return Errorf(EINVALID, field, "%d is outside 1..%d, the line keys of the %s", e.Position, m.LineKeys, m.Name)
		}
		if seen[e.Position] {
			return Errorf(EINVALID, field, "position %d is used twice", e.Position)
		}
		seen[e.Position] = true
		typ, ok := keyType(e.KeyID)
		if !ok {
			return Errorf(EINVALID, fmt.Sprintf("keys[%d].key_id", i), "no key with id %d", e.KeyID)
		}
		if typ == KeyAccount {
			accounts[e.KeyID] = true
		}
	}
	if len(layout) > 0 && len(accounts) == 0 {
		return Errorf(EINVALID, "keys", "a phone needs at least 1 account key (2 recommended)")
	}
	if len(accounts) > m.Accounts {
		return Errorf(EINVALID, "keys", "%d extensions on one phone, but the %s has %d accounts", len(accounts), m.Name, m.Accounts)
	}
	return nil
}
