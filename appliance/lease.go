package appliance

import (
	"context"
	"net"
	"time"
)

// Lease states. Only bound, released and declined are stored; offered is
// the DHCP server's in-memory hold between OFFER and REQUEST, and expired
// is how a bound lease past its ExpiresAt reads back.
const (
	LeaseOffered  = "offered"  // OFFERed, waiting for the client's REQUEST (never stored)
	LeaseBound    = "bound"    // ACKed until ExpiresAt
	LeaseExpired  = "expired"  // was bound; ExpiresAt has passed (reads only)
	LeaseReleased = "released" // the client gave it back (RELEASE) at ExpiresAt
	LeaseDeclined = "declined" // quarantined until ExpiresAt: a client DECLINEd it, or a conflict check found it in use (MAC then "")
)

// EventReservationsChanged is published after a reservation is set or
// deleted, so that a running DHCP server reloads them (no MACs: the sync
// loop has nothing to do).
const EventReservationsChanged = "reservations_changed"

// Lease is one address of the DHCP pool as last handed out: one per IP.
type Lease struct {
	IP        string    `json:"ip"`
	MAC       string    `json:"mac"`      // canonical; "" for an address found in use by a conflict check
	Hostname  string    `json:"hostname"` // option 12
	Vendor    string    `json:"vendor"`   // option 60, the vendor class ("yealink")
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expires_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Phone is the name of the provisioned phone with this MAC, if any
	// (filled on reads and by SaveLeases).
	Phone string `json:"phone,omitempty"`
}

// Reservation fixes the address a MAC (usually a phone's) always gets from
// the DHCP server. The address may lie inside or outside the dynamic range
// but must be in the served subnet; no other client is given it.
type Reservation struct {
	MAC   string `json:"mac"`
	IP    string `json:"ip"`
	Phone string `json:"phone,omitempty"` // name of the provisioned phone with this MAC, if any
}

// LeaseService stores the DHCP server's leases and reservations.
type LeaseService interface {
	// FindLeases lists every stored lease, ordered by address. A bound
	// lease past its expiry reads as expired.
	FindLeases(ctx context.Context) ([]*Lease, error)
	// SaveLeases upserts leases by IP in one transaction and returns once it
	// is committed (durable: a DHCPACK is sent only after this). Concurrent
	// callers share transactions (group commit). It fills each lease's
	// Phone. Errors: EINVALID (bad IP, MAC or state).
	SaveLeases(ctx context.Context, leases ...*Lease) error
	// FindReservations lists reservations, ordered by address.
	FindReservations(ctx context.Context) ([]*Reservation, error)
	// SetReservation reserves ip for mac (replacing mac's previous one) and
	// publishes EventReservationsChanged. Errors: EINVALID (bad MAC or
	// IPv4 address), ECONFLICT (ip is reserved for another MAC).
	SetReservation(ctx context.Context, mac, ip string) (*Reservation, error)
	// DeleteReservation drops mac's reservation. Errors: ENOTFOUND.
	DeleteReservation(ctx context.Context, mac string) error
	// PhoneLeased reports whether ip is bound, unexpired, to the MAC of a
	// provisioned phone (the failure guard never refuses such an address).
	PhoneLeased(ctx context.Context, ip string) (bool, error)
}

// ValidateLease checks a lease before it is stored and canonicalises its
// MAC and IP.
func ValidateLease(l *Lease) error {
	ip := net.ParseIP(l.IP).To4()
	if ip == nil {
		return Errorf(EINVALID, "ip", "%q is not an IPv4 address", l.IP)
	}
	l.IP = ip.String()
	switch l.State {
	case LeaseBound, LeaseReleased, LeaseDeclined:
	case LeaseExpired:
		l.State = LeaseBound // expiry is read from ExpiresAt
	default:
		return Errorf(EINVALID, "state", "%q is not a stored lease state (bound, released, declined)", l.State)
	}
	if l.MAC == "" && l.State == LeaseDeclined {
		return nil
	}
	mac, err := ParseMAC(l.MAC)
	if err != nil {
		return err
	}
	l.MAC = mac
	return nil
}

// ParseReservation checks and canonicalises a reservation's MAC and IP.
func ParseReservation(mac, ip string) (*Reservation, error) {
	m, err := ParseMAC(mac)
	if err != nil {
		return nil, err
	}
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		return nil, Errorf(EINVALID, "ip", "%q is not an IPv4 address", ip)
	}
	if v4.IsUnspecified() || v4.IsMulticast() || v4.IsLoopback() || v4.Equal(net.IPv4bcast) {
		return nil, Errorf(EINVALID, "ip", "%s cannot be given to a phone", v4)
	}
	return &Reservation{MAC: m, IP: v4.String()}, nil
}
