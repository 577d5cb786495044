package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/provbox/provbox/appliance"
)

// CheckSyncEvent is the Event of the NOTIFY: re-provision, no reboot (with
// sip.notify_reboot_enable = 0 in the phone's config).
const CheckSyncEvent = "check-sync;reboot=false"

// buildCheckSync builds the NOTIFY to user at addr ("ip:port"), leaving
// from local ("ip:port", the address the phone answers to).
func buildCheckSync(user, addr, local string) (*sipmsg.Request, error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	lhost, lport, err := splitAddr(local)
	if err != nil {
		return nil, err
	}
	req := sipmsg.NewRequest(sipmsg.NOTIFY, sipmsg.Uri{Scheme: "sip", User: user, Host: host, Port: port})
	via := &sipmsg.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: lhost, Port: lport, Params: sipmsg.NewParams()}
	via.Params.Add("branch", sipmsg.GenerateBranch())
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	from := &sipmsg.FromHeader{DisplayName: "provbox", Address: sipmsg.Uri{Scheme: "sip", User: "provbox", Host: lhost}, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: sipmsg.Uri{Scheme: "sip", User: user, Host: host}, Params: sipmsg.NewParams()})
	req.AppendHeader(sipmsg.NewHeader("Event", CheckSyncEvent))
	req.AppendHeader(sipmsg.NewHeader("Subscription-State", "terminated"))
	return req, nil
}

func splitAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	return h, n, nil
}

// localFor returns the local IP the kernel would use to reach addr (a UDP
// "connect" sends no packet).
func localFor(addr string) (string, error) {
	c, err := net.Dial("udp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// NotSentNeverFetched is why a phone that never fetched its config gets no
// check-sync: until its first config sets sip.notify_reboot_enable = 0, a
// Yealink reboots on every check-sync.
const NotSentNeverFetched = "not sent: the phone has never fetched its config (a phone that was never provisioned reboots on check-sync; it fetches its config by itself when it boots)"

// Notifier tells one phone to sync — a check-sync NOTIFY, or Trigger —
// and records the outcome (SyncService.RecordNotify). The sync loop
// (Server) and `provbox resync` each use one: the Server's sends from its
// listening socket; a Notifier of its own (Open) from the address given.
//
//	n := &sip.Notifier{Sync: svc.Sync, Logger: logger}
//	if err := n.Open("0.0.0.0:0"); err != nil { … }
//	defer n.Close()
//	t, err := svc.Sync.Target(ctx, mac)
//	res, err := n.Notify(ctx, t) // recorded: "200 OK", "no answer"…
type Notifier struct {
	Sync    appliance.SyncService // records each outcome
	Logger  *slog.Logger
	Timeout time.Duration // give up on an answer after this (default 8 s)
	// Trigger, when set, tells a phone to sync instead of a check-sync
	// NOTIFY (sip.sync_trigger = "action_uri": package actionuri). It
	// answers the outcome to record.
	Trigger func(ctx context.Context, t *appliance.SyncTarget) appliance.NotifyResult
	// Fallback, when set, is tried after a check-sync NOTIFY got no answer
	// (with Trigger nil): a phone that still holds a config of the
	// action_uri trigger drops SIP from provbox (trust_ctrl), but takes its
	// Action URI. With Trigger set, a refused or unanswered Trigger falls
	// back to the NOTIFY (a phone still holding a notify config).
	Fallback func(ctx context.Context, t *appliance.SyncTarget) appliance.NotifyResult

	ep  *endpoint // the socket NOTIFYs leave from
	own bool      // Open bound ep: Close closes it
	wg  sync.WaitGroup
}

// Open binds addr ("0.0.0.0:0": an ephemeral port) for a Notifier used
// without a Server; the phones answer there.
func (n *Notifier) Open(addr string) error {
	n.defaults()
	ep, err := listen(addr, n.Logger.With("component", "sipgo"))
	if err != nil {
		return err
	}
	n.ep, n.own = ep, true
	ep.serve(&n.wg)
	return nil
}

// Close releases the socket Open bound.
func (n *Notifier) Close() error {
	if n.own && n.ep != nil {
		n.ep.close()
		n.wg.Wait()
	}
	return nil
}

func (n *Notifier) defaults() {
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	if n.Timeout <= 0 {
		n.Timeout = 8 * time.Second
	}
}

// Notify tells the phone t, as read by SyncService.Target, to sync, and
// records the outcome; it returns the result recorded. A phone that never
// fetched its config is not told, and nothing is recorded
// (NotSentNeverFetched); one without a known address is recorded as not
// told.
func (n *Notifier) Notify(ctx context.Context, t *appliance.SyncTarget) (appliance.NotifyResult, error) {
	res := appliance.NotifyResult{MAC: t.MAC, Version: t.ConfigVersion}
	if !t.HasFetched {
		res.Reason = NotSentNeverFetched
		return res, nil
	}
	if t.SIPAddress == "" {
		res.Reason = "no SIP address known yet (the phone has not fetched its config, sent a PnP SUBSCRIBE or taken a DHCP lease)"
		return res, n.Sync.RecordNotify(ctx, res)
	}
	start := time.Now()
	res = n.tell(ctx, t)
	if ctx.Err() != nil {
		return res, nil // provbox is stopping: the phone did not fail to answer
	}
	n.Logger.Info("sync triggered", "via", res.Via, "mac", t.MAC, "to", t.SIPAddress, "result", res.Text(), "ms", time.Since(start).Milliseconds())
	return res, n.Sync.RecordNotify(context.WithoutCancel(ctx), res)
}

// tell tries the configured trigger, then the other one when the phone
// refused or did not answer it: after sip.sync_trigger changed, phones
// still hold a config made for the other trigger until they fetch the
// new one (action_uri configs keep trust_ctrl on, which drops provbox's
// NOTIFY; notify configs leave the Action URI closed).
func (n *Notifier) tell(ctx context.Context, t *appliance.SyncTarget) appliance.NotifyResult {
	first, other := n.checkSync, n.Fallback
	if n.Trigger != nil {
		first, other = n.Trigger, n.checkSync
	}
	res := first(ctx, t)
	if accepted(res) || other == nil || ctx.Err() != nil {
		return res
	}
	if alt := other(ctx, t); accepted(alt) {
		return alt
	}
	return res
}

func accepted(r appliance.NotifyResult) bool { return r.Status >= 200 && r.Status < 300 }

// checkSync sends the check-sync NOTIFY.
func (n *Notifier) checkSync(ctx context.Context, t *appliance.SyncTarget) appliance.NotifyResult {
	user := t.User
	if user == "" {
		user = t.MAC
	}
	res := appliance.NotifyResult{MAC: t.MAC, Version: t.ConfigVersion, Via: appliance.TriggerNotify}
	res.Status, res.Reason = n.send(ctx, user, t.SIPAddress)
	return res
}

// send transmits the NOTIFY (retransmitted by the client transaction as
// RFC 3261 says for UDP: 0.5 s, 1 s, 2 s, 4 s…) and waits for the final
// answer, at most Timeout. Status 0 means no answer.
func (n *Notifier) send(ctx context.Context, user, addr string) (int, string) {
	lip, err := localFor(addr)
	if err != nil {
		return 0, "cannot reach " + addr + ": " + err.Error()
	}
	req, err := buildCheckSync(user, addr, net.JoinHostPort(lip, strconv.Itoa(n.ep.port)))
	if err != nil {
		return 0, err.Error()
	}
	req.Laddr = n.ep.laddr // leave from the socket the phone answers to
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	resp, err := n.ep.client.Do(ctx, req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sipmsg.ErrTransactionTimeout) {
			return 0, ""
		}
		if ctx.Err() != nil {
			return 0, ""
		}
		return 0, "send failed: " + err.Error()
	}
	return resp.StatusCode, resp.Reason
}

// endpoint is a UDP socket with sipgo on it: a server reading it (requests
// and the answers to what the client sent) and a client sending from it.
type endpoint struct {
	conn   net.PacketConn
	port   int
	laddr  sipmsg.Addr
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
}

// listen binds addr (SO_REUSEADDR, see controlUnicast) and sets sipgo up
// on it; serve starts reading once the server's handlers are in place.
func listen(addr string, log *slog.Logger) (*endpoint, error) {
	lc := net.ListenConfig{Control: controlUnicast}
	conn, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("sip: listen %s: %w", addr, err)
	}
	la := conn.LocalAddr().(*net.UDPAddr)
	e := &endpoint{conn: conn, port: la.Port, laddr: sipmsg.Addr{IP: la.IP, Port: la.Port}}
	e.ua, err = sipgo.NewUA(sipgo.WithUserAgent("provbox"),
		sipgo.WithUserAgentTransportLayerOptions(sipmsg.WithTransportLayerLogger(log)),
		sipgo.WithUserAgentTransactionLayerOptions(sipmsg.WithTransactionLayerLogger(log)))
	if err == nil {
		e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(log))
	}
	if err == nil {
		e.client, err = sipgo.NewClient(e.ua, sipgo.WithClientLogger(log))
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sip: %w", err)
	}
	return e, nil
}

// serve reads the socket in the background until close. It returns once
// sipgo holds the socket in its pool: a NOTIFY sent at once (`provbox
// resync`) must leave from it, and sipgo, not finding it, would try to
// bind its address a second time.
func (e *endpoint) serve(wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.srv.ServeUDP(e.conn)
	}()
	tp, addr := e.ua.TransportLayer(), e.conn.LocalAddr().String()
	for range 1000 {
		if _, err := tp.GetConnection("udp", addr); err == nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *endpoint) close() {
	e.conn.Close()
	e.ua.Close()
}
