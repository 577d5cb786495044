package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// startRun runs phonesim in this process (so the race detector sees it)
// and returns its stdout events and its exit status.
func startRun(t *testing.T, ctx context.Context, args ...string) (*events, <-chan int, *bytes.Buffer) {
	t.Helper()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, args, pw, &stderr)
		pw.Close()
		done <- code
	}()
	return readEvents(t, pr), done, &stderr
}

func waitExit(t *testing.T, done <-chan int, timeout time.Duration) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(timeout):
		t.Fatalf("phonesim did not exit within %v", timeout)
		return -1
	}
}

// pnpResponder is a minimal SIP PnP server: it ignores each phone's first
// SUBSCRIBE (so the phone must retransmit), answers the next with 200 OK,
// then sends a NOTIFY in that dialog to the Contact with the URL as body.
type pnpResponder struct {
	conn *net.UDPConn
	url  string

	mu          sync.Mutex
	subscribes  map[string]int // per Call-ID
	notifyOK    int            // 200s received for our NOTIFYs
	problems    []string
	userAgents  []string
	finished    chan struct{}
	contactSeen []string
}

func startPnPResponder(t *testing.T, url string) *pnpResponder {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &pnpResponder{conn: conn, url: url, subscribes: map[string]int{}, finished: make(chan struct{})}
	go r.serve()
	t.Cleanup(func() {
		conn.Close()
		<-r.finished
	})
	return r
}

func (r *pnpResponder) problem(format string, args ...any) {
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *pnpResponder) serve() {
	defer close(r.finished)
	buf := make([]byte, 4096)
	for {
		n, src, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg, err := sipmsg.ParseMessage(buf[:n])
		if err != nil {
			r.problem("unparsable datagram from %s: %v", src, err)
			continue
		}
		switch m := msg.(type) {
		case *sipmsg.Response:
			if m.StatusCode == 200 && m.CSeq().MethodName == sipmsg.NOTIFY {
				r.mu.Lock()
				r.notifyOK++
				r.mu.Unlock()
			}
		case *sipmsg.Request:
			if m.Method != sipmsg.SUBSCRIBE {
				r.problem("unexpected %s", m.Method)
				continue
			}
			r.subscribe(m, src)
		}
	}
}

func (r *pnpResponder) subscribe(req *sipmsg.Request, src *net.UDPAddr) {
	callID := req.CallID().Value()
	r.mu.Lock()
	r.subscribes[callID]++
	first := r.subscribes[callID] == 1
	r.mu.Unlock()
	if first {
		return // lost: the phone must retransmit
	}
	for name, want := range map[string]string{"Accept": "application/url", "Expires": "0"} {
		if h := req.GetHeader(name); h == nil || h.Value() != want {
			r.problem("%s: %v", name, h)
		}
	}
	ev := req.GetHeader("Event")
	if ev == nil || eventType(ev.Value()) != "ua-profile" || !strings.Contains(ev.Value(), `model="T46G"`) ||
		!strings.Contains(strings.ToLower(ev.Value()), `vendor="yealink"`) {
		r.problem("Event: %v", ev)
	}
	if !strings.HasPrefix(req.Recipient.User, "MAC") || req.Recipient.Host != pnpGroup {
		r.problem("Request-URI %s", req.Recipient.String())
	}
	contact := req.Contact()
	if contact == nil || contact.Address.Host != src.IP.String() || contact.Address.Port != src.Port {
		r.problem("Contact %v from %s", contact, src)
		return
	}
	r.mu.Lock()
	r.contactSeen = append(r.contactSeen, contact.Address.String())
	r.userAgents = append(r.userAgents, req.GetHeader("User-Agent").Value())
	r.mu.Unlock()

	ok := sipmsg.NewResponseFromRequest(req, 200, "OK", nil)
	ok.AppendHeader(sipmsg.NewHeader("Expires", "0"))
	r.conn.WriteToUDP([]byte(ok.String()), src)

	// NOTIFY in the subscription's dialog: same Call-ID, tags swapped.
	local := r.conn.LocalAddr().(*net.UDPAddr)
	notify := sipmsg.NewRequest(sipmsg.NOTIFY, contact.Address)
	via := &sipmsg.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: local.IP.String(), Port: local.Port, Params: sipmsg.NewParams()}
	via.Params.Add("branch", sipmsg.GenerateBranch())
	notify.AppendHeader(via)
	from := ok.To().AsFrom()
	notify.AppendHeader(&from)
	to := req.From().AsTo()
	notify.AppendHeader(&to)
	notify.AppendHeader(sipmsg.HeaderClone(req.CallID()))
	notify.AppendHeader(&sipmsg.CSeqHeader{SeqNo: 1, MethodName: sipmsg.NOTIFY})
	notify.AppendHeader(sipmsg.NewHeader("Event", "ua-profile"))
	notify.AppendHeader(sipmsg.NewHeader("Subscription-State", "terminated;reason=timeout"))
	ct := sipmsg.ContentTypeHeader("application/url")
	notify.AppendHeader(&ct)
	notify.SetBody([]byte(r.url))
	r.conn.WriteToUDP([]byte(notify.String()), src)
}

// TestPnP boots two phones by SIP PnP: the base URL comes from the NOTIFY
// body, not from -prov. Then one check-sync makes phonesim exit by itself
// (-exit-after-notifies 1).
func TestPnP(t *testing.T) {
	srv := newCfgServer(t)
	resp := startPnPResponder(t, srv.URL+"/prov/")
	ipBase, port := testAddrs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	ev, done, stderr := startRun(t, ctx, "-n", "2", "-first-mac", "001565aabb00", "-ip-base", ipBase,
		"-sip-port", strconv.Itoa(port), "-prov", "http://127.0.0.1:1/wrong/", "-pnp", resp.conn.LocalAddr().String(),
		"-exit-after-notifies", "1")

	booted := ev.wait("booted", 5*time.Second, isEvent("booted"))
	if booted.num("ok") != 2 || booted.num("failed") != 0 {
		t.Fatalf("booted %v; all %v; stderr %s", booted, ev.all, stderr)
	}
	pnps, boots := 0, 0
	for _, e := range ev.all {
		switch e.str("event") {
		case "pnp":
			pnps++
			if e.str("url") != srv.URL+"/prov/" || e.num("ms") < 400 { // the first SUBSCRIBE was "lost"
				t.Errorf("pnp line %v", e)
			}
		case "boot":
			boots++
			if !strings.HasPrefix(e.str("url"), srv.URL+"/prov/") || e.num("status") != 200 {
				t.Errorf("boot line %v", e)
			}
		}
	}
	if pnps != 2 || boots != 2 {
		t.Errorf("%d pnp and %d boot lines: %v", pnps, boots, ev.all)
	}
	resp.mu.Lock()
	if len(resp.problems) > 0 || resp.notifyOK != 2 || len(resp.subscribes) != 2 {
		t.Errorf("responder: problems %q, NOTIFY 200s %d, subscriptions %v", resp.problems, resp.notifyOK, resp.subscribes)
	}
	for _, ua := range resp.userAgents {
		if ua != "Yealink SIP-T46G 28.83.0.35" {
			t.Errorf("SIP User-Agent %q", ua)
		}
	}
	resp.mu.Unlock()

	srv.version.Store(2)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	base, _ := parseIPv4(ipBase)
	phone := &net.UDPAddr{IP: ipBytes(base), Port: port}
	answer := sipExchange(t, conn, phone, sipRequest{uri: "sip:1001@" + phone.String(), callID: "pnp-1",
		event: "check-sync;reboot=false", via: conn.LocalAddr().String()}.bytes())
	if r := parseResponse(t, answer); r.StatusCode != 200 {
		t.Fatalf("answer %s", answer)
	}
	f := ev.wait("fetch", 5*time.Second, isEventFor("fetch", "001565aabb00"))
	if f.str("etag") != `"v2-001565aabb00"` {
		t.Errorf("fetch %v", f)
	}
	if code := waitExit(t, done, 5*time.Second); code != 0 {
		t.Errorf("exit %d; stderr %s", code, stderr)
	}
	sum := ev.wait("summary", time.Second, isEvent("summary"))
	if sum.str("reason") != "exit-after-notifies" || sum.num("refetches") != 1 {
		t.Errorf("summary %v", sum)
	}
	ev.drain()
}

// TestPnPNoAnswer: nobody answers the SUBSCRIBE; the phone fails its boot.
func TestPnPNoAnswer(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ipBase, port := testAddrs(t)
	ev, done, _ := startRun(t, context.Background(), "-ip-base", ipBase, "-sip-port", strconv.Itoa(port),
		"-pnp", silent.LocalAddr().String(), "-pnp-timeout", "900ms", "-duration", "1ms")
	e := ev.wait("error", 3*time.Second, isEvent("error"))
	if e.str("stage") != "pnp" || !strings.Contains(e.str("error"), "no answer") {
		t.Errorf("error line %v", e)
	}
	if code := waitExit(t, done, 3*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	ev.drain()
	// Two SUBSCRIBEs (0 s, 0.5 s) within 900 ms.
	silent.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 4096)
	got := 0
	for {
		if _, _, err := silent.ReadFromUDP(buf); err != nil {
			break
		}
		got++
	}
	if got != 2 {
		t.Errorf("%d SUBSCRIBEs, want 2", got)
	}
}

// TestBootFailure: a 404 for one phone is a failed boot: exit status 1.
func TestBootFailure(t *testing.T) {
	srv := newCfgServer(t, "0015650a0001")
	ipBase, port := testAddrs(t)
	ev, done, _ := startRun(t, context.Background(), "-n", "3", "-ip-base", ipBase, "-sip-port", strconv.Itoa(port),
		"-prov", srv.URL+"/prov", "-duration", "1ms", "-quiet")
	if code := waitExit(t, done, 5*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	all := ev.drain()
	var kinds []string
	for _, e := range all {
		kinds = append(kinds, e.str("event"))
		switch e.str("event") {
		case "booted":
			if e.num("ok") != 2 || e.num("failed") != 1 {
				t.Errorf("booted %v", e)
			}
		case "error":
			if e.str("mac") != "0015650a0001" || e.str("stage") != "boot" || !strings.Contains(e.str("error"), "404") {
				t.Errorf("error %v", e)
			}
		case "summary":
			if e.str("reason") != "duration" || e.num("boot_failed") != 1 {
				t.Errorf("summary %v", e)
			}
		}
	}
	// -quiet: no per-phone lines.
	if strings.Join(kinds, ",") != "error,booted,summary" {
		t.Errorf("events %v", kinds)
	}
}

// TestUnreachableServer: connection refused fails fast, not after 5 s.
func TestUnreachableServer(t *testing.T) {
	ipBase, port := testAddrs(t)
	start := time.Now()
	ev, done, _ := startRun(t, context.Background(), "-ip-base", ipBase, "-sip-port", strconv.Itoa(port),
		"-prov", "http://127.0.0.1:1/prov/", "-duration", "1ms")
	if code := waitExit(t, done, 7*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	ev.drain()
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

// TestCancelDuringRun: cancelling (SIGINT) prints the summary and exits 0.
func TestCancelDuringRun(t *testing.T) {
	srv := newCfgServer(t)
	ipBase, port := testAddrs(t)
	ctx, cancel := context.WithCancel(context.Background())
	ev, done, _ := startRun(t, ctx, "-n", "5", "-ip-base", ipBase, "-sip-port", strconv.Itoa(port), "-prov", srv.URL+"/prov/")
	ev.wait("booted", 5*time.Second, isEvent("booted"))
	cancel()
	if code := waitExit(t, done, 3*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	sum := ev.wait("summary", time.Second, isEvent("summary"))
	if sum.str("reason") != "signal" || sum.num("boot_ok") != 5 {
		t.Errorf("summary %v", sum)
	}
	ev.drain()
	// The sockets are closed: the addresses can be bound again.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ipBase), Port: port})
	if err != nil {
		t.Errorf("socket still bound: %v", err)
	} else {
		c.Close()
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		flag string
	}{
		{[]string{"-n", "0"}, "-n"},
		{[]string{"-n", "x"}, "-n"},
		{[]string{"-first-mac", "0015650a00"}, "-first-mac"},
		{[]string{"-first-mac", "ffffffffffff", "-n", "2"}, "-first-mac"},
		{[]string{"-ip-base", "localhost"}, "-ip-base"},
		{[]string{"-ip-base", "127.255.255.254", "-n", "3"}, "-ip-base"},
		{[]string{"-sip-port", "70000"}, "-sip-port"},
		{[]string{"-prov", "ftp://x/"}, "-prov"},
		{[]string{"-prov", "/prov/"}, "-prov"},
		{[]string{"-pnp", "nohostport"}, "-pnp"},
		{[]string{"-boot-concurrency", "0"}, "-boot-concurrency"},
		{[]string{"-duration", "-1s"}, "-duration"},
		{[]string{"-exit-after-notifies", "-1"}, "-exit-after-notifies"},
		{[]string{"-model", "T46G\"x"}, "-model"},
		{[]string{"-reboot-time", "-1s"}, "-reboot-time"},
		{[]string{"-register-timeout", "0s"}, "-register-timeout"},
		{[]string{"-max-reports", "-1"}, "-max-reports"},
		{[]string{"-web-port", "65536"}, "-web-port"},
		{[]string{"-web-port", "-1"}, "-web-port"},
		{[]string{"-autop-finish", "sometimes"}, "-autop-finish"},
		{[]string{"-no-such-flag"}, "-no-such-flag"},
		{[]string{"stray"}, "stray"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errOut)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errOut.String(), tt.flag) {
				t.Errorf("stderr does not name %s: %q", tt.flag, errOut.String())
			}
			if out.Len() != 0 {
				t.Errorf("stdout: %q", out.String())
			}
		})
	}
}
