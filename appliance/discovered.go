package appliance

import (
	"context"
	"time"
)

// Discovered is a phone seen on the network (fetching a file, asking for a
// DHCP lease, sending a SIP PnP SUBSCRIBE) that is not provisioned yet.
type Discovered struct {
	MAC       string    `json:"mac"`
	Vendor    string    `json:"vendor"`
	Model     string    `json:"model"`
	Firmware  string    `json:"firmware"`
	IP        string    `json:"ip"`
	Source    string    `json:"source"` // "http", "tftp", "dhcp", "pnp"
	UserAgent string    `json:"user_agent"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Seen      int       `json:"seen"`
}

// Limits of the Discovered list (SPEC §9).
const (
	MaxDiscovered       = 10000
	DiscoveredPerMinute = 60
)

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

// DiscoveryService records phones seen and adopts them.
type DiscoveryService interface {
	// RecordDiscovered upserts d by MAC (vendor/model/firmware only
	// overwrite when known). Known phones are ignored.
	// Under abuse (SPEC §9) at most DiscoveredPerMinute new MACs a minute
	// are recorded per source address (more are dropped, nil error), and
	// at most MaxDiscovered are kept, the least recently seen dropped.
	RecordDiscovered(ctx context.Context, d Discovered) error
	// FindDiscovered lists every discovered phone, most recently seen first.
	FindDiscovered(ctx context.Context) ([]*Discovered, error)
	// PageDiscovered lists one page of them (offset, at most limit) and
	// how many there are in all.
	PageDiscovered(ctx context.Context, offset, limit int) ([]*Discovered, int, error)
	// AdoptDiscovered creates a phone from a discovered one (the phone's
	// fields override what was detected; extension as in CreatePhone) and
	// removes it from the list.
	AdoptDiscovered(ctx context.Context, mac string, p *Phone, extension string) (*Phone, error)
}
