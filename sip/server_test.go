package sip

import (
	"context"
	"github.com/provbox/provbox/configs"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
)

// fakePhone is a UDP SIP endpoint that records requests and answers them
// through a policy.
type fakePhone struct {
	conn   *net.UDPConn
	mu     sync.Mutex
	got    []*sipmsg.Request
	resps  []*sipmsg.Response                   // answers to what the phone sent
	answer func(n int, req *sipmsg.Request) int // status to answer the n-th request with; 0: stay silent
}

func newFakePhone(t *testing.T, ip string, answer func(int, *sipmsg.Request) int) *fakePhone {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePhone{conn: c, answer: answer}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			req, ok := m.(*sipmsg.Request)
			if !ok {
				p.mu.Lock()
				p.resps = append(p.resps, m.(*sipmsg.Response))
				p.mu.Unlock()
				continue
			}
			p.mu.Lock()
			p.got = append(p.got, req)
			k := len(p.got)
			p.mu.Unlock()
			if st := p.answer(k, req); st != 0 {
				res := sipmsg.NewResponseFromRequest(req, st, "OK", nil)
				c.WriteToUDP([]byte(res.String()), from)
			}
		}
	}()
	return p
}

func (p *fakePhone) addr() string { return p.conn.LocalAddr().String() }

func (p *fakePhone) requests() []*sipmsg.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*sipmsg.Request(nil), p.got...)
}

type fixture struct {
	db  *sqlite.DB
	svc appliance.Services
	srv *Server
}

func newFixture(t *testing.T, timeout time.Duration, opts ...func(*Server)) *fixture {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "provbox.db"), configs.MustCatalog(), appliance.HashConfig)
	db.Events = appliance.NewEventBus(nil)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := db.Services()
	ctx := context.Background()
	if err := db.SetSettings(ctx, appliance.Settings{ProvisioningURL: "http://127.0.0.1:8080/prov/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Extensions.CreateExtension(ctx, &appliance.Extension{Number: "1001", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: "001565aabbcc", Model: "T46G"}, "1001"); err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: "127.0.0.1:0", Services: svc, Logger: slog.New(slog.DiscardHandler), Catalog: configs.MustCatalog(),
		NotifyTimeout: timeout}
	for _, o := range opts {
		o(s)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &fixture{db: db, svc: svc, srv: s}
}

// pend puts the phone at addr and makes it pending (fetched, then edited).
func (f *fixture) pend(t *testing.T, addr string) {
	t.Helper()
	ctx := context.Background()
	p, _ := f.svc.Phones.FindPhone(ctx, "001565aabbcc")
	f.svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: p.Sync.ConfigVersion, IP: "127.0.0.1"})
	if err := f.svc.Sync.Sighted(ctx, sighting(p.MAC, addr, appliance.SourceDHCP)); err != nil {
		t.Fatal(err)
	}
	name := "edited " + time.Now().String()
	if _, err := f.svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
}

// sighting is the phone mac seen by source, taking SIP at addr.
func sighting(mac, addr, source string) appliance.Sighting {
	ip, _, _ := net.SplitHostPort(addr)
	return appliance.Sighting{MAC: mac, IP: ip, SIPAddr: addr, Source: source}
}

func waitState(t *testing.T, f *fixture, want string, within time.Duration) appliance.SyncStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, _ := f.svc.Phones.FindPhone(context.Background(), "001565aabbcc")
		if p.Sync.State == want {
			return p.Sync
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %q after %v, want %q (%+v)", p.Sync.State, within, want, p.Sync)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLoop_EditSendsOneCheckSync(t *testing.T) {
	f := newFixture(t, 2*time.Second)
	phone := newFakePhone(t, "127.0.0.3", func(int, *sipmsg.Request) int { return 200 })
	f.pend(t, phone.addr())
	s := waitState(t, f, appliance.SyncNotified, 2*time.Second)
	if s.LastNotifyResult != "200 OK" {
		t.Fatalf("%+v", s)
	}
	time.Sleep(700 * time.Millisecond) // a trailing NOTIFY would come within the window
	reqs := phone.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d NOTIFYs, want 1", len(reqs))
	}
	r := reqs[0]
	_, port, _ := net.SplitHostPort(phone.addr())
	if r.Method != sipmsg.NOTIFY || r.Recipient.String() != "sip:1001@127.0.0.3:"+port || r.GetHeader("Event").Value() != "check-sync;reboot=false" || len(r.Body()) != 0 {
		t.Fatalf("NOTIFY:\n%s", r)
	}
}

func TestLoop_RetransmitsUntilAnswered(t *testing.T) {
	f := newFixture(t, 4*time.Second)
	phone := newFakePhone(t, "127.0.0.4", func(n int, _ *sipmsg.Request) int {
		if n < 3 {
			return 0 // lose the first two
		}
		return 200
	})
	f.pend(t, phone.addr())
	waitState(t, f, appliance.SyncNotified, 4*time.Second)
	reqs := phone.requests()
	if len(reqs) != 3 || reqs[0].CallID().Value() != reqs[2].CallID().Value() {
		t.Fatalf("%d requests", len(reqs))
	}
}

func TestLoop_Unreachable(t *testing.T) {
	f := newFixture(t, 700*time.Millisecond)
	phone := newFakePhone(t, "127.0.0.5", func(int, *sipmsg.Request) int { return 0 })
	f.pend(t, phone.addr())
	s := waitState(t, f, appliance.SyncUnreachable, 3*time.Second)
	if s.LastNotifyResult != "no answer" || len(phone.requests()) < 2 {
		t.Fatalf("%+v after %d transmissions", s, len(phone.requests()))
	}
}

func TestLoop_WaitsForAddress(t *testing.T) {
	f := newFixture(t, 2*time.Second)
	ctx := context.Background()
	name := "x"
	f.svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: "001565aabbcc", Version: "old"}) // pending, no address
	f.svc.Phones.UpdatePhone(ctx, "001565aabbcc", appliance.PhoneUpdate{Name: &name})
	time.Sleep(100 * time.Millisecond)
	if p, _ := f.svc.Phones.FindPhone(ctx, "001565aabbcc"); p.Sync.State != appliance.SyncPending {
		t.Fatalf("%+v", p.Sync)
	}
	phone := newFakePhone(t, "127.0.0.6", func(int, *sipmsg.Request) int { return 200 })
	f.svc.Sync.Sighted(ctx, sighting("001565aabbcc", phone.addr(), appliance.SourceDHCP))
	waitState(t, f, appliance.SyncNotified, 2*time.Second)
}

// TestLoop_NeverNotifiesAPhoneThatNeverFetched: a factory phone reboots
// on check-sync (sip.notify_reboot_enable defaults to 1; audit §2), so a
// phone whose address is known (PnP, DHCP) but which never fetched its
// config gets no NOTIFY — not for an edit, not for an admin's resync, not
// from `provbox resync` (Notify).
func TestLoop_NeverNotifiesAPhoneThatNeverFetched(t *testing.T) {
	f := newFixture(t, time.Second)
	ctx := context.Background()
	phone := newFakePhone(t, "127.0.0.8", func(int, *sipmsg.Request) int { return 200 })
	if err := f.svc.Sync.Sighted(ctx, sighting("001565aabbcc", phone.addr(), appliance.SourcePnP)); err != nil {
		t.Fatal(err)
	}
	name := "edited"
	if _, err := f.svc.Phones.UpdatePhone(ctx, "001565aabbcc", appliance.PhoneUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	f.svc.Events.Publish(appliance.Event{Type: appliance.EventResync, MACs: []string{"001565aabbcc"}})
	target, err := f.svc.Sync.Target(ctx, "001565aabbcc")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.srv.notifier.Notify(ctx, target)
	if err != nil || res.Status != 0 || res.Reason != NotSentNeverFetched {
		t.Fatalf("Notify: %+v %v", res, err)
	}
	time.Sleep(700 * time.Millisecond)
	if n := len(phone.requests()); n != 0 {
		t.Fatalf("%d NOTIFYs to a phone that never fetched", n)
	}
	if p, _ := f.svc.Phones.FindPhone(ctx, "001565aabbcc"); p.Sync.State != appliance.SyncNew || p.Sync.LastNotifyAt != nil {
		t.Fatalf("state %+v", p.Sync)
	}
	// Once it has fetched, the next edit reaches it.
	f.pend(t, phone.addr())
	waitState(t, f, appliance.SyncNotified, 2*time.Second)
}

// sendRaw sends a datagram to the server and returns what comes back
// within wait.
func sendRaw(t *testing.T, to string, msg []byte, wait time.Duration) []string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 7)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst, _ := net.ResolveUDPAddr("udp4", to)
	c.WriteToUDP(msg, dst)
	var out []string
	buf := make([]byte, 65535)
	c.SetReadDeadline(time.Now().Add(wait))
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return out
		}
		out = append(out, string(buf[:n]))
	}
}

func request(method, extra string) []byte {
	return []byte(method + " sip:provbox@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.7;branch=z9hG4bK" + method + time.Now().Format("150405.000000") + ";rport\r\n" +
		"From: <sip:tester@127.0.0.7>;tag=t1\r\nTo: <sip:provbox@127.0.0.1>\r\nCall-ID: c-" + method + time.Now().Format("150405.000000") + "\r\n" +
		"CSeq: 1 " + method + "\r\nMax-Forwards: 70\r\n" + extra + "Content-Length: 0\r\n\r\n")
}

func TestServer_AnswersEverythingAndSurvivesGarbage(t *testing.T) {
	f := newFixture(t, time.Second)
	to := "127.0.0.1:" + itoa(f.srv.Port())
	for _, garbage := range [][]byte{
		[]byte("hello"), {0, 1, 2, 3}, []byte("SIP/2.0 200 OK\r\n\r\n"), []byte(strings.Repeat("A", 60000)),
		[]byte("INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n"), []byte("NOTIFY sip:a@b SIP/2.0\r\nContent-Length: 99999\r\n\r\nx"),
	} {
		if got := sendRaw(t, to, garbage, 100*time.Millisecond); len(got) != 0 {
			t.Errorf("answered garbage %q with %q", garbage[:min(len(garbage), 20)], got)
		}
	}
	for _, tc := range []struct{ method, extra, want string }{
		{"OPTIONS", "", "SIP/2.0 200 OK"},
		{"INFO", "", "SIP/2.0 405 Method Not Allowed"},
		{"INVITE", "Contact: <sip:tester@127.0.0.7>\r\n", "SIP/2.0 405 Method Not Allowed"},
		{"SUBSCRIBE", "Event: presence\r\n", "SIP/2.0 489 Bad Event"},
	} {
		got := sendRaw(t, to, request(tc.method, tc.extra), 500*time.Millisecond)
		if len(got) == 0 || !strings.HasPrefix(got[0], tc.want) {
			t.Errorf("%s: got %q, want %q", tc.method, got, tc.want)
		}
	}
}

func TestServer_PnPUnicast(t *testing.T) {
	store, phones := &countingSync{}, &countingPhones{}
	f := newFixture(t, 2*time.Second, func(s *Server) {
		store.SyncService, phones.PhoneService = s.Services.Sync, s.Services.Phones
		s.Services.Sync, s.Services.Phones = store, phones
	})
	ctx := context.Background()
	for i, tc := range []struct{ mac, want string }{{"001565123456", "discovered"}, {"001565aabbcc", "learned"}} {
		t.Run(tc.want, func(t *testing.T) {
			phone := newFakePhone(t, "127.0.0.8", func(int, *sipmsg.Request) int { return 200 })
			_, port, _ := net.SplitHostPort(phone.addr())
			sub := "SUBSCRIBE sip:MAC" + tc.mac + "@224.0.1.75 SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP " + phone.addr() + ";branch=z9hG4bKpnp" + tc.mac + "\r\n" +
				"From: <sip:MAC" + tc.mac + "@224.0.1.75>;tag=ph1\r\nTo: <sip:MAC" + tc.mac + "@224.0.1.75>\r\n" +
				"Call-ID: pnp-" + tc.mac + "\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:MAC" + tc.mac + "@127.0.0.8:" + port + ">\r\n" +
				"Expires: 0\r\nEvent: ua-profile;profile-type=\"device\";vendor=\"Yealink\";model=\"SIP-T46G\";version=\"28.83.0.35\"\r\n" +
				"Accept: application/url\r\nContent-Length: 0\r\n\r\n"
			dst, _ := net.ResolveUDPAddr("udp4", "127.0.0.1:"+itoa(f.srv.Port()))
			phone.conn.WriteToUDP([]byte(sub), dst)
			deadline := time.Now().Add(2 * time.Second)
			for len(phone.requests()) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			reqs := phone.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests at the phone", len(reqs))
			}
			n := reqs[0]
			if n.Method != sipmsg.NOTIFY || string(n.Body()) != "http://127.0.0.1:8080/prov/" || n.ContentType().Value() != "application/url" || n.CallID().Value() != "pnp-"+tc.mac {
				t.Fatalf("NOTIFY:\n%s", n)
			}
			// Both the 200 OK and the NOTIFY carry our Contact (audit §3).
			contact := "sip:provbox@127.0.0.1:" + itoa(f.srv.Port())
			if n.Contact() == nil || n.Contact().Address.String() != contact {
				t.Errorf("NOTIFY Contact %v, want <%s>", n.Contact(), contact)
			}
			phone.mu.Lock()
			resps := append([]*sipmsg.Response(nil), phone.resps...)
			phone.mu.Unlock()
			if len(resps) != 1 || resps[0].StatusCode != 200 || resps[0].Contact() == nil || resps[0].Contact().Address.String() != contact {
				t.Errorf("answers to the SUBSCRIBE %v, want one 200 OK with Contact <%s>", resps, contact)
			}
			// One call decides (SyncService.Sighted); the server reads no phone.
			if n, p := store.sightings.Load(), phones.reads.Load(); n != int64(i+1) || p != 0 {
				t.Errorf("%d sightings, %d phone reads; want %d, 0", n, p, i+1)
			}
			if tc.want == "discovered" {
				// The model as the catalog names it ("SIP-T46G" → T46G).
				list, _ := f.svc.Discovery.FindDiscovered(ctx)
				if len(list) != 1 || list[0].MAC != tc.mac || list[0].Source != "pnp" || list[0].Model != "T46G" {
					t.Fatalf("discovered %+v", list)
				}
			} else {
				p, _ := f.svc.Phones.FindPhone(ctx, tc.mac)
				if p.Sync.SIPAddress != "127.0.0.8:"+port {
					t.Fatalf("address %q", p.Sync.SIPAddress)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func FuzzDatagram(f *testing.F) {
	f.Add([]byte(subscribe("sip:MAC001565f4f9e1@224.0.1.75", yealinkEvent)))
	f.Add([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n"))
	f.Add([]byte{0xff, 0xfe})
	db := sqlite.NewDB(filepath.Join(f.TempDir(), "provbox.db"), configs.MustCatalog(), appliance.HashConfig)
	if err := db.Open(); err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	s := &Server{Addr: "127.0.0.1:0", Services: db.Services(), Logger: slog.New(slog.DiscardHandler), NotifyTimeout: 50 * time.Millisecond}
	if err := s.Open(); err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 9} // the discard port: nothing answers
	f.Fuzz(func(t *testing.T, b []byte) {
		s.handleDatagram(context.Background(), b, from)
	})
}

// TestNotify_FallsBackToTheOtherTrigger: after sip.sync_trigger changed,
// a phone still holds a config made for the other trigger. A NOTIFY left
// unanswered (trust_ctrl on) falls back to the Action URI; a refused
// Action URI falls back to the NOTIFY; both recorded as what got through.
func TestNotify_FallsBackToTheOtherTrigger(t *testing.T) {
	ctx := context.Background()
	ok := func(via string) func(context.Context, *appliance.SyncTarget) appliance.NotifyResult {
		return func(_ context.Context, t *appliance.SyncTarget) appliance.NotifyResult {
			return appliance.NotifyResult{MAC: t.MAC, Version: t.ConfigVersion, Via: via, Status: 200, Reason: "OK"}
		}
	}
	refused := func(_ context.Context, t *appliance.SyncTarget) appliance.NotifyResult {
		return appliance.NotifyResult{MAC: t.MAC, Via: appliance.TriggerActionURI, Status: 403, Reason: "Forbidden"}
	}
	for _, tc := range []struct {
		name              string
		silent            bool // the phone drops the NOTIFY
		trigger, fallback func(context.Context, *appliance.SyncTarget) appliance.NotifyResult
		want              string
	}{
		{"notify answered", false, nil, ok(appliance.TriggerActionURI), "check-sync: 200 OK"},
		{"notify dropped, action uri taken", true, nil, ok(appliance.TriggerActionURI), "action-uri: 200 OK"},
		{"notify dropped, nothing else", true, nil, nil, "check-sync: no answer"},
		{"action uri refused, notify answered", false, refused, nil, "check-sync: 200 OK"},
		{"action uri taken", false, ok(appliance.TriggerActionURI), nil, "action-uri: 200 OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No loop (no events): only this test's Notifier, on a socket
			// of its own as `provbox resync` has it, tells the phone.
			f := newFixture(t, 300*time.Millisecond, func(s *Server) { s.Services.Events = nil })
			n := &Notifier{Sync: f.svc.Sync, Timeout: 300 * time.Millisecond, Trigger: tc.trigger, Fallback: tc.fallback}
			if err := n.Open("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			phone := newFakePhone(t, "127.0.0.1", func(int, *sipmsg.Request) int {
				if tc.silent {
					return 0
				}
				return 200
			})
			f.pend(t, phone.addr())
			target, err := f.svc.Sync.Target(ctx, "001565aabbcc")
			if err != nil {
				t.Fatal(err)
			}
			res, err := n.Notify(ctx, target)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Via + ": " + res.Text(); got != tc.want {
				t.Fatalf("%s, want %s", got, tc.want)
			}
			// Recorded as the loop records it.
			if p, _ := f.svc.Phones.FindPhone(ctx, "001565aabbcc"); p.Sync.LastNotifyResult != res.Text() {
				t.Fatalf("recorded %q, want %q", p.Sync.LastNotifyResult, res.Text())
			}
		})
	}
}

// countingSync and countingPhones count the store calls the SIP server
// makes.
type countingSync struct {
	appliance.SyncService
	targets, records, sightings atomic.Int64
}

func (c *countingSync) Sighted(ctx context.Context, g appliance.Sighting) error {
	c.sightings.Add(1)
	return c.SyncService.Sighted(ctx, g)
}

func (c *countingSync) Target(ctx context.Context, mac string) (*appliance.SyncTarget, error) {
	c.targets.Add(1)
	return c.SyncService.Target(ctx, mac)
}

func (c *countingSync) RecordNotify(ctx context.Context, n appliance.NotifyResult) error {
	c.records.Add(1)
	return c.SyncService.RecordNotify(ctx, n)
}

type countingPhones struct {
	appliance.PhoneService
	reads atomic.Int64
}

func (c *countingPhones) FindPhone(ctx context.Context, mac string) (*appliance.Phone, error) {
	c.reads.Add(1)
	return c.PhoneService.FindPhone(ctx, mac)
}

func (c *countingPhones) FindPhones(ctx context.Context, f appliance.PhoneFilter) ([]*appliance.Phone, error) {
	c.reads.Add(1)
	return c.PhoneService.FindPhones(ctx, f)
}

func (c *countingPhones) PhoneConfig(ctx context.Context, mac string) (*appliance.PhoneConfig, error) {
	c.reads.Add(1)
	return c.PhoneService.PhoneConfig(ctx, mac)
}

// TestLoop_OneReadPerNotify: from the change event to the recorded
// answer, the loop reads the phone once (SyncService.Target: one
// statement) and writes once (RecordNotify); it never assembles the
// phone or its config.
func TestLoop_OneReadPerNotify(t *testing.T) {
	store := &countingSync{}
	phones := &countingPhones{}
	f := newFixture(t, 2*time.Second, func(s *Server) {
		store.SyncService, phones.PhoneService = s.Services.Sync, s.Services.Phones
		s.Services.Sync, s.Services.Phones = store, phones
	})
	phone := newFakePhone(t, "127.0.0.10", func(int, *sipmsg.Request) int { return 200 })
	for round := 1; round <= 3; round++ {
		before := len(phone.requests())
		f.pend(t, phone.addr())
		waitState(t, f, appliance.SyncNotified, 2*time.Second)
		if got := len(phone.requests()) - before; got != 1 {
			t.Fatalf("round %d: %d NOTIFYs", round, got)
		}
		if n, r, p := store.targets.Load(), store.records.Load(), phones.reads.Load(); n != int64(round) || r != int64(round) || p != 0 {
			t.Fatalf("after %d NOTIFYs: %d Target reads, %d records, %d phone reads; want %d, %d, 0", round, n, r, p, round, round)
		}
		time.Sleep(600 * time.Millisecond) // past the coalescing window
	}
}

// TestNotifier_SendsRightAfterOpen: a Notifier's socket is sipgo's as soon
// as Open returns, so a NOTIFY sent at once (`provbox resync`) leaves from
// it rather than failing to bind its address again.
func TestNotifier_SendsRightAfterOpen(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, time.Second, func(s *Server) { s.Services.Events = nil })
	phone := newFakePhone(t, "127.0.0.11", func(int, *sipmsg.Request) int { return 200 })
	f.pend(t, phone.addr())
	target, err := f.svc.Sync.Target(ctx, "001565aabbcc")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		n := &Notifier{Sync: f.svc.Sync, Timeout: time.Second}
		if err := n.Open("0.0.0.0:0"); err != nil {
			t.Fatal(err)
		}
		res, err := n.Notify(ctx, target)
		n.Close()
		if err != nil || res.Status != 200 {
			t.Fatalf("try %d: %+v %v", i, res, err)
		}
	}
}
