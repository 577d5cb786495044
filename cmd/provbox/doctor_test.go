package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseProcNet(t *testing.T) {
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   108        0 41234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 55555 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0
`
	const udp = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1216: 00000000:0045 00000000:0000 07 00000000:00000000 00:00000000 00000000   107        0 618150 2 00000000ca766468 0
 1690: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 618152 2 000000004fd3a194 0
`
	for _, tc := range []struct {
		name string
		text string
		port int
		tcp  bool
		want []procSocket
	}{
		{"tcp listener, not the connection", tcp, 8080, true, []procSocket{{41234, 108}}},
		{"tcp other port", tcp, 22, true, []procSocket{{999, 0}}},
		{"tcp none", tcp, 5060, true, nil},
		{"udp tftp", udp, 69, false, []procSocket{{618150, 107}}},
		{"udp sip", udp, 5060, false, []procSocket{{618152, 0}}},
		{"header only", "  sl  local_address\n", 69, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseProcNet(strings.NewReader(tc.text), tc.port, tc.tcp)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeProc builds a /proc with processes (pid → comm, socket inodes).
func fakeProc(t *testing.T, procs map[int]struct {
	comm   string
	inodes []uint64
}) string {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "comm"), []byte(p.comm+"\n"), 0o644)
		os.Symlink("/dev/null", filepath.Join(dir, "fd", "0"))
		for i, ino := range p.inodes {
			if err := os.Symlink(fmt.Sprintf("socket:[%d]", ino), filepath.Join(dir, "fd", strconv.Itoa(i+3))); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.MkdirAll(filepath.Join(root, "self"), 0o755)
	return root
}

func TestSocketOwners(t *testing.T) {
	proc := fakeProc(t, map[int]struct {
		comm   string
		inodes []uint64
	}{
		812:  {"in.tftpd", []uint64{618150}},
		900:  {"nginx", []uint64{41234, 7}},
		901:  {"nginx", []uint64{41234}},
		1234: {"bash", nil},
	})
	got := socketOwners(proc, map[uint64]bool{618150: true, 41234: true, 5: true})
	slices.Sort(got[41234])
	if want := []string{"in.tftpd (pid 812)"}; !slices.Equal(got[618150], want) {
		t.Errorf("618150: %q, want %q", got[618150], want)
	}
	if want := []string{"nginx (pid 900)", "nginx (pid 901)"}; !slices.Equal(got[41234], want) {
		t.Errorf("41234: %q, want %q", got[41234], want)
	}
	if len(got[5]) != 0 || len(got[7]) != 0 {
		t.Errorf("owners of sockets not asked for or not open: %v", got)
	}
	if h := stopHint([]string{"in.tftpd (pid 812)"}); !strings.Contains(h, "tftpd-hpa") {
		t.Errorf("stop hint %q does not name tftpd-hpa", h)
	}
}

func TestEffectiveCaps(t *testing.T) {
	caps, err := effectiveCaps("Name:\tprovbox\nCapInh:\t0000000000000000\nCapEff:\t0000000000002c00\nCapBnd:\t000001ffffffffff\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, bit := range []uint{capNetBindService, capNetBroadcast, capNetRaw} {
		if caps&(1<<bit) == 0 {
			t.Errorf("bit %d not set in %#x", bit, caps)
		}
	}
	if caps != 1<<capNetBindService|1<<capNetBroadcast|1<<capNetRaw {
		t.Errorf("caps %#x: more than the unit's three", caps)
	}
	if _, err := effectiveCaps("Name:\tx\n"); err == nil {
		t.Error("no CapEff line: no error")
	}
}

// TestDoctorCapabilities: what is missing depends on the config: low
// ports need NET_BIND_SERVICE (unless the kernel lets anyone bind them),
// DHCP needs NET_RAW and NET_BROADCAST.
func TestDoctorCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name         string
		capEff       string
		unprivileged string // ip_unprivileged_port_start; "" none
		tftp         string
		dhcp         string
		want         checkStatus
		mention      string
	}{
		{"no caps, tftp on 69", "0000000000000000", "", ":69", "", statusWarn, "lacks CAP_NET_BIND_SERVICE"},
		{"no caps, high ports", "0000000000000000", "", ":6969", "", statusOK, "needs none"}, // sip :5060, http :8080 too
		{"no caps, kernel allows low ports", "0000000000000000", "0", ":69", "", statusOK, "needs none"},
		{"no caps, dhcp on", "0000000000000000", "0", ":69", "eth0", statusWarn, "lacks CAP_NET_RAW, CAP_NET_BROADCAST"},
		{"the unit's three", "0000000000002c00", "", ":69", "eth0", statusOK, "CAP_NET_BIND_SERVICE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := fakeProc(t, nil)
			os.WriteFile(filepath.Join(proc, "self", "status"), []byte("CapEff:\t"+tc.capEff+"\n"), 0o644)
			if tc.unprivileged != "" {
				os.MkdirAll(filepath.Join(proc, "sys", "net", "ipv4"), 0o755)
				os.WriteFile(filepath.Join(proc, "sys", "net", "ipv4", "ip_unprivileged_port_start"), []byte(tc.unprivileged+"\n"), 0o644)
			}
			cfg := DefaultConfig()
			cfg.TFTP.Listen = tc.tftp
			cfg.DHCP.Interface = tc.dhcp
			d := &doctor{cfg: &cfg, proc: proc, euid: 1000, now: time.Now}
			r := d.checkCapabilities()
			if r.Status != tc.want || !strings.Contains(r.Msg, tc.mention) {
				t.Errorf("%s: %s, want %s mentioning %q", r.Status, r.Msg, tc.want, tc.mention)
			}
			if r.Status == statusWarn && !strings.Contains(r.Fix, "setcap") {
				t.Errorf("fix %q does not say how", r.Fix)
			}
		})
	}
}

func TestDoctorClock(t *testing.T) {
	d := &doctor{now: func() time.Time { return time.Date(1970, 1, 1, 0, 0, 12, 0, time.UTC) }}
	if r := d.checkClock(); r.Status != statusFail || r.Fix == "" {
		t.Errorf("1970: %+v, want FAIL with a fix", r)
	}
	d.now = func() time.Time { return time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC) }
	if r := d.checkClock(); r.Status != statusOK {
		t.Errorf("2025: %+v, want OK", r)
	}
}

// doctorLines runs provbox doctor and returns its exit code and lines.
func doctorLines(t *testing.T, args ...string) (int, []string) {
	t.Helper()
	r := runCLI(t, "", append([]string{"doctor"}, args...)...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range lines {
		t.Log(l)
	}
	if r.stderr != "" {
		t.Log("stderr: " + r.stderr)
	}
	return r.code, lines
}

func hasLine(lines []string, prefix, contains string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, contains) {
			return true
		}
	}
	return false
}

// exitMatches: exit 1 exactly when a check failed.
func exitMatches(t *testing.T, code int, lines []string) {
	t.Helper()
	failed := hasLine(lines, "FAIL:", "")
	if failed && code != 1 || !failed && code != 0 {
		t.Errorf("exit %d with failed=%v", code, failed)
	}
}

// TestDoctorPortInUse: a port held by another process is a FAIL naming it
// (here the test process itself), with a fix, and doctor exits 1.
func TestDoctorPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "provbox.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[http]\nlisten = %q\n[tftp]\nlisten = \"off\"\n[sip]\nlisten = \"off\"\n", l.Addr().String())), 0o600)
	code, lines := doctorLines(t, "--config", cfg, "--data", filepath.Join(dir, "data"))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	port := l.Addr().(*net.TCPAddr).Port
	holder := fmt.Sprintf("(pid %d)", os.Getpid())
	if !hasLine(lines, "FAIL:", fmt.Sprintf("port %d/tcp (http): in use by ", port)) || !hasLine(lines, "FAIL:", holder) {
		t.Errorf("no FAIL line naming port %d and %s", port, holder)
	}
	if !hasLine(lines, "      fix:", `http.listen = ":8081"`) {
		t.Error("no fix line suggesting another http.listen")
	}
	if !hasLine(lines, "OK:", "tftp: off") || !hasLine(lines, "SKIP:", "DHCP is off; set dhcp.interface") {
		t.Error("missing the tftp-off or the DHCP probe line")
	}
}

// TestDoctorReport: on a data dir with an admin and free ports, the config,
// port, clock, data dir and database checks pass; exit 0 unless a check
// about this machine's network failed.
func TestDoctorReport(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "provbox.toml")
	os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:0\"\n[tftp]\nlisten = \"127.0.0.1:0\"\n[sip]\nlisten = \"off\"\n"), 0o600)
	data := filepath.Join(dir, "data")
	mustCLI(t, "correct-horse-battery\n", "user", "add", "admin", "--password-stdin", "--data", data, "--config", cfg)
	code, lines := doctorLines(t, "--config", cfg, "--data", data)
	exitMatches(t, code, lines)
	for _, want := range []struct{ prefix, contains string }{
		{"OK:", "config " + cfg + " parses"},
		{"OK:", "http: 127.0.0.1:0 picks a free port"},
		{"OK:", "sip: off"},
		{"OK:", "clock: "},
		{"OK:", "data dir " + data + " is writable"},
		{"OK:", "1 admins"},
		{"SKIP:", "DHCP is off; set dhcp.interface"},
		{"OK:", "all 0 phone(s) are ready"},
	} {
		if !hasLine(lines, want.prefix, want.contains) {
			t.Errorf("no %s line with %q", want.prefix, want.contains)
		}
	}
	// A phone without an account key is not ready: doctor says so, with
	// the phone, as a warning (exit code unchanged).
	csv := filepath.Join(dir, "phones.csv")
	os.WriteFile(csv, []byte("mac,name,model,position,key_type,key_value,key_label\n001565aabbcc,Lobby,T46U,,,,\n"), 0o600)
	mustCLI(t, "", "phones", "import", csv, "--data", data, "--config", cfg)
	code, lines = doctorLines(t, "--config", cfg, "--data", data)
	exitMatches(t, code, lines)
	if !hasLine(lines, "WARN:", "1 phone(s) not ready: no account key") || !hasLine(lines, "      fix:", "Lobby (00:15:65:aa:bb:cc)") {
		t.Errorf("no WARN naming the phone without an account key:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "FAIL:") && !strings.Contains(l, "interfaces") && !strings.Contains(l, "port 67/") {
			t.Errorf("unexpected failure: %s", l)
		}
	}
	// The report must not have created or changed anything but what it
	// was pointed at: no stray files in the data dir.
	entries, _ := os.ReadDir(data)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".provbox-doctor") {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

// TestDoctorBadConfig: a config that does not parse is a FAIL naming the
// key, the rest still runs on the defaults, and the database is never
// created by doctor.
func TestDoctorBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "provbox.toml")
	os.WriteFile(cfg, []byte("[http]\nlissen = \":8080\"\n"), 0o600)
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o700)
	code, lines := doctorLines(t, "--config", cfg, "--data", data)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !hasLine(lines, "FAIL:", `unknown key "http.lissen"`) {
		t.Error("no FAIL line naming http.lissen")
	}
	if !hasLine(lines, "WARN:", "does not exist yet") {
		t.Error("no WARN line for the missing database")
	}
	if _, err := os.Stat(filepath.Join(data, "provbox.db")); err == nil {
		t.Error("doctor created the database")
	}
}
