package webui

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// fakeFiles answers like the resolver: a phone's file needs its secret
// (an unknown phone's gets the same 401), a common file and a firmware
// from disk need none.
type fakeFiles struct {
	fwPath string
	mod    time.Time
	// wait.cfg is answered only where the answer may wait (without
	// NoWait), as the resolver answers a new version; asked counts the
	// requests with NoWait and without.
	askedNoWait, askedWait atomic.Int64
}

// bigBody is big.cfg: more than loopback's socket buffers take at once.
var bigBody = sync.OnceValue(func() []byte { return bytes.Repeat([]byte("account.1.label = big\n"), 16<<20/22) })

const fakeSecret = "s3cret"

func (f *fakeFiles) ResolveFile(ctx context.Context, req appliance.FileRequest) (*appliance.ServedFile, error) {
	switch req.Name {
	case "001565aabbcc.cfg", "001565999999.cfg":
		if req.Name != "001565aabbcc.cfg" || !req.HasAuth || req.User != "001565aabbcc" || req.Password != fakeSecret {
			return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "wrong secret")
		}
		body := []byte("#!version:1.0.0.1\naccount.1.user_name = 1001\nua = " + req.UA + "\n")
		return &appliance.ServedFile{Name: req.Name, Size: int64(len(body)), Body: body, Version: "abc123"}, nil
	case "y000000000028.cfg":
		body := bytes.Repeat([]byte("static.common = 1\n"), 700) // over net/http's 4 KiB buffer
		return &appliance.ServedFile{Name: req.Name, Size: int64(len(body)), Body: body, Version: "0f1e2d"}, nil
	case "T46-28.86.0.10.rom":
		fh, err := os.Open(f.fwPath)
		if err != nil {
			return nil, err
		}
		st, _ := fh.Stat()
		return &appliance.ServedFile{Name: req.Name, Size: st.Size(), ModTime: f.mod, Content: fh, Closer: fh}, nil
	case "wait.cfg":
		if req.NoWait {
			f.askedNoWait.Add(1)
			return nil, appliance.ErrWouldWait
		}
		f.askedWait.Add(1)
		body := []byte("#!version:1.0.0.1\nnew = version\n")
		return &appliance.ServedFile{Name: req.Name, Size: int64(len(body)), Body: body, Version: "f00d"}, nil
	case "big.cfg":
		b := bigBody()
		return &appliance.ServedFile{Name: req.Name, Size: int64(len(b)), Body: b, Version: "b16"}, nil
	case "busy.cfg":
		return nil, appliance.Errorf(appliance.ETOOMANY, "", "refused")
	case "broken.cfg":
		return nil, io.ErrUnexpectedEOF
	case "panic.cfg":
		panic("resolver bug")
	}
	return nil, appliance.Errorf(appliance.ENOTFOUND, "", "no such file")
}

func (f *fakeFiles) RenderFile(ctx context.Context, mac, name string) ([]byte, error) {
	return nil, appliance.Errorf(appliance.ENOTFOUND, "", "no")
}

// fastPair is a server behind the loop (as Open serves it) and the same
// server behind net/http alone, to compare their answers.
type fastPair struct {
	fast, ref string // addresses
	ln        *fastListener
	files     *fakeFiles
	handoffs  *atomic.Int64 // connections net/http got from the loop
}

// countingListener counts the connections the loop handed to net/http.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newFastPair(tb testing.TB, headerTimeout, idle time.Duration) *fastPair {
	tb.Helper()
	fw := filepath.Join(tb.TempDir(), "fw.rom")
	if err := os.WriteFile(fw, bytes.Repeat([]byte{0xaa, 0x55}, 3<<19), 0o644); err != nil { // 3 MiB: several copy chunks
		tb.Fatal(err)
	}
	files := &fakeFiles{fwPath: fw, mod: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	s := &Server{Files: files}
	h := s.Handler()
	ref := httptest.NewServer(h)
	tb.Cleanup(ref.Close)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &fastPair{ref: ref.Listener.Addr().String(), fast: raw.Addr().String(), files: files, handoffs: &atomic.Int64{}}
	p.ln = newFastListener(raw, s.prov, headerTimeout, idle)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: headerTimeout, IdleTimeout: idle}
	go srv.Serve(countingListener{p.ln, p.handoffs})
	tb.Cleanup(func() { srv.Close(); p.ln.Close() })
	return p
}

// dialFast connects to addr with a deadline d from now, closed when the
// test ends.
func dialFast(tb testing.TB, addr string, d time.Duration) (net.Conn, *bufio.Reader) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(d))
	return c, bufio.NewReader(c)
}

// exchange writes raw to addr on one connection and reads one response
// per method (nil: the connection ended first).
func exchange(tb testing.TB, addr, raw string, methods ...string) []*resp {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*resp
	for _, m := range methods {
		out = append(out, readResp(br, m))
	}
	return out
}

// resp is a response as read off the wire: head is its status line and
// header lines as sent, but the Date.
type resp struct {
	status int
	head   string
	header http.Header
	body   string
}

func readResp(br *bufio.Reader, method string) *resp {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil
		}
		if !strings.HasPrefix(line, "Date: ") {
			head.WriteString(line)
		}
		if line == "\r\n" {
			break
		}
	}
	r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head.String())), &http.Request{Method: "HEAD"})
	if err != nil {
		return nil
	}
	var body []byte
	switch n, err := strconv.Atoi(r.Header.Get("Content-Length")); {
	case method == "HEAD" || r.StatusCode == 304:
	case err == nil:
		body = make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return nil
		}
	default:
		body, _ = io.ReadAll(br)
	}
	return &resp{status: r.StatusCode, head: head.String(), header: r.Header, body: string(body)}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// The loop answers what net/http answers, byte for byte but the Date,
// and hands every request it does not answer to net/http.
func TestFastProv_SameAnswers(t *testing.T) {
	p := newFastPair(t, 10*time.Second, time.Minute)
	own := "Authorization: " + basic("001565aabbcc", fakeSecret) + "\r\n"
	get := func(path, extra string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: provbox:8080\r\nUser-Agent: Yealink SIP-T46G\r\n" + extra + "\r\n"
	}
	tests := []struct {
		name    string
		raw     string
		methods []string
		status  []int
		fast    bool // answered by the loop (no hand-off)
	}{
		{"own secret", get("/prov/001565aabbcc.cfg", own), []string{"GET"}, []int{200}, true},
		{"basic in lower case", get("/prov/001565aabbcc.cfg", "authorization: basic "+basic("001565aabbcc", fakeSecret)[6:]+"\r\n"), []string{"GET"}, []int{200}, true},
		{"HEAD", "HEAD /prov/001565aabbcc.cfg HTTP/1.1\r\nHost: x\r\n" + own + "\r\n", []string{"HEAD"}, []int{200}, true},
		{"no secret", get("/prov/001565aabbcc.cfg", ""), []string{"GET"}, []int{401}, true},
		{"wrong secret", get("/prov/001565aabbcc.cfg", "Authorization: "+basic("001565aabbcc", "nope")+"\r\n"), []string{"GET"}, []int{401}, true},
		{"unknown MAC", get("/prov/001565999999.cfg", "Authorization: "+basic("001565999999", "nope")+"\r\n"), []string{"GET"}, []int{401}, true},
		{"HEAD refused", "HEAD /prov/001565999999.cfg HTTP/1.1\r\nHost: x\r\n\r\n", []string{"HEAD"}, []int{401}, true},
		{"large common file", get("/prov/y000000000028.cfg", ""), []string{"GET"}, []int{200}, true},
		{"firmware from disk", get("/prov/T46-28.86.0.10.rom", ""), []string{"GET"}, []int{200}, true},
		{"firmware HEAD", "HEAD /prov/T46-28.86.0.10.rom HTTP/1.1\r\nHost: x\r\n\r\n", []string{"HEAD"}, []int{200}, true},
		{"not found", get("/prov/nothing.bin", ""), []string{"GET"}, []int{404}, true},
		{"answer that waits", get("/prov/wait.cfg", "") + get("/prov/wait.cfg", ""), []string{"GET", "GET"}, []int{200, 200}, true},
		{"socket full", get("/prov/big.cfg", "") + get("/prov/y000000000028.cfg", ""), []string{"GET", "GET"}, []int{200, 200}, true},
		{"refused a while", get("/prov/busy.cfg", ""), []string{"GET"}, []int{429}, true},
		{"resolver error", get("/prov/broken.cfg", ""), []string{"GET"}, []int{500}, true},
		{"resolver panic", get("/prov/panic.cfg", ""), []string{"GET"}, nil, true},
		{"Content-Length 0", get("/prov/y000000000028.cfg", "Content-Length: 0\r\n"), []string{"GET"}, []int{200}, true},
		{"Connection: close", get("/prov/001565aabbcc.cfg", own+"Connection: close\r\n"), []string{"GET", "GET"}, []int{200}, true},
		{"HTTP/1.0", "GET /prov/y000000000028.cfg HTTP/1.0\r\n\r\n", []string{"GET", "GET"}, []int{200}, true},
		{"HTTP/1.0 keep-alive", "GET /prov/y000000000028.cfg HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /prov/nothing HTTP/1.0\r\n\r\n", []string{"GET", "GET", "GET"}, []int{200, 404}, true},
		{"pipelined", get("/prov/y000000000028.cfg", "") + get("/prov/001565aabbcc.cfg", own) + "HEAD /prov/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]string{"GET", "GET", "HEAD", "GET"}, []int{200, 200, 404}, true},

		// Handed to net/http, with what the loop had read.
		{"admin page", get("/healthz", ""), []string{"GET"}, []int{200}, false},
		{"prov then admin then prov", get("/prov/001565aabbcc.cfg", own) + get("/healthz", "") + get("/prov/001565aabbcc.cfg", own) + get("/prov/y000000000028.cfg", "Connection: close\r\n"),
			[]string{"GET", "GET", "GET", "GET", "GET"}, []int{200, 200, 200, 200}, false},
		{"report", get("/prov/ev/tok/registered?mac=001565aabbcc", ""), []string{"GET"}, nil, false},
		{"query", get("/prov/y000000000028.cfg?x=1", ""), []string{"GET"}, []int{200}, false},
		{"escaped", get("/prov/y000000000028%2Ecfg", ""), []string{"GET"}, []int{404}, false},
		{"dot segment", get("/prov/..", ""), []string{"GET"}, []int{307}, false},
		{"two segments", get("/prov/a/b.cfg", ""), []string{"GET"}, []int{404}, false},
		{"POST", "POST /prov/y000000000028.cfg HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", []string{"POST"}, []int{405}, false},
		{"body", get("/prov/y000000000028.cfg", "Content-Length: 5\r\n") + "hello" + get("/prov/nothing", ""), []string{"GET", "GET"}, []int{200, 404}, false},
		{"chunked", get("/prov/y000000000028.cfg", "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n", []string{"GET"}, []int{200}, false},
		{"smuggling: both lengths", get("/prov/y000000000028.cfg", "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n", []string{"GET"}, []int{200}, false},
		{"two lengths", get("/prov/y000000000028.cfg", "Content-Length: 0\r\nContent-Length: 0\r\n"), []string{"GET"}, []int{200}, false},
		{"folded header", get("/prov/y000000000028.cfg", "X-A: 1\r\n 2\r\n"), []string{"GET"}, []int{200}, false},
		{"space before colon", get("/prov/y000000000028.cfg", "X-A : 1\r\n"), []string{"GET"}, []int{400}, false},
		{"control byte", get("/prov/y000000000028.cfg", "X-A: 1\x012\r\n"), []string{"GET"}, []int{400}, false},
		{"bare LF", "GET /prov/y000000000028.cfg HTTP/1.1\nHost: x\n\n", []string{"GET"}, []int{200}, false},
		{"no Host", "GET /prov/y000000000028.cfg HTTP/1.1\r\n\r\n", []string{"GET"}, []int{400}, false},
		{"two Hosts", get("/prov/y000000000028.cfg", "Host: other\r\n"), []string{"GET"}, []int{400}, false},
		{"odd Host", "GET /prov/y000000000028.cfg HTTP/1.1\r\nHost: a b\r\n\r\n", []string{"GET"}, []int{400}, false},
		{"conditional", get("/prov/001565aabbcc.cfg", own+"If-None-Match: \"abc123\"\r\n"), []string{"GET"}, []int{304}, false},
		{"range", get("/prov/y000000000028.cfg", "Range: bytes=0-9\r\n"), []string{"GET"}, []int{206}, false},
		{"expect", get("/prov/y000000000028.cfg", "Expect: 100-continue\r\n"), []string{"GET"}, []int{200}, false},
		{"upgrade", get("/prov/y000000000028.cfg", "Connection: Upgrade\r\nUpgrade: h2c\r\n"), []string{"GET"}, []int{200}, false},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", []string{"GET"}, nil, false},
		{"HTTP/1.2", "GET /prov/y000000000028.cfg HTTP/1.2\r\nHost: x\r\n\r\n", []string{"GET"}, []int{200}, false},
		{"no version", "GET /prov/y000000000028.cfg\r\n\r\n", []string{"GET"}, []int{400}, false},
		{"large header", get("/prov/y000000000028.cfg", "X-Big: "+strings.Repeat("a", 10<<10)+"\r\n"), []string{"GET"}, []int{200}, false},
		{"too many lines", get("/prov/y000000000028.cfg", strings.Repeat("X-A: 1\r\n", 70)), []string{"GET"}, []int{200}, false},
		{"header over net/http's limit", get("/prov/y000000000028.cfg", "X-Big: "+strings.Repeat("a", 2<<20)+"\r\n"), []string{"GET"}, []int{431}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.handoffs.Load()
			got := exchange(t, p.fast, tt.raw, tt.methods...)
			want := exchange(t, p.ref, tt.raw, tt.methods...)
			for i := range tt.methods {
				g, w := got[i], want[i]
				if (g == nil) != (w == nil) {
					t.Fatalf("response %d: loop %+v, net/http %+v", i, g, w)
				}
				if i < len(tt.status) && (w == nil || w.status != tt.status[i]) {
					t.Fatalf("response %d: net/http %+v, want status %d", i, w, tt.status[i])
				}
				if i >= len(tt.status) && w != nil && tt.status != nil {
					t.Fatalf("response %d: want the connection closed, got %d", i, w.status)
				}
				if g == nil {
					continue
				}
				if g.head != w.head || g.body != w.body {
					t.Errorf("response %d:\nloop     %q %.80q\nnet/http %q %.80q", i, g.head, g.body, w.head, w.body)
				}
			}
			if handed := p.handoffs.Load() - before; handed != map[bool]int64{true: 0, false: 1}[tt.fast] {
				t.Errorf("handed to net/http: %d connections, fast %v", handed, tt.fast)
			}
		})
	}
}

// A request that stalls is dropped after the header timeout, an idle
// connection after the idle timeout; a connection that keeps sending
// stays.
func TestFastProv_Timeouts(t *testing.T) {
	p := newFastPair(t, 300*time.Millisecond, 600*time.Millisecond)
	dial := func() (net.Conn, *bufio.Reader) { return dialFast(t, p.fast, 5*time.Second) }
	closedWithin := func(c net.Conn, br *bufio.Reader, min, max time.Duration, start time.Time) {
		t.Helper()
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("read a byte; want the connection closed")
		}
		if d := time.Since(start); d < min || d > max {
			t.Fatalf("closed after %v, want %v..%v", d, min, max)
		}
	}
	req := "GET /prov/y000000000028.cfg HTTP/1.1\r\nHost: x\r\n\r\n"

	// Slowloris: a header never finished.
	c, br := dial()
	start := time.Now()
	io.WriteString(c, req[:20])
	for range 3 { // trickling does not extend the deadline
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, "X")
	}
	closedWithin(c, br, 250*time.Millisecond, 2*time.Second, start)

	// Idle after an answer: the idle timeout.
	c, br = dial()
	io.WriteString(c, req)
	if r := readResp(br, "GET"); r == nil || r.status != 200 {
		t.Fatalf("first answer %+v", r)
	}
	start = time.Now()
	closedWithin(c, br, 500*time.Millisecond, 3*time.Second, start)

	// Requests every 200 ms keep the connection (each within the
	// timeouts).
	c, br = dial()
	for i := range 5 {
		io.WriteString(c, req)
		if r := readResp(br, "GET"); r == nil || r.status != 200 {
			t.Fatalf("answer %d: %+v", i, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Close ends every connection the loop holds, and each of its goroutines.
func TestFastProv_CloseEndsEverything(t *testing.T) {
	base := runtime.NumGoroutine()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Files: &fakeFiles{}}
	s.Handler()
	l := newFastListener(raw, s.prov, 10*time.Second, time.Minute)
	var conns []net.Conn
	for i := range 5 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		switch i {
		case 0, 1: // idle after an answer
			io.WriteString(c, "GET /prov/x.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
			if r := readResp(bufio.NewReader(c), "GET"); r == nil || r.status != 404 {
				t.Fatalf("answer %+v", r)
			}
		case 2: // half a request
			io.WriteString(c, "GET /prov/x.cfg HTTP/1.1\r\n")
		case 3: // waiting for a hand-off nobody accepts
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs")
	}
	if _, err := l.Accept(); err == nil {
		t.Fatal("Accept after Close: no error")
	}
	for i, c := range conns {
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d open after Close (read %d)", i, n)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > base; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The loop's answers are counted and logged like provFirst's.
func TestFastProv_Metrics(t *testing.T) {
	p := newFastPair(t, 10*time.Second, time.Minute)
	exchange(t, p.fast, "GET /prov/nothing.cfg HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	exchange(t, p.ref, "GET /prov/nothing.cfg HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
	r := exchange(t, p.ref, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET")[0]
	if r == nil || !strings.Contains(r.body, `provbox_http_requests_total{code="404",route="GET /prov/"} 2`) {
		t.Fatalf("metrics: %+v", r)
	}
}

// FuzzParseFastRequest: whatever the loop answers itself is a request
// net/http reads the same way: a GET or HEAD of the same /prov/ path
// with the same Authorization and User-Agent, no body, and the same
// keep-alive.
func FuzzParseFastRequest(f *testing.F) {
	for _, s := range []string{
		"GET /prov/001565aabbcc.cfg HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\nUser-Agent: Yealink\r\n\r\n",
		"HEAD /prov/y.cfg HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /prov/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"GET /prov/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /prov/a HTTP/1.1\r\nHost: x\r\n y\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		b = b[:end+4]
		req := parseFastRequest(b, &fastRequest{})
		if !req.simple {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("the loop answers %q, net/http refuses it: %v", b, err)
		}
		if (r.Method == "HEAD") != req.head || r.Method != "GET" && r.Method != "HEAD" || r.URL.Path != req.path || r.URL.EscapedPath() != req.path ||
			r.Header.Get("Authorization") != req.auth || r.UserAgent() != req.ua || r.ContentLength != 0 || r.Close == req.keepAlive ||
			conditional(r) || r.Header.Get("Expect") != "" || len(r.TransferEncoding) > 0 {
			t.Fatalf("%q: loop %+v, net/http %s %s close=%v length=%d %v", b, req, r.Method, r.URL, r.Close, r.ContentLength, r.Header)
		}
		if name, ok := provName(r); !ok || "/prov/"+name != req.path {
			t.Fatalf("%q: provFirst would not answer it (%q %v)", b, name, ok)
		}
	})
}

// Over HTTPS the loop answers after the handshake; a request it hands off
// reaches the handler with Request.TLS, on HTTP/1.1 (ALPN offers no h2).
func TestFastProv_TLS(t *testing.T) {
	certSrv := httptest.NewUnstartedServer(nil)
	certSrv.StartTLS()
	defer certSrv.Close()
	cert := certSrv.TLS.Certificates[0]
	s := &Server{Files: &fakeFiles{}, TLSCert: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }}
	h := s.Handler()
	var sawTLS atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && r.TLS.HandshakeComplete {
			sawTLS.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := s.fastTLS(raw, srv)
	go srv.Serve(ln)
	defer srv.Close()

	tr := certSrv.Client().Transport.(*http.Transport).Clone() // trusts the certificate
	tr.ForceAttemptHTTP2 = true                                // offers h2
	client := &http.Client{Transport: tr}
	base := "https://" + raw.Addr().String()
	var conns atomic.Int64
	trace := func(r *http.Request) *http.Request {
		return r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if !i.Reused {
				conns.Add(1)
			}
		}}))
	}
	for i, tt := range []struct {
		path   string
		auth   bool
		status int
		viaTLS int64 // requests the handler saw so far
	}{
		{"/prov/001565aabbcc.cfg", true, 200, 0},
		{"/prov/001565aabbcc.cfg", false, 401, 0},
		{"/healthz", false, 200, 1},
		{"/prov/y000000000028.cfg", false, 200, 2}, // net/http's now, on the same connection
	} {
		req, _ := http.NewRequest("GET", base+tt.path, nil)
		if tt.auth {
			req.SetBasicAuth("001565aabbcc", fakeSecret)
		}
		resp, err := client.Do(trace(req))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
			t.Fatalf("%d %s: %d %s %+v", i, tt.path, resp.StatusCode, resp.Proto, resp.TLS)
		}
		if got := sawTLS.Load(); got != tt.viaTLS {
			t.Fatalf("%d %s: the handler saw %d requests with TLS, want %d", i, tt.path, got, tt.viaTLS)
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("%d connections, want 1", conns.Load())
	}

	// Plain HTTP on the HTTPS port: net/http's 400.
	got := exchange(t, raw.Addr().String(), "GET /prov/y000000000028.cfg HTTP/1.1\r\nHost: x\r\n\r\n", "GET")[0]
	if got == nil || got.status != 400 || got.body != "Client sent an HTTP request to an HTTPS server.\n" {
		t.Fatalf("plain HTTP on the HTTPS port: %+v", got)
	}
}

// BenchmarkFastProv: one keep-alive connection fetching a phone's file
// with its secret, through the loop (b.ReportAllocs counts both ends).
func BenchmarkFastProv(b *testing.B) {
	p := newFastPair(b, 10*time.Second, time.Minute)
	c, err := net.Dial("tcp", p.fast)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /prov/001565aabbcc.cfg HTTP/1.1\r\nHost: provbox\r\nUser-Agent: Yealink SIP-T46G\r\nAuthorization: " + basic("001565aabbcc", fakeSecret) + "\r\n\r\n")
	buf := make([]byte, 64<<10)
	want := len(exchange(b, p.fast, string(req), "GET")[0].head) + len("Date: Sun, 29 Nov 2026 23:00:00 GMT\r\n") + 67
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < want; {
			m, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			n += m
		}
	}
}
