// Command flood is the load of bench/abuse.sh: it floods a running provbox
// the way review-security.md did (one kind of flood per run), measures the
// admin API's latency and the process's memory and descriptors while it
// lasts, and prints one line:
//
//	flood: kind=tftp secs=10 sent=68420 answered=... admin_p50=3.1ms admin_p99=9.8ms admin_errors=0 rss_before_mb=24.1 rss_peak_mb=31.0 rss_after_mb=26.3 fds_before=21 fds_peak=75 ...
//
// Kinds: tftp (read requests never acknowledged, from 6 addresses), guess
// (wrong /prov/ secrets and made-up MACs from 100 addresses), pnp (PnP
// SUBSCRIBEs from 200 addresses, each Contact its own source; bytes in and
// out), discover (boot-file fetches naming new MACs from one address),
// slowloris (half-open HTTP connections from 20 addresses). Loopback only.
//
//	flood -kind tftp -pid 1234 -http http://127.0.0.1:8080 -tftp 127.0.0.1:6969 -user admin -pass secret
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

type config struct {
	kind, httpURL, tftp, sip, user, pass, phone, phoneUser, phoneSecret string
	pid                                                                 int
	dur, settle                                                         time.Duration
}

func run() error {
	var c config
	flag.StringVar(&c.kind, "kind", "", "tftp, guess, pnp, discover or slowloris")
	flag.IntVar(&c.pid, "pid", 0, "provbox's process id (memory and descriptors)")
	flag.StringVar(&c.httpURL, "http", "", "provbox's HTTP base URL")
	flag.StringVar(&c.tftp, "tftp", "", "provbox's TFTP address (kind tftp)")
	flag.StringVar(&c.sip, "sip", "", "provbox's SIP address (kind pnp)")
	flag.StringVar(&c.user, "user", "", "admin user (latency probe)")
	flag.StringVar(&c.pass, "pass", "", "admin password")
	flag.StringVar(&c.phone, "phone", "", "a phone's MAC: its own fetch is probed too")
	flag.StringVar(&c.phoneUser, "phone-user", "", "that phone's provisioning user")
	flag.StringVar(&c.phoneSecret, "phone-secret", "", "and secret")
	flag.DurationVar(&c.dur, "dur", 10*time.Second, "how long the flood lasts")
	flag.DurationVar(&c.settle, "settle", 60*time.Second, "how long to wait after it for memory to return (under 80 MB ends the wait)")
	flag.Parse()
	for _, a := range []string{c.httpURL, c.tftp, c.sip} {
		if a == "" {
			continue
		}
		host := strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://")
		if h, _, err := net.SplitHostPort(strings.SplitN(host, "/", 2)[0]); err != nil || !net.ParseIP(h).IsLoopback() {
			return fmt.Errorf("refusing %s: only loopback addresses are flooded", a)
		}
	}
	if c.pid == 0 || c.httpURL == "" {
		return errors.New("-pid and -http are required")
	}
	flooders := map[string]func(config, chan struct{}, *stats){
		"tftp": floodTFTP, "guess": floodGuess, "pnp": floodPnP, "discover": floodDiscover, "slowloris": floodSlowloris,
	}
	flood := flooders[c.kind]
	if flood == nil {
		return fmt.Errorf("-kind %q: one of tftp, guess, pnp, discover, slowloris", c.kind)
	}
	st := &stats{answers: map[string]int64{}}
	rssBefore, fdsBefore := rssMB(c.pid), fds(c.pid)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); flood(c, stop, st) }()
	var lat []time.Duration
	var phoneLat []time.Duration
	var adminErr, phoneErr int
	var rssPeak float64
	fdsPeak := fdsBefore
	go func() { // probes: the admin API and the phone's own fetch, every 50 ms
		defer wg.Done()
		hc := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			d, ok := probe(hc, c.httpURL+"/api/v1/phones", c.user, c.pass)
			if ok {
				lat = append(lat, d)
			} else {
				adminErr++
			}
			if c.phone != "" {
				d, ok := probe(hc, c.httpURL+"/prov/"+c.phone+".cfg", c.phoneUser, c.phoneSecret)
				if ok {
					phoneLat = append(phoneLat, d)
				} else {
					phoneErr++
				}
			}
			rssPeak = max(rssPeak, rssMB(c.pid))
			fdsPeak = max(fdsPeak, fds(c.pid))
		}
	}()
	time.Sleep(c.dur)
	close(stop)
	wg.Wait()
	settleStart := time.Now()
	rssAfter := rssMB(c.pid)
	for rssAfter >= 80 && time.Since(settleStart) < c.settle {
		time.Sleep(time.Second)
		rssAfter = rssMB(c.pid)
	}
	var ans []string
	for k, v := range st.answers {
		ans = append(ans, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(ans)
	fmt.Printf("flood: kind=%s secs=%.0f sent=%d bytes_out=%d bytes_back=%d answers=%s admin_p50=%s admin_p99=%s admin_errors=%d phone_p50=%s phone_errors=%d rss_before_mb=%.1f rss_peak_mb=%.1f rss_after_mb=%.1f settled_in=%.0fs fds_before=%d fds_peak=%d fds_after=%d\n",
		c.kind, c.dur.Seconds(), st.sent.Load(), st.bytesOut.Load(), st.bytesBack.Load(), strings.Join(ans, ","),
		fmtDur(pct(lat, 50)), fmtDur(pct(lat, 99)), adminErr, fmtDur(pct(phoneLat, 50)), phoneErr,
		rssBefore, max(rssPeak, rssBefore), rssAfter, time.Since(settleStart).Seconds(), fdsBefore, fdsPeak, fds(c.pid))
	return nil
}

type stats struct {
	sent, bytesOut, bytesBack atomic.Int64
	mu                        sync.Mutex
	answers                   map[string]int64
}

// send sends one HTTP request of the flood and counts its answer.
func (s *stats) send(hc *http.Client, req *http.Request) {
	s.sent.Add(1)
	res, err := hc.Do(req)
	if err != nil {
		s.answer("error")
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	s.answer(strconv.Itoa(res.StatusCode))
}

func (s *stats) answer(k string) {
	s.mu.Lock()
	s.answers[k]++
	s.mu.Unlock()
}

func probe(hc *http.Client, u, user, pass string) (time.Duration, bool) {
	req, _ := http.NewRequest("GET", u, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	t0 := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		return 0, false
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return time.Since(t0), res.StatusCode == 200
}

func stopped(stop chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// floodTFTP: read requests for the model file, never acknowledged, from
// 6 addresses × 4 sockets.
func floodTFTP(c config, stop chan struct{}, st *stats) {
	to, err := net.ResolveUDPAddr("udp4", c.tftp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		return
	}
	rrq := append([]byte{0, 1}, "y000000000028.cfg\x00octet\x00"...)
	var wg sync.WaitGroup
	for i := range 24 {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(73+i/4))})
		if err != nil {
			continue
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2000)
			for !stopped(stop) {
				conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if n, _, err := conn.ReadFrom(buf); err == nil && n >= 4 {
					st.bytesBack.Add(int64(n))
					st.answer(map[byte]string{3: "data", 5: "error", 6: "oack"}[buf[1]])
				}
			}
			conn.Close()
		}()
		go func() {
			defer wg.Done()
			for !stopped(stop) {
				conn.WriteTo(rrq, to)
				st.sent.Add(1)
				st.bytesOut.Add(int64(len(rrq)))
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// floodGuess: wrong secrets for one phone and made-up MACs without
// credentials, from 100 addresses, keep-alive.
func floodGuess(c config, stop chan struct{}, st *stats) {
	var wg sync.WaitGroup
	for s := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := clientFrom(fmt.Sprintf("127.0.2.%d", s+1))
			for g := 0; !stopped(stop); g++ {
				u := fmt.Sprintf("%s/prov/001565%02x%04x.cfg", c.httpURL, s, g&0xffff)
				req, _ := http.NewRequest("GET", u, nil)
				if g%2 == 0 && c.phone != "" {
					req, _ = http.NewRequest("GET", c.httpURL+"/prov/"+c.phone+".cfg", nil)
					req.SetBasicAuth(c.phone, fmt.Sprintf("guess-%d", g))
				}
				st.send(hc, req)
			}
		}()
	}
	wg.Wait()
}

// floodDiscover: boot-file fetches naming a new MAC each, from one address.
func floodDiscover(c config, stop chan struct{}, st *stats) {
	var wg sync.WaitGroup
	hc := clientFrom("127.0.0.40")
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopped(stop); i++ {
				mac := fmt.Sprintf("0015%02x%06x", 0x70+w, i&0xffffff)
				req, _ := http.NewRequest("GET", c.httpURL+"/prov/"+mac+".boot", nil)
				req.Header.Set("User-Agent", "Yealink SIP-T46G 28.83.0.35 "+mac)
				st.send(hc, req)
			}
		}()
	}
	wg.Wait()
}

// floodPnP: PnP SUBSCRIBEs for random MACs from 200 addresses, each with
// its own source as Contact (the only kind provbox answers); counts the
// bytes that come back to the senders.
func floodPnP(c config, stop chan struct{}, st *stats) {
	to, err := net.ResolveUDPAddr("udp4", c.sip)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		return
	}
	var wg sync.WaitGroup
	for s := range 200 {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 3, byte(s+1))})
		if err != nil {
			continue
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4000)
			for !stopped(stop) {
				conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if n, _, err := conn.ReadFrom(buf); err == nil {
					st.bytesBack.Add(int64(n))
					st.answer(strings.Fields(string(buf[:min(n, 20)]))[0])
				}
			}
			// Answers still on their way after the flood count too.
			conn.SetReadDeadline(time.Now().Add(8 * time.Second))
			for {
				n, _, err := conn.ReadFrom(buf)
				if err != nil {
					break
				}
				st.bytesBack.Add(int64(n))
			}
			conn.Close()
		}()
		go func() {
			defer wg.Done()
			local := conn.LocalAddr().(*net.UDPAddr)
			for i := 0; !stopped(stop); i++ {
				msg := subscribe(local, fmt.Sprintf("001565%02x%04x", s, i&0xffff), i)
				conn.WriteTo(msg, to)
				st.sent.Add(1)
				st.bytesOut.Add(int64(len(msg)))
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

func subscribe(local *net.UDPAddr, mac string, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "SUBSCRIBE sip:MAC%s@224.0.1.75 SIP/2.0\r\n", mac)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%d;rport\r\n", local, mac, i)
	fmt.Fprintf(&b, "From: <sip:MAC%s@224.0.1.75>;tag=%d\r\n", mac, i)
	fmt.Fprintf(&b, "To: <sip:MAC%s@224.0.1.75>\r\n", mac)
	fmt.Fprintf(&b, "Call-ID: %s-%d@flood\r\n", mac, i)
	b.WriteString("CSeq: 1 SUBSCRIBE\r\n")
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", mac, local)
	b.WriteString("Event: ua-profile;profile-type=\"device\";vendor=\"Yealink\";model=\"T46G\";version=\"28.83.0.35\"\r\n")
	b.WriteString("Expires: 0\r\nAccept: application/url\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	return b.Bytes()
}

// floodSlowloris: half-open HTTP connections (a request line, never the
// end of the headers) from 20 addresses, as many as each can hold.
func floodSlowloris(c config, stop chan struct{}, st *stats) {
	host := strings.TrimPrefix(c.httpURL, "http://")
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	for s := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 4, byte(s+1))}, Timeout: time.Second}
			for i := 0; i < 400 && !stopped(stop); i++ {
				conn, err := d.Dial("tcp", host)
				st.sent.Add(1)
				if err != nil {
					st.answer("dial_error")
					continue
				}
				conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// How many the server still holds: a closed one reads EOF at once.
	held := 0
	for _, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := conn.Read(make([]byte, 1)); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			held++
		}
	}
	st.answer("held:" + strconv.Itoa(held))
	<-stop
	for _, conn := range conns {
		conn.Close()
	}
}

func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}}
}

var rssRe = regexp.MustCompile(`VmRSS:\s+(\d+) kB`)

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := rssRe.FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024
}

func fds(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[min(i, len(s)-1)]
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
