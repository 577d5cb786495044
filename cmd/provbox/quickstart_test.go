package main

// The README's quick start, as a new user runs it (issue 17): the README,
// `make help`, the Makefile's comments and the ready line agree on every
// flag and port of `make run`, and `make run` from the checkout serves SIP
// (OPTIONS, check-sync to an emulated phone) on the port given to it.

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// repoRoot is the checkout this test runs in.
const repoRoot = "../.."

// makeEnv is the environment for a make of the checkout: none of the
// parent make's flags (make test runs go test), no make variables of the
// same names from the caller's environment, and not under a systemd unit.
func makeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "HTTP", "HTTPS", "TFTP", "SIP", "ARGS", "BIN", "INVOCATION_ID":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// makeOut runs make in the checkout and returns its stdout.
func makeOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir, cmd.Env = repoRoot, makeEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// serveFlagsOf returns the flags of a `... serve --flag value ...` command
// line, in order, and whether line is one.
func serveFlagsOf(line string) ([][2]string, bool) {
	_, rest, ok := strings.Cut(line, " serve ")
	if !ok {
		return nil, false
	}
	f := strings.Fields(rest)
	var flags [][2]string
	for i := 0; i+1 < len(f) && strings.HasPrefix(f[i], "--"); i += 2 {
		flags = append(flags, [2]string{f[i], strings.Trim(f[i+1], "`")})
	}
	return flags, true
}

// makeRunFlags is the serve command `make -n run args...` would run.
func makeRunFlags(t *testing.T, args ...string) [][2]string {
	t.Helper()
	out := makeOut(t, append([]string{"-n", "run"}, args...)...)
	for _, line := range strings.Split(out, "\n") {
		if flags, ok := serveFlagsOf(line); ok && strings.Contains(line, "provbox serve") {
			return flags
		}
	}
	t.Fatalf("make -n run %s runs no provbox serve:\n%s", strings.Join(args, " "), out)
	return nil
}

// quickStart is the README's "Quick start" section.
func quickStart(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, s, ok := strings.Cut(string(readme), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no ## Quick start")
	}
	s, _, _ = strings.Cut(s, "\n## ")
	return s
}

// portsSaid finds each place text names service with a port ("HTTP port
// 8080", "TFTP on :6969", "SIP (…) on 5062") and returns the ports; an
// IP address after the name ("SIP plug-and-play … 224.0.1.75:5060") and
// an example's "HTTP=:9080" are not counted.
func portsSaid(text, service string) []string {
	text = strings.Join(strings.Fields(strings.ReplaceAll(text, "\n#", " ")), " ")
	re := regexp.MustCompile(`\b` + service + `\b(=?)[^.;\d]{0,80}?:?(\d{2,5})(\.\d)?`)
	var ports []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if m[1] == "" && m[3] == "" { // not an example's VAR=value, nor an IP address
			ports = append(ports, m[2])
		}
	}
	return ports
}

// TestQuickStartAgrees: the README's quick start, `make help`, the comment
// above the Makefile's run target and the run recipe name the same flags
// and ports; every service is on, on an unprivileged port; the README's
// `make run VAR=value` examples change what they say they change.
func TestQuickStartAgrees(t *testing.T) {
	needTools(t, "make")
	run := makeRunFlags(t)
	want := map[string]string{}
	for _, f := range run {
		want[f[0]] = f[1]
	}
	services := map[string]string{"--http": "HTTP", "--https": "HTTPS", "--tftp": "TFTP", "--sip": "SIP"}
	for flag := range services {
		if listenPort(want[flag]) < 1024 {
			t.Errorf("make run: %s %q, want an unprivileged port (every service on)", flag, want[flag])
		}
	}
	if len(want) != len(services) {
		t.Errorf("make run runs serve with %v, want exactly %v", run, services)
	}

	qs := quickStart(t)
	// Every serve command line the quick start shows is make run's.
	said := 0
	for _, line := range strings.Split(qs, "\n") {
		if !strings.Contains(line, "provbox serve") {
			continue
		}
		flags, _ := serveFlagsOf(line)
		if !slices.Equal(flags, run) {
			t.Errorf("README quick start: %q\n  has flags %v, make run has %v", strings.TrimSpace(line), flags, run)
		}
		said++
	}
	if said < 2 {
		t.Errorf("README quick start shows %d serve command lines, want the make run one and the go run one", said)
	}
	// The prose and the Makefile's comment name each service's port.
	makefile, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	_, comment, _ := strings.Cut(string(makefile), "\n# The README's quick start")
	comment, _, _ = strings.Cut(comment, "\nrun:")
	for flag, name := range services {
		p := strconv.Itoa(listenPort(want[flag]))
		for where, text := range map[string]string{"README quick start": qs, "the Makefile's comment on run": comment} {
			got := portsSaid(text, name)
			if len(got) == 0 {
				t.Errorf("%s names no port for %s (make run: %s)", where, name, p)
			}
			for _, g := range got {
				if g != p {
					t.Errorf("%s says %s on %s; make run: %s %s", where, name, g, flag, want[flag])
				}
			}
		}
	}
	// make help names the defaults as the variables that change them.
	help := makeOut(t, "help")
	for flag, name := range services {
		if !strings.Contains(help, name+"="+want[flag]+" ") {
			t.Errorf("make help lacks %s=%s:\n%s", name, want[flag], help)
		}
	}
	// An empty variable (SIP=$PORT with PORT unset) is an error naming it,
	// before serve would take the next flag for its value.
	for _, name := range services {
		cmd := exec.Command("make", "--no-print-directory", "-n", "run", name+"=")
		cmd.Dir, cmd.Env = repoRoot, makeEnv()
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "make run: "+name+" is empty") || strings.Contains(string(out), " serve ") {
			t.Errorf("make -n run %s=: %v\n%s", name, err, out)
		}
	}
	// The README's `make run VAR=value ...` examples: each variable is one
	// make run knows, and lands on its flag.
	vars := map[string]string{"HTTP": "--http", "HTTPS": "--https", "TFTP": "--tftp", "SIP": "--sip"}
	examples := regexp.MustCompile("(?m)^make run( [A-Z]+=('[^']*'|\\S+))+").FindAllString(qs, -1)
	if len(examples) == 0 {
		t.Error("README quick start shows no make run VAR=value example")
	}
	for _, ex := range examples {
		assigns := regexp.MustCompile(`([A-Z]+)=('[^']*'|\S+)`).FindAllStringSubmatch(ex, -1)
		var args []string
		for _, a := range assigns {
			args = append(args, a[1]+"="+strings.Trim(a[2], "'"))
		}
		got, line := map[string]string{}, ""
		for _, f := range makeRunFlags(t, args...) {
			got[f[0]] = f[1]
			line += " " + f[0] + " " + f[1]
		}
		for _, a := range assigns {
			name, val := a[1], strings.Trim(a[2], "'")
			switch {
			case name == "ARGS":
				if !strings.Contains(line, val) {
					t.Errorf("README: %q: serve gets %q, without %s", ex, line, val)
				}
			case vars[name] == "":
				t.Errorf("README: %q: make run has no variable %s", ex, name)
			case got[vars[name]] != val:
				t.Errorf("README: %q: serve gets %s %q", ex, vars[name], got[vars[name]])
			}
		}
	}
}

// TestQuickStartMakeRun runs the README's `make run` in this checkout with
// every port moved by its make variable (SIP=127.0.0.1:<port>): the ready
// line names those addresses, the log's hint is a command that runs from
// here and creates the admin, sipp's OPTIONS gets 200 on the SIP port, and
// after a line-key edit an emulated Yealink gets its check-sync, fetches
// the new version and applies it. Ctrl-C (SIGINT to make and provbox)
// stops it cleanly.
func TestQuickStartMakeRun(t *testing.T) {
	needTools(t, "make", "sipp")
	// make build first, with time to compile SQLite's cgo from nothing
	// (the build flags of make differ from the tests' own binary).
	build := exec.Command("make", "--no-print-directory", "build")
	build.Dir, build.Env = repoRoot, makeEnv()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}

	sim := buildTool(t, "../phonesim")
	regAddr := "127.0.0.2:" + strconv.Itoa(freeUDPPort(t, "127.0.0.2"))
	startRegistrar(t, regAddr)
	addr := map[string]string{
		"HTTP":  "127.0.0.1:" + strconv.Itoa(freeTCPPort(t, "127.0.0.1")),
		"HTTPS": "127.0.0.1:" + strconv.Itoa(freeTCPPort(t, "127.0.0.1")),
		"TFTP":  "127.0.0.1:" + strconv.Itoa(freeUDPPort(t, "127.0.0.1")),
		"SIP":   "127.0.0.1:" + strconv.Itoa(freeUDPPort(t, "127.0.0.1")),
	}
	data, cfg := t.TempDir(), emptyConfig(t)
	args := []string{"--no-print-directory", "run", "ARGS=--data " + data + " --config " + cfg}
	for k, v := range addr {
		args = append(args, k+"="+v)
	}
	cmd := exec.Command("make", args...)
	cmd.Dir, cmd.Env = repoRoot, makeEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's process group: Ctrl-C reaches make and provbox
	p := runServe(t, cmd)
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	// The ready line names the addresses make was given.
	var ready struct{ Addr, HTTPS, TFTP, SIP, Data string }
	var hint string
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	for sc.Scan() {
		var rec struct{ Msg, Command string }
		json.Unmarshal(sc.Bytes(), &rec)
		switch {
		case rec.Msg == "provbox ready":
			json.Unmarshal(sc.Bytes(), &ready)
		case rec.Command != "":
			hint = rec.Command
		}
	}
	if ready.Addr != addr["HTTP"] || ready.HTTPS != addr["HTTPS"] || ready.TFTP != addr["TFTP"] || ready.SIP != addr["SIP"] || ready.Data != data {
		t.Errorf("ready line %+v, make run was given %v and --data %s", ready, addr, data)
	}

	// The hint runs from where make run was typed, as printed.
	wantHint := "./bin/provbox user add NAME --data " + data + " --config " + cfg
	if hint != wantHint {
		t.Fatalf("setup hint %q, want %q", hint, wantHint)
	}
	argv := strings.Fields(strings.Replace(hint, "NAME", "admin", 1))
	add := exec.Command(argv[0], append(argv[1:], "--password-stdin")...)
	add.Dir, add.Stdin = repoRoot, strings.NewReader("correct-horse-battery\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("the hint %q: %v\n%s", hint, err, out)
	}

	// A SIP OPTIONS from sipp on the SIP port make run was given.
	out, err := exec.Command("sipp", "-sf", scenario("uac-options.xml"), "-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t, "127.0.0.1")),
		"-m", "1", "-nostdin", "-timeout", "10s", "-timeout_error", addr["SIP"]).CombinedOutput()
	if err != nil {
		t.Fatalf("sipp OPTIONS to %s: %v\n%s", addr["SIP"], err, out)
	}

	// A phone boots from it, then a key edit reaches the handset.
	a := newAPI(t, p.url, "admin", "correct-horse-battery")
	a.must("POST", "/api/v1/extensions", map[string]any{"number": "1001", "name": "Front desk", "password": "desk-sip-pw", "sip_server": regAddr}, 201, nil)
	const mac = "001565c17001"
	a.must("POST", "/api/v1/phones", map[string]any{"mac": mac, "model": "T46G", "extension": "1001"}, 201, nil)
	// The phone listens on 5060, the port provbox assumes (sip.phone_port),
	// on an address of its own.
	phone := startSim(t, sim, 1, "-first-mac", mac, "-ip-base", "127.1.17.1", "-sip-port", "5060", "-prov", p.url+"/prov/", "-register-timeout", "3s")
	boot := waitPhones(t, a, "synced after boot", 15*time.Second, nil, func(ph appliance.Phone) bool {
		return ph.Sync.State == appliance.SyncSynced && ph.Sync.Confirms
	})
	var blf appliance.Key
	a.must("POST", "/api/v1/keys", map[string]any{"type": "blf", "value": "1002", "label": "Reception"}, 201, &blf)
	edit := time.Now()
	a.must("PUT", "/api/v1/phones/"+mac+"/keys", []map[string]any{{"position": 1, "key_id": 1}, {"position": 2, "key_id": blf.ID}}, 200, nil)
	waitPhones(t, a, "fetched after the key edit", 15*time.Second, nil, func(ph appliance.Phone) bool {
		return ph.Sync.ConfigVersion != boot[0].Sync.ConfigVersion && ph.Sync.FetchedVersion == ph.Sync.ConfigVersion &&
			ph.Sync.LastNotifyResult == "200 OK" && ph.Sync.LastNotifyAt != nil && ph.Sync.LastNotifyAt.After(edit)
	})
	notified := phone.count(func(l simLine) bool { return l.Event == "notify" && l.MAC == mac })
	if notified != 1 {
		t.Errorf("the phone got %d check-sync NOTIFYs for one edit", notified)
	}
	for _, l := range phone.snapshot() {
		if l.Event == "error" {
			t.Errorf("phonesim: %+v", l)
		}
	}
	t.Logf("make run: edit → check-sync → fetched in %v", time.Since(edit))

	// Ctrl-C.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not stop within 30 s of Ctrl-C:\n%s", p.logs)
	}
	if !strings.Contains(p.logs.String(), `"msg":"provbox stopped"`) {
		t.Errorf("no clean stop after Ctrl-C:\n%s", p.logs)
	}
}
