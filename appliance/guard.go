package appliance

import (
	"net/netip"
	"sync"
	"time"
)

// Guard is the one failure limiter of SPEC §9: every wrong secret (login
// form, API Basic, a phone's provisioning secret, the setup code) and every
// request for a file that does not exist counts against the address it
// came from, per protocol. An address with more than Limit failures in a
// minute is refused for Block (429 over HTTP, an error packet over TFTP).
//
//   - Per protocol: a TFTP (UDP, spoofable) miss never refuses the same
//     address over HTTP, so forged datagrams cannot lock a phone out.
//   - Per prefix: IPv6 addresses count per /64 (one host has them all).
//   - Globally: past Global failures a minute over all addresses of a
//     protocol (guessing from many addresses), an address is refused at its
//     second failure in the minute over that protocol, which slows a
//     distributed guess to a trickle while addresses that make no mistakes
//     are never touched.
//   - Exempt (a known phone's DHCP-leased address) is never refused.
//
// For example, with Limit 20, the 21st wrong password from 10.0.0.9 within
// a minute refuses 10.0.0.9 over HTTP for 10 minutes; its TFTP fetches go
// on.
type Guard struct {
	Limit  int                  // failures a minute per address and protocol; 0 turns the guard off
	Block  time.Duration        // how long an address is refused; default 10 minutes
	Global int                  // failures a minute over all addresses of a protocol before the strict rule; default 10×Limit
	Exempt func(ip string) bool // never refused (asked only when an address would be)
	Now    func() time.Time
	// MaxTracked bounds the addresses remembered (default 10,000); past
	// it, addresses that are not refused are forgotten first.
	MaxTracked int

	mu     sync.Mutex
	addrs  map[guardKey]*guardCount
	totals map[string]*guardTotal // per protocol: the global budget
}

// guardTotal counts one protocol's failures over all addresses in a
// minute: per protocol, so that forged TFTP misses cannot make HTTP
// stricter.
type guardTotal struct {
	window time.Time
	n      int
}

type guardKey struct {
	proto  string
	prefix netip.Prefix
}

type guardCount struct {
	window   time.Time // start of this address's minute
	n        int
	blocked  time.Time // refused until
	exemptAt time.Time // when Exempt last said yes (asked again after a minute)
}

// Guard protocols: the ways a failure can arrive.
const (
	ProtoHTTP = "http" // also HTTPS: TCP, so the source address is real
	ProtoTFTP = "tftp"
)

// guardPrefix is the unit an address counts as: the address itself for
// IPv4 (IPv4-mapped IPv6 too), its /64 for IPv6. ok is false for a string
// that is no address.
func guardPrefix(ip string) (netip.Prefix, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32), true
	}
	p, _ := a.Prefix(64)
	return p, true
}

func (g *Guard) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

func (g *Guard) block() time.Duration {
	if g.Block <= 0 {
		return 10 * time.Minute
	}
	return g.Block
}

// SetLimit changes Limit while the guard is in use (a config reload).
func (g *Guard) SetLimit(n int) {
	g.mu.Lock()
	g.Limit = n
	g.mu.Unlock()
}

// CurrentLimit returns Limit.
func (g *Guard) CurrentLimit() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Limit
}

// Wait returns how long ip must wait before it is served over proto again:
// 0 when it may be served now.
func (g *Guard) Wait(proto, ip string) time.Duration {
	if g == nil {
		return 0
	}
	p, ok := guardPrefix(ip)
	if !ok {
		return 0
	}
	g.mu.Lock()
	if g.Limit <= 0 {
		g.mu.Unlock()
		return 0
	}
	now := g.now()
	c := g.addrs[guardKey{proto, p}]
	if c == nil || !now.Before(c.blocked) {
		g.mu.Unlock()
		return 0
	}
	wait := c.blocked.Sub(now)
	g.mu.Unlock()
	if g.spared(c, ip, now) { // a phone that got its lease after its address was refused
		return 0
	}
	return wait
}

// spared reports whether ip is Exempt, and then clears its count and any
// refusal. A yes is trusted for a minute without asking Exempt (which may
// read the store) again. Called without g.mu.
func (g *Guard) spared(c *guardCount, ip string, now time.Time) bool {
	g.mu.Lock()
	recent := now.Sub(c.exemptAt) < time.Minute
	g.mu.Unlock()
	if !recent && (g.Exempt == nil || !g.Exempt(ip)) {
		return false
	}
	g.mu.Lock()
	c.blocked, c.n, c.exemptAt = time.Time{}, 0, now
	g.mu.Unlock()
	return true
}

// Fail counts one failure of ip over proto and reports whether the
// address is refused from now on (true once, when it becomes refused, so
// the caller logs it once).
func (g *Guard) Fail(proto, ip string) bool {
	if g == nil {
		return false
	}
	p, ok := guardPrefix(ip)
	if !ok {
		return false
	}
	g.mu.Lock()
	if g.Limit <= 0 {
		g.mu.Unlock()
		return false
	}
	now := g.now()
	if g.totals == nil {
		g.totals = map[string]*guardTotal{}
	}
	t := g.totals[proto]
	if t == nil {
		t = &guardTotal{}
		g.totals[proto] = t
	}
	if now.Sub(t.window) >= time.Minute {
		t.window, t.n = now, 0
	}
	t.n++
	global := g.Global
	if global <= 0 {
		global = 10 * g.Limit
	}
	k := guardKey{proto, p}
	c := g.addrs[k]
	if c == nil {
		if !g.roomLocked(now) {
			g.mu.Unlock()
			return false
		}
		c = &guardCount{window: now}
		g.addrs[k] = c
	}
	if now.Sub(c.window) >= time.Minute {
		c.window, c.n = now, 0
	}
	c.n++
	over := c.n > g.Limit || (t.n > global && c.n > 1)
	if !over || now.Before(c.blocked) {
		g.mu.Unlock()
		return false
	}
	g.mu.Unlock()
	if g.spared(c, ip, now) {
		return false
	}
	g.mu.Lock()
	c.blocked = now.Add(g.block())
	g.mu.Unlock()
	return true
}

// Succeed takes back one failure of ip over proto after it proved a
// secret: a client that sends its credentials only after the 401 challenge
// fails once per request and then succeeds, and must not be refused for
// fetching often. A refused address stays refused.
func (g *Guard) Succeed(proto, ip string) {
	if g == nil {
		return
	}
	p, ok := guardPrefix(ip)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.addrs[guardKey{proto, p}]; c != nil && c.n > 0 {
		c.n--
		if t := g.totals[proto]; t != nil && t.n > 0 {
			t.n--
		}
	}
}

// Forgive forgets ip's failures over every protocol (an admin reopened a
// phone's claim, so its next fetch must not meet an old refusal).
func (g *Guard) Forgive(ip string) {
	if g == nil {
		return
	}
	p, ok := guardPrefix(ip)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.addrs {
		if k.prefix == p {
			delete(g.addrs, k)
		}
	}
}

// Tracked returns how many addresses the guard remembers (tests, metrics).
func (g *Guard) Tracked() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.addrs)
}

// roomLocked makes room for one more address (g.mu held): addresses whose
// minute is over and that are not refused go first; if all are refused, no
// new address is tracked (the global count still applies to it).
func (g *Guard) roomLocked(now time.Time) bool {
	if g.addrs == nil {
		g.addrs = map[guardKey]*guardCount{}
	}
	max := g.MaxTracked
	if max <= 0 {
		max = 10000
	}
	if len(g.addrs) < max {
		return true
	}
	for k, c := range g.addrs {
		if !now.Before(c.blocked) && now.Sub(c.window) >= time.Minute {
			delete(g.addrs, k)
		}
	}
	if len(g.addrs) < max {
		return true
	}
	for k, c := range g.addrs {
		if !now.Before(c.blocked) {
			delete(g.addrs, k)
			if len(g.addrs) < max*9/10 {
				break
			}
		}
	}
	return len(g.addrs) < max
}
