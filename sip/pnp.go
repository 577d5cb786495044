package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	Contact                     string // ip:port the phone wants the NOTIFY at
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
// swapped) carrying the provisioning URL, sent to the phone's Contact.
func pnpNotify(req *sipmsg.Request, ok *sipmsg.Response, p *pnpRequest, provURL, local string) (*sipmsg.Request, error) {
	if p.Contact == "" || req.Contact() == nil {
		return nil, errors.New("the SUBSCRIBE has no Contact")
	}
	if ok.To() == nil || req.From() == nil || req.CallID() == nil {
		return nil, errors.New("incomplete dialog headers")
	}
	host, port, err := splitAddr(p.Contact)
	if err != nil {
		return nil, err
	}
	lhost, lport, err := splitAddr(local)
	if err != nil {
		return nil, err
	}
	target := sipmsg.Uri{Scheme: "sip", User: req.Contact().Address.User, Host: host, Port: port}
	n := sipmsg.NewRequest(sipmsg.NOTIFY, target)
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
	return n, nil
}

// handlePnP answers a PnP SUBSCRIBE: respond(200 OK), then the NOTIFY with
// the URL (retransmitted until answered), and records the phone: a known
// phone's SIP address is learned, an unknown one is discovered.
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
	// Our address as the phone reaches us, for the Contact of both answers.
	var local string
	if lip, err := localFor(source); err == nil {
		local = net.JoinHostPort(lip, strconv.Itoa(s.port))
	}
	ok := pnpOK(req, local)
	if err := respond(ok); err != nil {
		s.Logger.Warn("pnp: answer failed", "mac", p.MAC, "err", err)
		return
	}
	provURL := ""
	if s.ProvisioningURL != nil {
		provURL = s.ProvisioningURL()
	}
	s.Logger.Info("pnp SUBSCRIBE answered", "mac", p.MAC, "vendor", p.Vendor, "model", p.Model, "contact", p.Contact, "from", source, "url", provURL)
	s.recordPnP(ctx, p, source)
	lip, err := localFor(p.Contact)
	if err != nil {
		s.Logger.Warn("pnp: cannot reach the phone's Contact", "mac", p.MAC, "contact", p.Contact, "err", err)
		return
	}
	n, err := pnpNotify(req, ok, p, provURL, net.JoinHostPort(lip, strconv.Itoa(s.port)))
	if err != nil {
		s.Logger.Warn("pnp: no NOTIFY", "mac", p.MAC, "err", err)
		return
	}
	n.Laddr = s.laddr
	go func() {
		ctx, cancel := context.WithTimeout(ctx, s.NotifyTimeout)
		defer cancel()
		res, err := s.client.Do(ctx, n)
		switch {
		case err != nil:
			s.Logger.Warn("pnp: NOTIFY not answered", "mac", p.MAC, "contact", p.Contact, "err", err)
		case res.StatusCode >= 300:
			s.Logger.Warn("pnp: NOTIFY refused", "mac", p.MAC, "status", res.StatusCode, "reason", res.Reason)
		default:
			s.Logger.Info("pnp: provisioning URL delivered", "mac", p.MAC, "url", provURL)
		}
	}()
}

func (s *Server) recordPnP(ctx context.Context, p *pnpRequest, source string) {
	if _, err := s.Services.Phones.FindPhone(ctx, p.MAC); err == nil {
		if p.Contact != "" {
			if err := s.Services.Sync.LearnAddress(ctx, p.MAC, p.Contact, "pnp"); err != nil {
				s.Logger.Warn("pnp: address not learned", "mac", p.MAC, "contact", p.Contact, "err", err)
			}
		}
		return
	}
	if s.Services.Discovery == nil {
		return
	}
	ip, _, _ := net.SplitHostPort(source)
	if h, _, err := net.SplitHostPort(p.Contact); err == nil && net.ParseIP(h) != nil {
		ip = h
	}
	d := appliance.Discovered{MAC: p.MAC, Vendor: p.Vendor, Model: p.Model, Firmware: p.Version, IP: ip, Source: "pnp", UserAgent: userAgent(p)}
	if err := s.Services.Discovery.RecordDiscovered(ctx, d); err != nil {
		s.Logger.Warn("pnp: not recorded", "mac", p.MAC, "err", err)
	}
}

func userAgent(p *pnpRequest) string {
	return strings.TrimSpace(strings.Join([]string{p.Vendor, p.Model, p.Version}, " "))
}
