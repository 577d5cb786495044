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
	SyncNotified    = "notified"    // told to sync (check-sync or Action URI); it answered
	SyncFetched     = "fetched"     // fetched the current version; no report from the phone yet
	SyncSynced      = "synced"      // fetched the current version, then reported provisioning finished
	SyncStuck       = "stuck"       // a phone that reports did not report within StuckAfter of a trigger
	SyncUnreachable = "unreachable" // the trigger got no answer after retries
)

// SyncStates lists the states in the order a change walks through them.
var SyncStates = []string{SyncNew, SyncPending, SyncNotified, SyncFetched, SyncSynced, SyncStuck, SyncUnreachable}

// StuckAfter is how long a phone that reports has, after it was told to
// sync (or fetched a change by itself), to report that provisioning
// finished before it is stuck.
const StuckAfter = 60 * time.Second

// Report events: what a phone's action URLs tell (SPEC §6). The path of
// a report is /prov/ev/<token>/<event>.
const (
	ReportProvisioned  = "provisioned"     // action_url.setup_autop_finish: auto-provisioning finished
	ReportRegistered   = "registered"      // action_url.registered: an account registered
	ReportRegisterFail = "register_failed" // action_url.register_failed
	ReportUnregistered = "unregistered"    // action_url.unregistered
	ReportIPChanged    = "ip_change"       // action_url.ip_change
)

// ReportEvents are the events a report may name.
var ReportEvents = []string{ReportProvisioned, ReportRegistered, ReportRegisterFail, ReportUnregistered, ReportIPChanged}

// Registration states of an account (SyncStatus.Registration).
const (
	RegRegistered = "registered"
	RegFailed     = "failed"
	RegUnknown    = "unknown"
)

// Phone is a desk phone the appliance provisions.
type Phone struct {
	ID           int64  `json:"id"`
	MAC          string `json:"mac"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	LocationID   *int64 `json:"location_id"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	// ExpansionModules is how many key modules are chained to it
	// (0..the model's MaxModules; their type comes from the catalog).
	ExpansionModules int        `json:"expansion_modules"`
	Sync             SyncStatus `json:"sync"`
	// LineKeys is how many positions of its layout hold a key (read only;
	// the Phones list shows and sorts by it).
	LineKeys int `json:"-"`
	// Secret is the phone's own provisioning password (HTTP Basic, user
	// name: its MAC), generated when it is added. Never in JSON: the API
	// shows it only at /phones/{mac}/secret.
	Secret string `json:"-"`
	// PrevSecret is the secret before the last rotation, still accepted for
	// its <mac>.cfg until the phone fetches with the new one (it learns the
	// new one from the file it fetches with the old).
	PrevSecret string `json:"-"`
	// Token names the phone in its reports (/prov/ev/<token>/<event>): a
	// random string its config carries, rotated with its secret. It is not
	// the secret: action URLs can show in the phone's and proxies' logs.
	Token string `json:"-"`
	// PrevToken is the token before the last rotation, accepted as long
	// as PrevSecret is.
	PrevToken string `json:"-"`
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
	// AppliedAt is when the phone last reported that provisioning
	// finished after fetching its current version.
	AppliedAt *time.Time `json:"applied_at"`
	// Registration is each account's registration as the phone reported
	// it, by account index ("1", "2"...); accounts it has not reported
	// on are "unknown".
	Registration map[string]Registration `json:"registration"`
	// Confirms is true once the phone has reported through its action
	// URLs: only such a phone becomes synced or stuck; one that never
	// reports stays fetched ("fetched (phone does not confirm)").
	Confirms bool `json:"confirms"`
	// LastReportAt is the time of the phone's last report.
	LastReportAt *time.Time `json:"last_report_at"`
}

// Registration is one account's registration as the phone reported it.
type Registration struct {
	State string     `json:"state"` // RegRegistered, RegFailed or RegUnknown
	At    *time.Time `json:"at"`
}

// StateText is the state as the admin reads it: "fetched (phone does not
// confirm)" for a phone whose firmware never reports.
func (s SyncStatus) StateText() string {
	if s.State == SyncFetched && !s.Confirms {
		return "fetched (phone does not confirm)"
	}
	return s.State
}

// Settled reports whether the phone has taken its current config as far
// as it can tell us: synced, or fetched by a phone that does not confirm.
func (s SyncStatus) Settled() bool {
	return s.State == SyncSynced || s.State == SyncFetched && !s.Confirms
}

// Change is one config change of a phone, followed through the sync
// loop: its timeline (SPEC §6). Times are nil until the step happened.
type Change struct {
	Version      string     `json:"version"`
	ChangedAt    time.Time  `json:"changed_at"`
	TriggeredAt  *time.Time `json:"triggered_at"`
	Trigger      string     `json:"trigger"` // how the phone was told and what it answered ("check-sync: 200 OK")
	FetchedAt    *time.Time `json:"fetched_at"`
	AppliedAt    *time.Time `json:"applied_at"`
	RegisteredAt *time.Time `json:"registered_at"`
	// Outcome is "stuck" or "unreachable" when the change ended there
	// (a later step clears it), else empty.
	Outcome string `json:"outcome"`
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
	// ExpansionModules changes the number of chained key modules.
	ExpansionModules *int `json:"expansion_modules"`
	// Layout, when set, replaces the line keys in the same transaction
	// (the phone's one form: device settings and keys saved together);
	// it is checked against the updated model and modules.
	Layout *[]LayoutEntry `json:"layout,omitempty"`
}

// LayoutEntry places a key at a line-key position: on the phone itself
// (Module 0) or on its expansion module Module (1..). On reads the key's
// type, value and label come along.
type LayoutEntry struct {
	Position int    `json:"position"`
	KeyID    int64  `json:"key_id"`
	Module   int    `json:"module"`
	Type     string `json:"type,omitempty"`
	Value    string `json:"value,omitempty"`
	Label    string `json:"label,omitempty"`
}

// PhoneFilter selects phones; Q matches MAC, name or description.
type PhoneFilter struct {
	Q string
}

// Validate refuses a search term over MaxSearch characters.
func (f PhoneFilter) Validate() error { return checkSearch("q", f.Q) }

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
	// UpdatePhones applies one update to several phones in one transaction
	// (the bulk actions: set location, copy line keys): all or none; an
	// error names the phone it is about.
	UpdatePhones(ctx context.Context, macs []string, upd PhoneUpdate) ([]*Phone, error)
	// DeletePhones deletes several phones in one transaction.
	DeletePhones(ctx context.Context, macs []string) error
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
// the phone against the catalog, reporting every field that breaks a rule
// (Errors). It returns the model's facts.
func (p *Phone) Normalize(c *Catalog) (Model, error) {
	var errs Errors
	mac, err := ParseMAC(p.MAC)
	if err != nil {
		errs.Add(err)
	} else {
		p.MAC = mac
	}
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" && mac != "" {
		p.Name = mac
	}
	errs.Add(checkText("name", p.Name, 64))
	errs.Add(checkText("description", p.Description, 256))
	if p.LocationID != nil && *p.LocationID <= 0 {
		p.LocationID = nil
	}
	m, err := c.Normalize(p.Manufacturer, p.Model)
	if err != nil {
		errs.Add(err)
	} else {
		p.Manufacturer, p.Model = m.Manufacturer, m.Name
		_, _, err := c.Positions(m, p.ExpansionModules)
		errs.Add(err)
	}
	if len(errs) > 0 {
		return Model{}, errs.Err()
	}
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
	if upd.ExpansionModules != nil {
		p.ExpansionModules = *upd.ExpansionModules
	}
}

// ValidateLayout checks a layout against a phone's model and modules:
// module within 0..modules, positions within the line keys of the phone
// (module 0) or of its module's keys, unique per module; key types the
// model supports; at least one account key when it holds keys, and no more
// distinct extensions than the model has accounts. keyType gives the type
// of every key id used (an unknown id is an error). The layout is sorted by
// module, then position.
func ValidateLayout(c *Catalog, m Model, modules int, layout []LayoutEntry, keyType func(id int64) (string, bool)) error {
	lineKeys, moduleKeys, err := c.Positions(m, modules)
	if err != nil {
		return err
	}
	SortLayout(layout)
	seen := map[Position]bool{}
	accounts := map[int64]bool{}
	for i, e := range layout {
		field := fmt.Sprintf("keys[%d].position", i)
		switch {
		case e.Module < 0 || e.Module > modules:
			if modules == 0 {
				return Errorf(EINVALID, fmt.Sprintf("keys[%d].module", i), "%d, but the phone has no expansion module", e.Module)
			}
			return Errorf(EINVALID, fmt.Sprintf("keys[%d].module", i), "%d is outside 0..%d, the phone itself and its expansion modules", e.Module, modules)
		case e.Module == 0 && lineKeys == 0 && (e.Position < 1 || e.Position > m.Accounts):
			// A phone without line keys (a DECT base, an AX8x) takes its
			// extensions as accounts 1..Accounts, one per position.
			return Errorf(EINVALID, field, "%d is outside 1..%d, the accounts of the %s (it has no line keys)", e.Position, m.Accounts, m.Name)
		case e.Module == 0 && lineKeys > 0 && (e.Position < 1 || e.Position > lineKeys):
			return Errorf(EINVALID, field, "%d is outside 1..%d, the line keys of the %s", e.Position, lineKeys, m.Name)
		case e.Module > 0 && (e.Position < 1 || e.Position > moduleKeys):
			return Errorf(EINVALID, field, "%d is outside 1..%d, the keys of expansion module %d (%s)", e.Position, moduleKeys, e.Module, m.Module)
		}
		pos := Position{e.Module, e.Position}
		if seen[pos] {
			if e.Module > 0 {
				return Errorf(EINVALID, field, "position %d of expansion module %d is used twice", e.Position, e.Module)
			}
			return Errorf(EINVALID, field, "position %d is used twice", e.Position)
		}
		seen[pos] = true
		typ, ok := keyType(e.KeyID)
		if !ok {
			return Errorf(EINVALID, fmt.Sprintf("keys[%d].key_id", i), "no key with id %d", e.KeyID)
		}
		if lineKeys == 0 && typ != KeyAccount {
			return Errorf(EINVALID, fmt.Sprintf("keys[%d].key_id", i), "the %s has no line keys, only accounts: a %s key does not fit", m.Name, typ)
		}
		if lineKeys > 0 && !m.Supports(typ) {
			return Errorf(EINVALID, fmt.Sprintf("keys[%d].key_id", i), "the %s has no %s keys", m.Name, typ)
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

// SortLayout sorts a layout by module, then position: the phone's own
// keys first, as the phone numbers them.
func SortLayout(layout []LayoutEntry) {
	sort.SliceStable(layout, func(i, j int) bool {
		if layout[i].Module != layout[j].Module {
			return layout[i].Module < layout[j].Module
		}
		return layout[i].Position < layout[j].Position
	})
}
