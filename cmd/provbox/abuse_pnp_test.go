package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/provbox/provbox/appliance"
)

// abuseSocket is a UDP socket on a loopback address that counts what
// comes back to it (and answers nothing, unless answer is set).
type abuseSocket struct {
	conn            *net.UDPConn
	sent, recv      atomic.Int64 // bytes
	oks, notifies   atomic.Int64 // responses, requests received
	answer          bool         // answer NOTIFYs with 200 OK
	mu              sync.Mutex
	got             []sipmsg.Message
	keep            bool // keep what arrives in got
	readersFinished chan struct{}
}

func newAbuseSocket(t *testing.T, ip string, keep, answer bool) *abuseSocket {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	s := &abuseSocket{conn: c, keep: keep, answer: answer, readersFinished: make(chan struct{})}
	t.Cleanup(func() { c.Close(); <-s.readersFinished })
	go func() {
		defer close(s.readersFinished)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			s.recv.Add(int64(n))
			m, err := sipmsg.ParseMessage(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			switch r := m.(type) {
			case *sipmsg.Response:
				s.oks.Add(1)
			case *sipmsg.Request:
				s.notifies.Add(1)
				if s.answer {
					res := sipmsg.NewResponseFromRequest(r, 200, "OK", nil)
					c.WriteToUDP([]byte(res.String()), from)
				}
			}
			if s.keep {
				s.mu.Lock()
				s.got = append(s.got, m)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *abuseSocket) addr() string { return s.conn.LocalAddr().String() }

func (s *abuseSocket) send(t *testing.T, to *net.UDPAddr, msg string) {
	t.Helper()
	n, err := s.conn.WriteToUDP([]byte(msg), to)
	if err != nil {
		t.Fatal(err)
	}
	s.sent.Add(int64(n))
}

func (s *abuseSocket) messages() []sipmsg.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sipmsg.Message(nil), s.got...)
}

// abuseSubscribe is a Yealink PnP SUBSCRIBE as the one sipp sends (see
// sip/testdata/uac-pnp-subscribe.xml), from via with Contact contact.
func abuseSubscribe(mac, via, contact, callID string) string {
	return "SUBSCRIBE sip:MAC" + mac + "@224.0.1.75 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + via + ";branch=z9hG4bK-" + callID + "\r\n" +
		"From: <sip:MAC" + mac + "@224.0.1.75>;tag=" + callID + "\r\n" +
		"To: <sip:MAC" + mac + "@224.0.1.75>\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 1 SUBSCRIBE\r\n" +
		"Contact: <sip:MAC" + mac + "@" + contact + ">\r\n" +
		"Max-Forwards: 70\r\n" +
		"User-Agent: Yealink SIP-T46G 28.83.0.35\r\n" +
		"Expires: 0\r\n" +
		"Event: ua-profile;profile-type=\"device\";vendor=\"Yealink\";model=\"T46G\";version=\"28.83.0.35\"\r\n" +
		"Accept: application/url\r\n" +
		"Content-Length: 0\r\n\r\n"
}

func randomYealinkMAC() string { return fmt.Sprintf("001565%06x", rand.IntN(1<<24)) }

// TestAbusePnP: serve (in process) under forged and flooding PnP SUBSCRIBEs
// (review findings 4 and 5), on loopback only: (a) a SUBSCRIBE whose
// Contact is not its source gets nothing and moves no address; (b) floods
// from one source and from 200 sources get back at most twice the bytes
// they sent; (c) a real phone still gets its URL during and after them.
func TestAbusePnP(t *testing.T) {
	srv, a, sipAddr, _ := sipProvbox(t, 5060)
	to, err := net.ResolveUDPAddr("udp4", sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	wantURL := srv.url + "/prov/"

	// A known phone that has fetched its config from 127.0.0.150.
	const mac = "001565aabbcc"
	a.must("POST", "/api/v1/phones", map[string]any{"mac": mac, "model": "T46G", "extension": "1001"}, 201, nil)
	user, pass := a.secret(mac)
	hc := clientFrom("127.0.0.150")
	req, _ := http.NewRequest("GET", srv.url+"/prov/"+mac+".cfg", nil)
	req.SetBasicAuth(user, pass)
	req.Header.Set("User-Agent", "Yealink SIP-T46G 28.83.0.35 00:15:65:aa:bb:cc")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("fetch: %d", resp.StatusCode)
	}
	var before appliance.SyncStatus
	a.must("GET", "/api/v1/phones/"+mac+"/sync", nil, 200, &before)
	if before.SIPAddress == "" {
		t.Fatalf("no address learned from the fetch: %+v", before)
	}

	t.Run("forged contact", func(t *testing.T) {
		victim := newAbuseSocket(t, "127.0.0.140", false, true)
		attacker := newAbuseSocket(t, "127.0.0.141", false, true)
		attacker.send(t, to, abuseSubscribe(mac, attacker.addr(), victim.addr(), "forged-known"))
		attacker.send(t, to, abuseSubscribe("001565f00001", attacker.addr(), victim.addr(), "forged-new"))
		time.Sleep(time.Second)
		if n, m := victim.recv.Load(), attacker.recv.Load(); n != 0 || m != 0 {
			t.Fatalf("a forged SUBSCRIBE was answered: %d bytes at the Contact, %d at the source", n, m)
		}
		var after appliance.SyncStatus
		a.must("GET", "/api/v1/phones/"+mac+"/sync", nil, 200, &after)
		if after.SIPAddress != before.SIPAddress {
			t.Fatalf("sip_address moved from %s to %s", before.SIPAddress, after.SIPAddress)
		}
		var list []appliance.Discovered
		a.must("GET", "/api/v1/discovered", nil, 200, &list)
		for _, d := range list {
			if d.MAC == "001565f00001" {
				t.Fatalf("discovered from a forged SUBSCRIBE: %+v", d)
			}
		}
	})

	// flood sends perSource SUBSCRIBEs from each socket (Contact = its own
	// address, random MACs), paced so the kernel does not drop them on the
	// way in, then counts what comes back for measure.
	flood := func(t *testing.T, socks []*abuseSocket, perSource int, during func()) (sent, recv, oks, notifies int64) {
		t.Helper()
		k := 0
		for i := range perSource {
			for j, s := range socks {
				s.send(t, to, abuseSubscribe(randomYealinkMAC(), s.addr(), s.addr(), fmt.Sprintf("flood-%d-%d-%d", j, i, rand.Int())))
				if k++; k%50 == 0 {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
		if during != nil {
			during()
		}
		time.Sleep(4 * time.Second)
		for _, s := range socks {
			sent += s.sent.Load()
			recv += s.recv.Load()
			oks += s.oks.Load()
			notifies += s.notifies.Load()
		}
		return
	}

	t.Run("one source", func(t *testing.T) {
		src := newAbuseSocket(t, "127.0.0.131", false, false)
		sent, recv, oks, notifies := flood(t, []*abuseSocket{src}, 2000, func() {
			// A real phone while the flood's NOTIFY is still in flight.
			legitPnP(t, to, "127.0.0.132", wantURL, 3*time.Second)
		})
		ratio := float64(recv) / float64(sent)
		t.Logf("2000 SUBSCRIBEs from one source: sent %d B, got back %d B (%d answers, %d NOTIFYs): ratio %.4f", sent, recv, oks, notifies, ratio)
		if ratio > 2 {
			t.Fatalf("amplification %.2f > 2", ratio)
		}
	})

	t.Run("200 sources", func(t *testing.T) {
		var socks []*abuseSocket
		for i := 1; i <= 200; i++ {
			socks = append(socks, newAbuseSocket(t, fmt.Sprintf("127.0.1.%d", i), false, false))
		}
		sent, recv, oks, notifies := flood(t, socks, 10, nil)
		ratio := float64(recv) / float64(sent)
		t.Logf("2000 SUBSCRIBEs from 200 sources: sent %d B, got back %d B (%d answers, %d NOTIFYs): ratio %.4f", sent, recv, oks, notifies, ratio)
		if ratio > 2 {
			t.Fatalf("amplification %.2f > 2", ratio)
		}
		// After it: the NOTIFYs to the silent sources end with their
		// transaction (NotifyTimeout), and their places come back.
		legitPnP(t, to, "127.0.0.133", wantURL, 12*time.Second)
	})

	// The log stays bounded: the drop lines are rate-limited.
	lines := 0
	for _, l := range strings.Split(srv.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"pnp`) {
			lines++
		}
	}
	t.Logf("%d pnp log lines", lines)
	if lines > 40 {
		t.Fatalf("%d pnp log lines for 4,000 SUBSCRIBEs:\n%s", lines, srv.logs)
	}
}

// legitPnP is a phone at ip that sends its PnP SUBSCRIBE (again every
// second, as a booting phone does, until within) and wants the 200 OK and
// the NOTIFY with url, which it answers.
func legitPnP(t *testing.T, to *net.UDPAddr, ip, url string, within time.Duration) {
	t.Helper()
	ph := newAbuseSocket(t, ip, true, true)
	mac := randomYealinkMAC()
	start := time.Now()
	deadline := start.Add(within)
	for try := 0; time.Now().Before(deadline); try++ {
		callID := fmt.Sprintf("legit-%s-%d", mac, try)
		ph.send(t, to, abuseSubscribe(mac, ph.addr(), ph.addr(), callID))
		next := time.Now().Add(time.Second)
		for time.Now().Before(next) {
			var ok, notify bool
			for _, m := range ph.messages() {
				switch r := m.(type) {
				case *sipmsg.Response:
					ok = ok || r.CallID().Value() == callID && r.StatusCode == 200
				case *sipmsg.Request:
					if r.CallID().Value() == callID {
						if r.Method != sipmsg.NOTIFY || string(r.Body()) != url || r.ContentType() == nil || r.ContentType().Value() != "application/url" {
							t.Fatalf("not the PnP NOTIFY:\n%s", r)
						}
						notify = true
					}
				}
			}
			if ok && notify {
				t.Logf("a phone at %s got its URL after %v (%d SUBSCRIBEs)", ip, time.Since(start).Round(time.Millisecond), try+1)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatalf("a phone at %s got no 200 OK and NOTIFY within %v: %v", ip, within, ph.messages())
}
