package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHintCommand: the command a hint names is one its reader can run
// where they are (issue 17).
func TestHintCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    where
		want string
	}{
		{"make run from the checkout", where{exe: "/home/ann/provbox/bin/provbox", cwd: "/home/ann/provbox"}, "./bin/provbox"},
		{"binary in the working directory", where{exe: "/srv/p/provbox", cwd: "/srv/p"}, "./provbox"},
		{"started from elsewhere", where{exe: "/home/ann/provbox/bin/provbox", cwd: "/tmp"}, "/home/ann/provbox/bin/provbox"},
		{"a sibling directory is not under", where{exe: "/home/ann/provbox2/provbox", cwd: "/home/ann/provbox"}, "/home/ann/provbox2/provbox"},
		{"installed, on PATH", where{exe: "/usr/bin/provbox", cwd: "/home/ann", onPath: "/usr/bin/provbox"}, "provbox"},
		{"on PATH wins over under cwd", where{exe: "/usr/local/bin/provbox", cwd: "/usr/local", onPath: "/usr/local/bin/provbox"}, "provbox"},
		{"another provbox on PATH", where{exe: "/opt/p/provbox", cwd: "/", onPath: "/usr/bin/provbox"}, "./opt/p/provbox"},
		{"a path with a space", where{exe: "/home/ann/my tools/provbox", cwd: "/tmp"}, "'/home/ann/my tools/provbox'"},
		{"system unit", where{exe: "/usr/bin/provbox", cwd: "/", onPath: "/usr/bin/provbox", unit: "provbox"}, "sudo provbox"},
		{"system unit, binary not on PATH", where{exe: "/opt/provbox/provbox", cwd: "/opt/provbox", unit: "provbox"}, "sudo /opt/provbox/provbox"},
		{"user unit", where{exe: "/usr/bin/provbox", cwd: "/home/ann", onPath: "/usr/bin/provbox", unit: "provbox", user: true}, "provbox"},
		{"unknown binary", where{cwd: "/tmp"}, "provbox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.command(); got != tc.want {
				t.Errorf("command() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHintUserAdd(t *testing.T) {
	built := where{exe: "/src/provbox/bin/provbox", cwd: "/src/provbox"}
	for _, tc := range []struct {
		name    string
		w       where
		g       globalFlags
		cfg     Config
		dataDir string
		want    string
	}{
		{"quick start", built, globalFlags{}, Config{}, "provbox-data", "./bin/provbox user add NAME"},
		{"--data and --config as typed", built, globalFlags{data: "lab", config: "lab.toml"}, Config{}, "lab", "./bin/provbox user add NAME --data lab --config lab.toml"},
		{"data_dir from the config", built, globalFlags{config: "/etc/p.toml"}, Config{DataDir: "/srv/p"}, "/srv/p", "./bin/provbox user add NAME --config /etc/p.toml"},
		{"$STATE_DIRECTORY, which a shell lacks", where{exe: "/usr/bin/provbox", onPath: "/usr/bin/provbox", unit: "provbox"}, globalFlags{}, Config{}, "/var/lib/provbox",
			"sudo provbox user add NAME --data /var/lib/provbox"},
		{"packaged config", where{exe: "/usr/bin/provbox", onPath: "/usr/bin/provbox", unit: "provbox"}, globalFlags{}, Config{DataDir: "/var/lib/provbox"}, "/var/lib/provbox",
			"sudo provbox user add NAME"},
		{"quoted", built, globalFlags{data: "my data"}, Config{}, "my data", "./bin/provbox user add NAME --data 'my data'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.userAdd(tc.g, &tc.cfg, tc.dataDir); got != tc.want {
				t.Errorf("userAdd = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHintJournal(t *testing.T) {
	for _, tc := range []struct {
		name, cgroup string
		invoked      bool
		unit, want   string
	}{
		{"terminal", "0::/user.slice/user-1000.slice/session-2.scope\n", false, "", ""},
		{"packaged unit", "0::/system.slice/provbox.service\n", true, "provbox", "sudo journalctl -u provbox | grep setup_code"},
		{"a unit of another name", "0::/system.slice/provbox-lab.service\n", true, "provbox-lab", "sudo journalctl -u provbox-lab | grep setup_code"},
		{"template instance", "0::/system.slice/system-provbox.slice/provbox@eth1.service\n", true, "provbox@eth1", "sudo journalctl -u provbox@eth1 | grep setup_code"},
		{"user manager", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/provbox.service\n", true, "provbox",
			"journalctl --user -u provbox | grep setup_code"},
		{"cgroup v1", "12:pids:/system.slice/pb.service\n1:name=systemd:/system.slice/pb.service\n", true, "pb", "sudo journalctl -u pb | grep setup_code"},
		{"unreadable cgroup", "", true, "provbox", "sudo journalctl -u provbox | grep setup_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w where
			if tc.invoked {
				w.unit, w.user = unitOf(tc.cgroup)
			}
			if w.unit != tc.unit || w.journal() != tc.want {
				t.Errorf("unit %q journal %q, want %q %q", w.unit, w.journal(), tc.unit, tc.want)
			}
		})
	}
}

// TestHintsHere: hereNow reads INVOCATION_ID (set by systemd for each unit
// it starts) and finds this test binary relative to the working directory.
func TestHintsHere(t *testing.T) {
	t.Setenv("INVOCATION_ID", "")
	w := hereNow()
	if w.unit != "" || w.journal() != "" {
		t.Errorf("without INVOCATION_ID: unit %q", w.unit)
	}
	exe, _ := os.Executable()
	t.Chdir(filepath.Dir(exe))
	if got := hereNow().command(); got != "./"+filepath.Base(exe) {
		t.Errorf("command in the binary's directory = %q, want ./%s", got, filepath.Base(exe))
	}
	t.Setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
	if w := hereNow(); w.unit == "" || !strings.Contains(w.journal(), "journalctl") {
		t.Errorf("with INVOCATION_ID: unit %q, journal %q", w.unit, w.journal())
	}
}
