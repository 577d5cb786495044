package dhcpopt

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/provbox/provbox/appliance"
)

// newReply starts a reply to req without the library's random
// transaction id (the request's is copied anyway).
func newReply(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	resp := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		Flags:         req.Flags,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: req.GatewayIPAddr,
		ClientHWAddr:  req.ClientHWAddr,
		Options:       make(dhcpv4.Options, 12),
	}
	// RFC 6842: the client identifier goes back; RFC 3046: so does the
	// relay agent information.
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionClientIdentifier, dhcpv4.OptionRelayAgentInformation} {
		if v := req.Options.Get(code); v != nil {
			resp.Options[code.Code()] = v
		}
	}
	return resp
}

// macOf is the canonical MAC of a checked request.
func macOf(req *dhcpv4.DHCPv4) string { return hex.EncodeToString(req.ClientHWAddr) }

// run answers one request: check drops what this server must not answer,
// wanted drops non-phones when PhonesOnly is set, the lease state machine
// (DISCOVER, REQUEST in its four flavours, RELEASE, DECLINE, INFORM) makes
// the reply and the lease change it waits on, and addOptions writes the
// options. It never waits on the store: the caller commits the change
// before the reply leaves (serve through the committer, tests through
// handle). Only an offer waiting for the conflict check blocks.
func (s *Server) run(req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *change) {
	if !s.check(req) || !s.wanted(req) {
		return nil, nil
	}
	resp := newReply(req)
	var c *change
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		resp = s.offer(req, resp)
	case dhcpv4.MessageTypeRequest:
		resp, c = s.request(req, resp)
	case dhcpv4.MessageTypeRelease:
		return nil, s.release(req)
	case dhcpv4.MessageTypeDecline:
		return nil, s.decline(req)
	case dhcpv4.MessageTypeInform:
		// RFC 2131 §4.3.5: parameters only; no address, no lease time.
		resp.Options[dhcpv4.OptionDHCPMessageType.Code()] = []byte{byte(dhcpv4.MessageTypeAck)}
		resp.ClientIPAddr = req.ClientIPAddr
	}
	if resp != nil && resp.MessageType() != dhcpv4.MessageTypeNak {
		s.addOptions(req, resp)
	}
	return resp, c
}

// check reports whether this server may answer req at all: not a reply,
// an Ethernet client, a known message type, sane option lengths, a
// unicast MAC, and if relayed, from the subnet it serves.
func (s *Server) check(req *dhcpv4.DHCPv4) bool {
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 || req.HopCount > 16 {
		return false
	}
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeInform:
	default:
		return false
	}
	if len(req.Options.Get(dhcpv4.OptionDHCPMessageType)) != 1 {
		return false
	}
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionRequestedIPAddress, dhcpv4.OptionServerIdentifier} {
		if v := req.Options.Get(code); v != nil && len(v) != 4 {
			return false
		}
	}
	for _, ip := range []net.IP{req.ClientIPAddr, req.GatewayIPAddr} {
		if ip != nil && ip.To4() == nil {
			return false
		}
	}
	if _, err := appliance.ParseMAC(macOf(req)); err != nil {
		return false
	}
	if g, ok := toIP4(req.GatewayIPAddr); ok && g != 0 && !s.pool.inSubnet(g) {
		s.logs.info(s.Logger, "relay:"+req.GatewayIPAddr.String(), "dhcp: ignoring requests relayed from a subnet this server does not serve",
			"giaddr", req.GatewayIPAddr.String())
		return false
	}
	return true
}

// wanted drops non-phones when PhonesOnly is set.
func (s *Server) wanted(req *dhcpv4.DHCPv4) bool {
	if !s.PhonesOnly {
		return true
	}
	mac := macOf(req)
	if PhoneVendor(s.Catalog, mac, req.ClassIdentifier()) == "" {
		s.logs.info(s.Logger, "notphone:"+mac, "dhcp: ignoring a client that is not a phone (dhcp.phones_only)",
			"mac", appliance.FormatMAC(mac), "vendor_class", clean(req.ClassIdentifier()), "hostname", clean(req.HostName()))
		return false
	}
	return true
}

// offer picks an address for a DISCOVER and holds it for offerHold. The
// offer is not stored: it promises nothing a crash could break. A client
// whose offer was lost with a restart sends its REQUEST to a server that
// re-validates it against the pool loaded from the store (availableTo): the
// address is ACKed, and then stored before the ACK leaves, only if nobody
// else holds it; otherwise the client gets a NAK and starts over (RFC 2131
// §4.3.2). So an OFFER costs no write and no fsync.
func (s *Server) offer(req, resp *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	mac := macOf(req)
	want, _ := toIP4(req.RequestedIPAddress())
	hostname, vendor := clean(req.HostName()), clean(req.ClassIdentifier())
	var skip map[ip4]bool
	for attempt := 0; attempt < 4; attempt++ {
		now := s.Now()
		s.mu.Lock()
		a, live, ok := s.pool.pick(mac, want, now, skip)
		if !ok {
			s.mu.Unlock()
			s.logs.warn(s.Logger, "exhausted", "dhcp: no free address in the pool; widen range_start-range_end or shorten lease_time",
				"mac", appliance.FormatMAC(mac))
			return nil
		}
		if l := s.pool.byIP[a]; !live || l.state == appliance.LeaseOffered {
			s.pool.set(a, mac, hostname, vendor, appliance.LeaseOffered, now.Add(offerHold))
		}
		s.mu.Unlock()
		if live || s.prober == nil || !s.prober.inUse(s.ctx, a) {
			resp.Options[dhcpv4.OptionDHCPMessageType.Code()] = []byte{byte(dhcpv4.MessageTypeOffer)}
			resp.YourIPAddr = a.IP()
			resp.Options[dhcpv4.OptionIPAddressLeaseTime.Code()] = s.static.leaseTime
			return resp
		}
		// Something answers for a: quarantine it, try another.
		s.mu.Lock()
		rec := s.pool.set(a, "", "", "", appliance.LeaseDeclined, s.Now().Add(s.DeclineQuarantine)).record()
		s.mu.Unlock()
		s.Logger.Warn("dhcp: address in the pool is already in use by a device without a lease; skipping it for a while",
			"ip", a.String(), "quarantine", s.DeclineQuarantine.String())
		go s.save(rec)
		if skip == nil {
			skip = map[ip4]bool{}
		}
		skip[a] = true
	}
	return nil
}

// request answers a REQUEST: an ACK with the lease change it waits on, a
// NAK, or nothing (the client chose another server).
func (s *Server) request(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *change) {
	mac := macOf(req)
	now := s.Now()
	sid, hasSID := toIP4(req.ServerIdentifier())
	if hasSID && sid != s.serverIP {
		// SELECTING another server's offer: ours is free again.
		s.mu.Lock()
		if l := s.pool.byMAC[mac]; l != nil && l.state == appliance.LeaseOffered && l.mac == mac {
			s.pool.set(l.ip, mac, "", "", appliance.LeaseOffered, now)
		}
		s.mu.Unlock()
		return nil, nil
	}
	var a ip4
	var ok bool
	if a, ok = toIP4(req.RequestedIPAddress()); !ok || a == 0 {
		a, ok = toIP4(req.ClientIPAddr) // RENEWING or REBINDING
	}
	if !ok || a == 0 {
		return s.nak(resp, "no address requested"), nil
	}
	hostname, vendor := clean(req.HostName()), clean(req.ClassIdentifier())
	s.mu.Lock()
	if !s.pool.availableTo(a, mac, now) {
		s.mu.Unlock()
		if !s.pool.inSubnet(a) {
			return s.nak(resp, "wrong network"), nil
		}
		return s.nak(resp, "address not available"), nil
	}
	// A client asking again for a lease it got moments ago (a reboot storm,
	// a retransmission) is answered from the stored lease, with the time it
	// has left, without a write: ISC dhcpd's dhcp-cache-threshold, 25 %.
	// Not while that lease is still being committed: the answer would
	// promise what is not on disk yet.
	if l := s.pool.byIP[a]; l != nil && l.mac == mac && l.state == appliance.LeaseBound && l.unsaved == 0 &&
		(hostname == "" || hostname == l.hostname) && (vendor == "" || vendor == l.vendor) && l.expires.Sub(now) > s.LeaseTime*3/4 {
		left := l.expires.Sub(now)
		s.mu.Unlock()
		return s.ack(req, resp, a, left), nil
	}
	c := &change{mac: mac, vendor: vendor}
	if prev := s.pool.previous(mac, a, now); prev != nil {
		c.recs = append(c.recs, s.pool.set(prev.ip, mac, "", "", appliance.LeaseReleased, now).record())
	}
	c.bound = s.pool.set(a, mac, hostname, vendor, appliance.LeaseBound, now.Add(s.LeaseTime))
	c.bound.unsaved++
	c.recs = append(c.recs, c.bound.record())
	s.mu.Unlock()
	return s.ack(req, resp, a, s.LeaseTime), c
}

// ack makes resp the DHCPACK of address a for lease seconds.
func (s *Server) ack(req, resp *dhcpv4.DHCPv4, a ip4, lease time.Duration) *dhcpv4.DHCPv4 {
	resp.Options[dhcpv4.OptionDHCPMessageType.Code()] = []byte{byte(dhcpv4.MessageTypeAck)}
	resp.YourIPAddr = a.IP()
	resp.ClientIPAddr = req.ClientIPAddr
	if lease == s.LeaseTime {
		resp.Options[dhcpv4.OptionIPAddressLeaseTime.Code()] = s.static.leaseTime
	} else {
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, uint32(lease/time.Second))
		resp.Options[dhcpv4.OptionIPAddressLeaseTime.Code()] = b
	}
	return resp
}

// nak makes resp a DHCPNAK: only the message type, server id and a message.
func (s *Server) nak(resp *dhcpv4.DHCPv4, why string) *dhcpv4.DHCPv4 {
	resp.Options[dhcpv4.OptionDHCPMessageType.Code()] = []byte{byte(dhcpv4.MessageTypeNak)}
	resp.Options[dhcpv4.OptionServerIdentifier.Code()] = s.static.serverID
	resp.Options[dhcpv4.OptionMessage.Code()] = []byte(why)
	resp.Flags |= 0x8000 // broadcast, RFC 2131 §4.3.2 (relays too)
	return resp
}

// ours reports a RELEASE or DECLINE meant for this server.
func (s *Server) ours(req *dhcpv4.DHCPv4) bool {
	sid, ok := toIP4(req.ServerIdentifier())
	return !ok || sid == s.serverIP
}

// release frees the client's bound address; the change is stored like an
// ACK's, with no reply.
func (s *Server) release(req *dhcpv4.DHCPv4) *change {
	a, ok := toIP4(req.ClientIPAddr)
	if !ok || a == 0 || !s.ours(req) {
		return nil
	}
	mac, now := macOf(req), s.Now()
	s.mu.Lock()
	l := s.pool.byIP[a]
	if l == nil || l.mac != mac || l.state != appliance.LeaseBound {
		s.mu.Unlock()
		return nil
	}
	rec := s.pool.set(a, mac, "", "", appliance.LeaseReleased, now).record()
	s.mu.Unlock()
	s.Logger.Debug("dhcp release", "mac", appliance.FormatMAC(mac), "ip", a.String())
	return &change{recs: []*appliance.Lease{rec}}
}

// decline quarantines an address the client found in use.
func (s *Server) decline(req *dhcpv4.DHCPv4) *change {
	a, ok := toIP4(req.RequestedIPAddress())
	if !ok || a == 0 || !s.ours(req) {
		return nil
	}
	mac, now := macOf(req), s.Now()
	s.mu.Lock()
	l := s.pool.byIP[a]
	if l == nil || l.mac != mac || !l.liveFor(mac, now) {
		s.mu.Unlock()
		return nil
	}
	rec := s.pool.set(a, mac, "", "", appliance.LeaseDeclined, now.Add(s.DeclineQuarantine)).record()
	s.mu.Unlock()
	s.Logger.Warn("dhcp: a client declined its address (another device uses it); quarantined",
		"mac", appliance.FormatMAC(mac), "ip", a.String(), "quarantine", s.DeclineQuarantine.String())
	return &change{recs: []*appliance.Lease{rec}}
}

// save stores a conflict found by the check before an offer (nothing
// waits for it).
func (s *Server) save(rec *appliance.Lease) {
	ctx, cancel := context.WithTimeout(s.ctx, commitTimeout)
	defer cancel()
	if err := s.Services.Leases.SaveLeases(ctx, rec); err != nil {
		s.logs.warn(s.Logger, "save", "dhcp: cannot store a lease change", "ip", rec.IP, "state", rec.State, "err", err)
	}
}

// staticOptions are the option values that do not change per packet,
// encoded once.
type staticOptions struct {
	serverID, mask, router, dns, ntp, tftp150, leaseTime []byte
}

func (s *Server) buildStatic() staticOptions {
	ips := func(list []net.IP) []byte {
		var b []byte
		for _, ip := range list {
			if v4 := ip.To4(); v4 != nil {
				b = append(b, v4...)
			}
		}
		return b
	}
	lt := make([]byte, 4)
	secs := s.LeaseTime / time.Second
	if secs > 0xfffffffe {
		secs = 0xfffffffe
	}
	binary.BigEndian.PutUint32(lt, uint32(secs))
	st := staticOptions{
		serverID:  s.serverIP.IP(),
		mask:      s.pool.mask.IP(),
		router:    ips([]net.IP{s.Router}),
		dns:       ips(s.DNS),
		ntp:       ips(s.NTP),
		leaseTime: lt,
	}
	if s.TFTP {
		st.tftp150 = st.serverID
	}
	return st
}

// addOptions writes the options of an OFFER or ACK: always 53, 54, 1 and
// (but for INFORM) 51; the others — 3, 6, 42, 66, 150, 160 — when the
// client lists them in option 55, or every one when it sends no list
// (RFC 2131 §4.3.1, RFC 2132 §9.8).
func (s *Server) addOptions(req, resp *dhcpv4.DHCPv4) {
	o := resp.Options
	o[dhcpv4.OptionServerIdentifier.Code()] = s.static.serverID
	o[dhcpv4.OptionSubnetMask.Code()] = s.static.mask
	prl, hasPRL := req.Options[dhcpv4.OptionParameterRequestList.Code()]
	asked := func(code dhcpv4.OptionCode) bool {
		if !hasPRL {
			return true
		}
		for _, c := range prl {
			if c == code.Code() {
				return true
			}
		}
		return false
	}
	put := func(code dhcpv4.OptionCode, v []byte) {
		if len(v) > 0 && asked(code) {
			o[code.Code()] = v
		}
	}
	put(dhcpv4.OptionRouter, s.static.router)
	put(dhcpv4.OptionDomainNameServer, s.static.dns)
	put(dhcpv4.OptionNTPServers, s.static.ntp)
	put(dhcpv4.GenericOptionCode(150), s.static.tftp150)
	url := ""
	if s.Services.Settings != nil {
		url = s.Services.Settings.Settings().ProvisioningURL
	}
	if s.Option66 == "tftp" {
		put(dhcpv4.OptionTFTPServerName, []byte("tftp://"+s.ServerIP.String()))
	} else {
		put(dhcpv4.OptionTFTPServerName, []byte(url))
	}
	put(dhcpv4.GenericOptionCode(160), []byte(url))
	if s.TFTP {
		resp.ServerIPAddr = s.ServerIP.To4()
	}
}

// Phone vendors by option 60 (vendor class identifier), from
// shared/reference/yealink.md §7: a lowercase substring and the vendor.
var vendorClasses = []struct{ match, vendor string }{
	{"yealink", "Yealink"}, {"polycom", "Polycom"}, {"grandstream", "Grandstream"}, {"snom", "Snom"},
	{"fanvil", "Fanvil"}, {"linksys", "Linksys"}, {"cisco systems, inc. ip phone", "Cisco"}, {"cisco spa", "Cisco"},
	{"cisco cp-", "Cisco"}, {"cisco ip phone", "Cisco"}, {"aastra", "Aastra"}, {"mitel", "Mitel"}, {"gigaset", "Gigaset"},
	{"htek", "Htek"}, {"avaya", "Avaya"}, {"alcatel", "Alcatel-Lucent"},
}

// PhoneVendor names the phone vendor of a client from its MAC prefix (the
// catalog's; c may be nil) or its option 60, or "" for anything else.
// Cisco counts only with a phone in the class ("Cisco Systems, Inc. IP
// Phone CP-7940G"), not for its switches and access points.
func PhoneVendor(c *appliance.Catalog, mac, class string) string {
	if c != nil {
		if v := c.VendorByMAC(mac); v != "" {
			return v
		}
	}
	lc := strings.ToLower(class)
	for _, vc := range vendorClasses {
		if strings.Contains(lc, vc.match) {
			return vc.vendor
		}
	}
	return ""
}

// clean keeps network text printable and short for logs and the store.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "")
}
