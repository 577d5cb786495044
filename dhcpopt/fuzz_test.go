package dhcpopt

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandler feeds arbitrary packets (as server4 would, after parsing)
// through the whole chain: it must never panic, and whatever it answers
// must be a reply to that request with an address from the pool.
func FuzzHandler(f *testing.F) {
	seed := func(mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) {
		f.Add(msg(f, mt, yealinkMAC, mods...).ToBytes())
	}
	seed(dhcpv4.MessageTypeDiscover, withPRL(prlPhone...), withClass("yealink"))
	seed(dhcpv4.MessageTypeRequest, withServerID("10.0.0.1"), withRequested("10.0.0.100"))
	seed(dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 100)))
	seed(dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 100)))
	seed(dhcpv4.MessageTypeDecline, withRequested("10.0.0.100"))
	seed(dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 7)))
	seed(dhcpv4.MessageTypeDiscover, func(m *dhcpv4.DHCPv4) { m.GatewayIPAddr = net.IPv4(10, 0, 0, 2) })
	ts := newTestServer(f, func(s *Server, f *fakeLeases) { s.PhonesOnly = true; s.TFTP = true })
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		resp := ts.handle(req)
		if resp == nil {
			return
		}
		out, err := dhcpv4.FromBytes(resp.ToBytes())
		if err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if out.OpCode != dhcpv4.OpcodeBootReply || out.TransactionID != req.TransactionID || out.ClientHWAddr.String() != req.ClientHWAddr.String() {
			t.Fatalf("not a reply to the request: %s", out.Summary())
		}
		switch out.MessageType() {
		case dhcpv4.MessageTypeOffer, dhcpv4.MessageTypeAck:
			if a, ok := toIP4(out.YourIPAddr); ok && a != 0 && !ts.pool.usable(a) {
				t.Fatalf("handed out %s", out.YourIPAddr)
			}
		case dhcpv4.MessageTypeNak:
		default:
			t.Fatalf("answered with %s", out.MessageType())
		}
		replyTo(req, resp)
	})
}
