package webui_test

import (
	"errors"
	"github.com/provbox/provbox/configs"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/webui"
)

func TestServer_OpenClose(t *testing.T) {
	t.Parallel()
	s := webui.NewServer()
	s.Catalog = configs.MustCatalog()
	s.Addr = "127.0.0.1:0"
	if s.Port() != 0 || s.URL() != "" {
		t.Fatalf("before Open: Port %d URL %q", s.Port(), s.URL())
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	if s.Port() == 0 {
		t.Fatal("Port is 0 after Open")
	}
	if want := "http://127.0.0.1:" + strconv.Itoa(s.Port()); s.URL() != want {
		t.Fatalf("URL %q, want %q", s.URL(), want)
	}
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// A second server on the same port fails in Open, naming the address.
	busy := webui.NewServer()
	busy.Catalog = configs.MustCatalog()
	busy.Addr = "127.0.0.1:" + strconv.Itoa(s.Port())
	if err := busy.Open(); err == nil {
		busy.Close()
		t.Fatal("Open on a busy port succeeded")
	} else if !strings.Contains(err.Error(), busy.Addr) {
		t.Fatalf("error %q does not name %s", err, busy.Addr)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if s.Port() != 0 || s.URL() != "" {
		t.Fatalf("after Close: Port %d URL %q", s.Port(), s.URL())
	}
	if _, err := net.Dial("tcp", busy.Addr); err == nil {
		t.Fatal("still accepting connections after Close")
	}
}

func TestServer_ZeroValue(t *testing.T) {
	t.Parallel()
	// A Server built without NewServer still works: defaults fill in.
	ts := MustOpenServer(t)
	s := &webui.Server{Addr: "127.0.0.1:0", Services: ts.svc}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.Registry == nil || s.MaxBody != webui.DefaultMaxBody {
		t.Fatalf("status %d, registry %v, MaxBody %d", resp.StatusCode, s.Registry, s.MaxBody)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	r := ts.send(t, request{method: "GET", path: "/healthz", noAuth: true})
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != "ok" {
		t.Fatalf("status %d body %q", r.Status, r.Body)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.call(t, "GET", "/api/v1/phones", nil, 200, nil)
	ts.send(t, request{method: "GET", path: "/api/v1/phones", noAuth: true})

	// Make the event bus drop one delivery: a subscriber with no buffer.
	sub := ts.svc.Events.Subscribe(0)
	defer sub.Close()
	ts.svc.Events.Publish(appliance.Event{Type: appliance.EventResync, MACs: []string{"001565aabbcc"}})

	r := ts.send(t, request{method: "GET", path: "/metrics", noAuth: true})
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	text := string(r.Body)
	for _, want := range []string{
		`provbox_http_requests_total{code="200",route="GET /api/v1/phones"} 1`,
		`provbox_http_requests_total{code="401",route="GET /api/v1/phones"} 1`,
		`provbox_http_request_duration_seconds_bucket{route="GET /api/v1/phones",le="+Inf"} 2`,
		`provbox_event_bus_dropped_total 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	for _, tc := range []struct {
		name, path string
		noStore    bool
	}{
		{"api", "/api/v1/extensions", true},
		{"api error", "/api/v1/extensions/999", true},
		{"csv", "/api/v1/phones.csv", true},
		{"healthz", "/healthz", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.send(t, request{method: "GET", path: tc.path})
			if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if got := r.Header.Get("Cache-Control"); tc.noStore && got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
}

func TestCrossOriginRefused(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	// A browser on another site posting with the admin's cached Basic
	// credentials.
	r := ts.send(t, request{method: "POST", path: "/api/v1/keys",
		body:   map[string]string{"type": "speed_dial", "value": "911"},
		header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}})
	if r.Status != http.StatusForbidden {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	r.err(t)
	var keys []appliance.Key
	ts.call(t, "GET", "/api/v1/keys?type=speed_dial", nil, 200, &keys)
	if len(keys) != 0 {
		t.Fatalf("cross-site request created %v", keys)
	}
	// The same from the admin's own page is fine.
	r = ts.send(t, request{method: "POST", path: "/api/v1/keys",
		body:   map[string]string{"type": "speed_dial", "value": "911"},
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("same-origin: status %d: %s", r.Status, r.Body)
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	const secret = "sip-secret-never-logged"
	ts.call(t, "POST", "/api/v1/extensions", map[string]any{"number": "1001", "password": secret}, 201, nil)
	ts.send(t, request{method: "GET", path: "/api/v1/extensions/999"})
	// The log line is written after the answer; Close waits for handlers.
	ts.Close()
	logs := ts.logs.String()
	for _, want := range []string{
		`msg="http request" method=POST path=/api/v1/extensions status=201`,
		`method=GET path=/api/v1/extensions/999 status=404`,
		`user=admin`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, secret) {
		t.Errorf("log holds the SIP password:\n%s", logs)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	for _, tc := range []struct {
		name, method, path string
		noAuth             bool
		want               int
		allow              string
	}{
		{"no such path", "GET", "/api/v1/nope", false, 404, ""},
		{"no such path, anonymous", "GET", "/api/v1/nope", true, 401, ""},
		{"wrong method", "PUT", "/api/v1/phones", false, 405, "GET, POST"},
		{"wrong method on item", "POST", "/api/v1/keys/1", false, 405, "GET, PATCH, DELETE"},
		{"not registered yet", "GET", "/api/v1/phones/001565aabbcc/config", false, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.send(t, request{method: tc.method, path: tc.path, noAuth: tc.noAuth})
			if r.Status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.want, r.Body)
			}
			r.err(t)
			if got := r.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// TestServer_ConnectionLimits: past MaxConnsPerIP a client's connection is
// closed at once, other clients go on, and a closed connection gives its
// place back (SPEC §9: descriptors for the rest of the process).
func TestServer_ConnectionLimits(t *testing.T) {
	ts := MustOpenServer(t, func(s *webui.Server) { s.MaxConnsPerIP = 3 })
	addr := strings.TrimPrefix(ts.URL(), "http://")
	dial := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	}
	var held []net.Conn
	for range 3 {
		held = append(held, dial("127.0.0.1")) // half-open: no request sent
	}
	if c := dial("127.0.0.1"); !closed(c) {
		t.Fatal("a 4th connection from the same address was held")
	}
	// Another client is served meanwhile.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	res, err := other.Get(ts.URL() + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("another client: %v %v", res, err)
	}
	res.Body.Close()
	held[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c := dial("127.0.0.1")
		if !closed(c) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not give its place back")
		}
	}
	if !strings.Contains(ts.logs.String(), "http connections refused: too many connections") {
		t.Error("refusal not logged")
	}
}
