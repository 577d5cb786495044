package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// provFixture serves /prov/<mac>.cfg from bodies the test sets and records
// the action URL GETs it receives under /report/<name>.
type provFixture struct {
	*httptest.Server

	mu      sync.Mutex
	bodies  map[string]string
	reports []reportSeen
}

type reportSeen struct {
	name   string
	query  url.Values
	ip, ua string
	auth   bool // the GET carried an Authorization header
}

func newProvFixture(t *testing.T) *provFixture {
	f := &provFixture{bodies: map[string]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *provFixture) serve(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	f.mu.Lock()
	defer f.mu.Unlock()
	if name, ok := strings.CutPrefix(r.URL.Path, "/report/"); ok {
		f.reports = append(f.reports, reportSeen{name: name, query: r.URL.Query(), ip: host, ua: r.UserAgent(),
			auth: r.Header.Get("Authorization") != ""})
		return
	}
	mac, ok := macFile(r.URL.Path)
	body, known := f.bodies[mac]
	if !ok || !known {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, body)
}

// set makes mac's config the version line and lines.
func (f *provFixture) set(mac string, lines ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies[mac] = "#!version:1.0.0.1\n" + strings.Join(lines, "\n") + "\n"
}

func (f *provFixture) seenReports() []reportSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]reportSeen(nil), f.reports...)
}

// actionURLs are config lines pointing every action URL back at f, with
// every variable phonesim fills.
func (f *provFixture) actionURLs() []string {
	var lines []string
	for _, name := range []string{reportAutopFinish, reportRegistered, reportRegisterFailed, reportUnregistered, reportIPChange} {
		lines = append(lines, fmt.Sprintf("action_url.%s = %s/report/%s?mac=$mac&ip=$ip&model=$model&fw=$firmware&user=$active_user",
			name, f.URL, name))
	}
	return lines
}

// accountLines configure account n on registrar.
func accountLines(n int, user, authName, password string, registrar *net.UDPAddr) []string {
	lines := []string{
		fmt.Sprintf("account.%d.enable = 1", n),
		fmt.Sprintf("account.%d.user_name = %s", n, user),
		fmt.Sprintf("account.%d.password = %s", n, password),
		fmt.Sprintf("account.%d.sip_server.1.address = %s", n, registrar.IP),
		fmt.Sprintf("account.%d.sip_server.1.port = %d", n, registrar.Port),
	}
	if authName != "" {
		lines = append(lines, fmt.Sprintf("account.%d.auth_name = %s", n, authName))
	}
	return lines
}

// testRegistrar is a tiny UDP registrar on 127.0.0.1: a REGISTER without
// credentials gets a 401 Digest challenge (qop=auth), one with them 200
// when the digest matches the password of its username, else 403. A
// silent registrar answers nothing.
type testRegistrar struct {
	conn   *net.UDPConn
	silent bool

	mu        sync.Mutex
	passwords map[string]string // digest username → password
	seen      []registerSeen
	done      chan struct{}
}

type registerSeen struct {
	from, callID       string
	user               string // of the To URI
	cseq               uint32
	authorized         bool
	contact, expires   string
	ua, requestURI, to string
	status             int // the answer, 0 for none
}

func startRegistrar(t *testing.T, passwords map[string]string, silent bool) *testRegistrar {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &testRegistrar{conn: conn, silent: silent, passwords: passwords, done: make(chan struct{})}
	go r.serve()
	t.Cleanup(func() {
		conn.Close()
		<-r.done
	})
	return r
}

func (r *testRegistrar) addr() *net.UDPAddr { return r.conn.LocalAddr().(*net.UDPAddr) }

func (r *testRegistrar) setPassword(user, password string) {
	r.mu.Lock()
	r.passwords[user] = password
	r.mu.Unlock()
}

func (r *testRegistrar) serve() {
	defer close(r.done)
	buf := make([]byte, 4096)
	for {
		n, src, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		msg, err := sipmsg.ParseMessage(buf[:n])
		req, ok := msg.(*sipmsg.Request)
		if err != nil || !ok || req.Method != sipmsg.REGISTER {
			continue
		}
		seen := registerSeen{from: src.String(), callID: req.CallID().Value(), user: req.To().Address.User,
			cseq: req.CSeq().SeqNo, authorized: req.GetHeader("Authorization") != nil,
			requestURI: req.Recipient.String(), to: req.To().Value()}
		for name, v := range map[string]*string{"Contact": &seen.contact, "Expires": &seen.expires, "User-Agent": &seen.ua} {
			if h := req.GetHeader(name); h != nil {
				*v = h.Value()
			}
		}
		var res *sipmsg.Response
		if !r.silent {
			res = r.answer(req)
			seen.status = res.StatusCode
		}
		r.mu.Lock()
		r.seen = append(r.seen, seen)
		r.mu.Unlock()
		if res != nil {
			r.conn.WriteToUDP([]byte(res.String()), src)
		}
	}
}

func (r *testRegistrar) answer(req *sipmsg.Request) *sipmsg.Response {
	h := req.GetHeader("Authorization")
	if h == nil {
		res := sipmsg.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sipmsg.NewHeader("WWW-Authenticate",
			`Digest realm="provbox-test", nonce="`+randomToken(8)+`", qop="auth", algorithm=MD5`))
		return res
	}
	params, err := parseAuthParams(strings.TrimPrefix(h.Value(), "Digest "))
	r.mu.Lock()
	password, known := r.passwords[params["username"]]
	r.mu.Unlock()
	if err != nil || !known || params["realm"] != "provbox-test" || params["uri"] != req.Recipient.String() ||
		params["response"] != digestResponse(params["username"], params["realm"], password, "REGISTER", params["uri"],
			params["nonce"], params["nc"], params["cnonce"], params["qop"]) {
		return sipmsg.NewResponseFromRequest(req, 403, "Forbidden", nil)
	}
	res := sipmsg.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sipmsg.HeaderClone(req.Contact()))
	res.AppendHeader(sipmsg.NewHeader("Expires", "3600"))
	return res
}

// registers returns the distinct REGISTERs (Call-ID and CSeq: not their
// retransmissions) for the To user.
func (r *testRegistrar) registers(user string) []registerSeen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []registerSeen
	seen := map[string]bool{}
	for _, s := range r.seen {
		key := s.callID + " " + strconv.Itoa(int(s.cseq))
		if s.user == user && !seen[key] {
			seen[key] = true
			out = append(out, s)
		}
	}
	return out
}

// all returns every REGISTER received, retransmissions included.
func (r *testRegistrar) all() []registerSeen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]registerSeen(nil), r.seen...)
}

// simRun is one phonesim run in this process, with a SIP socket on
// 127.0.0.1 to talk to its phones.
type simRun struct {
	t       *testing.T
	ev      *events
	done    <-chan int
	stderr  *bytes.Buffer
	cancel  context.CancelFunc
	ipBase  string
	ips     []uint32
	port    int
	webPort int // with "-web-port", webPortFree
	conn    *net.UDPConn
}

// webPortFree as the value of -web-port asks startSim for a port free on
// the run's addresses.
const webPortFree = "free"

// startSim runs n phones (MACs from firstMAC) against f, with args added.
func startSim(t *testing.T, f *provFixture, n int, firstMAC string, args ...string) *simRun {
	t.Helper()
	ipBase, port := testAddrs(t)
	webPort := 0
	args = append([]string(nil), args...)
	for i, a := range args {
		if a == webPortFree {
			webPort = freeTCPPort(t, ipBase)
			args[i] = strconv.Itoa(webPort)
		}
	}
	base, _ := parseIPv4(ipBase)
	ips, err := ipRange(base, n)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	all := append([]string{"-n", strconv.Itoa(n), "-first-mac", firstMAC, "-ip-base", ipBase,
		"-sip-port", strconv.Itoa(port), "-prov", f.URL + "/prov/"}, args...)
	ev, done, stderr := startRun(t, ctx, all...)
	r := &simRun{t: t, ev: ev, done: done, stderr: stderr, cancel: cancel, ipBase: ipBase, ips: ips, port: port,
		webPort: webPort, conn: conn}
	booted := ev.wait("booted", 5*time.Second, isEvent("booted"))
	if booted.num("ok") != float64(n) {
		t.Fatalf("booted %v; stderr %s; events %v", booted, stderr, ev.all)
	}
	return r
}

func (r *simRun) ip(i int) string { return ipString(r.ips[i]) }

func (r *simRun) phone(i int) *net.UDPAddr {
	return &net.UDPAddr{IP: ipBytes(r.ips[i]), Port: r.port}
}

// stranger is a socket on an address of the run's own /24 that is no
// phone's and no registrar's.
func (r *simRun) stranger() *net.UDPConn {
	base, _ := parseIPv4(r.ipBase)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ipBytes(base&^0xff | 200)})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// request sends a SIP request from conn (nil: the run's socket) to phone i
// and returns the answer's status, 0 when none came within wait.
func (r *simRun) request(conn *net.UDPConn, i int, req sipRequest, wait time.Duration) int {
	r.t.Helper()
	if conn == nil {
		conn = r.conn
	}
	req.via = conn.LocalAddr().String()
	if req.uri == "" {
		req.uri = "sip:1001@" + r.phone(i).String()
	}
	if _, err := conn.WriteToUDP(req.bytes(), r.phone(i)); err != nil {
		r.t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		return 0
	}
	return parseResponse(r.t, buf[:n]).StatusCode
}

// checkSync sends phone i a check-sync and fails unless it is answered 200.
func (r *simRun) checkSync(i int, callID, event string) {
	r.t.Helper()
	if st := r.request(nil, i, sipRequest{callID: callID, event: event}, 3*time.Second); st != 200 {
		r.t.Fatalf("check-sync %s answered %d", callID, st)
	}
}

// stop ends the run like SIGINT and returns its summary line.
func (r *simRun) stop() event {
	r.t.Helper()
	r.cancel()
	if code := waitExit(r.t, r.done, 5*time.Second); code != 0 {
		r.t.Errorf("exit %d; stderr %s", code, r.stderr)
	}
	r.ev.drain()
	for _, e := range r.ev.all {
		if e.str("event") == "summary" {
			return e
		}
	}
	r.t.Fatalf("no summary in %v", r.ev.all)
	return nil
}

// waitCount reads events until n of all seen so far match ok, and returns
// those that match. Unlike wait it also counts events read before.
func (e *events) waitCount(what string, timeout time.Duration, n int, ok func(event) bool) []event {
	e.t.Helper()
	deadline := time.After(timeout)
	for {
		var got []event
		for _, ev := range e.all {
			if ok(ev) {
				got = append(got, ev)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case ev, open := <-e.ch:
			if !open {
				e.t.Fatalf("stdout closed while waiting for %d %s; seen %v", n, what, e.all)
			}
			e.all = append(e.all, ev)
		case <-deadline:
			e.t.Fatalf("%d of %d %s within %v; seen %v", len(got), n, what, timeout, e.all)
		}
	}
}

// count is how many events seen so far match ok.
func (e *events) count(ok func(event) bool) int {
	n := 0
	for _, ev := range e.all {
		if ok(ev) {
			n++
		}
	}
	return n
}

// where matches events whose fields equal the given key, value pairs
// (compared as printed: 200 matches the JSON number 200).
func where(pairs ...any) func(event) bool {
	return func(e event) bool {
		for i := 0; i+1 < len(pairs); i += 2 {
			v, ok := e[pairs[i].(string)]
			if !ok || fmt.Sprint(v) != fmt.Sprint(pairs[i+1]) {
				return false
			}
		}
		return true
	}
}

// checkSummary compares summary fields with want.
func checkSummary(t *testing.T, sum event, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if sum.num(k) != v {
			t.Errorf("summary %s = %v, want %v", k, sum.num(k), v)
		}
	}
}
