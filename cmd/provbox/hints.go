package main

// Hints that name what their reader can run where they are (issue 17): the
// command that runs this provbox from a shell — `./bin/provbox` after
// `make run`, `provbox` when installed, `sudo provbox` next to a systemd
// unit — and where serve's log, with the setup code, is read: the terminal
// that started it, or the journal of its unit.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// where is what the hints depend on: this binary, the directory its reader
// is in, and the systemd unit serve runs under.
type where struct {
	exe    string // this binary, symlinks resolved ("" unknown)
	cwd    string // working directory
	onPath string // what "provbox" on PATH resolves to ("" none)
	// unit is the systemd unit serve runs in ("" when not under systemd,
	// i.e. no INVOCATION_ID); user is true for a user manager's unit.
	unit string
	user bool
}

// hereNow reads where from the running process.
func hereNow() where {
	var w where
	if exe, err := os.Executable(); err == nil {
		w.exe = resolved(exe)
	}
	w.cwd, _ = os.Getwd()
	if p, err := exec.LookPath("provbox"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			w.onPath = resolved(abs)
		}
	}
	if os.Getenv("INVOCATION_ID") != "" {
		cg, _ := os.ReadFile("/proc/self/cgroup")
		w.unit, w.user = unitOf(string(cg))
	}
	return w
}

// resolved is p with its symlinks resolved, p itself when that fails.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// unitOf names the systemd unit of a process from its /proc/self/cgroup:
// the last path element ending in ".service" ("provbox" of
// "0::/system.slice/provbox.service"), "provbox" when none does; user is
// true under a user manager (".../user@1000.service/app.slice/x.service").
func unitOf(cgroup string) (unit string, user bool) {
	for _, line := range strings.Split(cgroup, "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 || (parts[0] != "0" && !strings.Contains(parts[1], "name=systemd")) {
			continue
		}
		elems := strings.Split(parts[2], "/")
		for i := len(elems) - 1; i >= 0; i-- {
			if name, ok := strings.CutSuffix(elems[i], ".service"); ok && name != "" {
				return name, strings.Contains(parts[2], "/user@")
			}
		}
	}
	return "provbox", false
}

// command is how the reader runs this provbox from a shell: "provbox" when
// that name on PATH is this binary, else a path relative to the working
// directory when the binary is under it ("./bin/provbox"; not under
// systemd, whose working directory is the unit's, not its reader's), else
// its absolute path; "sudo " in front next to a system unit (the state and
// config belong to root).
func (w where) command() string {
	cmd := "provbox"
	switch {
	case w.exe == "" || w.exe == w.onPath:
	case w.unit == "" && w.cwd != "" && under(w.exe, w.cwd):
		rel, _ := filepath.Rel(w.cwd, w.exe)
		cmd = "./" + rel
	default:
		cmd = w.exe
	}
	cmd = shellQuote(cmd)
	if w.unit != "" && !w.user {
		cmd = "sudo " + cmd
	}
	return cmd
}

// under reports whether path lies inside dir.
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
}

// journal is the command that shows serve's setup-code line in the
// journal of its unit; "" when serve is not under systemd (its log is the
// terminal, or wherever that was redirected).
func (w where) journal() string {
	switch {
	case w.unit == "":
		return ""
	case w.user:
		return "journalctl --user -u " + shellQuote(w.unit) + " | grep setup_code"
	default:
		return "sudo journalctl -u " + shellQuote(w.unit) + " | grep setup_code"
	}
}

// userAdd is the command that creates the first admin on the database
// serve opened: command() with --data and --config as serve got them (a
// --data relative to the working directory stays so: the hint is run
// from there), and --data also when the directory came from
// $STATE_DIRECTORY, which a shell does not have.
func (w where) userAdd(g globalFlags, cfg *Config, dataDir string) string {
	hint := w.command() + " user add NAME"
	switch {
	case g.data != "":
		hint += " --data " + shellQuote(g.data)
	case cfg.DataDir == "" && dataDir != "provbox-data":
		hint += " --data " + shellQuote(dataDir)
	}
	if g.config != "" {
		hint += " --config " + shellQuote(g.config)
	}
	return hint
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters of ordinary paths.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+=,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
