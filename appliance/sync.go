package appliance

import (
	"context"
	"net"
	"strconv"
	"time"
)

// SyncService is the part of the sync loop other packages call.
type SyncService interface {
	// Resync asks for a check-sync NOTIFY to each phone now (ENOTFOUND for
	// an unknown MAC; ECONFLICT, sending nothing, when a named phone never
	// fetched its config: a factory phone reboots on check-sync). An empty
	// list means every phone that has fetched before.
	Resync(ctx context.Context, macs []string) error
	// RecordFetch notes that a phone fetched its config: last fetch time,
	// IP and User-Agent, fetched_version, and its SIP address (IP and the
	// configured phone port). Fetching the current version makes it
	// fetched (synced once it reports); EventFetched follows.
	RecordFetch(ctx context.Context, f Fetch) error
	// RecordNotify notes the outcome of a trigger (check-sync NOTIFY or
	// Action URI): a 2xx makes the phone notified and no answer
	// unreachable — unless it has meanwhile fetched that version or
	// changed again (still pending for the newer version). Other answers
	// keep the state and record the status.
	RecordNotify(ctx context.Context, n NotifyResult) error
	// Sighted takes a phone seen on the network, in one transaction: a
	// known phone may teach its SIP address (SPEC §6: from its DHCP lease,
	// or from a PnP SUBSCRIBE while it has never fetched its config; a
	// file request that proved nothing teaches nothing), an unknown one is
	// recorded under Discovered (upserted by MAC; vendor, model, firmware
	// and User-Agent overwrite only when known). Under abuse (SPEC §9) at
	// most DiscoveredPerMinute new MACs a minute are recorded per source
	// address (more are dropped, nil error), and at most MaxDiscovered are
	// kept, the least recently seen dropped. When a learned address is new
	// and the phone waits for a trigger (pending or unreachable),
	// EventAddressLearned is published. Errors: EINVALID (MAC, IP, SIPAddr,
	// or a PnP SIPAddr whose host is not IP; Source).
	Sighted(ctx context.Context, s Sighting) error
	// ConsumeClaim closes the phone's claim window if it is open now and
	// reports whether it was: the one fetch without a secret it allowed
	// is this one (atomic: of two such fetches at once, one wins).
	ConsumeClaim(ctx context.Context, mac string) (bool, error)
	// RefreshVersions recomputes the config versions of macs (all phones
	// when empty): a template override changed what they get.
	RefreshVersions(ctx context.Context, macs []string) error
	// PendingPhones lists the phones that fetched before, hold an older
	// config than their current one, and whose SIP address is known: those
	// the sync loop tells at start-up.
	PendingPhones(ctx context.Context) ([]string, error)
	// RecordReport takes a phone's own report (an action URL it called).
	// ENOTFOUND, changing nothing, for a token no phone has, an unknown
	// event, or a MAC that is not the token's phone. "provisioned" after
	// fetching the current version makes the phone synced; "registered",
	// "register_failed" and "unregistered" set the registration of the
	// account whose user name the report carries. A report teaches the
	// address of a phone that has never fetched only: a token is weaker
	// than a secret, so it may not redirect a provisioned phone's triggers.
	RecordReport(ctx context.Context, r Report) error
	// MarkStuck makes stuck the phones that confirm but did not report
	// within StuckAfter of being told to sync (or of fetching a change by
	// themselves), and returns their MACs.
	MarkStuck(ctx context.Context) ([]string, error)
	// Timeline lists the phone's last changes, newest first (ENOTFOUND).
	Timeline(ctx context.Context, mac string) ([]Change, error)
	// FetchedConfig is the <mac>.cfg the phone last fetched, as served,
	// and its version; nil when it never fetched one (ENOTFOUND).
	FetchedConfig(ctx context.Context, mac string) (*FetchedConfig, error)
	// CountStates counts the phones in each sync state.
	CountStates(ctx context.Context) (map[string]int, error)
	// Target is what the sync loop needs to tell one phone to sync, in
	// one cheap read (ENOTFOUND).
	Target(ctx context.Context, mac string) (*SyncTarget, error)
}

// SyncTarget is a phone as the sync loop sees it: where it is, as whom a
// check-sync addresses it, and whether it holds its current config.
type SyncTarget struct {
	MAC            string
	ConfigVersion  string
	FetchedVersion string
	SIPAddress     string // "ip:port"; empty while unknown
	User           string // account 1's user (its extension number); empty without accounts
	HasFetched     bool   // it fetched its config at least once
	State          string // its sync state (SyncNew…)
}

// Changed reports whether the phone has not fetched its current config.
func (t *SyncTarget) Changed() bool { return t.FetchedVersion != t.ConfigVersion }

// Report is one call of a phone's action URL: /prov/ev/<Token>/<Event>.
type Report struct {
	Token    string
	Event    string // one of ReportEvents
	IP       string // the request's source address: the phone's address now
	MAC      string // the $mac the phone filled in; must be the token's phone when set
	User     string // $active_user: the account's SIP user name (registration events)
	Model    string // $model, $firmware: as the phone filled them in
	Firmware string
}

// Triggers: how a phone is told to sync (sip.sync_trigger).
const (
	TriggerNotify    = "check-sync" // SIP NOTIFY Event: check-sync
	TriggerActionURI = "action-uri" // HTTP(S) GET of the phone's Action URI
)

// NotifyResult is the outcome of one trigger: a check-sync NOTIFY or an
// Action URI request.
type NotifyResult struct {
	MAC     string
	Version string // the config version the trigger announced
	Via     string // TriggerNotify or TriggerActionURI; empty is TriggerNotify
	Status  int    // SIP status code of the final answer; 0: no answer
	Reason  string // reason phrase, or why nothing was sent
}

// Text is the human form stored as last_notify_result ("200 OK", "no answer").
func (n NotifyResult) Text() string {
	switch {
	case n.Status == 0 && n.Reason == "":
		return "no answer"
	case n.Status == 0:
		return n.Reason
	default:
		return strconv.Itoa(n.Status) + " " + n.Reason
	}
}

// FetchedConfig is a phone's config file as it last fetched it.
type FetchedConfig struct {
	Version string
	Body    []byte
	At      time.Time
}

// Fetch is one file a phone fetched (the confirmation half of the sync loop).
type Fetch struct {
	MAC     string
	Version string // config version of the bytes served
	IP      string
	UA      string
	Source  string // "http" or "tftp"
	// Auth is how the fetch was allowed: AuthSecret, AuthPrevSecret,
	// AuthClaim or AuthOpen. A fetch with the current secret closes the
	// claim window and retires the previous secret.
	Auth string
	// Body is the file as served, kept (once per version) so that the
	// phone page can show what changed since; never logged.
	Body []byte `json:"-"`
}

// How a fetch of a <mac>.cfg was allowed (SPEC §5).
const (
	AuthSecret     = "secret"      // the phone's own secret
	AuthPrevSecret = "prev_secret" // the secret before a rotation, not yet replaced on the phone
	AuthClaim      = "claim"       // the one fetch without a secret of an open claim window
	AuthOpen       = "open"        // provisioning.open: no secrets at all
)

// Where a phone was seen (Sighting.Source, Discovered.Source).
const (
	SourceHTTP = "http" // a file request over HTTP
	SourceTFTP = "tftp" // a file request over TFTP
	SourceDHCP = "dhcp" // a lease the DHCP server bound
	SourcePnP  = "pnp"  // a SIP plug-and-play SUBSCRIBE
)

// Sighting is a phone seen on the network by an edge: a file request that
// proved nothing (HTTP, TFTP), a DHCP lease, a PnP SUBSCRIBE. The store
// decides what it teaches (SyncService.Sighted).
type Sighting struct {
	MAC string
	IP  string // the packet's source address
	// SIPAddr is where the phone takes SIP ("ip:port") when the sighting
	// tells it (a PnP Contact, whose host must be IP); empty: IP and the
	// phone port (Settings.PhoneSIPAddress).
	SIPAddr  string
	Vendor   string // "Yealink"; empty: from the MAC's prefix
	Model    string // as the catalog names it ("T46U"), when known
	Firmware string
	UA       string // the User-Agent or what stands for it
	Source   string // SourceHTTP, SourceTFTP, SourceDHCP or SourcePnP
}

// PhoneSIPAddress is where a phone at ip takes SIP when nothing told its
// port: sip.phone_port, else 5060.
func (s Settings) PhoneSIPAddress(ip string) string {
	port := s.PhoneSIPPort
	if port <= 0 {
		port = 5060
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}
