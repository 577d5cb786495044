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
