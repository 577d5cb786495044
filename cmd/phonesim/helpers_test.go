package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testAddrs picks a loopback /24 of its own (127.64-191.x.0) and a UDP port
// free on its first address, so parallel test runs do not collide.
func testAddrs(t *testing.T) (ipBase string, port int) {
	t.Helper()
	for range 20 {
		base := fmt.Sprintf("127.%d.%d.1", 64+rand.IntN(128), rand.IntN(256))
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(base)})
		if err != nil {
			continue
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		return base, port
	}
	t.Fatal("no free loopback address")
	return "", 0
}

// cfgServer serves /prov/<mac>.cfg with ETag "v<version>-<mac>"; the test
// bumps the version. It records who fetched what.
type cfgServer struct {
	*httptest.Server
	version  atomic.Int64
	notFound map[string]bool // MACs answered 404

	mu      sync.Mutex
	fetches map[string][]fetchSeen
}

type fetchSeen struct {
	ip, ua, etag string
}

func newCfgServer(t *testing.T, notFound ...string) *cfgServer {
	s := &cfgServer{fetches: map[string][]fetchSeen{}, notFound: map[string]bool{}}
	for _, m := range notFound {
		s.notFound[m] = true
	}
	s.version.Store(1)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mac, ok := strings.CutPrefix(r.URL.Path, "/prov/")
		mac, ok2 := strings.CutSuffix(mac, ".cfg")
		if !ok || !ok2 || s.notFound[mac] {
			http.NotFound(w, r)
			return
		}
		etag := fmt.Sprintf(`"v%d-%s"`, s.version.Load(), mac)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		s.mu.Lock()
		s.fetches[mac] = append(s.fetches[mac], fetchSeen{ip: host, ua: r.UserAgent(), etag: etag})
		s.mu.Unlock()
		w.Header().Set("ETag", etag)
		// notify_reboot_enable = 0: a check-sync re-fetches (factory 1 would reboot).
		fmt.Fprintf(w, "#!version:1.0.0.1\naccount.1.user_name = %s\nsip.notify_reboot_enable = 0\n", mac)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *cfgServer) seen(mac string) []fetchSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fetchSeen(nil), s.fetches[mac]...)
}

// event is one stdout line of phonesim.
type event map[string]any

func (e event) str(k string) string {
	s, _ := e[k].(string)
	return s
}

func (e event) num(k string) float64 {
	f, _ := e[k].(float64)
	return f
}

// events reads JSON lines from r; a line that is not JSON fails the test.
type events struct {
	t   *testing.T
	ch  chan event
	all []event // seen so far by next
}

func readEvents(t *testing.T, r io.Reader) *events {
	e := &events{t: t, ch: make(chan event, 1024)}
	go func() {
		defer close(e.ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var ev event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("stdout line is not JSON: %q", sc.Text())
				continue
			}
			e.ch <- ev
		}
	}()
	return e
}

// wait returns the next event matching ok, failing after timeout.
func (e *events) wait(what string, timeout time.Duration, ok func(event) bool) event {
	e.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, open := <-e.ch:
			if !open {
				e.t.Fatalf("stdout closed while waiting for %s; seen %v", what, e.all)
			}
			e.all = append(e.all, ev)
			if ok(ev) {
				return ev
			}
		case <-deadline:
			e.t.Fatalf("no %s within %v; seen %v", what, timeout, e.all)
		}
	}
}

// drain reads to the end of stdout (the process or run has ended).
func (e *events) drain() []event {
	for ev := range e.ch {
		e.all = append(e.all, ev)
	}
	return e.all
}

func isEvent(name string) func(event) bool {
	return func(e event) bool { return e.str("event") == name }
}

func isEventFor(name, mac string) func(event) bool {
	return func(e event) bool { return e.str("event") == name && e.str("mac") == mac }
}

// sipExchange sends pkt from conn to addr and returns the parsed answer.
func sipExchange(t *testing.T, conn *net.UDPConn, addr *net.UDPAddr, pkt []byte) []byte {
	t.Helper()
	if _, err := conn.WriteToUDP(pkt, addr); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	n, from, err := conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no answer from %s: %v", addr, err)
	}
	if !from.IP.Equal(addr.IP) || from.Port != addr.Port {
		t.Errorf("answer from %s, want %s", from, addr)
	}
	return buf[:n]
}
