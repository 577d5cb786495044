package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/provbox/provbox/appliance"
)

// PnPGroup is where phones multicast their plug-and-play SUBSCRIBE.
const PnPGroup = "224.0.1.75:5060"

// pnpRequest is what a PnP SUBSCRIBE tells about the phone.
type pnpRequest struct {
	MAC, Vendor, Model, Version string
	Contact                     string // ip:port of its Contact (its host must be the source's)
	Event                       string // the Event header as sent
}

// parsePnP checks a SUBSCRIBE for SIP plug-and-play (Event ua-profile) and
// reads the MAC from the Request-URI user part: "MAC001565f4f9e1",
// "MAC%3a001565f4f9e1", "MAC:00:15:65:f4:f9:e1", any case.
func parsePnP(req *sipmsg.Request) (*pnpRequest, error) {
	if req.Method != sipmsg.SUBSCRIBE {
		return nil, fmt.Errorf("not a SUBSCRIBE")
	}
	if req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		return nil, fmt.Errorf("incomplete SUBSCRIBE (Via, From, To, Call-ID and CSeq are required)")
	}
	ev := req.GetHeader("Event")
	if ev == nil {
		return nil, errNotPnP
	}
	token, params := parseEvent(ev.Value())
	if !strings.EqualFold(token, "ua-profile") {
		return nil, errNotPnP
	}
	user := req.Recipient.User
	if req.Recipient.Password != "" {
		user += ":" + req.Recipient.Password // "MAC:<mac>" parses as user:password
	}
	if u, err := url.PathUnescape(user); err == nil {
		user = u
	}
	lower := strings.ToLower(user)
	if !strings.HasPrefix(lower, "mac") {
		return nil, fmt.Errorf("request-URI user %q carries no MAC", req.Recipient.User)
	}
	mac, err := appliance.ParseMAC(strings.TrimPrefix(user[3:], ":"))
	if err != nil {
		return nil, fmt.Errorf("request-URI user %q: %w", req.Recipient.User, err)
	}
	p := &pnpRequest{MAC: mac, Vendor: params["vendor"], Model: params["model"], Version: params["version"], Event: ev.Value()}
	if strings.EqualFold(p.Vendor, "yealink") {
		p.Vendor = "Yealink"
	}
	if c := req.Contact(); c != nil && c.Address.Host != "" {
		port := c.Address.Port
		if port == 0 {
			port = 5060
		}
		p.Contact = net.JoinHostPort(c.Address.Host, strconv.Itoa(port))
	}
	return p, nil
}

var errNotPnP = errors.New("not a plug-and-play SUBSCRIBE (Event is not ua-profile)")

// parseEvent splits `ua-profile;profile-type="device";vendor="Yealink"`.
func parseEvent(v string) (string, map[string]string) {
	parts := strings.Split(v, ";")
	params := map[string]string{}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(val), `"`)
	}
	return strings.TrimSpace(parts[0]), params
}

// pnpOK is the 200 OK to a PnP SUBSCRIBE: its headers copied, a To tag
// added, Expires 0 (the subscription ends with the one NOTIFY), and our
// Contact (local, "ip:port" as the phone reaches us) when known — RFC 3265
// dialogs expect one, and every public PnP responder sends it (audit §3).
func pnpOK(req *sipmsg.Request, local string) *sipmsg.Response {
	res := sipmsg.NewResponseFromRequest(req, 200, "OK", nil)
	if to := res.To(); to != nil {
		if _, ok := to.Params.Get("tag"); !ok {
			to.Params.Add("tag", sipmsg.GenerateTagN(16))
		}
	}
	exp := sipmsg.ExpiresHeader(0)
	res.AppendHeader(&exp)
	if host, port, err := splitAddr(local); err == nil {
		res.AppendHeader(contactHeader(host, port))
	}
	return res
}

// contactHeader is our Contact, <sip:provbox@host:port>.
func contactHeader(host string, port int) *sipmsg.ContactHeader {
	return &sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "provbox", Host: host, Port: port}}
}

// pnpNotify is the NOTIFY in the subscription's dialog (same Call-ID, tags
// swapped) carrying the provisioning URL, sent to target ("ip:port", the
// SUBSCRIBE's source) with the Contact's user in its Request-URI; local is
// our "ip:port" as the phone reaches us.
func pnpNotify(req *sipmsg.Request, ok *sipmsg.Response, p *pnpRequest, provURL, target, local string) (*sipmsg.Request, error) {
	if req.Contact() == nil {
		return nil, errors.New("the SUBSCRIBE has no Contact")
	}
	if ok.To() == nil || req.From() == nil || req.CallID() == nil {
		return nil, errors.New("incomplete dialog headers")
	}
	host, port, err := splitAddr(target)
	if err != nil {
		return nil, err
	}
	lhost, lport, err := splitAddr(local)
	if err != nil {
		return nil, err
	}
	uri := sipmsg.Uri{Scheme: "sip", User: req.Contact().Address.User, Host: host, Port: port}
	n := sipmsg.NewRequest(sipmsg.NOTIFY, uri)
	via := &sipmsg.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: lhost, Port: lport, Params: sipmsg.NewParams()}
	via.Params.Add("branch", sipmsg.GenerateBranch())
	via.Params.Add("rport", "")
	n.AppendHeader(via)
	// Our side of the dialog is the To of the 200 OK; theirs the From.
	to := ok.To()
	n.AppendHeader(&sipmsg.FromHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()})
	from := req.From()
	n.AppendHeader(&sipmsg.ToHeader{DisplayName: from.DisplayName, Address: from.Address, Params: from.Params.Clone()})
	callID := *req.CallID()
	n.AppendHeader(&callID)
	n.AppendHeader(&sipmsg.CSeqHeader{SeqNo: 1, MethodName: sipmsg.NOTIFY})
	n.AppendHeader(contactHeader(lhost, lport))
	n.AppendHeader(sipmsg.NewHeader("Event", p.Event))
	n.AppendHeader(sipmsg.NewHeader("Subscription-State", "terminated;reason=timeout"))
	ct := sipmsg.ContentTypeHeader("application/url")
	n.AppendHeader(&ct)
	n.SetBody([]byte(provURL))
	// The transport sends it (and its retransmissions) to target itself.
	n.SetDestination(target)
	return n, nil
}

// pnpSource checks that a PnP SUBSCRIBE names its own source: the Contact
// host is the datagram's source IP (a literal address, never a name), and
// that address is one a NOTIFY may go to (unicast, with a port). It returns
// the source IP. Anyone can put any Contact in a SUBSCRIBE; answering it
// would let them move a known phone's SIP address and make provbox send
// NOTIFYs at a third party (review findings 4 and 5). A forged source
// address only ever gets its answers at that address.
func pnpSource(p *pnpRequest, source string) (netip.Addr, error) {
	src, err := netip.ParseAddrPort(source)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("source %q is not ip:port", source)
	}
	ip := src.Addr().Unmap()
	if src.Port() == 0 || !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return ip, fmt.Errorf("source %s is not a unicast address", source)
	}
	if p.Contact == "" {
		return ip, errors.New("no Contact")
	}
	host, _, err := net.SplitHostPort(p.Contact)
	if err != nil {
		return ip, fmt.Errorf("Contact %q: %w", p.Contact, err)
	}
	c, err := netip.ParseAddr(host)
	if err != nil {
		return ip, fmt.Errorf("Contact host %q is not an IP address", host)
	}
	if c.Unmap() != ip {
		return ip, fmt.Errorf("Contact host %s is not the source address %s", c, ip)
	}
	return ip, nil
}

// handlePnP answers a PnP SUBSCRIBE from source ("ip:port" of the
// datagram) whose Contact host is that source address: respond(200 OK),
// then the NOTIFY with the URL to source (one RFC 3261 transaction,
// retransmitted until answered or NotifyTimeout), and records the phone: a
// known phone's SIP address is learned, an unknown one is discovered. A
// SUBSCRIBE whose Contact is elsewhere, or past a limit (pnplimit.go), is
// dropped: no answer, nothing recorded, a rate-limited log line.
func (s *Server) handlePnP(ctx context.Context, req *sipmsg.Request, source string, respond func(*sipmsg.Response) error) {
	p, err := parsePnP(req)
	if err != nil {
		s.dropped.Info("SUBSCRIBE refused", "from", source, "err", err)
		res := sipmsg.NewResponseFromRequest(req, 489, "Bad Event", nil)
		if !errors.Is(err, errNotPnP) {
			res = sipmsg.NewResponseFromRequest(req, 400, "Bad Request", nil)
		}
		respond(res)
		return
	}
	ip, err := pnpSource(p, source)
	if err != nil {
		s.dropped.Warn("pnp: SUBSCRIBE dropped: its Contact is not its source address", "mac", p.MAC, "from", source,
			"contact", p.Contact, "err", err, "dropped", s.pnpLimit.dropForged())
		return
	}
	release, reason := s.pnpLimit.acquire(ip)
	if release == nil {
		s.dropped.Warn("pnp: SUBSCRIBE dropped: rate limit", "reason", reason, "mac", p.MAC, "from", source,
			"dropped", s.pnpLimit.count(reason))
		return
	}
	notifying := false
	defer func() {
		if !notifying {
			release()
		}
	}()
	// Our address as the phone reaches us, for the Contact of both
	// messages and the NOTIFY's Via.
	var local string
	if lip, err := localFor(source); err == nil {
		local = net.JoinHostPort(lip, strconv.Itoa(s.ep.port))
	}
	ok := pnpOK(req, local)
	if err := respond(ok); err != nil {
		s.dropped.Warn("pnp: answer failed", "mac", p.MAC, "from", source, "err", err)
		return
	}
	provURL := "" // the URL PnP hands out: Settings' ProvisioningURL
	if s.Services.Settings != nil {
		provURL = s.Services.Settings.Settings().ProvisioningURL
	}
	// Rate-limited: a flood of forged sources gets this far (at most
	// PnPRate a second); "provisioning URL delivered" is the line that
	// says a phone took it.
	s.dropped.Info("pnp SUBSCRIBE answered", "mac", p.MAC, "vendor", p.Vendor, "model", p.Model, "from", source, "url", provURL)
	s.recordPnP(ctx, p, source)
	n, err := pnpNotify(req, ok, p, provURL, source, local)
	if err != nil {
		s.dropped.Warn("pnp: no NOTIFY", "mac", p.MAC, "err", err)
		return
	}
	notifying = true
	go s.sendPnPNotify(ctx, n, p.MAC, provURL, release)
}

// sendPnPNotify sends the NOTIFY carrying the provisioning URL (one RFC
// 3261 transaction) and logs its outcome. release gives back its place in
// PnPInFlight when the transaction ends: answered, or NotifyTimeout (sipgo
// then terminates it and retransmits nothing more). Nothing here sends it
// again.
func (s *Server) sendPnPNotify(ctx context.Context, n *sipmsg.Request, mac, provURL string, release func()) {
	defer release()
	n.Laddr = s.ep.laddr
	ctx, cancel := context.WithTimeout(ctx, s.NotifyTimeout)
	defer cancel()
	res, err := s.ep.client.Do(ctx, n)
	switch {
	case err != nil:
		s.dropped.Warn("pnp: NOTIFY not answered", "mac", mac, "to", n.Destination(), "err", err)
	case res.StatusCode >= 300:
		s.dropped.Warn("pnp: NOTIFY refused", "mac", mac, "to", n.Destination(), "status", res.StatusCode, "reason", res.Reason)
	default:
		s.Logger.Info("pnp: provisioning URL delivered", "mac", mac, "to", n.Destination(), "url", provURL)
	}
}

// recordPnP tells the store what a SUBSCRIBE from source (checked by
// pnpSource) shows: a phone that takes SIP at source. The store
// decides (SyncService.Sighted): a known phone that never fetched learns
// it, an unknown one is discovered at the source IP.
func (s *Server) recordPnP(ctx context.Context, p *pnpRequest, source string) {
	ip, _, _ := net.SplitHostPort(source)
	vendor, model := p.Vendor, p.Model
	if s.Catalog != nil {
		if name, ok := s.Catalog.Manufacturer(vendor); ok && vendor != "" {
			vendor = name
		}
		if m, ok := s.Catalog.ByUserAgent(vendor, model); ok && model != "" {
			model = m.Name
		}
	}
	g := appliance.Sighting{MAC: p.MAC, IP: ip, SIPAddr: source, Vendor: vendor, Model: model, Firmware: p.Version,
		UA: userAgent(p), Source: appliance.SourcePnP}
	if err := s.Services.Sync.Sighted(ctx, g); err != nil {
		s.dropped.Warn("pnp: not recorded", "mac", p.MAC, "from", source, "err", err)
	}
}

func userAgent(p *pnpRequest) string {
	return strings.TrimSpace(strings.Join([]string{p.Vendor, p.Model, p.Version}, " "))
}
