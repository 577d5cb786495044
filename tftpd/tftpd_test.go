package tftpd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/tftpd"
)

// memFiles is an in-memory resolver recording what it was asked.
type memFiles struct {
	mu    sync.Mutex
	files map[string][]byte
	asked []appliance.FileRequest
}

func (m *memFiles) ResolveFile(ctx context.Context, req appliance.FileRequest) (*appliance.ServedFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asked = append(m.asked, req)
	if req.Name == "001565000001.cfg" {
		return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "file", "needs the secret")
	}
	if req.Name == "refused.cfg" {
		return nil, appliance.Errorf(appliance.ETOOMANY, "file", "refused")
	}
	b, ok := m.files[req.Name]
	if !ok {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "file", "not found")
	}
	return &appliance.ServedFile{Name: req.Name, Size: int64(len(b)), Content: bytes.NewReader(b)}, nil
}

func (m *memFiles) RenderFile(ctx context.Context, mac, name string) ([]byte, error) {
	return nil, appliance.Errorf(appliance.ENOTFOUND, "file", "not here")
}

func TestServer(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB
	files := &memFiles{files: map[string][]byte{"001565aabbcc.cfg": []byte("#!version:1.0.0.1\nx = 1\n"), "fw.rom": big}}
	s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files, Timeout: 500 * time.Millisecond}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
	for _, tc := range []struct {
		name    string
		file    string
		blksize int
		want    []byte
		err     string
	}{
		{"config", "001565aabbcc.cfg", 0, files.files["001565aabbcc.cfg"], ""},
		{"firmware blksize 1468", "fw.rom", 1468, big, ""},
		{"firmware blksize 512", "fw.rom", 512, big, ""},
		{"unknown", "001565000000.cfg", 0, nil, "file not found"},
		{"refused", "refused.cfg", 0, nil, "too many requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tftp.NewClient(addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetTimeout(time.Second)
			if tc.blksize > 0 {
				c.SetBlockSize(tc.blksize)
			}
			c.RequestTSize(true)
			wt, err := c.Receive(tc.file, "octet")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, ok := wt.(tftp.IncomingTransfer).Size(); !ok || n != int64(len(tc.want)) {
				t.Fatalf("tsize %d %v", n, ok)
			}
			var buf bytes.Buffer
			if _, err := wt.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), tc.want) {
				t.Fatalf("got %d bytes, want %d", buf.Len(), len(tc.want))
			}
		})
	}
	files.mu.Lock()
	first := files.asked[0]
	files.mu.Unlock()
	if first.IP != "127.0.0.1" || first.Source != "tftp" || first.Name != "001565aabbcc.cfg" {
		t.Fatalf("request %+v", first)
	}
	// Writes are refused.
	c, _ := tftp.NewClient(addr)
	c.SetTimeout(time.Second)
	rf, err := c.Send("upload.cfg", "octet")
	if err == nil {
		_, err = rf.ReadFrom(strings.NewReader("x"))
	}
	if err == nil || !strings.Contains(err.Error(), "does not support write") {
		t.Fatalf("write: %v", err)
	}
}

func TestServer_ConcurrentFetches(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 5120)
	files := &memFiles{files: map[string][]byte{"a.cfg": body}}
	// 50 at once from one address: above the default MaxPerClient (8).
	s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files, MaxPerClient: 50}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _ := tftp.NewClient(addr)
			wt, err := c.Receive("a.cfg", "octet")
			if err != nil {
				errs <- err
				return
			}
			var buf bytes.Buffer
			if _, err := wt.WriteTo(&buf); err != nil || buf.Len() != len(body) {
				errs <- fmt.Errorf("got %d bytes: %v", buf.Len(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A file that needs the phone's secret is refused with TFTP error 2,
// access violation (RFC 1350), as the first answer the client gets.
func TestServer_AccessViolation(t *testing.T) {
	files := &memFiles{files: map[string][]byte{}}
	s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files, Timeout: 500 * time.Millisecond}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rrq := append([]byte{0, 1}, "001565000001.cfg\x00octet\x00"...)
	if _, err := c.WriteTo(rrq, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Port()}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 600)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 || !bytes.Equal(buf[:4], []byte{0, 5, 0, 2}) || !strings.Contains(string(buf[4:n]), "access violation") {
		t.Fatalf("first answer % x %q, want ERROR code 2", buf[:4], buf[4:n])
	}
}

// rrq sends a read request for file from a new socket bound to ip and
// returns the socket (closed when the test ends), which never acknowledges.
func rrq(t *testing.T, ip string, port int, file string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pkt := append([]byte{0, 1}, file+"\x00octet\x00"...)
	if _, err := c.WriteTo(pkt, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Fatal(err)
	}
	return c
}

// firstAnswer reads the first packet c gets: "DATA 1", or "ERROR <code>
// <text>".
func firstAnswer(t *testing.T, c *net.UDPConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2000)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Fatalf("short packet % x", buf[:n])
	}
	switch buf[1] {
	case 3:
		return fmt.Sprintf("DATA %d", int(buf[2])<<8|int(buf[3]))
	case 5:
		return fmt.Sprintf("ERROR %d %s", int(buf[2])<<8|int(buf[3]), strings.TrimRight(string(buf[4:n]), "\x00"))
	}
	return fmt.Sprintf("opcode %d", buf[1])
}

// TestServer_Limits: transfers in flight are bounded per client address
// and in total; a request over a limit gets error 0 at once, from the
// server's port; a slot comes back when its transfer ends, served, failed
// or timed out.
func TestServer_Limits(t *testing.T) {
	const (
		busyClient = "ERROR 0 server busy: too many transfers to this address, try again later"
		busyTotal  = "ERROR 0 server busy: too many transfers, try again later"
	)
	type req struct {
		ip, file string
		n        int    // requests, each from its own socket, never acknowledged
		want     string // first answer to the last of them ("DATA 1" for the others)
	}
	for _, tc := range []struct {
		name        string
		max, client int
		reqs        []req
		refused     int64
	}{
		{"default 8 per client", 0, 0, []req{
			{"127.0.0.1", "a.cfg", 8, "DATA 1"},
			{"127.0.0.1", "a.cfg", 1, busyClient},
			{"127.0.0.1", "missing.cfg", 1, busyClient}, // refused before the file is looked up
			{"127.0.0.2", "a.cfg", 1, "DATA 1"},
		}, 2},
		{"total", 5, 0, []req{
			{"127.0.0.11", "a.cfg", 3, "DATA 1"},
			{"127.0.0.12", "a.cfg", 2, "DATA 1"},
			{"127.0.0.13", "a.cfg", 1, busyTotal},
			{"127.0.0.11", "a.cfg", 1, busyTotal},
		}, 2},
		{"per client under a total", 6, 2, []req{
			{"127.0.0.21", "a.cfg", 2, "DATA 1"},
			{"127.0.0.21", "a.cfg", 1, busyClient},
			{"127.0.0.22", "a.cfg", 2, "DATA 1"},
			{"127.0.0.23", "a.cfg", 2, "DATA 1"},
			{"127.0.0.24", "a.cfg", 1, busyTotal},
		}, 2},
		{"failures hold no slot", 0, 1, []req{
			{"127.0.0.31", "missing.cfg", 1, "ERROR 1 file not found"},
			{"127.0.0.31", "missing.cfg", 1, "ERROR 1 file not found"},
			{"127.0.0.31", "001565000001.cfg", 1, "ERROR 2 " + "access violation: this file needs the phone's secret; fetch it over HTTP(S)"},
			{"127.0.0.31", "refused.cfg", 1, "ERROR 1 access refused: too many requests for unknown files"},
			{"127.0.0.31", "a.cfg", 1, "DATA 1"},
			{"127.0.0.31", "a.cfg", 1, busyClient},
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := &memFiles{files: map[string][]byte{"a.cfg": []byte("x = 1\n")}}
			s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files, MaxTransfers: tc.max, MaxPerClient: tc.client, Timeout: 300 * time.Millisecond, Retries: 1}
			if err := s.Open(); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			held := 0 // transfers answered with DATA, never acknowledged
			for i, r := range tc.reqs {
				for j := range r.n {
					// A refusal or failure gives its slot back when the
					// handler returns, a moment after its error packet
					// (for error 2) left: wait for that.
					for deadline := time.Now().Add(2 * time.Second); s.Active() > held; time.Sleep(time.Millisecond) {
						if time.Now().After(deadline) {
							t.Fatalf("request %d.%d: %d transfers in flight, want %d", i, j, s.Active(), held)
						}
					}
					c := rrq(t, r.ip, s.Port(), r.file)
					want := "DATA 1"
					if j == r.n-1 {
						want = r.want
					}
					got := firstAnswer(t, c)
					if got != want {
						t.Fatalf("request %d.%d (%s %s): got %q, want %q", i, j, r.ip, r.file, got, want)
					}
					if got == "DATA 1" {
						held++
					}
				}
			}
			if got := s.Refused(); got != tc.refused {
				t.Errorf("Refused %d, want %d", got, tc.refused)
			}
			// Unacknowledged transfers give their slots back after
			// Timeout × (Retries+1) = 600 ms: every address is served again.
			time.Sleep(900 * time.Millisecond)
			if n := s.Active(); n != 0 {
				t.Fatalf("%d transfers in flight after the timeouts", n)
			}
			seen := map[string]bool{}
			for _, r := range tc.reqs {
				if seen[r.ip] {
					continue
				}
				seen[r.ip] = true
				if got := firstAnswer(t, rrq(t, r.ip, s.Port(), "a.cfg")); got != "DATA 1" {
					t.Fatalf("%s after the timeouts: %q", r.ip, got)
				}
			}
		})
	}
}

// TestServer_LimitReleased: with one transfer at once, sequential
// fetches and failures all get their turn: each gives its slot back when
// it ends.
func TestServer_LimitReleased(t *testing.T) {
	files := &memFiles{files: map[string][]byte{"a.cfg": bytes.Repeat([]byte("y"), 3000)}}
	s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files, MaxTransfers: 1, MaxPerClient: 1}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// idle waits for the slot: pin's client returns once it has sent the
	// last ACK, the server's handler a moment later.
	idle := func() {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); s.Active() != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d transfers still in flight", s.Active())
			}
		}
	}
	c, _ := tftp.NewClient(fmt.Sprintf("127.0.0.1:%d", s.Port()))
	c.SetTimeout(time.Second)
	for i := range 20 {
		file := "a.cfg"
		if i%2 == 1 {
			file = []string{"missing.cfg", "001565000001.cfg", "refused.cfg"}[i%3]
		}
		wt, err := c.Receive(file, "octet")
		if file != "a.cfg" {
			if err == nil || strings.Contains(err.Error(), "busy") {
				t.Fatalf("fetch %d of %s: %v", i, file, err)
			}
			idle()
			continue
		}
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		var buf bytes.Buffer
		if _, err := wt.WriteTo(&buf); err != nil || buf.Len() != 3000 {
			t.Fatalf("fetch %d: %d bytes, %v", i, buf.Len(), err)
		}
		idle()
	}
	if s.Served() != 10 || s.Failed() != 10 || s.Refused() != 0 {
		t.Fatalf("served %d failed %d refused %d", s.Served(), s.Failed(), s.Refused())
	}
}

// TestServer_LogRateLimited: a flood of refusals and failures writes at
// most 5 lines of each kind; the counters count them all.
func TestServer_LogRateLimited(t *testing.T) {
	var logs syncWriter
	files := &memFiles{files: map[string][]byte{"a.cfg": []byte("x = 1\n")}}
	s := &tftpd.Server{Addr: "127.0.0.1:0", Files: files, MaxPerClient: 1, Timeout: 500 * time.Millisecond, Retries: 1,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := firstAnswer(t, rrq(t, "127.0.0.41", s.Port(), "a.cfg")); got != "DATA 1" {
		t.Fatal(got)
	}
	for range 50 {
		// Error 0 from the server's port (3 a second per address), or
		// pin's error 1 from the transfer's.
		if got := firstAnswer(t, rrq(t, "127.0.0.41", s.Port(), "a.cfg")); !strings.Contains(got, "server busy") {
			t.Fatal(got)
		}
		if got := firstAnswer(t, rrq(t, "127.0.0.42", s.Port(), "missing.cfg")); got != "ERROR 1 file not found" {
			t.Fatal(got)
		}
	}
	// Malformed packets on the listening socket.
	bad, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 43)})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	for range 50 {
		bad.WriteTo([]byte{0, 9, 1}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Port()})
	}
	time.Sleep(1200 * time.Millisecond) // the held transfer times out (1 s)
	s.Close()
	if s.Refused() != 50 || s.Failed() != 51 { // 50 not found, 1 timed out
		t.Errorf("refused %d failed %d", s.Refused(), s.Failed())
	}
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		count[rec.Msg]++
	}
	want := map[string]int{"tftp request refused: too many transfers": 5, "tftp transfer failed": 5}
	for msg, n := range want {
		if count[msg] != n {
			t.Errorf("%q: %d lines, want %d\n%s", msg, count[msg], n, logs.String())
		}
	}
	if len(count) != len(want) { // the malformed packets are logged at debug level
		t.Errorf("lines %v", count)
	}
	if !strings.Contains(logs.String(), "more lines like this one are dropped for a minute") {
		t.Errorf("no note of dropped lines:\n%s", logs.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
