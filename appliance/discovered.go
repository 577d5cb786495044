package appliance

import (
	"context"
	"net"
	"strconv"
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

// DiscoveryService lists the phones seen and not provisioned (recorded by
// SyncService.Sighted) and adopts them.
type DiscoveryService interface {
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
