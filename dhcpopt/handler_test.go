package dhcpopt

import (
	"context"
	"errors"
	"fmt"
	"github.com/provbox/provbox/configs"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/provbox/provbox/appliance"
)

// fakeLeases is an in-memory LeaseService.
type fakeLeases struct {
	mu     sync.Mutex
	rows   map[string]appliance.Lease
	resv   []*appliance.Reservation
	phones map[string]string // mac → phone name
	fail   error
	saves  int
}

func newFakeLeases() *fakeLeases {
	return &fakeLeases{rows: map[string]appliance.Lease{}, phones: map[string]string{}}
}

func (f *fakeLeases) FindLeases(context.Context) ([]*appliance.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*appliance.Lease
	for _, l := range f.rows {
		out = append(out, &l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP < out[j].IP })
	return out, nil
}

func (f *fakeLeases) SaveLeases(_ context.Context, leases ...*appliance.Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	for _, l := range leases {
		if err := appliance.ValidateLease(l); err != nil {
			return err
		}
		l.Phone = f.phones[l.MAC]
		f.rows[l.IP] = *l
	}
	f.saves++
	return nil
}

func (f *fakeLeases) row(ip string) (appliance.Lease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.rows[ip]
	return l, ok
}

func (f *fakeLeases) FindReservations(context.Context) ([]*appliance.Reservation, error) {
	return f.resv, nil
}
func (f *fakeLeases) SetReservation(context.Context, string, string) (*appliance.Reservation, error) {
	return nil, errors.New("not in the fake")
}
func (f *fakeLeases) DeleteReservation(context.Context, string) error {
	return errors.New("not in the fake")
}
func (f *fakeLeases) PhoneLeased(context.Context, string) (bool, error) { return false, nil }

type fakeSettings struct{ s appliance.Settings }

func (f *fakeSettings) Settings() appliance.Settings                                    { return f.s }
func (f *fakeSettings) BaseSettings() appliance.Settings                                { return f.s }
func (f *fakeSettings) Overrides() appliance.SettingsOverrides                          { return appliance.SettingsOverrides{} }
func (f *fakeSettings) SetOverrides(context.Context, appliance.SettingsOverrides) error { return nil }

// fakeProber reports the addresses in busy as in use.
type fakeProber struct {
	mu     sync.Mutex
	busy   map[string]bool
	probed []string
}

func (p *fakeProber) inUse(_ context.Context, a ip4) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probed = append(p.probed, a.String())
	return p.busy[a.String()]
}
func (p *fakeProber) close() error { return nil }

const provURL = "http://10.0.0.1:8080/prov/"

type testServer struct {
	*Server
	leases *fakeLeases
	clock  *time.Time
}

func (ts *testServer) advance(d time.Duration) { *ts.clock = ts.clock.Add(d) }

// newTestServer prepares a Server on 10.0.0.0/24 with the pool
// 10.0.0.100-10.0.0.110, without sockets.
func newTestServer(t testing.TB, edit ...func(*Server, *fakeLeases)) *testServer {
	t.Helper()
	clock := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	f := newFakeLeases()
	s := &Server{
		Catalog:    configs.MustCatalog(),
		Interface:  "test0",
		ServerIP:   net.IPv4(10, 0, 0, 1),
		RangeStart: net.IPv4(10, 0, 0, 100),
		RangeEnd:   net.IPv4(10, 0, 0, 110),
		Netmask:    net.IPv4Mask(255, 255, 255, 0),
		Router:     net.IPv4(10, 0, 0, 254),
		DNS:        []net.IP{net.IPv4(10, 0, 0, 53), net.IPv4(9, 9, 9, 9)},
		NTP:        []net.IP{net.IPv4(10, 0, 0, 123)},
		LeaseTime:  time.Hour,
		Services:   appliance.Services{Leases: f, Settings: &fakeSettings{appliance.Settings{ProvisioningURL: provURL, PhoneSIPPort: 5060}}},
		Now:        func() time.Time { return clock },
	}
	for _, e := range edit {
		e(s, f)
	}
	if err := s.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cancel() })
	return &testServer{Server: s, leases: f, clock: &clock}
}

var (
	yealinkMAC = "00:15:65:00:00:01"
	otherMAC   = "02:00:00:00:00:02"
	prlPhone   = []dhcpv4.OptionCode{dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionNTPServers,
		dhcpv4.OptionTFTPServerName, dhcpv4.GenericOptionCode(150), dhcpv4.GenericOptionCode(160)}
)

// msg builds a client message as it would arrive: encoded and decoded.
func msg(t testing.TB, mt dhcpv4.MessageType, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(mt)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return wire(t, m)
}

func wire(t testing.TB, m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	out, err := dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func withPRL(codes ...dhcpv4.OptionCode) dhcpv4.Modifier {
	return dhcpv4.WithRequestedOptions(codes...)
}
func withIP(code dhcpv4.OptionCode, ip string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptGeneric(code, net.ParseIP(ip).To4()))
}
func withServerID(ip string) dhcpv4.Modifier  { return withIP(dhcpv4.OptionServerIdentifier, ip) }
func withRequested(ip string) dhcpv4.Modifier { return withIP(dhcpv4.OptionRequestedIPAddress, ip) }
func withClass(s string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptClassIdentifier(s))
}

// reply runs the chain and decodes the reply as the client would.
func (ts *testServer) reply(t testing.TB, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	resp := ts.handle(req)
	if resp == nil {
		return nil
	}
	return wire(t, resp)
}

// dora runs DISCOVER, REQUEST for a client and returns the ACK.
func (ts *testServer) dora(t testing.TB, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	offer := ts.reply(t, msg(t, dhcpv4.MessageTypeDiscover, mac, mods...))
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("%s: no offer: %v", mac, offer)
	}
	ack := ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, mac, append(mods, withServerID("10.0.0.1"), withRequested(offer.YourIPAddr.String()))...))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("%s: no ack for %s: %v", mac, offer.YourIPAddr, ack)
	}
	return ack
}

func TestDORA(t *testing.T) {
	ts := newTestServer(t)
	ts.leases.phones["001565000001"] = "Front desk"
	offer := ts.reply(t, msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, withPRL(prlPhone...), withClass("yealink"),
		dhcpv4.WithOption(dhcpv4.OptHostName("SIP-T46G"))))
	if offer.MessageType() != dhcpv4.MessageTypeOffer || offer.YourIPAddr.String() != "10.0.0.100" || offer.OpCode != dhcpv4.OpcodeBootReply {
		t.Fatalf("offer: %s", offer.Summary())
	}
	if _, ok := ts.leases.row("10.0.0.100"); ok {
		t.Fatal("an offer was stored")
	}
	ack := ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, yealinkMAC, withPRL(prlPhone...), withClass("yealink"),
		withServerID("10.0.0.1"), withRequested("10.0.0.100"), dhcpv4.WithOption(dhcpv4.OptHostName("SIP-T46G"))))
	if ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != "10.0.0.100" {
		t.Fatalf("ack: %s", ack.Summary())
	}
	for _, m := range []*dhcpv4.DHCPv4{offer, ack} {
		checks := map[string][2]string{
			"mask":    {net.IP(m.SubnetMask()).String(), "255.255.255.0"},
			"router":  {fmt.Sprint(m.Router()), "[10.0.0.254]"},
			"dns":     {fmt.Sprint(m.DNS()), "[10.0.0.53 9.9.9.9]"},
			"ntp":     {fmt.Sprint(m.NTPServers()), "[10.0.0.123]"},
			"lease":   {m.IPAddressLeaseTime(0).String(), "1h0m0s"},
			"sid":     {m.ServerIdentifier().String(), "10.0.0.1"},
			"66":      {m.TFTPServerName(), provURL},
			"160":     {string(m.Options.Get(dhcpv4.GenericOptionCode(160))), provURL},
			"150":     {fmt.Sprint(m.Options.Has(dhcpv4.GenericOptionCode(150))), "false"}, // TFTP not served
			"sname":   {m.ServerHostName, ""},
			"siaddr":  {m.ServerIPAddr.String(), "0.0.0.0"},
			"xid":     {m.TransactionID.String(), m.TransactionID.String()},
			"chaddr":  {m.ClientHWAddr.String(), yealinkMAC},
			"giaddr":  {m.GatewayIPAddr.String(), "0.0.0.0"},
			"ciaddr":  {m.ClientIPAddr.String(), "0.0.0.0"},
			"bootrep": {m.OpCode.String(), "BootReply"},
		}
		for name, c := range checks {
			if c[0] != c[1] {
				t.Errorf("%s %s: got %q want %q", m.MessageType(), name, c[0], c[1])
			}
		}
	}
	row, ok := ts.leases.row("10.0.0.100")
	if !ok || row.MAC != "001565000001" || row.State != appliance.LeaseBound || row.Hostname != "SIP-T46G" || row.Vendor != "yealink" ||
		!row.ExpiresAt.Equal(ts.Now().Add(time.Hour)) {
		t.Fatalf("stored: %+v", row)
	}
	select {
	case it := <-ts.learn.c:
		if it.mac != "001565000001" || it.ip != "10.0.0.100" || it.phone != "Front desk" || it.vendor != "Yealink" {
			t.Fatalf("learned %+v", it)
		}
	default:
		t.Fatal("nothing learned")
	}
	// A second client gets another address; a non-phone teaches nothing.
	ack2 := ts.dora(t, otherMAC)
	if ack2.YourIPAddr.String() != "10.0.0.101" {
		t.Fatalf("second client: %s", ack2.YourIPAddr)
	}
	if len(ts.learn.c) != 0 {
		t.Fatal("a non-phone was learned")
	}
}

// TestOptions: only what option 55 asks for, plus 1, 51, 53, 54; every
// option when there is no list.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Server, *fakeLeases)
		prl   []dhcpv4.OptionCode // nil: no option 55
		want  []uint8
		opt66 string
	}{
		{"asks 3 only", nil, []dhcpv4.OptionCode{dhcpv4.OptionRouter}, []uint8{1, 3, 51, 53, 54}, ""},
		{"asks nothing we have", nil, []dhcpv4.OptionCode{dhcpv4.OptionDomainName}, []uint8{1, 51, 53, 54}, ""},
		{"no list: everything", nil, nil, []uint8{1, 3, 6, 42, 51, 53, 54, 66, 160}, provURL},
		{"phone list", nil, prlPhone, []uint8{1, 3, 6, 42, 51, 53, 54, 66, 160}, provURL},
		{"tftp served: 150", func(s *Server, _ *fakeLeases) { s.TFTP = true }, prlPhone, []uint8{1, 3, 6, 42, 51, 53, 54, 66, 150, 160}, provURL},
		{"option66 tftp", func(s *Server, _ *fakeLeases) { s.TFTP, s.Option66 = true, "tftp" },
			[]dhcpv4.OptionCode{dhcpv4.OptionTFTPServerName}, []uint8{1, 51, 53, 54, 66}, "tftp://10.0.0.1"},
		{"no router, dns, ntp configured", func(s *Server, _ *fakeLeases) { s.Router, s.DNS, s.NTP = nil, nil, nil }, prlPhone,
			[]uint8{1, 51, 53, 54, 66, 160}, provURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var edits []func(*Server, *fakeLeases)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			ts := newTestServer(t, edits...)
			var mods []dhcpv4.Modifier
			if tc.prl != nil {
				mods = append(mods, withPRL(tc.prl...))
			}
			req := msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, mods...)
			if tc.prl == nil {
				req.Options.Del(dhcpv4.OptionParameterRequestList)
			}
			offer := ts.reply(t, req)
			var got []uint8
			for code := range offer.Options {
				got = append(got, code)
			}
			sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("options %v, want %v", got, tc.want)
			}
			if offer.TFTPServerName() != tc.opt66 {
				t.Fatalf("option 66 %q, want %q", offer.TFTPServerName(), tc.opt66)
			}
			if ts.TFTP != offer.ServerIPAddr.Equal(ts.ServerIP) {
				t.Fatalf("siaddr %s with TFTP %v", offer.ServerIPAddr, ts.TFTP)
			}
		})
	}
}

// TestReplyTo: RFC 2131 §4.1 destinations.
func TestReplyTo(t *testing.T) {
	ts := newTestServer(t)
	relayed := func(m *dhcpv4.DHCPv4) { m.GatewayIPAddr = net.IPv4(10, 0, 0, 2) }
	for _, tc := range []struct {
		name string
		req  *dhcpv4.DHCPv4
		want string
		l2   bool
	}{
		{"plain discover: unicast to chaddr", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC), "10.0.0.100:68", true},
		{"broadcast flag", msg(t, dhcpv4.MessageTypeDiscover, "00:15:65:00:00:03", dhcpv4.WithBroadcast(true)), "255.255.255.255:68", false},
		{"relayed", msg(t, dhcpv4.MessageTypeDiscover, "00:15:65:00:00:04", relayed), "10.0.0.2:67", false},
		{"relayed with broadcast flag", msg(t, dhcpv4.MessageTypeDiscover, "00:15:65:00:00:05", relayed, dhcpv4.WithBroadcast(true)), "10.0.0.2:67", false},
		{"inform from a configured client", msg(t, dhcpv4.MessageTypeInform, "00:15:65:00:00:06", dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 7))), "10.0.0.7:68", false},
		{"nak", msg(t, dhcpv4.MessageTypeRequest, "00:15:65:00:00:07", withRequested("192.168.9.9")), "255.255.255.255:68", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := ts.handle(tc.req)
			if resp == nil {
				t.Fatal("no reply")
			}
			dst, l2 := replyTo(tc.req, resp)
			if dst.String() != tc.want || l2 != tc.l2 {
				t.Fatalf("to %s l2=%v, want %s l2=%v", dst, l2, tc.want, tc.l2)
			}
			if tc.req.IsBroadcast() && !resp.IsBroadcast() {
				t.Fatal("broadcast flag not kept")
			}
		})
	}
}

// TestMalformed: what must get no answer at all.
func TestMalformed(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		name string
		req  *dhcpv4.DHCPv4
	}{
		{"a reply", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, func(m *dhcpv4.DHCPv4) { m.OpCode = dhcpv4.OpcodeBootReply })},
		{"an offer from a client", msg(t, dhcpv4.MessageTypeOffer, yealinkMAC)},
		{"no message type", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, dhcpv4.WithoutOption(dhcpv4.OptionDHCPMessageType))},
		{"message type too long", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, dhcpv4.WithGeneric(dhcpv4.OptionDHCPMessageType, []byte{1, 1}))},
		{"unknown message type", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, dhcpv4.WithGeneric(dhcpv4.OptionDHCPMessageType, []byte{99}))},
		{"short requested address", msg(t, dhcpv4.MessageTypeRequest, yealinkMAC, dhcpv4.WithGeneric(dhcpv4.OptionRequestedIPAddress, []byte{10, 0, 0}))},
		{"long server id", msg(t, dhcpv4.MessageTypeRequest, yealinkMAC, dhcpv4.WithGeneric(dhcpv4.OptionServerIdentifier, []byte{10, 0, 0, 1, 1}))},
		{"token ring", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, func(m *dhcpv4.DHCPv4) { m.HWType = 6 })},
		{"no hardware address", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = nil })},
		{"multicast MAC", msg(t, dhcpv4.MessageTypeDiscover, "01:00:5e:00:00:01")},
		{"zero MAC", msg(t, dhcpv4.MessageTypeDiscover, "00:00:00:00:00:00")},
		{"relayed from another subnet", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, func(m *dhcpv4.DHCPv4) { m.GatewayIPAddr = net.IPv4(192, 168, 5, 1) })},
		{"relay loop", msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC, func(m *dhcpv4.DHCPv4) { m.HopCount = 17 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := ts.handle(tc.req); resp != nil {
				t.Fatalf("answered: %s", resp.Summary())
			}
		})
	}
	// Bytes the library cannot even parse never reach the handler; bytes
	// it parses must not crash it (FuzzHandler goes further).
	for _, b := range [][]byte{nil, make([]byte, 240), append(make([]byte, 236), 99, 130, 83, 99, 53, 1)} {
		if m, err := dhcpv4.FromBytes(b); err == nil {
			ts.handle(m)
		}
	}
}

func TestPhonesOnly(t *testing.T) {
	ts := newTestServer(t, func(s *Server, _ *fakeLeases) { s.PhonesOnly = true })
	for _, tc := range []struct {
		name, mac, class string
		answered         bool
	}{
		{"yealink OUI", "80:5e:c0:00:00:01", "", true},
		{"polycom OUI", "00:04:f2:00:00:01", "", true},
		{"option 60 yealink", "02:00:00:00:00:10", "yealink", true},
		{"option 60 snom", "02:00:00:00:00:11", "snomD345", true},
		{"option 60 cisco phone", "02:00:00:00:00:12", "Cisco Systems, Inc. IP Phone CP-7940G\x00", true},
		{"option 60 linksys", "02:00:00:00:00:13", "LINKSYS SPA-942", true},
		{"a PC", "02:00:00:00:00:14", "MSFT 5.0", false},
		{"a Cisco access point", "02:00:00:00:00:15", "Cisco AP c1140", false},
		{"nothing known", "02:00:00:00:00:16", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mods []dhcpv4.Modifier
			if tc.class != "" {
				mods = append(mods, withClass(tc.class))
			}
			resp := ts.handle(msg(t, dhcpv4.MessageTypeDiscover, tc.mac, mods...))
			if (resp != nil) != tc.answered {
				t.Fatalf("answered %v, want %v", resp != nil, tc.answered)
			}
		})
	}
}

// TestRequest: the REQUEST flavours of RFC 2131 §4.3.2 and their NAKs.
func TestRequest(t *testing.T) {
	ts := newTestServer(t)
	ts.dora(t, yealinkMAC) // holds .100
	for _, tc := range []struct {
		name string
		mac  string
		mods []dhcpv4.Modifier
		want string // message type, or "none"
		ip   string
		nak  string
	}{
		{"renewing (ciaddr, unicast)", yealinkMAC, []dhcpv4.Modifier{dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 100))}, "ACK", "10.0.0.100", ""},
		{"rebinding (ciaddr, broadcast)", yealinkMAC, []dhcpv4.Modifier{dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 100)), dhcpv4.WithBroadcast(true)}, "ACK", "10.0.0.100", ""},
		{"init-reboot, own address", yealinkMAC, []dhcpv4.Modifier{withRequested("10.0.0.100")}, "ACK", "10.0.0.100", ""},
		{"init-reboot, another subnet", "00:15:65:00:00:09", []dhcpv4.Modifier{withRequested("192.168.1.50")}, "NAK", "", "wrong network"},
		{"init-reboot, someone else's address", "00:15:65:00:00:09", []dhcpv4.Modifier{withRequested("10.0.0.100")}, "NAK", "", "address not available"},
		{"selecting someone else's address", "00:15:65:00:00:09", []dhcpv4.Modifier{withServerID("10.0.0.1"), withRequested("10.0.0.100")}, "NAK", "", "address not available"},
		{"selecting an address outside the range", "00:15:65:00:00:09", []dhcpv4.Modifier{withServerID("10.0.0.1"), withRequested("10.0.0.20")}, "NAK", "", "address not available"},
		{"selecting the router's address", "00:15:65:00:00:09", []dhcpv4.Modifier{withServerID("10.0.0.1"), withRequested("10.0.0.254")}, "NAK", "", "address not available"},
		{"renewing someone else's address", "00:15:65:00:00:09", []dhcpv4.Modifier{dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 100))}, "NAK", "", "address not available"},
		{"no address at all", "00:15:65:00:00:09", nil, "NAK", "", "no address requested"},
		{"selecting another server", "00:15:65:00:00:09", []dhcpv4.Modifier{withServerID("10.0.0.9"), withRequested("10.0.0.105")}, "none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.advance(time.Minute)
			if tc.want == "ACK" {
				ts.advance(15 * time.Minute) // past the 25 % cache threshold: the lease is renewed and stored
			}
			resp := ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, tc.mac, tc.mods...))
			got := "none"
			if resp != nil {
				got = resp.MessageType().String()
			}
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if resp == nil {
				return
			}
			if tc.ip != "" && resp.YourIPAddr.String() != tc.ip {
				t.Fatalf("yiaddr %s", resp.YourIPAddr)
			}
			if tc.nak != "" && (resp.Message() != tc.nak || !resp.ServerIdentifier().Equal(ts.ServerIP) || !resp.YourIPAddr.IsUnspecified() ||
				resp.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || resp.Options.Has(dhcpv4.OptionTFTPServerName)) {
				t.Fatalf("nak: %s", resp.Summary())
			}
			if tc.want == "ACK" {
				row, _ := ts.leases.row(tc.ip)
				if !row.ExpiresAt.Equal(ts.Now().Add(time.Hour)) {
					t.Fatalf("not extended: %v", row.ExpiresAt)
				}
			}
		})
	}
	// The client that chose another server frees our offer at once.
	mac := "00:15:65:00:00:0a"
	offer := ts.reply(t, msg(t, dhcpv4.MessageTypeDiscover, mac))
	ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, mac, withServerID("10.0.0.9"), withRequested("10.0.0.77")))
	if l := ts.pool.byIP[mustIP4(offer.YourIPAddr)]; !l.free(ts.Now()) {
		t.Fatal("offer still held")
	}
}

func mustIP4(ip net.IP) ip4 {
	a, _ := toIP4(ip)
	return a
}

func TestReleaseDeclineInform(t *testing.T) {
	ts := newTestServer(t)
	ack := ts.dora(t, yealinkMAC)
	ip := ack.YourIPAddr

	// RELEASE for another server or from another MAC changes nothing.
	ts.handle(msg(t, dhcpv4.MessageTypeRelease, yealinkMAC, dhcpv4.WithClientIP(ip), withServerID("10.0.0.9")))
	ts.handle(msg(t, dhcpv4.MessageTypeRelease, otherMAC, dhcpv4.WithClientIP(ip), withServerID("10.0.0.1")))
	if row, _ := ts.leases.row(ip.String()); row.State != appliance.LeaseBound {
		t.Fatalf("released by a stranger: %+v", row)
	}
	if resp := ts.handle(msg(t, dhcpv4.MessageTypeRelease, yealinkMAC, dhcpv4.WithClientIP(ip), withServerID("10.0.0.1"))); resp != nil {
		t.Fatal("RELEASE answered")
	}
	if row, _ := ts.leases.row(ip.String()); row.State != appliance.LeaseReleased || !row.ExpiresAt.Equal(ts.Now()) {
		t.Fatalf("release: %+v", row)
	}
	// It comes back to the same client (affinity).
	ts.advance(time.Minute)
	if again := ts.dora(t, yealinkMAC); !again.YourIPAddr.Equal(ip) {
		t.Fatalf("after release got %s", again.YourIPAddr)
	}

	// DECLINE: quarantined; the client gets another address.
	if resp := ts.handle(msg(t, dhcpv4.MessageTypeDecline, yealinkMAC, withRequested(ip.String()), withServerID("10.0.0.1"))); resp != nil {
		t.Fatal("DECLINE answered")
	}
	row, _ := ts.leases.row(ip.String())
	if row.State != appliance.LeaseDeclined || !row.ExpiresAt.Equal(ts.Now().Add(DefaultDeclineQuarantine)) {
		t.Fatalf("decline: %+v", row)
	}
	next := ts.dora(t, yealinkMAC)
	if next.YourIPAddr.Equal(ip) {
		t.Fatal("declined address offered again")
	}
	// Nobody gets it during the quarantine; after it, it is reusable.
	for i := range 9 {
		ts.dora(t, fmt.Sprintf("00:15:65:00:01:%02x", i))
	}
	if resp := ts.handle(msg(t, dhcpv4.MessageTypeDiscover, "00:15:65:00:02:00")); resp != nil {
		t.Fatalf("pool should be exhausted but offered %s", resp.YourIPAddr)
	}
	ts.advance(DefaultDeclineQuarantine)
	if resp := ts.reply(t, msg(t, dhcpv4.MessageTypeDiscover, "00:15:65:00:02:00")); resp == nil || !resp.YourIPAddr.Equal(ip) {
		t.Fatalf("after quarantine: %v", resp)
	}

	// INFORM: parameters, no address, no lease time.
	inf := ts.reply(t, msg(t, dhcpv4.MessageTypeInform, otherMAC, dhcpv4.WithClientIP(net.IPv4(10, 0, 0, 7)), withPRL(prlPhone...)))
	if inf.MessageType() != dhcpv4.MessageTypeAck || !inf.YourIPAddr.IsUnspecified() || inf.Options.Has(dhcpv4.OptionIPAddressLeaseTime) ||
		inf.TFTPServerName() != provURL || !inf.ClientIPAddr.Equal(net.IPv4(10, 0, 0, 7)) {
		t.Fatalf("inform: %s", inf.Summary())
	}
}

// TestExpiredReusedOldestFirst: with the never-used addresses gone,
// expired leases are reused in the order they expired.
func TestExpiredReusedOldestFirst(t *testing.T) {
	ts := newTestServer(t, func(s *Server, _ *fakeLeases) { s.RangeEnd = net.IPv4(10, 0, 0, 102) })
	// Bound in order .100, .101, .102, renewed so that .101 expires first,
	// then .102, then .100.
	macs := []string{"00:15:65:00:00:a0", "00:15:65:00:00:a1", "00:15:65:00:00:a2"}
	for _, m := range macs {
		ts.dora(t, m)
	}
	for _, i := range []int{1, 2, 0} {
		ts.advance(16 * time.Minute)
		ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, macs[i], dhcpv4.WithClientIP(net.IPv4(10, 0, 0, byte(100+i)))))
	}
	ts.advance(2 * time.Hour)
	for _, want := range []string{"10.0.0.101", "10.0.0.102", "10.0.0.100"} {
		ack := ts.dora(t, fmt.Sprintf("00:15:65:00:00:b%s", want[len(want)-1:]))
		if ack.YourIPAddr.String() != want {
			t.Fatalf("got %s, want %s", ack.YourIPAddr, want)
		}
	}
	// The former holders lost their addresses to newer clients.
	if resp := ts.handle(msg(t, dhcpv4.MessageTypeRequest, macs[0], withRequested("10.0.0.100"))); resp.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatal("old client kept its reused address")
	}
}

func TestReservations(t *testing.T) {
	resv := func(s *Server, f *fakeLeases) {
		f.resv = []*appliance.Reservation{
			{MAC: "001565000001", IP: "10.0.0.105"},  // inside the range
			{MAC: "001565000002", IP: "10.0.0.50"},   // outside the range, in the subnet
			{MAC: "001565000003", IP: "192.168.7.7"}, // another subnet: ignored
		}
		s.RangeEnd = net.IPv4(10, 0, 0, 105)
	}
	ts := newTestServer(t, resv)
	if ack := ts.dora(t, "00:15:65:00:00:01"); ack.YourIPAddr.String() != "10.0.0.105" {
		t.Fatalf("reserved in range: %s", ack.YourIPAddr)
	}
	if ack := ts.dora(t, "00:15:65:00:00:02"); ack.YourIPAddr.String() != "10.0.0.50" {
		t.Fatalf("reserved outside range: %s", ack.YourIPAddr)
	}
	if ack := ts.dora(t, "00:15:65:00:00:03"); ack.YourIPAddr.String() != "10.0.0.100" {
		t.Fatalf("foreign reservation: %s", ack.YourIPAddr)
	}
	// Others never get .105, not even asking for it, not when the pool runs out.
	if resp := ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, otherMAC, withRequested("10.0.0.105"))); resp.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatal("reserved address given away")
	}
	for i := range 4 {
		if ack := ts.dora(t, fmt.Sprintf("02:00:00:00:01:%02x", i)); ack.YourIPAddr.String() == "10.0.0.105" {
			t.Fatal("reserved address given away")
		}
	}
	if resp := ts.handle(msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:02:00")); resp != nil {
		t.Fatalf("offered %s from an exhausted pool", resp.YourIPAddr)
	}
	// A reservation changed at run time (as on EventReservationsChanged).
	ts.mu.Lock()
	ts.pool.setReservations([]*appliance.Reservation{{MAC: "020000000200", IP: "10.0.0.60"}})
	ts.mu.Unlock()
	if ack := ts.dora(t, "02:00:00:00:02:00"); ack.YourIPAddr.String() != "10.0.0.60" {
		t.Fatalf("after reload: %s", ack.YourIPAddr)
	}
}

func TestConflictCheck(t *testing.T) {
	p := &fakeProber{busy: map[string]bool{"10.0.0.100": true, "10.0.0.101": true}}
	ts := newTestServer(t, func(s *Server, _ *fakeLeases) { s.prober = p })
	ack := ts.dora(t, yealinkMAC)
	if ack.YourIPAddr.String() != "10.0.0.102" {
		t.Fatalf("got %s", ack.YourIPAddr)
	}
	time.Sleep(50 * time.Millisecond) // conflicts are stored in the background
	for _, ip := range []string{"10.0.0.100", "10.0.0.101"} {
		if row, ok := ts.leases.row(ip); !ok || row.State != appliance.LeaseDeclined || row.MAC != "" {
			t.Fatalf("%s: %+v", ip, row)
		}
	}
	// The client's own live lease is not probed again.
	p.probed = nil
	ts.reply(t, msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC))
	if len(p.probed) != 0 {
		t.Fatalf("probed %v", p.probed)
	}
}

func TestNoAckWithoutCommit(t *testing.T) {
	ts := newTestServer(t)
	offer := ts.reply(t, msg(t, dhcpv4.MessageTypeDiscover, yealinkMAC))
	ts.leases.fail = errors.New("disk full")
	if resp := ts.handle(msg(t, dhcpv4.MessageTypeRequest, yealinkMAC, withServerID("10.0.0.1"), withRequested(offer.YourIPAddr.String()))); resp != nil {
		t.Fatalf("acked: %s", resp.Summary())
	}
	ts.leases.fail = nil
	ts.dora(t, yealinkMAC)
}

// TestRelay: a relayed exchange (perfdhcp's way) gets answers with giaddr
// kept, for the relay's port 67.
func TestRelay(t *testing.T) {
	ts := newTestServer(t)
	relay := func(m *dhcpv4.DHCPv4) { m.GatewayIPAddr = net.IPv4(10, 0, 0, 2); m.HopCount = 1 }
	ack := ts.dora(t, otherMAC, relay)
	if !ack.GatewayIPAddr.Equal(net.IPv4(10, 0, 0, 2)) {
		t.Fatalf("giaddr %s", ack.GatewayIPAddr)
	}
}

// TestCacheThreshold: a lease asked for again within the first quarter of
// its time is acknowledged from the store's copy, with the time it has
// left, without a write.
func TestCacheThreshold(t *testing.T) {
	ts := newTestServer(t)
	ack := ts.dora(t, yealinkMAC)
	saves := ts.leases.saves
	ts.advance(10 * time.Minute)
	again := ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, yealinkMAC, withRequested(ack.YourIPAddr.String())))
	if again.MessageType() != dhcpv4.MessageTypeAck || again.IPAddressLeaseTime(0) != 50*time.Minute || ts.leases.saves != saves {
		t.Fatalf("cached ack: %s, %d writes", again.Summary(), ts.leases.saves-saves)
	}
	// A new host name is news: stored.
	ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, yealinkMAC, withRequested(ack.YourIPAddr.String()), dhcpv4.WithOption(dhcpv4.OptHostName("desk-7"))))
	if ts.leases.saves != saves+1 {
		t.Fatal("host name change not stored")
	}
	// Past the threshold the lease is renewed in full.
	ts.advance(16 * time.Minute)
	renewed := ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, yealinkMAC, dhcpv4.WithClientIP(ack.YourIPAddr)))
	if renewed.IPAddressLeaseTime(0) != time.Hour || ts.leases.saves != saves+2 {
		t.Fatalf("renewal: %s", renewed.Summary())
	}
}
