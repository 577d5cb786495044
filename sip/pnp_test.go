package sip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

func subscribe(uri, event string) string {
	return "SUBSCRIBE " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.1.3.239:5059;branch=z9hG4bK1234\r\n" +
		"From: <sip:MAC001565f4f9e1@224.0.1.75>;tag=abc\r\n" +
		"To: <sip:MAC001565f4f9e1@224.0.1.75>\r\n" +
		"Call-ID: pnp-1@10.1.3.239\r\n" +
		"CSeq: 1 SUBSCRIBE\r\n" +
		"Contact: <sip:MAC001565f4f9e1@10.1.3.239:5059>\r\n" +
		"User-Agent: Yealink W52P 25.81.0.10\r\n" +
		"Expires: 0\r\n" +
		event +
		"Accept: application/url\r\n" +
		"Content-Length: 0\r\n\r\n"
}

func parseReq(t *testing.T, raw string) *sipmsg.Request {
	t.Helper()
	m, err := sipmsg.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sipmsg.Request)
}

const yealinkEvent = "Event: ua-profile;profile-type=\"device\";vendor=\"yealink\";model=\"W52P\";version=\"25.81.0.10\"\r\n"

func TestParsePnP(t *testing.T) {
	for _, tc := range []struct {
		name, uri, event string
		mac, err         string
	}{
		{"W52P capture", "sip:MAC001565f4f9e1@224.0.1.75", yealinkEvent, "001565f4f9e1", ""},
		{"escaped colon", "sip:MAC%3a001565F4F9E1@224.0.1.75", yealinkEvent, "001565f4f9e1", ""},
		{"escaped upper", "sip:MAC%3A001565f4f9e1@224.0.1.75", yealinkEvent, "001565f4f9e1", ""},
		{"colon", "sip:MAC:001565f4f9e1@224.0.1.75", yealinkEvent, "001565f4f9e1", ""},
		{"lower mac prefix", "sip:mac001565f4f9e1@provision.yealink.com", yealinkEvent, "001565f4f9e1", ""},
		{"vendor Yealink", "sip:MAC001565f4f9e1@224.0.1.75", "Event: UA-Profile;vendor=\"Yealink\";model=\"T53W\"\r\n", "001565f4f9e1", ""},
		{"no mac", "sip:phone@224.0.1.75", yealinkEvent, "", "carries no MAC"},
		{"bad mac", "sip:MACzz1565f4f9e1@224.0.1.75", yealinkEvent, "", "not a MAC"},
		{"other event", "sip:MAC001565f4f9e1@224.0.1.75", "Event: presence\r\n", "", "not a plug-and-play"},
		{"no event", "sip:MAC001565f4f9e1@224.0.1.75", "", "", "not a plug-and-play"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePnP(parseReq(t, subscribe(tc.uri, tc.event)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.MAC != tc.mac || p.Contact != "10.1.3.239:5059" {
				t.Fatalf("%+v", p)
			}
		})
	}
}

func TestPnPAnswer(t *testing.T) {
	req := parseReq(t, subscribe("sip:MAC001565f4f9e1@224.0.1.75", yealinkEvent))
	p, err := parsePnP(req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Vendor != "Yealink" || p.Model != "W52P" || p.Version != "25.81.0.10" {
		t.Fatalf("%+v", p)
	}
	ok := pnpOK(req, "10.1.3.1:5060")
	totag, _ := ok.To().Params.Get("tag")
	if ok.StatusCode != 200 || totag == "" || ok.GetHeader("Expires").Value() != "0" || ok.CallID().Value() != "pnp-1@10.1.3.239" {
		t.Fatalf("200 OK:\n%s", ok)
	}
	if c := ok.Contact(); c == nil || c.Address.String() != "sip:provbox@10.1.3.1:5060" {
		t.Errorf("200 OK Contact = %v, want <sip:provbox@10.1.3.1:5060> (audit §3)", ok.Contact())
	}
	if noAddr := pnpOK(req, ""); noAddr.Contact() != nil {
		t.Errorf("200 OK without a local address carries Contact %v", noAddr.Contact())
	}
	n, err := pnpNotify(req, ok, p, "http://10.1.3.1:8080/prov/", "10.1.3.239:5059", "10.1.3.1:5060")
	if err != nil {
		t.Fatal(err)
	}
	fromtag, _ := n.From().Params.Get("tag")
	ntotag, _ := n.To().Params.Get("tag")
	for _, c := range []struct{ what, got, want string }{
		{"request-uri", n.Recipient.String(), "sip:MAC001565f4f9e1@10.1.3.239:5059"},
		{"call-id", n.CallID().Value(), "pnp-1@10.1.3.239"},
		{"from tag (ours)", fromtag, totag},
		{"to tag (theirs)", ntotag, "abc"},
		{"content-type", n.ContentType().Value(), "application/url"},
		{"body", string(n.Body()), "http://10.1.3.1:8080/prov/"},
		{"event", n.GetHeader("Event").Value(), `ua-profile;profile-type="device";vendor="yealink";model="W52P";version="25.81.0.10"`},
		{"subscription-state", n.GetHeader("Subscription-State").Value(), "terminated;reason=timeout"},
		{"via", n.Via().Host, "10.1.3.1"},
		{"contact", n.Contact().Address.String(), "sip:provbox@10.1.3.1:5060"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !strings.Contains(n.String(), "Content-Length: 26\r\n") {
		t.Errorf("content-length:\n%s", n)
	}
	// The NOTIFY goes to the SUBSCRIBE's source, whatever its Contact says.
	n, err = pnpNotify(req, ok, p, "http://10.1.3.1:8080/prov/", "10.1.3.239:6000", "10.1.3.1:5060")
	if err != nil {
		t.Fatal(err)
	}
	if n.Recipient.String() != "sip:MAC001565f4f9e1@10.1.3.239:6000" || n.Destination() != "10.1.3.239:6000" {
		t.Errorf("NOTIFY to %s (Request-URI %s), want the source 10.1.3.239:6000", n.Destination(), n.Recipient.String())
	}
}

func TestBuildCheckSync(t *testing.T) {
	req, err := buildCheckSync("1001", "10.0.0.50:5060", "10.0.0.2:5060")
	if err != nil {
		t.Fatal(err)
	}
	s := req.String()
	for _, want := range []string{"NOTIFY sip:1001@10.0.0.50:5060 SIP/2.0\r\n", "Event: check-sync;reboot=false\r\n", "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	if len(req.Body()) != 0 {
		t.Error("NOTIFY has a body")
	}
	for _, bad := range []string{"10.0.0.50", "10.0.0.50:0", "x"} {
		if _, err := buildCheckSync("1001", bad, "10.0.0.2:5060"); err == nil {
			t.Errorf("built a NOTIFY to %q", bad)
		}
	}
}

// pnpSub is a PnP SUBSCRIBE for mac, Via via ("ip:port"), with the
// Contact header line contact ("" for none).
func pnpSub(mac, via, contact, callID string) string {
	if contact != "" {
		contact = "Contact: " + contact + "\r\n"
	}
	return "SUBSCRIBE sip:MAC" + mac + "@224.0.1.75 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + via + ";branch=z9hG4bK" + callID + "\r\n" +
		"From: <sip:MAC" + mac + "@224.0.1.75>;tag=ph1\r\nTo: <sip:MAC" + mac + "@224.0.1.75>\r\n" +
		"Call-ID: " + callID + "\r\nCSeq: 1 SUBSCRIBE\r\n" + contact +
		"Expires: 0\r\nEvent: ua-profile;profile-type=\"device\";vendor=\"Yealink\";model=\"T46G\";version=\"28.83.0.35\"\r\n" +
		"Accept: application/url\r\nContent-Length: 0\r\n\r\n"
}

// TestPnPSource: a SUBSCRIBE is answered only when its Contact host is the
// datagram's source IP (review findings 4 and 5).
func TestPnPSource(t *testing.T) {
	for _, tc := range []struct{ name, source, contact, err string }{
		{"contact is the source", "10.1.3.239:5059", "<sip:MAC001565f4f9e1@10.1.3.239:5059>", ""},
		{"same host, other port", "10.1.3.239:40000", "<sip:MAC001565f4f9e1@10.1.3.239:5059>", ""},
		{"contact without port", "10.1.3.239:5060", "<sip:MAC001565f4f9e1@10.1.3.239>", ""},
		{"4in6 source", "[::ffff:10.1.3.239]:5059", "<sip:MAC001565f4f9e1@10.1.3.239:5059>", ""},
		{"third party (finding 5)", "10.1.3.239:5059", "<sip:x@127.0.0.131:19991>", "not the source address"},
		{"neighbour", "10.1.3.239:5059", "<sip:x@10.1.3.240:5059>", "not the source address"},
		{"multicast contact", "10.1.3.239:5059", "<sip:x@224.0.1.75:5060>", "not the source address"},
		{"name", "10.1.3.239:5059", "<sip:x@phone.example:5059>", "not an IP address"},
		{"no contact", "10.1.3.239:5059", "", "no Contact"},
		{"star", "10.1.3.239:5059", "*", "not an IP address"},
		{"source port 0", "10.1.3.239:0", "<sip:x@10.1.3.239:5059>", "not a unicast address"},
		{"broadcast source", "255.255.255.255:5060", "<sip:x@255.255.255.255:5060>", "not a unicast address"},
		{"multicast source", "224.0.1.75:5060", "<sip:x@224.0.1.75:5060>", "not a unicast address"},
		{"unspecified source", "0.0.0.0:5060", "<sip:x@0.0.0.0:5060>", "not a unicast address"},
		{"bad source", "nonsense", "<sip:x@10.1.3.239:5059>", "not ip:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePnP(parseReq(t, pnpSub("001565f4f9e1", "10.1.3.239:5059", tc.contact, "c1")))
			if err != nil {
				t.Fatal(err)
			}
			ip, err := pnpSource(p, tc.source)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err == "" && ip.String() != "10.1.3.239":
				t.Fatalf("source IP %s", ip)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("got %v, want %q", err, tc.err)
			}
		})
	}
}

// TestPnPLimiter: per source, in total, in flight, sources remembered,
// with a fake clock.
func TestPnPLimiter(t *testing.T) {
	type op struct {
		at   time.Duration // since start
		ip   string
		keep bool   // the NOTIFY stays unanswered (its place is kept)
		free int    // first give back the place of op number free (1-based)
		want string // "" answered, else the reason
	}
	many := func(n int, at time.Duration, ipf func(i int) string, want string) []op {
		var ops []op
		for i := range n {
			ops = append(ops, op{at: at, ip: ipf(i), want: want})
		}
		return ops
	}
	same := func(int) string { return "10.0.0.1" }
	distinct := func(i int) string { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String() }
	for _, tc := range []struct {
		name                                 string
		perSource, rate, inFlight, maxSource int
		ops                                  []op
	}{
		{"five a minute per source", 5, 20, 32, 100, append(append(append(
			many(5, 0, same, ""),
			op{at: time.Second, ip: "10.0.0.1", want: dropSource},
			op{at: time.Second, ip: "10.0.0.2", want: ""}), // another source is not limited by it
			op{at: 12 * time.Second, ip: "10.0.0.1", want: ""}, // a token back every 12 s
			op{at: 13 * time.Second, ip: "10.0.0.1", want: dropSource}),
			many(5, 80*time.Second, same, "")...)},
		{"one NOTIFY in flight per source", 5, 20, 32, 100, []op{
			{ip: "10.0.0.1", keep: true},
			{at: time.Millisecond, ip: "10.0.0.1", want: dropBusy},
			{at: 2 * time.Millisecond, ip: "10.0.0.2"},
			{at: 3 * time.Millisecond, ip: "10.0.0.1", free: 1},
		}},
		{"total a second", 5, 20, 1000, 1000, append(append(append(
			many(20, 0, distinct, ""),
			op{ip: "10.1.0.1", want: dropTotal}),
			op{at: 50 * time.Millisecond, ip: "10.1.0.2", want: ""}, // 20/s: one token every 50 ms
			op{at: 60 * time.Millisecond, ip: "10.1.0.3", want: dropTotal}),
			many(20, 2*time.Second, func(i int) string { return distinct(i + 100) }, "")...)},
		{"refused in total costs the source nothing", 2, 1, 32, 100, []op{
			{ip: "10.0.0.1"},
			{ip: "10.0.0.2", want: dropTotal},
			{at: time.Second, ip: "10.0.0.2"},
			{at: 2 * time.Second, ip: "10.0.0.2"},
			{at: 3 * time.Second, ip: "10.0.0.2", want: dropSource},
		}},
		{"NOTIFYs in flight", 5, 20, 3, 100, []op{
			{ip: "10.0.0.1", keep: true},
			{ip: "10.0.0.2", keep: true},
			{ip: "10.0.0.3", keep: true},
			{ip: "10.0.0.4", want: dropInFlight},
			{at: 8 * time.Second, ip: "10.0.0.4", want: dropInFlight},
			{at: 8 * time.Second, ip: "10.0.0.4", free: 2},
		}},
		{"sources remembered", 5, 1000, 1000, 4, append(append(
			many(4, 0, distinct, ""),
			op{at: time.Second, ip: "10.9.9.9", want: dropSources},
			op{at: 2 * time.Second, ip: distinct(0), want: ""}), // a remembered one still is
			op{at: 63 * time.Second, ip: "10.9.9.9", want: ""})}, // the idle ones are forgotten
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			now := start
			l := newPnPLimiter(tc.perSource, tc.rate, tc.inFlight, tc.maxSource, func() time.Time { return now })
			releases := make([]func(), len(tc.ops))
			counts := map[string]uint64{}
			for i, o := range tc.ops {
				now = start.Add(o.at)
				if o.free > 0 {
					releases[o.free-1]()
				}
				rel, reason := l.acquire(netip.MustParseAddr(o.ip))
				if reason != o.want || (rel == nil) != (reason != "") {
					t.Fatalf("op %d (%+v): got %q, want %q", i+1, o, reason, o.want)
				}
				if reason != "" {
					counts[reason]++
					continue
				}
				releases[i] = rel
				if !o.keep {
					rel()
					rel() // twice is once
				}
			}
			for reason, n := range counts {
				if got := l.count(reason); got != n {
					t.Errorf("%s: counted %d, want %d", reason, got, n)
				}
			}
			if _, flying := l.tracked(); flying < 0 {
				t.Errorf("%d in flight", flying)
			}
		})
	}
}

// TestPnPLimiterMemory: however many sources, the limiter remembers at
// most maxSources of them, and forgets idle ones.
func TestPnPLimiterMemory(t *testing.T) {
	start := time.Now()
	now := start
	l := newPnPLimiter(5, 1000, 1000, 100, func() time.Time { return now })
	for i := range 100000 {
		now = start.Add(time.Duration(i) * 3 * time.Millisecond) // 5 minutes
		if rel, _ := l.acquire(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})); rel != nil {
			rel()
		}
		if n, _ := l.tracked(); n > 100 {
			t.Fatalf("%d sources remembered", n)
		}
	}
	now = now.Add(2 * pnpWindow)
	l.acquire(netip.MustParseAddr("192.0.2.1"))
	if n, flying := l.tracked(); n != 1 || flying != 1 {
		t.Fatalf("%d sources, %d in flight after two idle minutes", n, flying)
	}
}

// TestHandlePnP_Drops: a SUBSCRIBE whose Contact is not its source, or
// past a limit, gets no answer and nothing recorded (Services are empty:
// touching them would panic).
func TestHandlePnP_Drops(t *testing.T) {
	for _, tc := range []struct {
		name, source, contact string
		before                int // SUBSCRIBEs already answered for this source
		reason                string
	}{
		{"forged contact, known phone (finding 4)", "10.1.3.239:5059", "<sip:x@127.0.0.140:19993>", 0, dropContact},
		{"reflection to a third party (finding 5)", "10.1.3.239:5059", "<sip:x@127.0.0.131:19991>", 0, dropContact},
		{"no contact", "10.1.3.239:5059", "", 0, dropContact},
		{"past the per-source limit", "10.1.3.239:5059", "<sip:x@10.1.3.239:5059>", 5, dropSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Logger: slog.New(slog.DiscardHandler), dropped: slog.New(slog.DiscardHandler)}
			s.pnpLimit = s.pnpLimits()
			for range tc.before {
				rel, _ := s.pnpLimit.acquire(netip.MustParseAddr("10.1.3.239"))
				rel()
			}
			answered := 0
			s.handlePnP(context.Background(), parseReq(t, pnpSub("001565aabbcc", tc.source, tc.contact, "c1")), tc.source,
				func(*sipmsg.Response) error { answered++; return nil })
			if answered != 0 || s.pnpLimit.count(tc.reason) != 1 {
				t.Fatalf("%d answers, %d dropped for %s", answered, s.pnpLimit.count(tc.reason), tc.reason)
			}
		})
	}
	if DefaultPnPPerSource != 5 || DefaultPnPRate != 20 || DefaultPnPInFlight != 32 || DefaultPnPSources != 10000 {
		t.Error("defaults changed: update the package doc and the Server's field comments")
	}
}

// udpSilent is a socket that records what arrives and answers nothing.
type udpSilent struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []string
}

func newUDPSilent(t *testing.T, ip string) *udpSilent {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	u := &udpSilent{conn: c}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.got = append(u.got, string(buf[:n]))
			u.mu.Unlock()
		}
	}()
	return u
}

func (u *udpSilent) messages() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.got...)
}

func (u *udpSilent) addr() string { return u.conn.LocalAddr().String() }

func (u *udpSilent) send(t *testing.T, to string, msg string) {
	t.Helper()
	dst, _ := net.ResolveUDPAddr("udp4", to)
	if _, err := u.conn.WriteToUDP([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
}

// TestPnP_ForgedContactOverTheWire: a forged SUBSCRIBE for a known phone
// and one for an unknown MAC get nothing back — neither at the source nor
// at the Contact — and change nothing.
func TestPnP_ForgedContactOverTheWire(t *testing.T) {
	f := newFixture(t, 2*time.Second)
	ctx := context.Background()
	to := "127.0.0.1:" + itoa(f.srv.Port())
	src := newUDPSilent(t, "127.0.0.141")
	victim := newUDPSilent(t, "127.0.0.140")
	for i, mac := range []string{"001565aabbcc", "001565123456"} {
		src.send(t, to, pnpSub(mac, src.addr(), "<sip:x@"+victim.addr()+">", "forged-"+itoa(i)))
	}
	time.Sleep(800 * time.Millisecond)
	if got := append(src.messages(), victim.messages()...); len(got) != 0 {
		t.Fatalf("answered a forged SUBSCRIBE: %q", got)
	}
	if p, _ := f.svc.Phones.FindPhone(ctx, "001565aabbcc"); p.Sync.SIPAddress != "" {
		t.Fatalf("address learned from a forged SUBSCRIBE: %q", p.Sync.SIPAddress)
	}
	if list, _ := f.svc.Discovery.FindDiscovered(ctx); len(list) != 0 {
		t.Fatalf("discovered from a forged SUBSCRIBE: %+v", list)
	}
	if n := f.srv.pnpLimit.count(dropContact); n != 2 {
		t.Fatalf("%d counted", n)
	}
}

// TestPnP_NotifyToTheSource: the NOTIFY goes to the SUBSCRIBE's source
// port even when the Contact names another port of that host, and the
// phone's address learned is the source.
func TestPnP_NotifyToTheSource(t *testing.T) {
	f := newFixture(t, 2*time.Second)
	phone := newFakePhone(t, "127.0.0.142", func(int, *sipmsg.Request) int { return 200 })
	other := newUDPSilent(t, "127.0.0.142")
	sub := pnpSub("001565aabbcc", phone.addr(), "<sip:MAC001565aabbcc@"+other.addr()+">", "pnp-src")
	dst, _ := net.ResolveUDPAddr("udp4", "127.0.0.1:"+itoa(f.srv.Port()))
	phone.conn.WriteToUDP([]byte(sub), dst)
	deadline := time.Now().Add(2 * time.Second)
	for len(phone.requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	reqs := phone.requests()
	if len(reqs) != 1 || reqs[0].Method != sipmsg.NOTIFY || string(reqs[0].Body()) != "http://127.0.0.1:8080/prov/" {
		t.Fatalf("at the source: %v", reqs)
	}
	if want := "sip:MAC001565aabbcc@" + phone.addr(); reqs[0].Recipient.String() != want {
		t.Errorf("Request-URI %s, want %s", reqs[0].Recipient.String(), want)
	}
	if got := other.messages(); len(got) != 0 {
		t.Fatalf("at the Contact's port: %q", got)
	}
	p, _ := f.svc.Phones.FindPhone(context.Background(), "001565aabbcc")
	if p.Sync.SIPAddress != phone.addr() {
		t.Fatalf("address %q, want %s", p.Sync.SIPAddress, phone.addr())
	}
}

// TestPnP_SilentTargetOneTransaction: a source that never answers gets
// one 200 OK and one NOTIFY transaction (its RFC 3261 retransmissions,
// ended by NotifyTimeout) however often it repeats its SUBSCRIBE, and its
// place in flight comes back after the timeout.
func TestPnP_SilentTargetOneTransaction(t *testing.T) {
	f := newFixture(t, 1200*time.Millisecond)
	to := "127.0.0.1:" + itoa(f.srv.Port())
	src := newUDPSilent(t, "127.0.0.143")
	for i := range 50 {
		src.send(t, to, pnpSub("001565"+fmt.Sprintf("%06x", i), src.addr(), "<sip:x@"+src.addr()+">", "flood-"+itoa(i)))
	}
	time.Sleep(3 * time.Second) // NotifyTimeout and then some: nothing more may come
	var oks, notifies int
	branches := map[string]bool{}
	for _, m := range src.messages() {
		msg, err := sipmsg.ParseMessage([]byte(m))
		if err != nil {
			t.Fatal(err)
		}
		switch r := msg.(type) {
		case *sipmsg.Response:
			oks++
		case *sipmsg.Request:
			notifies++
			b, _ := r.Via().Params.Get("branch")
			branches[b] = true
		}
	}
	// T1 = 500 ms: sent at 0 and 0.5 s; the next (1.5 s) is past the timeout.
	if oks != 1 || notifies < 1 || notifies > 3 || len(branches) != 1 {
		t.Fatalf("%d answers, %d NOTIFYs in %d transactions, want 1 answer and one transaction", oks, notifies, len(branches))
	}
	if _, flying := f.srv.pnpLimit.tracked(); flying != 0 {
		t.Fatalf("%d NOTIFYs still in flight after the timeout", flying)
	}
	if n := f.srv.pnpLimit.count(dropBusy); n != 49 {
		t.Errorf("%d dropped while busy, want 49", n)
	}
	// Its place is back: the next SUBSCRIBE is answered.
	src.send(t, to, pnpSub("001565000100", src.addr(), "<sip:x@"+src.addr()+">", "after"))
	deadline := time.Now().Add(2 * time.Second)
	for len(src.messages()) == oks+notifies && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(src.messages()) == oks+notifies {
		t.Fatal("not answered once its NOTIFY had timed out")
	}
}
