package dhcpopt

import (
	"container/heap"
	"encoding/binary"
	"net"
	"time"

	"github.com/provbox/provbox/appliance"
)

// ip4 is an IPv4 address as a number, so the pool can count through it.
type ip4 uint32

func toIP4(ip net.IP) (ip4, bool) {
	v4 := ip.To4()
	if v4 == nil {
		return 0, false
	}
	return ip4(binary.BigEndian.Uint32(v4)), true
}

func (a ip4) IP() net.IP {
	b := make(net.IP, 4)
	binary.BigEndian.PutUint32(b, uint32(a))
	return b
}

func (a ip4) String() string { return a.IP().String() }

// lease is the pool's view of one address. The store holds the same
// fields (appliance.Lease) except offers, which live only here.
type lease struct {
	ip       ip4
	mac      string // canonical; "" for an address found in use by a conflict check
	hostname string
	vendor   string
	state    string // appliance.LeaseOffered, LeaseBound, LeaseReleased, LeaseDeclined
	expires  time.Time
	index    int // in pool.reuse; -1 when not there (reserved addresses)
	unsaved  int // bindings of this lease waiting for their commit
}

// free reports whether the address may go to any client: its offer,
// binding or quarantine is over, or it was released.
func (l *lease) free(now time.Time) bool { return !l.expires.After(now) }

// liveFor reports whether mac holds the address now (offered or bound).
func (l *lease) liveFor(mac string, now time.Time) bool {
	return l.mac == mac && (l.state == appliance.LeaseBound || l.state == appliance.LeaseOffered) && !l.free(now)
}

func (l *lease) record() *appliance.Lease {
	return &appliance.Lease{IP: l.ip.String(), MAC: l.mac, Hostname: l.hostname, Vendor: l.vendor, State: l.state, ExpiresAt: l.expires}
}

// leaseHeap orders the leases of unreserved addresses by expiry, so the
// address whose lease ended longest ago is reused first.
type leaseHeap []*lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*lease)
	l.index = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.index = -1
	*h = old[:len(old)-1]
	return l
}

// pool allocates addresses. Callers hold Server.mu.
//
// A client gets, in this order: its reserved address; the address it had
// (affinity, even after expiry, while nobody else took it); the address it
// asks for (option 50) if free; an address never handed out; and last the
// address whose lease ended longest ago (oldest expiry first).
type pool struct {
	first, last   ip4 // the dynamic range
	network, mask ip4
	excluded      map[ip4]bool // the server's own, the router's, DNS and NTP addresses

	byIP      map[ip4]*lease
	byMAC     map[string]*lease
	resvByMAC map[string]ip4
	resvByIP  map[ip4]string
	reuse     leaseHeap
	next      ip4 // addresses from next to last have never been handed out, unless in byIP
}

func newPool(first, last ip4, mask ip4, excluded []ip4) *pool {
	p := &pool{
		first: first, last: last, network: first & mask, mask: mask, next: first,
		excluded: map[ip4]bool{}, byIP: map[ip4]*lease{}, byMAC: map[string]*lease{},
		resvByMAC: map[string]ip4{}, resvByIP: map[ip4]string{},
	}
	for _, a := range excluded {
		p.excluded[a] = true
	}
	return p
}

func (p *pool) inSubnet(a ip4) bool { return a&p.mask == p.network }
func (p *pool) inRange(a ip4) bool  { return a >= p.first && a <= p.last }

// usable reports an address the server may hand out at all: in the
// subnet, neither its network nor broadcast address nor excluded.
func (p *pool) usable(a ip4) bool {
	return p.inSubnet(a) && a != p.network && a != p.network|^p.mask && !p.excluded[a]
}

// load fills the pool from stored leases and reservations.
func (p *pool) load(leases []*appliance.Lease, resv []*appliance.Reservation) {
	for _, r := range resv {
		a, ok := toIP4(net.ParseIP(r.IP))
		if !ok || !p.usable(a) {
			continue // outside this subnet: not ours to give
		}
		p.resvByMAC[r.MAC], p.resvByIP[a] = a, r.MAC
	}
	for _, sl := range leases {
		a, ok := toIP4(net.ParseIP(sl.IP))
		if !ok || !p.usable(a) || !p.inRange(a) && p.resvByIP[a] == "" {
			continue // the range changed since: forget it
		}
		state := sl.State
		if state == appliance.LeaseExpired {
			state = appliance.LeaseBound
		}
		l := &lease{ip: a, mac: sl.MAC, hostname: sl.Hostname, vendor: sl.Vendor, state: state, expires: sl.ExpiresAt, index: -1}
		p.byIP[a] = l
		if l.mac != "" && l.state != appliance.LeaseDeclined {
			if old := p.byMAC[l.mac]; old == nil || old.expires.Before(l.expires) {
				p.byMAC[l.mac] = l
			}
		}
	}
	p.reindex()
}

// setReservations replaces the reservations and rebuilds the indexes.
func (p *pool) setReservations(resv []*appliance.Reservation) {
	p.resvByMAC, p.resvByIP = map[string]ip4{}, map[ip4]string{}
	p.load(nil, resv)
}

// reindex rebuilds the reuse heap (every lease of an unreserved address)
// and restarts the never-used cursor.
func (p *pool) reindex() {
	p.reuse = p.reuse[:0]
	for a, l := range p.byIP {
		l.index = -1
		if p.resvByIP[a] == "" && p.inRange(a) {
			l.index = len(p.reuse)
			p.reuse = append(p.reuse, l)
		}
	}
	heap.Init(&p.reuse)
	p.next = p.first
}

// reservedForOther reports an address reserved for a MAC other than mac.
func (p *pool) reservedForOther(a ip4, mac string) bool {
	owner := p.resvByIP[a]
	return owner != "" && owner != mac
}

// availableTo reports whether mac may have address a now.
func (p *pool) availableTo(a ip4, mac string, now time.Time) bool {
	if !p.usable(a) || p.reservedForOther(a, mac) || !p.inRange(a) && p.resvByIP[a] != mac {
		return false
	}
	l := p.byIP[a]
	if l == nil {
		return true
	}
	if l.state == appliance.LeaseDeclined && !l.free(now) {
		return false
	}
	return l.mac == mac || l.free(now)
}

// pick chooses an address for mac (want: option 50, or 0) and reports
// whether mac already holds it live (then no conflict check is needed).
// ok is false when the pool is exhausted.
func (p *pool) pick(mac string, want ip4, now time.Time, skip map[ip4]bool) (a ip4, live, ok bool) {
	try := func(a ip4) bool { return !skip[a] && p.availableTo(a, mac, now) }
	if r, has := p.resvByMAC[mac]; has && try(r) {
		l := p.byIP[r]
		return r, l != nil && l.liveFor(mac, now), true
	}
	if l := p.byMAC[mac]; l != nil && l.mac == mac && try(l.ip) {
		return l.ip, l.liveFor(mac, now), true
	}
	if want != 0 && try(want) {
		return want, false, true
	}
	for p.next <= p.last && p.next >= p.first {
		a := p.next
		p.next++
		if p.byIP[a] == nil && p.resvByIP[a] == "" && p.usable(a) && !skip[a] {
			return a, false, true
		}
		if p.next == 0 { // wrapped at 255.255.255.255
			break
		}
	}
	// Oldest expiry first. Entries skipped by this call stay in the heap.
	var held []*lease
	defer func() {
		for _, l := range held {
			heap.Push(&p.reuse, l)
		}
	}()
	for p.reuse.Len() > 0 {
		l := p.reuse[0]
		if !l.free(now) {
			return 0, false, false
		}
		if skip[l.ip] {
			held = append(held, heap.Pop(&p.reuse).(*lease))
			continue
		}
		return l.ip, false, true
	}
	return 0, false, false
}

// set records a new state of address a for mac and returns the lease.
func (p *pool) set(a ip4, mac, hostname, vendor, state string, expires time.Time) *lease {
	l := p.byIP[a]
	if l == nil {
		l = &lease{ip: a, index: -1}
		p.byIP[a] = l
		if p.resvByIP[a] == "" && p.inRange(a) {
			heap.Push(&p.reuse, l)
		}
	}
	if l.mac != mac {
		if l.mac != "" && p.byMAC[l.mac] == l {
			delete(p.byMAC, l.mac) // it goes to someone else now
		}
		l.hostname, l.vendor = "", ""
	}
	l.mac, l.state, l.expires = mac, state, expires
	if hostname != "" {
		l.hostname = hostname
	}
	if vendor != "" {
		l.vendor = vendor
	}
	if mac != "" && state != appliance.LeaseDeclined {
		p.byMAC[mac] = l
	} else if mac != "" && p.byMAC[mac] == l {
		delete(p.byMAC, mac)
	}
	if l.index >= 0 {
		heap.Fix(&p.reuse, l.index)
	}
	return l
}

// previous returns mac's live lease on another address than a, if any:
// binding a ends it.
func (p *pool) previous(mac string, a ip4, now time.Time) *lease {
	if l := p.byMAC[mac]; l != nil && l.ip != a && l.liveFor(mac, now) {
		return l
	}
	return nil
}

// snapshot copies a lease for callers outside the lock.
func (l *lease) snapshot() lease {
	c := *l
	c.index = -1
	return c
}
