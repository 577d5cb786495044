package webui

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inPoll is how many connections wait in the listener's poll loop.
func inPoll(l *fastListener) int {
	l.poll.mu.Lock()
	defer l.poll.mu.Unlock()
	return len(l.poll.conns)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A keep-alive connection waits for its next request in the poll loop,
// without a goroutine of its own, over HTTP and over HTTPS; an answer
// that would wait (a new version) or that the socket cannot take at once
// is given to a goroutine, and the connection comes back after it.
func TestPoll_IdleConnectionsHoldNoGoroutine(t *testing.T) {
	p := newFastPair(t, 10*time.Second, time.Minute)
	certSrv := httptest.NewUnstartedServer(nil)
	certSrv.StartTLS()
	defer certSrv.Close()
	cert := certSrv.TLS.Certificates[0]
	s := &Server{Files: &fakeFiles{}, TLSCert: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, Handler: s.Handler()}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := s.fastTLS(raw, srv).(*fastListener)
	go srv.Serve(tln)
	defer srv.Close()

	const n = 40
	req := "GET /prov/001565aabbcc.cfg HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic("001565aabbcc", fakeSecret) + "\r\n\r\n"
	for _, tt := range []struct {
		name string
		ln   *fastListener
		dial func() (net.Conn, error)
	}{
		{"HTTP", p.ln, func() (net.Conn, error) { return net.Dial("tcp", p.fast) }},
		{"HTTPS", tln, func() (net.Conn, error) {
			return tls.Dial("tcp", raw.Addr().String(), &tls.Config{RootCAs: certSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			var conns []net.Conn
			var readers []*bufio.Reader
			for range n {
				c, err := tt.dial()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, req)
				br := bufio.NewReader(c)
				if r := readResp(br, "GET"); r == nil || r.status != 200 {
					t.Fatalf("answer %+v", r)
				}
				conns, readers = append(conns, c), append(readers, br)
			}
			waitFor(t, "the connections in the poll loop", func() bool { return inPoll(tt.ln) == n })
			if grown := runtime.NumGoroutine() - before; grown > 5 {
				t.Fatalf("%d idle connections hold %d more goroutines", n, grown)
			}
			// Each answers again from the loop.
			for i, c := range conns {
				io.WriteString(c, req)
				if r := readResp(readers[i], "GET"); r == nil || r.status != 200 || !strings.Contains(r.body, "account.1.user_name = 1001") {
					t.Fatalf("connection %d, second answer %+v", i, r)
				}
			}
		})
	}

	t.Run("would wait", func(t *testing.T) {
		noWait, wait := p.files.askedNoWait.Load(), p.files.askedWait.Load()
		c, br := dialFast(t, p.fast, 10*time.Second)
		for i := range 3 {
			io.WriteString(c, "GET /prov/wait.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
			if r := readResp(br, "GET"); r == nil || r.status != 200 || r.body != "#!version:1.0.0.1\nnew = version\n" {
				t.Fatalf("answer %d: %+v", i, r)
			}
		}
		if got, want := p.files.askedNoWait.Load()-noWait, int64(3); got != want {
			t.Errorf("asked with NoWait %d times, want %d (each request first from the loop)", got, want)
		}
		if got, want := p.files.askedWait.Load()-wait, int64(3); got != want {
			t.Errorf("asked allowing the wait %d times, want %d", got, want)
		}
	})

	t.Run("socket full", func(t *testing.T) {
		c, br := dialFast(t, p.fast, 20*time.Second)
		io.WriteString(c, "GET /prov/big.cfg HTTP/1.1\r\nHost: x\r\n\r\nGET /prov/big.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(200 * time.Millisecond) // the socket fills: the rest waits for a goroutine
		for i := range 2 {
			r := readResp(br, "GET")
			if r == nil || r.status != 200 || r.body != string(bigBody()) {
				t.Fatalf("answer %d: %v", i, r != nil)
			}
		}
		before := inPoll(p.ln)
		io.WriteString(c, "GET /prov/y000000000028.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := readResp(br, "GET"); r == nil || r.status != 200 {
			t.Fatalf("after: %+v", r)
		}
		waitFor(t, "the connection back in the poll loop", func() bool { return inPoll(p.ln) >= before })
	})
}

// A signal that interrupts the loop's wait (EINTR: the Go runtime's
// preemption signal, a SIGHUP) does not end or break it.
func TestPoll_SignalsInterruptTheWait(t *testing.T) {
	p := newFastPair(t, 10*time.Second, time.Minute)
	req := "GET /prov/y000000000028.cfg HTTP/1.1\r\nHost: x\r\n\r\n"
	c, br := dialFast(t, p.fast, 10*time.Second)
	waitFor(t, "the loop's thread", func() bool { return p.ln.poll.tid.Load() != 0 })
	for i := range 4 {
		io.WriteString(c, req)
		if r := readResp(br, "GET"); r == nil || r.status != 200 {
			t.Fatalf("answer %d: %+v", i, r)
		}
		// Into the raw wait, and (every pollSpin and more) the ordinary
		// one after it.
		for i := range 12 {
			if err := unix.Tgkill(unix.Getpid(), int(p.ln.poll.tid.Load()), unix.SIGURG); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(i%3) * pollSpin)
		}
	}
	if r := exchange(t, p.fast, req, "GET")[0]; r == nil || r.status != 200 {
		t.Fatalf("a new connection after the signals: %+v", r)
	}
}
