// Package sip is provbox's SIP side, on github.com/emiago/sipgo: the sync
// loop that tells a phone to re-fetch its config whenever it changes, and
// the SIP plug-and-play responder that tells phones where to provision
// from.
//
// The sync loop subscribes to the store's events. A change goes out at once
// to a phone not told within the coalescing window (500 ms); changes inside
// the window become one more trigger at its end. Pacing: at most
// NotifyWindow phones are told and have not fetched yet (EventFetched, a
// failed trigger or 10 s of silence free a place), and triggers start at
// most sip.notify_rate a second (Settings.NotifyRate, read each round). The
// trigger (Notifier, shared with `provbox resync`) is a check-sync NOTIFY
//
//	NOTIFY sip:<account.1 user>@<phone ip>:<port> SIP/2.0
//	Event: check-sync;reboot=false
//
// with no body, over UDP from the listening socket, retransmitted as RFC
// 3261 says until answered or NotifyTimeout passes — or, with Trigger set,
// whatever it does (package actionuri: the phone's Action URI). The answer
// is recorded: 2xx makes the phone "notified", silence "unreachable"; its
// next fetch of the current version makes it "fetched", and its report
// after that "synced" (the store). Every StuckEvery the loop asks the store
// to mark the phones whose report is overdue "stuck".
//
// Plug-and-play: a SUBSCRIBE with Event ua-profile, multicast to
// 224.0.1.75:5060 (joined on PnPInterface) or sent to the listening
// address, whose Contact host is the datagram's source address, gets 200
// OK and then a NOTIFY in its dialog with Content-Type application/url and
// the provisioning URL, sent to that source (IP and port). The NOTIFY is
// one RFC 3261 non-INVITE transaction, ended by its answer or
// NotifyTimeout. The phone is recorded: a known phone's address learned,
// an unknown one discovered. A SUBSCRIBE whose Contact is anywhere else
// is dropped, unanswered and unrecorded; so is one past a limit, modelled
// on Kamailio's pike: PnPPerSource answers per source a minute, PnPRate a
// second in total, PnPInFlight NOTIFYs waiting for an answer (one per
// source). Anything else gets a correct answer (OPTIONS 200, other methods
// 405) or, when unparseable, is dropped. Drops are counted and logged
// rate-limited.
package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/provbox/provbox/appliance"
)

// Server is the SIP user agent of the appliance.
type Server struct {
	Addr string // UDP listen address, e.g. ":5060" or "127.0.0.1:0"
	// Services: Sync (required); Settings (the provisioning URL PnP hands
	// out, sip.notify_rate); Events (the sync loop runs while it is set).
	Services appliance.Services
	Logger   *slog.Logger
	// Catalog names the models PnP SUBSCRIBEs announce as the catalog does
	// ("SIP-T46U" → T46U) for the Discovered list; nil: as announced.
	Catalog *appliance.Catalog

	// The sync loop runs while Services.Events is set; it paces triggers
	// at Services.Settings' NotifyRate a second (default 500).
	NotifyWindow  int           // phones told to sync and not fetched yet, at most (default 100)
	NotifyTimeout time.Duration // give up on an answer after this (default 8 s)
	Coalesce      time.Duration // coalescing window (default 500 ms)
	// Trigger and Fallback are the Notifier's (how a phone is told to
	// sync when a check-sync NOTIFY is not the way, or not answered).
	Trigger  func(ctx context.Context, t *appliance.SyncTarget) appliance.NotifyResult
	Fallback func(ctx context.Context, t *appliance.SyncTarget) appliance.NotifyResult
	// StuckEvery is how often the loop marks phones whose report is
	// overdue as stuck (default 1 s).
	StuckEvery time.Duration

	PnP          bool   // answer multicast plug-and-play
	PnPInterface string // interface to join 224.0.1.75 on ("" = any)
	PnPAddr      string // group address, default 224.0.1.75:5060 (tests use other ports)
	// PnP limits (pnplimit.go; zero: the default). A SUBSCRIBE past one of
	// them is dropped unanswered, like one whose Contact is not its source.
	PnPPerSource int // SUBSCRIBEs answered per source IP a minute (DefaultPnPPerSource, 5)
	PnPRate      int // SUBSCRIBEs answered a second, all sources together (DefaultPnPRate, 20)
	PnPInFlight  int // PnP NOTIFYs waiting for their answer, at most; one per source (DefaultPnPInFlight, 32)
	PnPSources   int // source addresses the per-source limit remembers, at most (DefaultPnPSources, 10,000)

	ep       *endpoint // the listening socket: SIP served, NOTIFYs sent
	mconn    net.PacketConn
	notifier *Notifier
	dropped  *slog.Logger // rate-limited
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	sem      chan struct{}

	pnpLimit *pnpLimiter
}

// Open binds the UDP socket (and the PnP group), then serves and runs the
// sync loop in the background until Close.
func (s *Server) Open() error {
	s.defaults()
	s.pnpLimit = s.pnpLimits()
	rl := slog.New(appliance.LogLimit(s.Logger.Handler(), 5, time.Now))
	s.dropped = rl
	ep, err := listen(s.Addr, rl.With("component", "sipgo"))
	if err != nil {
		return err
	}
	s.ep = ep
	s.notifier = &Notifier{Sync: s.Services.Sync, Logger: s.Logger, Timeout: s.NotifyTimeout, Trigger: s.Trigger, Fallback: s.Fallback, ep: ep}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	// Enough concurrent triggers for the told window, so the loop does
	// not wait in dispatch for one to finish.
	s.sem = make(chan struct{}, max(256, s.NotifyWindow+64))

	s.routes(ctx, ep.srv)
	ep.serve(&s.wg)

	if s.PnP {
		// Without PnP phones still provision through DHCP option 66 or a
		// typed URL: report, do not take the appliance down.
		if err := s.openPnP(ctx); err != nil {
			s.Logger.Error("sip plug-and-play is off: "+err.Error(), "fix", "set sip.pnp_interface to the LAN interface, or sip.pnp = false")
		}
	}
	if s.Services.Events != nil {
		sub := s.Services.Events.Subscribe(8192, appliance.EventPhonesChanged, appliance.EventResync,
			appliance.EventAddressLearned, appliance.EventFetched)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer sub.Close()
			s.run(ctx, sub)
		}()
	}
	return nil
}

func (s *Server) defaults() {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.NotifyWindow <= 0 {
		s.NotifyWindow = 100
	}
	if s.StuckEvery <= 0 {
		s.StuckEvery = time.Second
	}
	if s.NotifyTimeout <= 0 {
		s.NotifyTimeout = 8 * time.Second
	}
	if s.Coalesce <= 0 {
		s.Coalesce = 500 * time.Millisecond
	}
	if s.PnPAddr == "" {
		s.PnPAddr = PnPGroup
	}
}

// routes answers what comes to the listening socket: a PnP SUBSCRIBE,
// OPTIONS (200), anything else 405.
func (s *Server) routes(ctx context.Context, srv *sipgo.Server) {
	srv.OnSubscribe(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		s.handlePnP(ctx, req, req.Source(), tx.Respond)
	})
	srv.OnOptions(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		res := sipmsg.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sipmsg.NewHeader("Allow", "OPTIONS, SUBSCRIBE"))
		tx.Respond(res)
	})
	srv.OnNoRoute(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		s.dropped.Info("sip: method not allowed", "method", string(req.Method), "from", req.Source())
		res := sipmsg.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
		res.AppendHeader(sipmsg.NewHeader("Allow", "OPTIONS, SUBSCRIBE"))
		tx.Respond(res)
	})
}

// Port returns the bound UDP port.
func (s *Server) Port() int { return s.ep.port }

// Close stops the loop and the listeners.
func (s *Server) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	if s.mconn != nil {
		s.mconn.Close()
	}
	if s.ep != nil {
		s.ep.close()
	}
	s.wg.Wait()
	return nil
}

// controlUnicast sets SO_REUSEADDR (so the PnP socket can share port 5060)
// and IP_MULTICAST_ALL off (so this socket does not also get the group's
// datagrams, which the PnP socket answers).
func controlUnicast(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if serr == nil {
			serr = syscall.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// PnPListening reports whether plug-and-play answers: the group was joined
// at Open (the dashboard says whether phones can find the box).
func (s *Server) PnPListening() bool { return s.mconn != nil }

// openPnP binds the group address with SO_REUSEADDR, joins the group on
// the interface and reads SUBSCRIBEs; answers leave from the unicast socket.
func (s *Server) openPnP(ctx context.Context) error {
	gaddr, err := net.ResolveUDPAddr("udp4", s.PnPAddr)
	if err != nil {
		return fmt.Errorf("sip: pnp address %s: %w", s.PnPAddr, err)
	}
	mconn, err := listenGroup(gaddr)
	if err != nil {
		return fmt.Errorf("sip: pnp: listen %s: %w", gaddr, err)
	}
	var ifi *net.Interface
	if s.PnPInterface != "" {
		if ifi, err = net.InterfaceByName(s.PnPInterface); err != nil {
			mconn.Close()
			return fmt.Errorf("sip: pnp interface %q: %w", s.PnPInterface, err)
		}
	}
	if err := ipv4.NewPacketConn(mconn).JoinGroup(ifi, &net.UDPAddr{IP: gaddr.IP}); err != nil {
		mconn.Close()
		return fmt.Errorf("sip: pnp: join %s on %q: %w", gaddr.IP, s.PnPInterface, err)
	}
	s.mconn = mconn
	s.Logger.Info("sip plug-and-play listening", "group", gaddr.String(), "interface", s.PnPInterface)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := mconn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
					return
				}
				continue
			}
			s.handleDatagram(ctx, buf[:n], from.(*net.UDPAddr))
		}
	}()
	return nil
}

// listenGroup binds a UDP socket to the group address itself. (Go's
// ListenPacket binds a multicast address as the wildcard, which would also
// take every unicast datagram to port 5060 of this host.) SO_REUSEADDR lets
// it share the port with the unicast SIP socket.
func listenGroup(g *net.UDPAddr) (net.PacketConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: g.Port}
	copy(sa.Addr[:], g.IP.To4())
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "pnp")
	defer f.Close()
	return net.FilePacketConn(f)
}

// handleDatagram answers one multicast datagram (a PnP SUBSCRIBE, or
// garbage, which is dropped).
func (s *Server) handleDatagram(ctx context.Context, b []byte, from *net.UDPAddr) {
	msg, err := sipmsg.ParseMessage(b)
	if err != nil {
		s.dropped.Info("sip: unparseable datagram dropped", "from", from.String(), "bytes", len(b))
		return
	}
	req, ok := msg.(*sipmsg.Request)
	if !ok || req.Method != sipmsg.SUBSCRIBE {
		s.dropped.Info("sip: multicast message ignored", "from", from.String())
		return
	}
	if req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		s.dropped.Info("sip: incomplete SUBSCRIBE dropped", "from", from.String())
		return
	}
	req.SetSource(from.String())
	// The response goes, unicast from our socket, to the source IP and the
	// Via port (rport: the source port) — RFC 3261 18.2.2, RFC 3581.
	dst := &net.UDPAddr{IP: from.IP, Port: from.Port}
	if via := req.Via(); !via.Params.Has("rport") && via.Port > 0 {
		dst.Port = via.Port
	}
	s.handlePnP(ctx, req, from.String(), func(res *sipmsg.Response) error {
		_, err := s.ep.conn.WriteTo([]byte(res.String()), dst)
		return err
	})
}

// run is the sync loop: events in, triggers out, coalesced and paced;
// every StuckEvery it marks the phones whose report is overdue as stuck.
func (s *Server) run(ctx context.Context, sub *appliance.Subscription) {
	sch := newScheduler(s.Coalesce, s.notifyRate(), s.NotifyWindow)
	s.addPending(ctx, sch)
	// Triggers that did not get a 2xx free their place in the told window.
	failed := make(chan string, 1024)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stuck := time.NewTicker(s.StuckEvery)
	defer stuck.Stop()
	sweeping := make(chan struct{}, 1)
	targets := map[string]*appliance.SyncTarget{} // what take's wants read, per round
	for {
		wait := s.sendDue(ctx, sch, targets, failed)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			now := time.Now()
			for _, m := range e.MACs {
				if e.Type == appliance.EventFetched {
					sch.release(m)
				} else {
					sch.add(m, now, e.Type == appliance.EventResync)
				}
			}
		case m := <-failed:
			sch.release(m)
		case <-stuck.C:
			s.sweepStuck(ctx, sweeping)
		case <-timer.C:
		}
	}
}

// addPending schedules the phones that changed while provbox was down.
func (s *Server) addPending(ctx context.Context, sch *scheduler) {
	macs, err := s.Services.Sync.PendingPhones(ctx)
	if err != nil {
		s.Logger.Error("sync: pending phones", "err", err)
		return
	}
	for _, m := range macs {
		sch.add(m, time.Now(), false)
	}
	if len(macs) > 0 {
		s.Logger.Info("sync: notifying phones that changed while provbox was down", "phones", len(macs))
	}
}

// sendDue tells the phones pacing lets go now (each read once, by wants,
// into targets) and returns how long until the next may go.
func (s *Server) sendDue(ctx context.Context, sch *scheduler, targets map[string]*appliance.SyncTarget, failed chan<- string) time.Duration {
	sch.interval = time.Second / time.Duration(s.notifyRate()) // sip.notify_rate may change while running
	clear(targets)
	macs, _ := sch.take(time.Now(), func(mac string, force bool) bool {
		targets[mac] = s.wants(ctx, mac, force)
		return targets[mac] != nil
	})
	for _, m := range macs {
		s.dispatch(ctx, targets[m], failed)
	}
	if next, ok := sch.next(); ok {
		return max(time.Until(next), 0)
	}
	return time.Hour
}

// sweepStuck marks the phones whose report is overdue as stuck: off the
// loop (a write), one sweep at a time (sweeping holds it).
func (s *Server) sweepStuck(ctx context.Context, sweeping chan struct{}) {
	select {
	case sweeping <- struct{}{}:
	default:
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-sweeping }()
		if macs, err := s.Services.Sync.MarkStuck(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Error("sync: marking stuck phones", "err", err)
		} else if len(macs) > 0 {
			s.Logger.Warn("sync: phones did not fetch or report in time after a change", "phones", len(macs), "first", macs[0])
		}
	}()
}

// wants returns the phone to tell, or nil when it needs nothing. Never
// one that has not fetched its config yet: a factory phone reboots on
// check-sync, and it fetches its config by itself as it boots (audit §2).
// Otherwise an admin's resync always; a change only while the phone has
// not fetched it and its address is known (a phone without one stays
// pending; EventAddressLearned brings it back).
func (s *Server) wants(ctx context.Context, mac string, force bool) *appliance.SyncTarget {
	t, err := s.Services.Sync.Target(ctx, mac)
	if err != nil || !t.HasFetched {
		return nil
	}
	if force || t.Changed() && t.SIPAddress != "" {
		return t
	}
	return nil
}

// dispatch tells one phone in the background (at most 256 at once); a
// trigger without a 2xx answer sends the MAC to failed.
func (s *Server) dispatch(ctx context.Context, t *appliance.SyncTarget, failed chan<- string) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		res, err := s.notifier.Notify(ctx, t)
		<-s.sem
		if err != nil && ctx.Err() == nil {
			s.Logger.Error("sync: trigger", "mac", t.MAC, "err", err)
		}
		if res.Status < 200 || res.Status >= 300 {
			// Never blocks the trigger (nor, so, the loop): when the loop is
			// behind, the told timeout frees the place instead.
			select {
			case failed <- t.MAC:
			default:
			}
		}
	}()
}

// notifyRate is sip.notify_rate: triggers a second, at most (default 500).
func (s *Server) notifyRate() int {
	if s.Services.Settings != nil {
		if r := s.Services.Settings.Settings().NotifyRate; r > 0 {
			return r
		}
	}
	return 500
}
