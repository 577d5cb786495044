// Package dhcpopt is provbox's DHCPv4 server (github.com/insomniacslk/dhcp
// server4): it leases addresses from one pool on one interface and tells
// phones where to fetch their config — option 66 (the provisioning URL),
// 160 (the same, for Polycom) and 150 (the TFTP server) — along with
// options 1, 3, 6, 42, 51 and 54.
//
// One goroutine reads the socket and answers each packet in turn (run):
// check drops what is malformed or not for this subnet, wanted drops
// non-phones when PhonesOnly is set, the lease state machine (DISCOVER,
// REQUEST in its four flavours, RELEASE, DECLINE, INFORM) makes the reply,
// and addOptions writes the options the client asked for (option 55) plus
// the mandatory ones. An OFFER leaves at once; an ACK only once its lease
// is committed to the store, by a second goroutine that commits the ACKs
// gathered meanwhile in one transaction and then sends them. For example:
//
//	srv := &dhcpopt.Server{
//		Interface:  "eth0",
//		RangeStart: net.IPv4(192, 168, 1, 100), RangeEnd: net.IPv4(192, 168, 1, 199),
//		Netmask:    net.IPv4Mask(255, 255, 255, 0),
//		Router:     net.IPv4(192, 168, 1, 1),
//		LeaseTime:  24 * time.Hour,
//		Services:   svc, Logger: logger,
//	}
//	if err := srv.Open(); err != nil { … } // refuses if another DHCP server answers on eth0
//	defer srv.Close()
//	// A Yealink asking for options 1, 3, 66 gets 192.168.1.100 with
//	// option 66 = "http://192.168.1.2:8080/prov/" (Settings().ProvisioningURL).
package dhcpopt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/provbox/provbox/appliance"
)

// Defaults of the Server's tunables.
const (
	DefaultLeaseTime         = 24 * time.Hour
	DefaultProbeWait         = 2 * time.Second
	DefaultConflictWait      = 400 * time.Millisecond
	DefaultDeclineQuarantine = 10 * time.Minute
	offerHold                = 30 * time.Second // an OFFER reserves its address this long
	commitTimeout            = 5 * time.Second
)

// Server serves DHCPv4 on one interface.
type Server struct {
	Interface  string     // required, e.g. "eth0"
	ServerIP   net.IP     // option 54 and the source of replies; nil: the interface's first IPv4 address
	RangeStart net.IP     // the dynamic pool, inclusive
	RangeEnd   net.IP     //
	Netmask    net.IPMask // option 1; the served subnet is RangeStart/Netmask
	Router     net.IP     // option 3; nil: not sent
	DNS        []net.IP   // option 6
	NTP        []net.IP   // option 42
	LeaseTime  time.Duration
	// PhonesOnly answers only clients whose MAC prefix or option 60 belongs
	// to a phone vendor; others are logged (rate-limited) and ignored.
	PhonesOnly bool
	// AllowOtherServers skips the start-up probe that refuses to serve when
	// another DHCP server answers on the interface.
	AllowOtherServers bool
	// Option66 is "http" (default: the provisioning URL) or "tftp"
	// ("tftp://<ServerIP>", for phones that only speak TFTP).
	Option66 string
	// TFTP tells that provbox serves TFTP on ServerIP: option 150 and
	// siaddr carry ServerIP.
	TFTP bool
	// SkipConflictCheck turns off the ARP probe made before offering an
	// address nobody holds (for benchmarks; on by default).
	SkipConflictCheck bool
	ConflictWait      time.Duration // how long the probe waits for an answer (default 400 ms)
	DeclineQuarantine time.Duration // a DECLINEd or conflicting address rests this long (default 10 min)
	ProbeWait         time.Duration // how long Open listens for other servers (default 2 s)
	Port              int           // server port; 0: 67

	Services appliance.Services // Leases (required), Settings, Sync (Sighted), Events
	// Catalog knows the phone vendors' MAC prefixes (PhonesOnly, and the
	// vendor recorded under Discovered); nil: option 60 only.
	Catalog *appliance.Catalog
	Logger  *slog.Logger
	Now     func() time.Time

	mu       sync.Mutex // guards pool and closing
	pool     *pool
	serverIP ip4
	static   staticOptions
	logs     *limiter
	learn    *learner
	prober   prober
	l2       *l2Sender
	commits  committer

	ctx        context.Context
	cancel     context.CancelFunc
	conn       *net.UDPConn
	inflight   sync.WaitGroup // offers waiting for the conflict check
	closing    bool
	done       chan struct{} // the read loop ended
	stopCommit chan struct{}
}

// prober answers whether an address is in use on the link.
type prober interface {
	inUse(ctx context.Context, a ip4) bool
	close() error
}

// prepare checks the configuration, loads the pool from the store and
// sets up the committer; it opens no socket, so tests call it alone.
func (s *Server) prepare(ctx context.Context) error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.LeaseTime <= 0 {
		s.LeaseTime = DefaultLeaseTime
	}
	if s.ConflictWait <= 0 {
		s.ConflictWait = DefaultConflictWait
	}
	if s.DeclineQuarantine <= 0 {
		s.DeclineQuarantine = DefaultDeclineQuarantine
	}
	if s.ProbeWait <= 0 {
		s.ProbeWait = DefaultProbeWait
	}
	if s.Services.Leases == nil {
		return errors.New("dhcp: no lease store")
	}
	switch strings.ToLower(s.Option66) {
	case "", "http":
		s.Option66 = "http"
	case "tftp":
		s.Option66 = "tftp"
	default:
		return fmt.Errorf("dhcp: option66 %q is neither http nor tftp", s.Option66)
	}
	first, ok1 := toIP4(s.RangeStart)
	last, ok2 := toIP4(s.RangeEnd)
	maskIP := net.IP(s.Netmask)
	if len(s.Netmask) == 16 {
		maskIP = maskIP[12:]
	}
	mask, ok3 := toIP4(maskIP)
	if !ok1 || !ok2 || !ok3 {
		return errors.New("dhcp: range_start, range_end and netmask must be IPv4 addresses")
	}
	if ones, bits := net.IPMask(mask.IP()).Size(); bits == 0 || ones == 0 || ones > 30 {
		return fmt.Errorf("dhcp: netmask %s is not usable", mask)
	}
	if first > last || first&mask != last&mask {
		return fmt.Errorf("dhcp: range %s-%s is not one range in one subnet", first, last)
	}
	sip, ok := toIP4(s.ServerIP)
	if !ok {
		return errors.New("dhcp: no server address (the interface has no IPv4 address)")
	}
	s.serverIP = sip
	excluded := []ip4{sip}
	for _, list := range [][]net.IP{{s.Router}, s.DNS, s.NTP} {
		for _, ip := range list {
			if a, ok := toIP4(ip); ok {
				excluded = append(excluded, a)
			}
		}
	}
	s.pool = newPool(first, last, mask, excluded)
	leases, err := s.Services.Leases.FindLeases(ctx)
	if err != nil {
		return fmt.Errorf("dhcp: load leases: %w", err)
	}
	resv, err := s.Services.Leases.FindReservations(ctx)
	if err != nil {
		return fmt.Errorf("dhcp: load reservations: %w", err)
	}
	s.pool.load(leases, resv)
	s.static = s.buildStatic()
	s.logs = newLimiter(s.Now)
	s.learn = newLearner(s)
	s.commits = committer{wake: make(chan struct{}, 1), done: make(chan struct{})}
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	return nil
}

// Open probes the interface for other DHCP servers (unless
// AllowOtherServers), binds port 67 on the interface and serves until
// Close. Every failure names the interface and what to do.
func (s *Server) Open() error {
	if s.Interface == "" {
		return errors.New("dhcp: no interface (set dhcp.interface or --dhcp IFACE)")
	}
	ifi, err := net.InterfaceByName(s.Interface)
	if err != nil {
		return fmt.Errorf("dhcp: interface %s: %w (see ip link for the names)", s.Interface, err)
	}
	if s.ServerIP == nil {
		addrs, _ := dhcpv4.IPv4AddrsForInterface(ifi)
		if len(addrs) == 0 {
			return fmt.Errorf("dhcp: interface %s has no IPv4 address; give it a static one in the pool's subnet", s.Interface)
		}
		s.ServerIP = addrs[0]
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.prepare(s.ctx); err != nil {
		s.cancel()
		return err
	}
	if !s.AllowOtherServers {
		found, err := ProbeOtherServers(s.ctx, s.Interface, s.ProbeWait)
		if err != nil {
			s.cancel()
			return fmt.Errorf("dhcp: cannot check %s for other DHCP servers: %w (set dhcp.allow_other_servers = true to skip the check)", s.Interface, err)
		}
		if len(found) > 0 {
			s.cancel()
			var names []string
			for _, ip := range found {
				names = append(names, ip.String())
			}
			return fmt.Errorf("dhcp: another DHCP server already answers on %s: %s; turn its DHCP off (or leave DHCP to it and set option 66 there, see DHCP in the README), or set dhcp.allow_other_servers = true",
				s.Interface, strings.Join(names, ", "))
		}
	}
	port := s.Port
	if port == 0 {
		port = dhcpv4.ServerPort
	}
	conn, err := server4.NewIPv4UDPConn(s.Interface, &net.UDPAddr{Port: port})
	if err != nil {
		s.cancel()
		return fmt.Errorf("dhcp: listen on %s port %d: %w (needs root, or CAP_NET_BIND_SERVICE and CAP_NET_RAW)", s.Interface, port, err)
	}
	// A burst of boots (a power cut) must not overflow the socket while a
	// commit is in flight; the kernel caps this at net.core.rmem_max.
	conn.SetReadBuffer(4 << 20)
	s.conn = conn
	if l2, err := newL2Sender(ifi); err != nil {
		s.Logger.Warn("dhcp: replies to clients without an address are broadcast (no raw socket: CAP_NET_RAW missing?)", "err", err)
	} else {
		s.l2 = l2
	}
	if !s.SkipConflictCheck {
		if p, err := newARPProber(ifi, s.ServerIP, s.ConflictWait); err != nil {
			s.Logger.Warn("dhcp: no conflict check before offers (no raw socket: CAP_NET_RAW missing?)", "err", err)
		} else {
			s.prober = p
		}
	}
	s.done = make(chan struct{})
	s.stopCommit = make(chan struct{})
	go s.learn.run(s.ctx)
	go s.commitLoop(s.stopCommit)
	if s.Services.Events != nil {
		sub := s.Services.Events.Subscribe(8, appliance.EventReservationsChanged)
		go s.watchReservations(sub)
	}
	go func() {
		defer close(s.done)
		if err := s.serve(); err != nil && !s.isClosing() {
			s.Logger.Error("dhcp: stopped serving", "interface", s.Interface, "err", err)
		}
	}()
	s.Logger.Info("dhcp serving", "interface", s.Interface, "server", s.ServerIP.String(),
		"range", s.pool.first.String()+"-"+s.pool.last.String(), "lease_time", s.LeaseTime.String(),
		"phones_only", s.PhonesOnly, "conflict_check", s.prober != nil)
	return nil
}

// Close stops serving and waits (a few seconds at most) for replies whose
// leases are being committed.
func (s *Server) Close() error {
	if s.conn == nil {
		if s.cancel != nil {
			s.cancel()
		}
		return nil
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	// Stop reading, let the offers and ACKs in flight go out, then close.
	s.conn.SetReadDeadline(time.Now())
	<-s.done
	waited := make(chan struct{})
	go func() { s.inflight.Wait(); close(s.stopCommit); <-s.commits.done; close(waited) }()
	select {
	case <-waited:
	case <-time.After(commitTimeout):
	}
	err := s.conn.Close()
	s.cancel()
	if s.prober != nil {
		s.prober.close()
	}
	if s.l2 != nil {
		s.l2.close()
	}
	s.learn.wait()
	if err != nil && strings.Contains(err.Error(), "use of closed") {
		err = nil
	}
	return err
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// watchReservations reloads the reservations whenever they change.
func (s *Server) watchReservations(sub *appliance.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-s.ctx.Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			if e.Type != appliance.EventReservationsChanged {
				continue
			}
			resv, err := s.Services.Leases.FindReservations(s.ctx)
			if err != nil {
				s.Logger.Error("dhcp: reload reservations", "err", err)
				continue
			}
			s.mu.Lock()
			s.pool.setReservations(resv)
			s.mu.Unlock()
		}
	}
}

// serve reads requests until the socket is closed and answers each in
// turn on this goroutine: nothing on the way waits, since an ACK's commit
// goes to the committer. An offer that waits for the conflict check (up to
// ConflictWait) gets a goroutine of its own.
func (s *Server) serve() error {
	buf := make([]byte, 4096)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return err
		}
		// The request's options point into its bytes, and an ACK's reply
		// (which copies some of them) outlives this loop's next read.
		req, err := dhcpv4.FromBytes(bytes.Clone(buf[:n]))
		if err != nil {
			continue
		}
		if s.prober != nil && req.MessageType() == dhcpv4.MessageTypeDiscover {
			s.mu.Lock()
			if s.closing {
				s.mu.Unlock()
				continue
			}
			s.inflight.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.inflight.Done()
				s.answer(req)
			}()
			continue
		}
		s.answer(req)
	}
}

// answer runs req through run and sends the reply, or queues it for the
// committer when it waits on a lease change.
func (s *Server) answer(req *dhcpv4.DHCPv4) {
	resp, c := s.run(req)
	if s.Logger.Enabled(s.ctx, slog.LevelDebug) {
		what := "nothing"
		if resp != nil {
			what = resp.MessageType().String() + " " + resp.YourIPAddr.String()
		}
		s.Logger.Debug("dhcp packet", "type", req.MessageType().String(), "mac", req.ClientHWAddr.String(), "answer", what)
	}
	switch {
	case c != nil:
		s.queue(pending{req: req, resp: resp, c: c})
	case resp != nil:
		s.send(req, resp)
	}
}

// send puts resp on the wire (RFC 2131 §4.1, see replyTo).
func (s *Server) send(req, resp *dhcpv4.DHCPv4) {
	b := resp.ToBytes()
	dst, l2 := replyTo(req, resp)
	if l2 && s.l2 != nil {
		err := s.l2.send(b, resp.ClientHWAddr, s.ServerIP, resp.YourIPAddr)
		if err == nil {
			return
		}
		s.logs.warn(s.Logger, "l2", "dhcp: unicast to a client without an address failed; broadcasting", "err", err)
		dst = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
	if _, err := s.conn.WriteToUDP(b, dst); err != nil {
		s.logs.warn(s.Logger, "send", "dhcp: send reply", "to", dst.String(), "err", err)
	}
}

// replyTo is where a reply goes (RFC 2131 §4.1): to the relay's port 67;
// a NAK without relay is broadcast; to a client that has an address
// (renewing, INFORM); broadcast when the client asks (flag); else unicast
// to the client's hardware address and the offered address (l2).
func replyTo(req, resp *dhcpv4.DHCPv4) (dst *net.UDPAddr, l2 bool) {
	switch {
	case !isZero(req.GatewayIPAddr):
		return &net.UDPAddr{IP: req.GatewayIPAddr, Port: dhcpv4.ServerPort}, false
	case resp.MessageType() == dhcpv4.MessageTypeNak:
		return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}, false
	case !isZero(req.ClientIPAddr):
		return &net.UDPAddr{IP: req.ClientIPAddr, Port: dhcpv4.ClientPort}, false
	case req.IsBroadcast() || isZero(resp.YourIPAddr) || len(req.ClientHWAddr) != 6:
		return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}, false
	}
	return &net.UDPAddr{IP: resp.YourIPAddr, Port: dhcpv4.ClientPort}, true
}

func isZero(ip net.IP) bool { return ip == nil || ip.IsUnspecified() }
