package main

// End-to-end tests drive provbox the way an admin does — serve on ephemeral
// ports, the CLI on the same data directory, the JSON API over real HTTP
// with Basic auth. Most run serve in process (MustRunMain) and the CLI in
// process (runCLI, as main calls it); what needs a process of its own —
// SIGKILL in the middle of a 1,000-phone import, signals, systemd, exit
// codes of serve, network namespaces, memory and file descriptors of the
// daemon, the browser tests — runs the binary TestMain builds.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/provbox/provbox/configs"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/provbox/provbox/appliance"
)

const testVersion = "e2e-test"

// binary is the provbox built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "provbox-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "provbox")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build provbox:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// emptyConfig returns an empty config file, so that a provbox.toml in /etc
// on the test machine cannot change what the tests see.
func emptyConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs a provbox command line in process, as main does (run), with
// stdin, and returns its output and exit code. A serve that gets past its
// config would set this process's memory limit and signal handlers: run
// that one with execCLI.
func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	in, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := in.WriteString(stdin); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, in, &out, &errb)
	return result{out.String(), errb.String(), code}
}

// execCLI runs the provbox binary to completion with stdin and returns its
// output and exit code.
func execCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("provbox %q: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// mustCLI runs provbox in process and fails the test unless it exits 0.
func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := runCLI(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("provbox %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// runningMain is provbox serve run in process by MustRunMain.
type runningMain struct {
	*Main
	tb     testing.TB
	url    string // http://127.0.0.1:PORT
	tftp   string // 127.0.0.1:PORT, or "off"
	https  string // https://127.0.0.1:PORT, or "" when off
	logs   *syncBuffer
	closed bool
}

// MustRunMain runs provbox serve in process: Main made as cmdServe makes it,
// from the config file, data directory and serve flags args, listening on
// 127.0.0.1:0 for HTTP, HTTPS, TFTP and SIP unless args say otherwise,
// and logging JSON into logs. It is closed when the test ends (or before,
// by close).
func MustRunMain(tb testing.TB, config, data string, args ...string) *runningMain {
	tb.Helper()
	m := newTestMain(tb, config, data, args...)
	if err := m.Open(context.Background()); err != nil {
		tb.Fatalf("open: %v\n%s", err, m.logs)
	}
	m.url, m.tftp = "http://"+m.HTTPAddr(), m.TFTPAddr()
	if a := httpsAddr(m.Config, m.HTTPServer.TLSPort()); a != "off" {
		m.https = "https://" + a
	}
	return m
}

// newTestMain is MustRunMain's Main before Open.
func newTestMain(tb testing.TB, config, data string, args ...string) *runningMain {
	tb.Helper()
	args = append([]string{"--config", config, "--data", data, "--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--tftp", "127.0.0.1:0", "--sip", "127.0.0.1:0"}, args...)
	var g globalFlags
	var sf serveFlags
	fs := newFlagSet("provbox serve")
	g.register(fs)
	sf.register(fs)
	if _, err := parseInterspersed(fs, args); err != nil {
		tb.Fatal(err)
	}
	cfg, path, err := loadConfig(g.config, &sf, flagsSet(fs))
	if err != nil {
		tb.Fatal(err)
	}
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.LogLevel))
	logs := &syncBuffer{}
	m := &runningMain{Main: &Main{Config: cfg, ConfigPath: path, Flags: g, Logger: serveLogger(logs, level, false)}, tb: tb, logs: logs}
	tb.Cleanup(m.close)
	return m
}

// close closes Main, once, and fails the test on an error.
func (m *runningMain) close() {
	m.tb.Helper()
	if m.closed {
		return
	}
	m.closed = true
	if err := m.Close(); err != nil {
		m.tb.Errorf("close: %v\n%s", err, m.logs)
	}
}

// syncBuffer collects log lines, of a process or of an in-process Main.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) add(line string) {
	s.mu.Lock()
	s.b.WriteString(line + "\n")
	s.mu.Unlock()
}

// Write appends p: a logger's output.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveProc is a running `provbox serve`.
type serveProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	url   string // http://127.0.0.1:PORT
	tftp  string // 127.0.0.1:PORT, or "off"
	https string // https://127.0.0.1:PORT, or "" when off
	logs  *syncBuffer
	done  chan struct{} // closed once the process has exited
	code  int
}

// startServe starts serve on data with --http 127.0.0.1:0 and waits for its
// "provbox ready" line, from which it learns the port.
func startServe(t *testing.T, config, data string, args ...string) *serveProc {
	t.Helper()
	args = append([]string{"serve", "--config", config, "--data", data, "--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--tftp", "127.0.0.1:0", "--sip", "127.0.0.1:0"}, args...)
	return runServe(t, exec.Command(binary, args...))
}

// runServe starts cmd (a provbox serve, however wrapped), collects its log
// lines and waits for its "provbox ready" line, from which it learns the
// HTTP and TFTP addresses. The process is killed when the test ends.
func runServe(t *testing.T, cmd *exec.Cmd) *serveProc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{t: t, cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	ready := make(chan [3]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logs.add(line)
			var rec struct{ Msg, Addr, TFTP, HTTPS string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "provbox ready" {
				ready <- [3]string{rec.Addr, rec.TFTP, rec.HTTPS}
			}
		}
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.kill()
		}
	})
	select {
	case addr := <-ready:
		p.url, p.tftp = "http://"+addr[0], addr[1]
		if addr[2] != "off" && addr[2] != "" {
			p.https = "https://" + addr[2]
		}
	case <-p.done:
		t.Fatalf("serve exited with %d before it was ready:\n%s", p.code, p.logs)
	case <-time.After(60 * time.Second):
		p.kill()
		t.Fatalf("serve not ready after 60s:\n%s", p.logs)
	}
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *serveProc) stop() int {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		p.t.Fatalf("serve did not stop within 30s of SIGTERM:\n%s", p.logs)
	}
	return p.code
}

// kill sends SIGKILL: no shutdown code runs, as in a power cut of the
// process (the kernel still has the written pages).
func (p *serveProc) kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
	}
}

// api is a JSON API client with Basic auth.
type api struct {
	t          *testing.T
	base       string
	user, pass string
	hc         *http.Client
}

func newAPI(t *testing.T, base, user, pass string) *api {
	return &api{t: t, base: base, user: user, pass: pass, hc: &http.Client{Timeout: 2 * time.Minute}}
}

// secret returns a phone's provisioning user name and secret.
func (a *api) secret(mac string) (user, pass string) {
	a.t.Helper()
	var s struct{ Username, Password string }
	a.must("GET", "/api/v1/phones/"+mac+"/secret", nil, 200, &s)
	return s.Username, s.Password
}

// reopen reopens a phone's claim window: one fetch without its secret.
func (a *api) reopen(mac string) {
	a.t.Helper()
	a.must("POST", "/api/v1/phones/"+mac+"/claim", nil, 200, nil)
}

// call sends body (JSON-encoded unless it is a []byte) and returns the
// status and response body.
func (a *api) call(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		r, ctype = bytes.NewReader(b), "text/csv"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.SetBasicAuth(a.user, a.pass)
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// must calls the API, fails the test unless the status is want, and
// decodes the answer into out (when not nil).
func (a *api) must(method, path string, body any, want int, out any) []byte {
	a.t.Helper()
	status, data, err := a.call(method, path, body)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return data
}

// base is the data every test of a data directory starts from: two
// extensions, a location and the keys the import CSV refers to.
type base struct {
	alice, bob appliance.Extension
	hq         appliance.Location
}

func createBase(t *testing.T, a *api) base {
	t.Helper()
	var b base
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Alice", "password": "sip-secret-1"}, 201, &b.alice)
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1002", "name": "Bob", "password": "sip-secret-2"}, 201, &b.bob)
	a.must("POST", "/api/v1/locations", map[string]any{"name": "HQ", "street": "1 Main St", "city": "Springfield", "country": "US"}, 201, &b.hq)
	if b.alice.AccountKey == 0 || b.alice.AuthUser != "1001" || !b.alice.PasswordSet {
		t.Fatalf("extension: %+v", b.alice)
	}
	return b
}

// importCSV is round r of the crash test: 1,000 phones, each with Alice's
// account key and a BLF key on Bob (an existing key, matched by type, value
// and label), at location HQ. Round r's MACs are 001565rrxxxx.
func importCSV(round int) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Join(appliance.CSVColumns, ",") + "\n")
	for i := 0; i < 1000; i++ {
		mac := fmt.Sprintf("001565%02x%04x", round, i)
		fmt.Fprintf(&b, "%s,Desk %d-%d,imported,HQ,Yealink,T46G,0,0,1,account,1001,\n", mac, round, i)
		fmt.Fprintf(&b, "%s,,,,,,,0,2,blf,1002,Bob\n", mac)
	}
	return b.Bytes()
}

func roundPrefix(round int) string { return fmt.Sprintf("001565%02x", round) }

// snapshot is the data created before the crash test; it must survive
// every kill unchanged.
type snapshot struct {
	Extensions []appliance.Extension
	Locations  []appliance.Location
	Phone      appliance.Phone
	Layout     []appliance.LayoutEntry
	BobKey     appliance.Key
}

func takeSnapshot(t *testing.T, a *api, mac string, bobKey int64) snapshot {
	t.Helper()
	var s snapshot
	a.must("GET", "/api/v1/extensions", nil, 200, &s.Extensions)
	a.must("GET", "/api/v1/locations", nil, 200, &s.Locations)
	a.must("GET", "/api/v1/phones/"+mac, nil, 200, &s.Phone)
	a.must("GET", "/api/v1/phones/"+mac+"/keys", nil, 200, &s.Layout)
	a.must("GET", fmt.Sprintf("/api/v1/keys/%d", bobKey), nil, 200, &s.BobKey)
	s.BobKey.AttachedTo = nil // grows with every imported phone
	s.Phone.Sync = appliance.SyncStatus{}
	return s
}

func TestServeEndToEnd(t *testing.T) {
	cfg := emptyConfig(t)
	data := t.TempDir()

	srv := MustRunMain(t, cfg, data)
	if !strings.Contains(srv.logs.String(), " user add NAME --data "+data+" --config "+cfg) {
		t.Errorf("no hint to create the first admin in the logs:\n%s", srv.logs)
	}
	if !strings.Contains(srv.logs.String(), `"sip":"127.0.0.1:`) || srv.tftp == "" {
		t.Errorf("ready line lacks the SIP or TFTP address:\n%s", srv.logs)
	}

	// Before the first admin, user list's hint adds one to this database.
	if r := runCLI(t, "", "user", "list", "--data", data, "--config", cfg); r.code != 0 || !strings.Contains(r.stderr, "no admins yet; create one with: ") ||
		!strings.HasSuffix(strings.TrimSpace(r.stderr), " user add NAME --data "+data+" --config "+cfg) {
		t.Errorf("user list with no admins: exit %d, %q", r.code, r.stderr)
	}

	// The CLI works on the database while serve runs.
	if out := mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg); !strings.Contains(out, "created admin admin") {
		t.Fatalf("user add: %q", out)
	}
	if r := runCLI(t, "another-password\n", "--data", data, "user", "add", "admin", "--password-stdin", "--config", cfg); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second user add admin: exit %d, %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", "user", "add", "bob", "--data", data, "--config", cfg); r.code != 2 || !strings.Contains(r.stderr, "--password-stdin") {
		t.Fatalf("user add without a terminal: exit %d, %q", r.code, r.stderr)
	}
	mustCLI(t, "second-admin-pw\n", "user", "add", "ops@example", "--password-stdin", "--data", data, "--config", cfg)
	if out := mustCLI(t, "", "user", "list", "--data", data, "--config", cfg); !strings.Contains(out, "admin") || !strings.Contains(out, "ops@example") {
		t.Fatalf("user list: %q", out)
	}
	mustCLI(t, "new-password-2\n", "user", "passwd", "ops@example", "--password-stdin", "--data", data, "--config", cfg)
	mustCLI(t, "", "user", "del", "ops@example", "--data", data, "--config", cfg)
	if out := mustCLI(t, "", "user", "list", "--data", data, "--config", cfg); strings.Contains(out, "ops@example") {
		t.Fatalf("user list after del: %q", out)
	}

	if status, _, err := newAPI(t, srv.url, "admin", "wrong-password").call("GET", "/api/v1/phones", nil); err != nil || status != 401 {
		t.Fatalf("wrong password: %d %v", status, err)
	}
	a := newAPI(t, srv.url, "admin", "correct-horse-battery")
	b := createBase(t, a)

	// A phone created with an extension gets its account key at 1 and 2.
	var phone appliance.Phone
	a.must("POST", "/api/v1/phones", map[string]any{
		"mac": "00-15-65-00-00-01", "model": "t-46g", "name": "Reception", "location_id": b.hq.ID, "extension": "1001",
	}, 201, &phone)
	if phone.MAC != "001565000001" || phone.Model != "T46G" || phone.Manufacturer != "Yealink" || phone.LocationID == nil || *phone.LocationID != b.hq.ID {
		t.Fatalf("created phone: %+v", phone)
	}
	var layout []appliance.LayoutEntry
	a.must("GET", "/api/v1/phones/00:15:65:00:00:01/keys", nil, 200, &layout)
	if len(layout) != 2 || layout[0].KeyID != b.alice.AccountKey || layout[1].KeyID != b.alice.AccountKey {
		t.Fatalf("layout of a phone created with an extension: %+v", layout)
	}
	a.must("POST", "/api/v1/phones", map[string]any{"mac": "001565000001", "model": "T46G"}, 409, nil)

	var blf, pizza appliance.Key
	a.must("POST", "/api/v1/keys", map[string]any{"type": "blf", "value": "1002", "label": "Bob"}, 201, &blf)
	a.must("POST", "/api/v1/keys", map[string]any{"type": "speed_dial", "value": "5551234", "label": "Pizza"}, 201, &pizza)
	a.must("PUT", "/api/v1/phones/001565000001/keys", []map[string]any{
		{"position": 1, "key_id": b.alice.AccountKey},
		{"position": 2, "key_id": b.alice.AccountKey},
		{"position": 3, "key_id": blf.ID},
		{"position": 4, "key_id": pizza.ID},
	}, 200, &layout)
	if len(layout) != 4 || layout[2].Type != "blf" || layout[2].Value != "1002" || layout[3].Label != "Pizza" {
		t.Fatalf("PUT layout answered %+v", layout)
	}

	var found []appliance.Key
	a.must("GET", "/api/v1/keys?q=pizza", nil, 200, &found)
	if len(found) != 1 || found[0].ID != pizza.ID || !reflect.DeepEqual(found[0].AttachedTo, []string{"001565000001"}) {
		t.Fatalf("search ?q=pizza: %+v", found)
	}
	a.must("GET", "/api/v1/keys?type=blf&value=1002", nil, 200, &found)
	if len(found) != 1 || found[0].ID != blf.ID {
		t.Fatalf("search ?type=blf&value=1002: %+v", found)
	}

	// A key in use is not deleted without force; with it, it leaves the layout.
	if body := string(a.must("DELETE", fmt.Sprintf("/api/v1/keys/%d", pizza.ID), nil, 409, nil)); !strings.Contains(body, "001565000001") && !strings.Contains(body, "00:15:65:00:00:01") {
		t.Errorf("409 does not name the phone: %s", body)
	}
	a.must("DELETE", fmt.Sprintf("/api/v1/keys/%d?force=true", pizza.ID), nil, 204, nil)
	a.must("GET", "/api/v1/phones/001565000001/keys", nil, 200, &layout)
	if len(layout) != 3 {
		t.Fatalf("layout after a forced delete: %+v", layout)
	}
	before := takeSnapshot(t, a, "001565000001", blf.ID)

	t.Run("export import round trip", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "phones.csv")
		mustCLI(t, "", "phones", "export", file, "--data", data, "--config", cfg)
		exported, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		want := "mac,name,description,location,manufacturer,model,expansion_modules,module,position,key_type,key_value,key_label\n" +
			"001565000001,Reception,,HQ,Yealink,T46G,0,0,1,account,1001,Alice\n" +
			"001565000001,Reception,,HQ,Yealink,T46G,0,0,2,account,1001,Alice\n" +
			"001565000001,Reception,,HQ,Yealink,T46G,0,0,3,blf,1002,Bob\n"
		if string(exported) != want {
			t.Fatalf("export:\n%s\nwant:\n%s", exported, want)
		}
		if out := mustCLI(t, "", "--data", data, "phones", "export", "--config", cfg); out != string(exported) {
			t.Fatalf("export to stdout differs from the file:\n%s", out)
		}
		if out := mustCLI(t, "", "phones", "import", file, "--dry-run", "--data", data, "--config", cfg); !strings.Contains(out, "would import 1 phones: 0 created, 1 updated") {
			t.Fatalf("dry run: %q", out)
		}
		mustCLI(t, "", "phones", "import", file, "--data", data, "--config", cfg)
		if out := mustCLI(t, "", "phones", "export", "--data", data, "--config", cfg); out != string(exported) {
			t.Fatalf("export after re-import:\n%s\nwant:\n%s", out, exported)
		}
		if after := takeSnapshot(t, a, "001565000001", blf.ID); !reflect.DeepEqual(after, before) {
			t.Fatalf("re-importing the export changed data:\n%+v\n%+v", before, after)
		}
	})

	t.Run("import errors name line and field", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "bad.csv")
		csv := "mac,model,position,key_type,key_value\n001565000002,T46G,1,account,1001\n00:15:65:zz:00:03,T46G,1,account,1001\n"
		if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, "", "phones", "import", file, "--data", data, "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "line 3: mac:") {
			t.Fatalf("bad MAC: exit %d, %q", r.code, r.stderr)
		}
		csv = "mac,model,position,key_type,key_value\n001565000002,T46G,1,account,1001\n001565000003,T46G,1,account,4242\n"
		if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
			t.Fatal(err)
		}
		r = runCLI(t, "", "phones", "import", file, "--data", data, "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "line 3:") || !strings.Contains(r.stderr, "4242") {
			t.Fatalf("unknown extension: exit %d, %q", r.code, r.stderr)
		}
		a.must("GET", "/api/v1/phones/001565000002", nil, 404, nil) // all or nothing
	})

	t.Run("backup while serving", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "backup.db")
		if out := mustCLI(t, "", "backup", dest, "--data", data, "--config", cfg); !strings.Contains(out, dest) {
			t.Fatalf("backup: %q", out)
		}
		fi, err := os.Stat(dest)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("backup mode %v, want 0600 (it holds SIP passwords)", fi.Mode().Perm())
		}
		db, err := sql.Open("sqlite3", "file:"+dest+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var check string
		var phones int
		if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check of the backup: %q %v", check, err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM phones`).Scan(&phones); err != nil || phones != 1 {
			t.Fatalf("phones in the backup: %d %v", phones, err)
		}
		// A second backup to the same file replaces it.
		mustCLI(t, "", "backup", dest, "--data", data, "--config", cfg)
	})

	srv.close()

	// How long does a full import take? Measured on a scratch directory with
	// the same base data, so the kills below land early, midway and late.
	scratch := t.TempDir()
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", scratch, "--config", cfg)
	ss := startServe(t, cfg, scratch)
	sa := newAPI(t, ss.url, "admin", "correct-horse-battery")
	createBase(t, sa)
	var res appliance.ImportResult
	startAt := time.Now()
	sa.must("POST", "/api/v1/phones.csv", importCSV(1), 200, &res)
	full := time.Since(startAt)
	if res.Phones != 1000 || res.PhonesCreated != 1000 || res.LineKeys != 2000 {
		t.Fatalf("import result: %+v", res)
	}
	ss.stop()
	t.Logf("a full import of 1,000 phones took %v", full)

	// Kill serve during an import of round r and prove the import is all or
	// nothing and the earlier data is intact.
	total := 1
	for r, frac := range []float64{0.25, 0.5, 0.75, 0.95, 3.0} {
		round := r + 1
		srv := startServe(t, cfg, data)
		a = newAPI(t, srv.url, "admin", "correct-horse-battery")
		type answer struct {
			status int
			err    error
		}
		answered := make(chan answer, 1)
		go func() {
			status, _, err := a.call("POST", "/api/v1/phones.csv", importCSV(round))
			answered <- answer{status, err}
		}()
		time.Sleep(time.Duration(float64(full) * frac))
		srv.kill()
		ans := <-answered

		srv = startServe(t, cfg, data)
		a = newAPI(t, srv.url, "admin", "correct-horse-battery")
		var phones []appliance.Phone
		a.must("GET", "/api/v1/phones", nil, 200, &phones)
		n := 0
		for _, p := range phones {
			if strings.HasPrefix(p.MAC, roundPrefix(round)) {
				n++
			}
		}
		t.Logf("kill at %.0f%% (%v): request answered %d/%v; %d of 1,000 phones present", frac*100, time.Duration(float64(full)*frac), ans.status, ans.err, n)
		if n != 0 && n != 1000 {
			t.Fatalf("kill at %.0f%%: %d of 1,000 phones imported: the import was not atomic", frac*100, n)
		}
		if ans.err == nil && ans.status == 200 && n != 1000 {
			t.Fatalf("kill at %.0f%%: the import was acknowledged but %d phones are there", frac*100, n)
		}
		total += n
		if len(phones) != total {
			t.Fatalf("%d phones, want %d", len(phones), total)
		}
		// Every imported phone came with its whole layout.
		exported, err := appliance.ParseCSV(bytes.NewReader(a.must("GET", "/api/v1/phones.csv", nil, 200, nil)), configs.MustCatalog())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range exported {
			if strings.HasPrefix(p.Phone.MAC, roundPrefix(round)) && len(p.Keys) != 2 {
				t.Fatalf("phone %s has %d line keys after the kill, want 2: %+v", p.Phone.MAC, len(p.Keys), p.Keys)
			}
		}
		if after := takeSnapshot(t, a, "001565000001", blf.ID); !reflect.DeepEqual(after, before) {
			t.Fatalf("kill at %.0f%% changed the earlier data:\nbefore %+v\nafter  %+v", frac*100, before, after)
		}
		if code := srv.stop(); code != 0 {
			t.Fatalf("serve exit %d after SIGTERM:\n%s", code, srv.logs)
		}
		if !strings.Contains(srv.logs.String(), "provbox stopped") {
			t.Errorf("no clean stop in the logs:\n%s", srv.logs)
		}
	}

	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "provbox.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after the kills: %q %v", check, err)
	}
}

// TestMainOpenFailure: a listener that cannot bind fails Open naming the
// flag to change, and Close releases what Open had opened before it.
func TestMainOpenFailure(t *testing.T) {
	taken, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	m := newTestMain(t, emptyConfig(t), t.TempDir(), "--tftp", taken.LocalAddr().String())
	if err := m.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "--tftp") {
		t.Fatalf("open with the TFTP port taken: %v, want an error naming --tftp", err)
	}
	if m.HTTPServer == nil || m.DB == nil {
		t.Fatal("HTTP and the store were not open before TFTP")
	}
	httpAddr := m.HTTPAddr()
	m.close()
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		t.Fatalf("the HTTP port is still held after Close: %v", err)
	}
	ln.Close()
	if _, err := m.DB.SchemaVersion(); err == nil {
		t.Error("the store still answers after Close")
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cfg := emptyConfig(t)
	data := t.TempDir()
	badKey := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(badKey, []byte("[http]\nlisten = \":8080\"\nlisten_port = 80\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badValue := filepath.Join(t.TempDir(), "value.toml")
	if err := os.WriteFile(badValue, []byte("[sip]\nnotify_rate = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no command", nil, []string{"missing command", "Usage:"}},
		{"unknown command", []string{"frobnicate", "001565000001"}, []string{`unknown command "frobnicate"`}},
		{"unknown config key serve", []string{"serve", "--config", badKey, "--data", data}, []string{`"http.listen_port"`}},
		{"unknown config key user list", []string{"user", "list", "--data", data, "--config", badKey}, []string{`"http.listen_port"`}},
		{"bad config value", []string{"--config", badValue, "serve", "--data", data}, []string{"sip.notify_rate", "1-10000"}},
		{"bad flag", []string{"serve", "--config", cfg, "--data", data, "--bogus"}, []string{"--bogus"}},
		{"bad flag value", []string{"serve", "--config", cfg, "--data", data, "--http", "8080"}, []string{"--http", "host:port"}},
		{"bad log level", []string{"serve", "--config", cfg, "--data", data, "--log-level=chatty"}, []string{"--log-level"}},
		{"serve argument", []string{"serve", "now", "--config", cfg}, []string{"no arguments"}},
		{"user no action", []string{"user", "--config", cfg}, []string{"user add|passwd|list|del"}},
		{"user add no name", []string{"user", "add", "--config", cfg}, []string{"user add NAME"}},
		{"user list password-stdin", []string{"user", "list", "--password-stdin", "--config", cfg}, []string{"--password-stdin"}},
		{"phones no action", []string{"phones", "--config", cfg}, []string{"phones import"}},
		{"phones import no file", []string{"phones", "import", "--config", cfg}, []string{"phones import FILE.csv"}},
		{"backup no file", []string{"backup", "--config", cfg}, []string{"backup FILE"}},
		{"missing config", []string{"user", "list", "--config", "/nonexistent.toml"}, []string{"--config", "does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, "", tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	t.Parallel()
	cfg := emptyConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	r := execCLI(t, "", "serve", "--config", cfg, "--data", t.TempDir(), "--http", ln.Addr().String(), "--tftp", "off", "--sip", "off")
	if r.code != 1 || !strings.Contains(r.stderr, port) || !strings.Contains(r.stderr, "--http") {
		t.Fatalf("port in use: exit %d, want 1 naming port %s and --http:\n%s", r.code, port, r.stderr)
	}
	empty := t.TempDir()
	r = runCLI(t, "", "user", "list", "--config", cfg, "--data", empty)
	if r.code != 1 || !strings.Contains(r.stderr, "no database") {
		t.Fatalf("user list without a database: exit %d:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(empty, "provbox.db")); err == nil {
		t.Fatal("user list created a database")
	}
	r = runCLI(t, "", "backup", filepath.Join(t.TempDir(), "b.db"), "--config", cfg, "--data", empty)
	if r.code != 1 || !strings.Contains(r.stderr, "no database") {
		t.Fatalf("backup without a database: exit %d:\n%s", r.code, r.stderr)
	}
	r = runCLI(t, "short\n", "user", "add", "admin", "--password-stdin", "--config", cfg, "--data", t.TempDir())
	if r.code != 1 || !strings.Contains(r.stderr, "password") {
		t.Fatalf("short password: exit %d:\n%s", r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	// The binary: the version is stamped at build time.
	r := execCLI(t, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "provbox "+testVersion+" (go1.") {
		t.Fatalf("version: exit %d, %q", r.code, r.stdout)
	}
	if out := mustCLI(t, "", "version", "--data", "/nonexistent", "--config", "/nonexistent.toml"); out != strings.Replace(r.stdout, testVersion, version, 1) {
		t.Fatalf("version with global flags: %q", out)
	}
	if out := mustCLI(t, "", "help"); !strings.Contains(out, "provbox serve") {
		t.Fatalf("help: %q", out)
	}
}
