package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// simLine is one line of phonesim's stdout, the fields the tests read.
type simLine struct {
	Event, MAC, ETag, Name, From, Reason, Trigger, Key string
	OK, Failed, Status, Account                        int
	URL, Auth                                          string
	TLS, Lost                                          bool
}

// simProc is a running phonesim whose lines are collected.
type simProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []simLine
	stderr strings.Builder
	done   chan struct{}
}

// buildTool builds a command of this module into a temporary directory.
func buildTool(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startSim starts phonesim with args and waits (30 s at most) until its
// phones booted, all of them.
func startSim(t *testing.T, bin string, n int, args ...string) *simProc {
	t.Helper()
	s := &simProc{t: t, cmd: exec.Command(bin, append([]string{"-n", strconv.Itoa(n)}, args...)...), done: make(chan struct{})}
	stdout, _ := s.cmd.StdoutPipe()
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done; s.cmd.Wait() })
	booted := make(chan simLine, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l simLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			s.mu.Lock()
			s.lines = append(s.lines, l)
			s.mu.Unlock()
			if l.Event == "booted" {
				booted <- l
			}
		}
	}()
	select {
	case b := <-booted:
		if b.OK != n || b.Failed != 0 {
			t.Fatalf("phonesim boot: %+v\n%s", b, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("phonesim did not boot:\n%s", s.stderr.String())
	}
	return s
}

// count counts the lines ok accepts.
func (s *simProc) count(ok func(simLine) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if ok(l) {
			n++
		}
	}
	return n
}

func (s *simProc) snapshot() []simLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]simLine(nil), s.lines...)
}

// startRegistrar runs bench/cmd/registrar on addr (ip:port).
func startRegistrar(t *testing.T, addr string) {
	t.Helper()
	cmd := exec.Command(buildTool(t, "../../bench/cmd/registrar"), "-listen", addr)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on") {
		t.Fatalf("registrar: %q %v", line, err)
	}
	go io.Copy(io.Discard, out)
}

// waitPhones polls GET /api/v1/phones until ok holds for every phone
// listed in macs (all phones when nil), or fails after timeout.
func waitPhones(t *testing.T, a *api, what string, timeout time.Duration, macs map[string]bool, ok func(appliance.Phone) bool) []appliance.Phone {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ps []appliance.Phone
		a.must("GET", "/api/v1/phones", nil, 200, &ps)
		bad := []string{}
		for _, p := range ps {
			if (macs == nil || macs[p.MAC]) && !ok(p) {
				bad = append(bad, fmt.Sprintf("%s %s (%s)", p.MAC, p.Sync.State, p.Sync.LastNotifyResult))
			}
		}
		if len(bad) == 0 {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d phones not there after %v, e.g. %v", what, len(bad), timeout, bad[:min(3, len(bad))])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPhonesimFiftyPhonesSync is issue 12's end-to-end run, for both
// triggers: 50 emulated Yealinks boot from provbox like factory phones (one
// claim-window fetch over plain HTTP), register with a registrar and
// report: synced. An edit of a line key on all of them tells each once
// (check-sync NOTIFY, or Action URI); each re-fetches over HTTPS with its
// own secret and provbox's CA and applies it without a word: fetched. A
// change of their shared extension's password makes them re-register and
// report: synced again, registration registered. With notify, a phone
// whose reports stop ends stuck; with action_uri (trust_ctrl on), a
// NOTIFY from a stranger is ignored by the phones.
func TestPhonesimFiftyPhonesSync(t *testing.T) {
	const n = 50
	sim := buildTool(t, "../phonesim")
	regAddr := "127.0.0.2:" + strconv.Itoa(freeUDPPort(t, "127.0.0.2"))
	startRegistrar(t, regAddr)
	for _, trigger := range []string{"notify", "action_uri"} {
		t.Run(trigger, func(t *testing.T) {
			ipBase := map[string]string{"notify": "127.1.0.1", "action_uri": "127.1.1.1"}[trigger]
			phonePort := freeUDPPort(t, ipBase)
			webPort := freeTCPPort(t, ipBase)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "provbox.toml")
			os.WriteFile(cfg, []byte(fmt.Sprintf("[sip]\nphone_port = %d\npnp = false\nsync_trigger = %q\naction_uri_port = %d\nreport_timeout = \"3s\"\n",
				phonePort, trigger, webPort)), 0o600)
			data := t.TempDir()
			mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
			srv := MustRunMain(t, cfg, data)
			a := newAPI(t, srv.url, "admin", "correct-horse-battery")
			var ext appliance.Extension
			a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Main line", "password": "line-pw-1", "sip_server": regAddr}, 201, &ext)

			first := map[string]string{"notify": "001565b00000", "action_uri": "001565b10000"}[trigger]
			quietMAC := map[string]string{"notify": "001565b0ff00", "action_uri": ""}[trigger]
			var csv strings.Builder
			csv.WriteString("mac,model,position,key_type,key_value,key_label\n")
			main := map[string]bool{}
			for i := 0; i < n; i++ {
				mac := fmt.Sprintf("%s%02x", first[:10], i)
				main[mac] = true
				fmt.Fprintf(&csv, "%s,T46G,1,account,1001,\n%s,,2,blf,1002,Bob\n", mac, mac)
			}
			if quietMAC != "" {
				fmt.Fprintf(&csv, "%s,T46G,1,account,1001,\n%s,,2,blf,1002,Bob\n", quietMAC, quietMAC)
			}
			a.must("POST", "/api/v1/phones.csv", []byte(csv.String()), 200, nil)

			args := []string{"-first-mac", first, "-ip-base", ipBase, "-sip-port", strconv.Itoa(phonePort), "-prov", srv.url + "/prov/",
				"-register-timeout", "3s"}
			if trigger == "action_uri" {
				args = append(args, "-web-port", strconv.Itoa(webPort))
			}
			phones := startSim(t, sim, n, args...)
			var quiet *simProc
			if quietMAC != "" {
				// Reports twice at boot (provisioned, registered), then its
				// reports stop reaching provbox.
				quiet = startSim(t, sim, 1, "-first-mac", quietMAC, "-ip-base", "127.1.0.201", "-sip-port", strconv.Itoa(phonePort),
					"-prov", srv.url+"/prov/", "-max-reports", "2", "-register-timeout", "3s")
			}

			// Bootstrap → synced: fetched, then reported, registered.
			registered := func(p appliance.Phone) bool { return p.Sync.Registration["1"].State == appliance.RegRegistered }
			boot := waitPhones(t, a, "synced after boot", 15*time.Second, nil, func(p appliance.Phone) bool {
				return p.Sync.State == appliance.SyncSynced && p.Sync.Confirms && registered(p)
			})
			old := map[string]string{}
			for _, p := range boot {
				old[p.MAC] = p.Sync.ConfigVersion
			}

			// A line key on all of them: told once each, re-fetched; a
			// Yealink applies it without a word: fetched.
			var keys []appliance.Key
			a.must("GET", "/api/v1/keys?type=blf", nil, 200, &keys)
			a.must("PATCH", fmt.Sprintf("/api/v1/keys/%d", keys[0].ID), map[string]any{"label": "Robert"}, 200, nil)
			fetched := waitPhones(t, a, "fetched after a key edit", 15*time.Second, nil, func(p appliance.Phone) bool {
				return p.Sync.State == appliance.SyncFetched && p.Sync.ConfigVersion != old[p.MAC] &&
					p.Sync.FetchedVersion == p.Sync.ConfigVersion && p.Sync.LastNotifyResult == "200 OK"
			})
			for _, p := range fetched {
				old[p.MAC] = p.Sync.ConfigVersion
			}
			var tl []appliance.Change
			a.must("GET", "/api/v1/phones/"+first+"/timeline", nil, 200, &tl)
			via := map[string]string{"notify": "check-sync", "action_uri": "action-uri"}[trigger]
			if len(tl) < 2 || tl[0].Trigger != via+": 200 OK" || tl[0].TriggeredAt == nil || tl[0].FetchedAt == nil || tl[0].AppliedAt != nil {
				t.Fatalf("timeline after the key edit: %+v", tl)
			}

			// The shared line's password: every phone re-registers and
			// reports: synced, registered after the edit.
			edit := time.Now()
			a.must("PATCH", fmt.Sprintf("/api/v1/extensions/%d", ext.ID), map[string]any{"password": "line-pw-2"}, 200, nil)
			synced := waitPhones(t, a, "synced after a password change", 15*time.Second, main, func(p appliance.Phone) bool {
				return p.Sync.State == appliance.SyncSynced && p.Sync.ConfigVersion != old[p.MAC] && p.Sync.FetchedVersion == p.Sync.ConfigVersion &&
					registered(p) && p.Sync.Registration["1"].At.After(edit) && p.Sync.AppliedAt.After(edit)
			})
			t.Logf("%s: password change → %d phones told, re-fetched, re-registered and synced in %v", trigger, len(synced), time.Since(edit))
			a.must("GET", "/api/v1/phones/"+first+"/timeline", nil, 200, &tl)
			if c := tl[0]; c.Trigger != via+": 200 OK" || c.FetchedAt == nil || c.AppliedAt == nil || c.RegisteredAt == nil ||
				c.FetchedAt.Before(*c.TriggeredAt) || c.AppliedAt.Before(*c.FetchedAt) {
				t.Fatalf("timeline after the password change: %+v", c)
			}

			if quiet != nil {
				// Its registration report is lost: stuck after report_timeout.
				waitPhones(t, a, "the quiet phone stuck", 10*time.Second, map[string]bool{quietMAC: true}, func(p appliance.Phone) bool {
					return p.Sync.State == appliance.SyncStuck && p.Sync.FetchedVersion == p.Sync.ConfigVersion
				})
				if quiet.count(func(l simLine) bool { return l.Event == "report" && l.Lost }) == 0 {
					t.Error("the quiet phone lost no report")
				}
				metrics := a.must("GET", "/metrics", nil, 200, nil)
				if !strings.Contains(string(metrics), `provbox_phones{state="stuck"} 1`) {
					t.Errorf("/metrics does not count the stuck phone")
				}
			}

			if trigger == "action_uri" {
				// trust_ctrl is on: a check-sync from a host that is not
				// the registrar gets no answer and changes nothing.
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				to := &net.UDPAddr{IP: net.ParseIP(ipBase), Port: phonePort}
				notify := fmt.Sprintf("NOTIFY sip:1001@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKstranger1\r\nFrom: <sip:x@127.0.0.1>;tag=s1\r\n"+
					"To: <sip:1001@%s>\r\nCall-ID: stranger-1\r\nCSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\nEvent: check-sync;reboot=true\r\nContent-Length: 0\r\n\r\n",
					to, c.LocalAddr(), ipBase)
				c.WriteToUDP([]byte(notify), to)
				c.SetReadDeadline(time.Now().Add(time.Second))
				if n, _, err := c.ReadFromUDP(make([]byte, 2048)); err == nil {
					t.Fatalf("a trust_ctrl phone answered a stranger's NOTIFY (%d bytes)", n)
				}
				if phones.count(func(l simLine) bool { return l.Event == "refused" && l.Reason == "trust_ctrl" && l.MAC == first }) != 1 {
					t.Error("phonesim reports no refused NOTIFY")
				}
				if phones.count(func(l simLine) bool { return l.Event == "reboot" }) != 0 {
					t.Error("a stranger's check-sync;reboot=true rebooted a phone")
				}
			}

			// Each phone: booted as a factory phone, told exactly once per
			// edit, re-fetched over HTTPS with its own secret.
			told := map[string]int{}
			for _, l := range phones.snapshot() {
				switch {
				case l.Event == "notify" && trigger == "notify", l.Event == "action_uri" && l.Key == "AutoP" && l.Status == 200:
					told[l.MAC]++
				case l.Event == "boot":
					if l.Auth != "none" || l.TLS || !strings.HasPrefix(l.URL, "http://") {
						t.Errorf("%s booted with %+v", l.MAC, l)
					}
				case l.Event == "fetch":
					if l.Auth != "basic" || !l.TLS || !strings.HasPrefix(l.URL, srv.https+"/prov/") || l.Status != 200 {
						t.Errorf("%s re-fetched with %+v (https %s)", l.MAC, l, srv.https)
					}
				case l.Event == "notify" && trigger == "action_uri":
					t.Errorf("%s got a NOTIFY with the action_uri trigger: %+v", l.MAC, l)
				case l.Event == "error":
					t.Errorf("phonesim error: %+v", l)
				}
			}
			for mac := range main {
				if told[mac] != 2 {
					t.Errorf("%s told %d times for two edits", mac, told[mac])
				}
			}
		})
	}
}

// freeTCPPort returns a TCP port free on ip.
func freeTCPPort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
