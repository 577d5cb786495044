// Package packaging_test checks what make dist builds: the three .debs in
// dist/ (architecture, files, conffile, maintainer scripts, the binary of
// the right machine that runs — under qemu-user for the ARM ones) and, with
// PROVBOX_DIST_TEST=1 as root, a real dpkg install and purge of the amd64
// package on this machine.
//
// The tests skip unless dist/ holds the .debs or PROVBOX_DIST_TEST=1, which
// runs make dist first when they are missing (minutes: cgo cross builds).
package packaging_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const root = ".." // the repository, from this package's directory

var debArches = []struct {
	deb     string // Debian architecture
	goarch  string
	machine elf.Machine
	qemu    string // qemu-user binary and sysroot to run it here
	sysroot string
}{
	{"amd64", "amd64", elf.EM_X86_64, "qemu-x86_64", "/usr/x86_64-linux-gnu"},
	{"arm64", "arm64", elf.EM_AARCH64, "qemu-aarch64", "/usr/aarch64-linux-gnu"},
	{"armhf", "arm", elf.EM_ARM, "qemu-arm", "/usr/arm-linux-gnueabihf"},
}

// debs returns the newest dist/provbox_*_<arch>.deb of each architecture.
// Under PROVBOX_DIST_TEST=1 it runs make dist first, so they are current;
// otherwise it takes what an earlier make dist left, which may be stale.
func debs(t *testing.T) map[string]string {
	t.Helper()
	find := func() map[string]string {
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
		return out
	}
	found := find()
	if os.Getenv("PROVBOX_DIST_TEST") != "1" {
		if len(found) == len(debArches) {
			return found
		}
		t.Skip("SKIPPED: no dist/provbox_*_{amd64,arm64,armhf}.deb; run make dist, or set PROVBOX_DIST_TEST=1 to build them here")
	}
	cmd := exec.Command("make", "--no-print-directory", "dist")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("make dist: %v", err)
	}
	t.Logf("make dist took %s", time.Since(start).Round(time.Second))
	if found = find(); len(found) != len(debArches) {
		t.Fatalf("make dist left only %v", found)
	}
	return found
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
		t.Run(a.deb, func(t *testing.T) {
			deb := all[a.deb]
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
		case os.Getenv("PROVBOX_DIST_TEST") == "1":
			t.Errorf("/%s differs from %s", dst, src)
		default: // a package built before the file changed
			t.Logf("NOTE: /%s differs from %s: the package is older than the file; make dist", dst, src)
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

// TestDebInstall installs the amd64 package on this machine with dpkg,
// checks what postinst did, then purges it and checks nothing is left
// behind. It changes the machine, so it runs only with PROVBOX_DIST_TEST=1,
// as root, where provbox is not installed already.
func TestDebInstall(t *testing.T) {
	if os.Getenv("PROVBOX_DIST_TEST") != "1" {
		t.Skip("SKIPPED: set PROVBOX_DIST_TEST=1 to install and purge the .deb on this machine")
	}
	if os.Geteuid() != 0 || runtime.GOARCH != "amd64" {
		t.Skip("SKIPPED: needs root on amd64")
	}
	needTool(t, "dpkg")
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "provbox").Output(); strings.Contains(string(out), "installed") {
		t.Skip("SKIPPED: provbox is installed on this machine; not touching it")
	}
	deb := debs(t)["amd64"]
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
	for _, p := range []string{"/usr/bin/provbox", "/lib/systemd/system/provbox.service", "/etc/provbox/provbox.toml"} {
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
	if out, err := exec.Command("/usr/bin/provbox", "version").CombinedOutput(); err != nil {
		t.Errorf("provbox version: %v\n%s", err, out)
	}
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
	left, _ := filepath.Glob("/var/lib/systemd/deb-systemd-helper-*/*provbox*")
	if len(left) > 0 {
		t.Errorf("deb-systemd-helper state left after purge: %v", left)
	}
}
