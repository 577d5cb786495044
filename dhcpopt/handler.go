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

// check drops what this server must not answer: replies, non-Ethernet
// clients, unknown message types, bad option lengths, multicast or zero
// MACs, and relayed requests from a subnet it does not serve.
func (s *Server) check(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
	if req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 || req.HopCount > 16 {
		return nil, true
	}
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline, dhcpv4.MessageTypeInform:
	default:
		return nil, true
	}
	if len(req.Options.Get(dhcpv4.OptionDHCPMessageType)) != 1 {
		return nil, true
	}
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionRequestedIPAddress, dhcpv4.OptionServerIdentifier} {
		if v := req.Options.Get(code); v != nil && len(v) != 4 {
			return nil, true
		}
	}
	for _, ip := range []net.IP{req.ClientIPAddr, req.GatewayIPAddr} {
		if ip != nil && ip.To4() == nil {
			return nil, true
		}
	}
	if _, err := appliance.ParseMAC(macOf(req)); err != nil {
		return nil, true
	}
	if g, ok := toIP4(req.GatewayIPAddr); ok && g != 0 && !s.pool.inSubnet(g) {
		s.logs.info(s.Logger, "relay:"+req.GatewayIPAddr.String(), "dhcp: ignoring requests relayed from a subnet this server does not serve",
			"giaddr", req.GatewayIPAddr.String())
		return nil, true
	}
	return resp, false
}

// filterPhones drops non-phones when PhonesOnly is set.
func (s *Server) filterPhones(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
	if !s.PhonesOnly {
		return resp, false
	}
	mac := macOf(req)
	if PhoneVendor(s.Catalog, mac, req.ClassIdentifier()) == "" {
		s.logs.info(s.Logger, "notphone:"+mac, "dhcp: ignoring a client that is not a phone (dhcp.phones_only)",
			"mac", appliance.FormatMAC(mac), "vendor_class", clean(req.ClassIdentifier()), "hostname", clean(req.HostName()))
		return nil, true
	}
	return resp, false
}

// assign runs the lease state machine.
func (s *Server) assign(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return s.offer(req, resp)
	case dhcpv4.MessageTypeRequest:
		return s.request(req, resp)
	case dhcpv4.MessageTypeRelease:
		s.release(req)
		return nil, true
	case dhcpv4.MessageTypeDecline:
		s.decline(req)
		return nil, true
	case dhcpv4.MessageTypeInform:
		// RFC 2131 §4.3.5: parameters only; no address, no lease time.
		resp.Options[dhcpv4.OptionDHCPMessageType.Code()] = []byte{byte(dhcpv4.MessageTypeAck)}
		resp.ClientIPAddr = req.ClientIPAddr
		return resp, false
	}
	return nil, true
}

func (s *Server) offer(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
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
			return nil, true
		}
		if l := s.pool.byIP[a]; !live || l.state == appliance.LeaseOffered {
			s.pool.set(a, mac, hostname, vendor, appliance.LeaseOffered, now.Add(offerHold))
		}
		s.mu.Unlock()
		if live || s.prober == nil || !s.prober.inUse(s.ctx, a) {
			resp.Options[dhcpv4.OptionDHCPMessageType.Code()] = []byte{byte(dhcpv4.MessageTypeOffer)}
			resp.YourIPAddr = a.IP()
			resp.Options[dhcpv4.OptionIPAddressLeaseTime.Code()] = s.static.leaseTime
			return resp, false
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
	return nil, true
}

func (s *Server) request(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
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
		return nil, true
	}
	var a ip4
	var ok bool
	if a, ok = toIP4(req.RequestedIPAddress()); !ok || a == 0 {
		a, ok = toIP4(req.ClientIPAddr) // RENEWING or REBINDING
	}
	if !ok || a == 0 {
		return s.nak(resp, "no address requested")
	}
	hostname, vendor := clean(req.HostName()), clean(req.ClassIdentifier())
	s.mu.Lock()
	if !s.pool.availableTo(a, mac, now) {
		s.mu.Unlock()
		if !s.pool.inSubnet(a) {
			return s.nak(resp, "wrong network")
		}
		return s.nak(resp, "address not available")
	}
	// A client asking again for a lease it got moments ago (a reboot storm,
	// a retransmission) is answered from the stored lease, with the time it
	// has left, without a write: ISC dhcpd's dhcp-cache-threshold, 25 %.
	if l := s.pool.byIP[a]; l != nil && l.mac == mac && l.state == appliance.LeaseBound && (hostname == "" || hostname == l.hostname) &&
		(vendor == "" || vendor == l.vendor) && l.expires.Sub(now) > s.LeaseTime*3/4 {
		left := l.expires.Sub(now)
		s.mu.Unlock()
		return s.ack(req, resp, a, left), false
	}
	var recs []*appliance.Lease
	if prev := s.pool.previous(mac, a, now); prev != nil {
		recs = append(recs, s.pool.set(prev.ip, mac, "", "", appliance.LeaseReleased, now).record())
	}
	l := s.pool.set(a, mac, hostname, vendor, appliance.LeaseBound, now.Add(s.LeaseTime))
	rec := l.record()
	recs = append(recs, rec)
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(s.ctx, commitTimeout)
	defer cancel()
	if err := s.Services.Leases.SaveLeases(ctx, recs...); err != nil {
		// No ACK without a stored lease; the client asks again.
		s.mu.Lock()
		if l.mac == mac && l.state == appliance.LeaseBound {
			s.pool.set(a, mac, "", "", appliance.LeaseOffered, now)
		}
		s.mu.Unlock()
		s.logs.warn(s.Logger, "save", "dhcp: cannot store a lease; not acknowledging it", "ip", a.String(), "err", err)
		return nil, true
	}
	s.learn.add(learnItem{mac: mac, ip: a.String(), vendor: PhoneVendor(s.Catalog, mac, vendor), phone: rec.Phone})
	s.Logger.Debug("dhcp lease", "mac", appliance.FormatMAC(mac), "ip", a.String(), "hostname", hostname, "vendor", vendor)
	return s.ack(req, resp, a, s.LeaseTime), false
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

// nak answers DHCPNAK: only the message type, server id and a message.
func (s *Server) nak(resp *dhcpv4.DHCPv4, why string) (*dhcpv4.DHCPv4, bool) {
	resp.Options[dhcpv4.OptionDHCPMessageType.Code()] = []byte{byte(dhcpv4.MessageTypeNak)}
	resp.Options[dhcpv4.OptionServerIdentifier.Code()] = s.static.serverID
	resp.Options[dhcpv4.OptionMessage.Code()] = []byte(why)
	resp.Flags |= 0x8000 // broadcast, RFC 2131 §4.3.2 (relays too)
	return resp, true
}

// ours reports a RELEASE or DECLINE meant for this server.
func (s *Server) ours(req *dhcpv4.DHCPv4) bool {
	sid, ok := toIP4(req.ServerIdentifier())
	return !ok || sid == s.serverIP
}

func (s *Server) release(req *dhcpv4.DHCPv4) {
	a, ok := toIP4(req.ClientIPAddr)
	if !ok || a == 0 || !s.ours(req) {
		return
	}
	mac, now := macOf(req), s.Now()
	s.mu.Lock()
	l := s.pool.byIP[a]
	if l == nil || l.mac != mac || l.state != appliance.LeaseBound {
		s.mu.Unlock()
		return
	}
	rec := s.pool.set(a, mac, "", "", appliance.LeaseReleased, now).record()
	s.mu.Unlock()
	s.save(rec)
	s.Logger.Debug("dhcp release", "mac", appliance.FormatMAC(mac), "ip", a.String())
}

func (s *Server) decline(req *dhcpv4.DHCPv4) {
	a, ok := toIP4(req.RequestedIPAddress())
	if !ok || a == 0 || !s.ours(req) {
		return
	}
	mac, now := macOf(req), s.Now()
	s.mu.Lock()
	l := s.pool.byIP[a]
	if l == nil || l.mac != mac || !l.liveFor(mac, now) {
		s.mu.Unlock()
		return
	}
	rec := s.pool.set(a, mac, "", "", appliance.LeaseDeclined, now.Add(s.DeclineQuarantine)).record()
	s.mu.Unlock()
	s.save(rec)
	s.Logger.Warn("dhcp: a client declined its address (another device uses it); quarantined",
		"mac", appliance.FormatMAC(mac), "ip", a.String(), "quarantine", s.DeclineQuarantine.String())
}

// save stores lease changes that answer nothing (RELEASE, DECLINE,
// conflicts).
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
func (s *Server) addOptions(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
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
	return resp, false
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
