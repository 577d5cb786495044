// Package packaging_test checks the .debs that make dist and make deb-test
// build: architecture, files, conffile, maintainer scripts, and the binary
// of the right machine that runs (under qemu-user for a foreign one). With
// PROVBOX_DEB_INSTALL=1, as root, it also installs the package of this
// machine's architecture with dpkg, upgrades, removes and purges it, and
// checks what each step leaves (make deb-test, which CI runs).
//
// PROVBOX_DIST_TEST names the Debian architectures whose .debs the Makefile
// has just built ("amd64", or "amd64 arm64 armhf" after make dist): each
// must be in dist/ and hold the repository's files. Without it, the tests
// check whatever an earlier build left in dist/ (it may be stale: a
// difference is only noted) and skip when there is none; they never build.
package packaging_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const root = ".." // the repository, from this package's directory

type debArch struct {
	deb     string // Debian architecture
	goarch  string
	machine elf.Machine
	qemu    string // qemu-user binary and sysroot to run it here
	sysroot string
}

var debArches = []debArch{
	{"amd64", "amd64", elf.EM_X86_64, "qemu-x86_64", "/usr/x86_64-linux-gnu"},
	{"arm64", "arm64", elf.EM_AARCH64, "qemu-aarch64", "/usr/aarch64-linux-gnu"},
	{"armhf", "arm", elf.EM_ARM, "qemu-arm", "/usr/arm-linux-gnueabihf"},
}

// built returns the architectures PROVBOX_DIST_TEST names: the .debs the
// Makefile has just built, which must be there and current.
func built(t *testing.T) []string {
	t.Helper()
	names := strings.Fields(os.Getenv("PROVBOX_DIST_TEST"))
	for _, n := range names {
		if !slices.ContainsFunc(debArches, func(a debArch) bool { return a.deb == n }) {
			t.Fatalf("PROVBOX_DIST_TEST: unknown Debian architecture %q (want amd64, arm64 or armhf)", n)
		}
	}
	return names
}

// debs returns the newest dist/provbox_*_<arch>.deb of each architecture
// found, failing when one PROVBOX_DIST_TEST names is missing.
func debs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range debArches {
		matches, _ := filepath.Glob(filepath.Join(root, "dist", "provbox_*_"+a.deb+".deb"))
		var newest time.Time
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.ModTime().After(newest) {
				newest, out[a.deb] = fi.ModTime(), m
			}
		}
	}
	for _, n := range built(t) {
		if out[n] == "" {
			t.Fatalf("PROVBOX_DIST_TEST names %s, but dist/ holds no provbox_*_%s.deb", n, n)
		}
	}
	if len(out) == 0 {
		t.Skip("SKIPPED: no dist/provbox_*.deb; make dist or make deb-test build and check them")
	}
	return out
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("SKIPPED: %s not found", name)
	}
}

func TestDebs(t *testing.T) {
	needTool(t, "dpkg-deb")
	all := debs(t)
	for _, a := range debArches {
		deb := all[a.deb]
		if deb == "" {
			continue
		}
		t.Run(a.deb, func(t *testing.T) {
			t.Logf("%s: %d bytes", filepath.Base(deb), fileSize(t, deb))
			checkControl(t, deb, a.deb)
			checkContents(t, deb)
			dir := t.TempDir()
			dpkgDeb(t, "-x", deb, dir) // the package's files in a scratch root
			checkFiles(t, dir, a.machine)
			runBinary(t, filepath.Join(dir, "usr", "bin", "provbox"), a.goarch, a.qemu, a.sysroot)
		})
	}
}

func fileSize(t *testing.T, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkControl: the control fields and the maintainer scripts.
func checkControl(t *testing.T, deb, arch string) {
	t.Helper()
	for field, want := range map[string]string{"Package": "provbox", "Architecture": arch, "Section": "net"} {
		if got := strings.TrimSpace(dpkgDeb(t, "-f", deb, field)); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if v := strings.TrimSpace(dpkgDeb(t, "-f", deb, "Version")); v == "" || v[0] < '0' || v[0] > '9' {
		t.Errorf("Version %q does not start with a digit", v)
	}
	if d := dpkgDeb(t, "-f", deb, "Depends"); !strings.Contains(d, "libc6") {
		t.Errorf("Depends %q: no libc6 (the binary links glibc)", d)
	}
	ctl := t.TempDir()
	dpkgDeb(t, "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/provbox/provbox.toml\n" {
		t.Errorf("conffiles %q, want /etc/provbox/provbox.toml alone", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(ctl, s)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("no %s: %v", s, err)
			continue
		}
		if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", s, fi.Mode())
		}
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
	}
	post, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
	for _, want := range []string{"deb-systemd-helper", "enable", "provbox user add", "option 66", "journalctl -u provbox"} {
		if !bytes.Contains(post, []byte(want)) {
			t.Errorf("postinst does not mention %q", want)
		}
	}
	if bytes.Contains(post, []byte("start provbox.service")) || bytes.Contains(post, []byte("invoke start")) {
		t.Error("postinst starts the service; it must only enable it")
	}
}

// checkContents: dpkg-deb -c lists the files with their modes.
func checkContents(t *testing.T, deb string) {
	t.Helper()
	list := dpkgDeb(t, "-c", deb)
	for path, mode := range map[string]string{
		"./usr/bin/provbox":                    "-rwxr-xr-x",
		"./lib/systemd/system/provbox.service": "-rw-r--r--",
		"./etc/provbox/provbox.toml":           "-rw-r--r--",
		"./usr/share/doc/provbox/copyright":    "-rw-r--r--",
	} {
		found := false
		for _, line := range strings.Split(list, "\n") {
			f := strings.Fields(line)
			if len(f) >= 6 && f[len(f)-1] == path {
				found = true
				if f[0] != mode || f[1] != "root/root" {
					t.Errorf("%s: %s %s, want %s root/root", path, f[0], f[1], mode)
				}
			}
		}
		if !found {
			t.Errorf("%s not in the package:\n%s", path, list)
		}
	}
}

// checkFiles: the unpacked files are the repository's, and the binary is
// built for the package's architecture.
func checkFiles(t *testing.T, dir string, machine elf.Machine) {
	t.Helper()
	for dst, src := range map[string]string{
		"lib/systemd/system/provbox.service": "systemd/provbox.service",
		"etc/provbox/provbox.toml":           "packaging/provbox.toml",
	} {
		got, err := os.ReadFile(filepath.Join(dir, dst))
		if err != nil {
			t.Error(err)
			continue
		}
		want, _ := os.ReadFile(filepath.Join(root, src))
		switch {
		case bytes.Equal(got, want):
		case len(built(t)) > 0:
			t.Errorf("/%s differs from %s", dst, src)
		default: // a package built before the file changed
			t.Logf("NOTE: /%s differs from %s: the package is older than the file; make dist", dst, src)
		}
	}
	// Debian policy 12.5, and the modules' licenses for a binary: the
	// copyright file carries each license (packaging/copyright.sh).
	copyright, err := os.ReadFile(filepath.Join(dir, "usr", "share", "doc", "provbox", "copyright"))
	if err != nil {
		t.Error(err)
	}
	for _, want := range []string{"Copyright: the provbox maintainers", "== Go go1.", "== github.com/mattn/go-sqlite3 "} {
		if !bytes.Contains(copyright, []byte(want)) {
			t.Errorf("the copyright file has no %q", want)
		}
	}
	f, err := elf.Open(filepath.Join(dir, "usr", "bin", "provbox"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("binary for %v, want %v", f.Machine, machine)
	}
}

// runBinary runs `provbox version`: natively on its own architecture,
// under qemu-user with the cross sysroot otherwise.
func runBinary(t *testing.T, bin, goarch, qemu, sysroot string) {
	t.Helper()
	var cmd *exec.Cmd
	if goarch == runtime.GOARCH {
		cmd = exec.Command(bin, "version")
	} else {
		if _, err := exec.LookPath(qemu); err != nil {
			t.Logf("SKIPPED running the %s binary: %s not found (Debian package qemu-user)", goarch, qemu)
			return
		}
		if _, err := os.Stat(sysroot); err != nil {
			t.Logf("SKIPPED running the %s binary: no sysroot %s (Debian package libc6-*-cross)", goarch, sysroot)
			return
		}
		cmd = exec.Command(qemu, "-L", sysroot, bin, "version")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	if !strings.HasPrefix(string(out), "provbox ") || !strings.Contains(string(out), "linux/"+goarch+")") {
		t.Errorf("provbox version: %q, want linux/%s", out, goarch)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// TestDebInstall installs the package of this machine's architecture with
// dpkg, checks what postinst did, installs it again (an upgrade), removes
// and purges it, and checks what each step leaves behind. It changes the
// machine, so it runs only with PROVBOX_DEB_INSTALL=1 (make deb-test), as
// root, where provbox is not installed already; no systemd need run.
func TestDebInstall(t *testing.T) {
	if os.Getenv("PROVBOX_DEB_INSTALL") != "1" {
		t.Skip("SKIPPED: make deb-test (PROVBOX_DEB_INSTALL=1) installs and purges the .deb on this machine")
	}
	if os.Geteuid() != 0 {
		t.Fatal("PROVBOX_DEB_INSTALL=1 needs root: dpkg -i changes the machine (sudo make deb-test)")
	}
	needTool(t, "dpkg")
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "provbox").Output(); strings.Contains(string(out), "installed") {
		t.Fatal("provbox is installed on this machine (" + string(out) + "); the test would replace and purge it: dpkg --purge provbox first")
	}
	i := slices.IndexFunc(debArches, func(a debArch) bool { return a.goarch == runtime.GOARCH })
	if i < 0 {
		t.Skipf("SKIPPED: no .deb for %s", runtime.GOARCH)
	}
	deb := debs(t)[debArches[i].deb]
	if deb == "" {
		t.Fatalf("no dist/provbox_*_%s.deb to install (make deb-test builds it)", debArches[i].deb)
	}
	// The database directory is not the package's: remove it afterwards
	// only if this test made it.
	var hadData []string
	for _, d := range []string{"/var/lib/provbox", "/var/lib/private/provbox"} {
		if _, err := os.Lstat(d); err == nil {
			hadData = append(hadData, d)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{"/var/lib/provbox", "/var/lib/private/provbox"} {
			if !slices.Contains(hadData, d) {
				os.RemoveAll(d)
			}
		}
	})
	purge := func() string {
		out, err := exec.Command("dpkg", "--purge", "provbox").CombinedOutput()
		if err != nil {
			t.Errorf("dpkg --purge provbox: %v\n%s", err, out)
		}
		return string(out)
	}
	out, err := exec.Command("dpkg", "-i", deb).CombinedOutput()
	t.Cleanup(func() {
		if st, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "provbox").Output(); len(st) > 0 && !strings.Contains(string(st), "not-installed") {
			purge()
		}
	})
	if err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	t.Logf("dpkg -i:\n%s", out)
	if !strings.Contains(string(out), "Next steps") || !strings.Contains(string(out), "sudo provbox user add") {
		t.Error("postinst printed no next steps")
	}
	for _, p := range []string{"/usr/bin/provbox", "/lib/systemd/system/provbox.service", "/etc/provbox/provbox.toml", "/usr/share/doc/provbox/README.md"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	// Enabled without a running systemd: the wants symlink exists.
	wants := "/etc/systemd/system/multi-user.target.wants/provbox.service"
	if target, err := os.Readlink(wants); err != nil || target != "/lib/systemd/system/provbox.service" {
		t.Errorf("not enabled: %s → %q, %v", wants, target, err)
	}
	// DynamicUser=yes: no static account is created.
	if out, err := exec.Command("getent", "passwd", "provbox").Output(); err == nil {
		t.Errorf("a static user provbox exists: %s (the unit uses DynamicUser=yes)", out)
	}
	runBinary(t, "/usr/bin/provbox", runtime.GOARCH, "", "")
	// doctor, as an admin would run it first, reads the packaged config.
	doc, _ := exec.Command("/usr/bin/provbox", "doctor").CombinedOutput()
	if !strings.Contains(string(doc), "config /etc/provbox/provbox.toml parses") || !strings.Contains(string(doc), "/var/lib/provbox") {
		t.Errorf("provbox doctor with the packaged config:\n%s", doc)
	}

	// Installing again runs postinst as an upgrade: no first-run message,
	// still enabled.
	out, err = exec.Command("dpkg", "-i", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg -i again: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "Next steps") {
		t.Errorf("upgrade printed the first-run steps:\n%s", out)
	}
	if _, err := os.Readlink(wants); err != nil {
		t.Errorf("not enabled after upgrade: %v", err)
	}

	// Remove keeps the conffile; purge takes it and the enablement.
	if out, err := exec.Command("dpkg", "-r", "provbox").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	for _, p := range []string{"/usr/bin/provbox", "/lib/systemd/system/provbox.service"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after dpkg -r", p)
		}
	}
	if _, err := os.Stat("/etc/provbox/provbox.toml"); err != nil {
		t.Errorf("conffile gone after dpkg -r (only purge removes it): %v", err)
	}
	t.Logf("dpkg --purge:\n%s", purge())
	for _, p := range []string{"/etc/provbox/provbox.toml", "/etc/provbox", wants, "/etc/systemd/system/provbox.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left after dpkg --purge", p)
		}
	}
	// Debian policy: purge leaves nothing of the package but what the admin
	// made (the database, which postrm names and keeps).
	left, _ := exec.Command("find", "/etc", "/lib/systemd", "/usr/bin", "/usr/share/doc", "/var/lib/dpkg/info",
		"/var/lib/systemd", "-name", "*provbox*").Output()
	if len(left) > 0 {
		t.Errorf("left after purge:\n%s", left)
	}
	if st, _ := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "provbox").Output(); len(st) > 0 && string(st) != "pn " && string(st) != "un " {
		t.Errorf("dpkg status after purge %q, want not-installed", st)
	}
}
