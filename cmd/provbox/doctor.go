package main

// provbox doctor: checks what provbox needs from the machine it runs on —
// the config file, its ports and who holds them, capabilities, network
// interfaces and the default route, other DHCP servers, the clock, the
// data directory and the database — and prints one line per check with a
// fix for each WARN and FAIL:
//
//	OK:   config /etc/provbox/provbox.toml parses
//	FAIL: port 69/udp (tftp) is in use by in.tftpd (pid 812)
//	      fix: stop it (sudo systemctl disable --now tftpd-hpa) or set tftp.listen = ":6969" in the config
//	SKIP: DHCP probe not available in this build
//
// It exits 1 when a check failed, 0 otherwise. Doctor reads and probes
// only: it binds each port for an instant and opens the database read-only.

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/dhcpopt"
)

type checkStatus string

const (
	statusOK   checkStatus = "OK"
	statusWarn checkStatus = "WARN"
	statusFail checkStatus = "FAIL"
	statusSkip checkStatus = "SKIP"
)

// checkResult is one line of the report; Fix is shown for WARN and FAIL.
type checkResult struct {
	Status checkStatus
	Msg    string
	Fix    string
}

func ok(format string, args ...any) checkResult {
	return checkResult{Status: statusOK, Msg: fmt.Sprintf(format, args...)}
}

func skip(format string, args ...any) checkResult {
	return checkResult{Status: statusSkip, Msg: fmt.Sprintf(format, args...)}
}

func warn(fix, format string, args ...any) checkResult {
	return checkResult{Status: statusWarn, Msg: fmt.Sprintf(format, args...), Fix: fix}
}

func fail(fix, format string, args ...any) checkResult {
	return checkResult{Status: statusFail, Msg: fmt.Sprintf(format, args...), Fix: fix}
}

// doctor holds what the checks look at; the paths are fields so tests can
// point them at fixtures.
type doctor struct {
	g       globalFlags
	cfg     *Config
	cfgPath string
	proc    string // "/proc"
	euid    int
	now     func() time.Time
}

func cmdDoctor(ctx context.Context, g globalFlags, stdout io.Writer) error {
	d := &doctor{g: g, proc: "/proc", euid: os.Geteuid(), now: time.Now}
	fmt.Fprintf(stdout, "provbox doctor %s\n", version)
	counts := map[checkStatus]int{}
	for _, r := range d.run(ctx) {
		counts[r.Status]++
		fmt.Fprintf(stdout, "%-5s %s\n", string(r.Status)+":", r.Msg)
		if r.Fix != "" && (r.Status == statusWarn || r.Status == statusFail) {
			fmt.Fprintf(stdout, "      fix: %s\n", r.Fix)
		}
	}
	fmt.Fprintf(stdout, "%d ok, %d warnings, %d failed, %d skipped\n", counts[statusOK], counts[statusWarn], counts[statusFail], counts[statusSkip])
	if n := counts[statusFail]; n > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", n)
	}
	return nil
}

// run performs every check in order.
func (d *doctor) run(ctx context.Context) []checkResult {
	out := []checkResult{d.checkConfig()}
	cfg := d.cfg
	for _, p := range d.ports() {
		out = append(out, d.checkPort(p))
	}
	out = append(out,
		d.checkCapabilities(),
		d.checkInterfaces(),
		d.checkDefaultRoute(),
		probeOtherDHCPServers(ctx, cfg),
		d.checkClock(),
		d.checkNTP(ctx),
	)
	dirOK, dirRes := d.checkDataDir()
	out = append(out, dirRes)
	if dirOK {
		out = append(out, d.checkDatabase(ctx))
		out = append(out, d.checkPhones(ctx)...)
	}
	return out
}

// probeOtherDHCPServers is the check for another DHCP server on the LAN
// interface (SPEC §7). DHCP is not in this build yet. When it lands, fill
// this in with dhcpopt.ProbeOtherServers on cfg.DHCP.Interface (or the
// default route's interface when DHCP is off): FAIL when one answers and
// DHCP is on without dhcp.allow_other_servers, WARN when DHCP is off or
// other servers are allowed, OK when none answers.
func probeOtherDHCPServers(ctx context.Context, cfg *Config) checkResult {
	iface := cfg.DHCP.Interface
	if Off(iface) {
		// Probing broadcasts on the LAN: only where the admin turned DHCP on.
		return skip("DHCP is off; set dhcp.interface (or run provbox doctor --config with it) to check for another DHCP server there")
	}
	servers, err := dhcpopt.ProbeOtherServers(ctx, iface, 2*time.Second)
	if err != nil {
		return warn("run provbox doctor as root (the probe needs ports 68 and raw sockets)", "DHCP probe on %s: %v", iface, err)
	}
	if len(servers) == 0 {
		return ok("no other DHCP server answers on %s", iface)
	}
	names := make([]string, len(servers))
	for i, ip := range servers {
		names[i] = ip.String()
	}
	if cfg.DHCP.AllowOtherServers {
		return warn("two DHCP servers on one LAN hand out clashing leases unless their pools are split", "other DHCP server(s) on %s: %s (allowed by dhcp.allow_other_servers)", iface, strings.Join(names, ", "))
	}
	return fail("turn DHCP off on the router (then provbox serves it), or keep the router's DHCP and set option 66 there instead of dhcp.interface", "other DHCP server(s) on %s: %s — provbox serve will refuse to start its DHCP", iface, strings.Join(names, ", "))
}

func (d *doctor) checkConfig() checkResult {
	cfg, path, err := loadConfig(d.g.config, nil, nil)
	if err != nil {
		def := DefaultConfig()
		d.cfg = &def
		msg := strings.ReplaceAll(errorText(err), "\n", "; ")
		if !strings.HasPrefix(msg, "config") {
			msg = "config: " + msg
		}
		return fail("correct the key or line named above (every key is listed, commented, in the packaged /etc/provbox/provbox.toml); the other checks use the defaults", "%s", msg)
	}
	d.cfg, d.cfgPath = cfg, path
	if path == "" {
		return ok("config: no file (%s does not exist); using the defaults", defaultConfigPath)
	}
	return ok("config %s parses", path)
}

// portCheck is one port provbox listens on.
type portCheck struct {
	service, network, addr string
	flag, alt              string // the setting to change, and a port to suggest
	off                    bool   // the service is off: a holder is only a warning
}

func (d *doctor) ports() []portCheck {
	c := d.cfg
	dhcpOff := c.DHCP.Interface == ""
	return []portCheck{
		{service: "dhcp", network: "udp", addr: "0.0.0.0:67", flag: "dhcp.interface", off: dhcpOff},
		{service: "tftp", network: "udp", addr: c.TFTP.Listen, flag: "tftp.listen", alt: ":6969"},
		{service: "sip", network: "udp", addr: c.SIP.Listen, flag: "sip.listen", alt: ":5062"},
		{service: "http", network: "tcp", addr: c.HTTP.Listen, flag: "http.listen", alt: ":8081"},
		{service: "https", network: "tcp", addr: c.HTTPS.Listen, flag: "https.listen", alt: ":8444"},
	}
}

// checkPort binds the port for an instant; when it is taken, it names the
// process holding it.
func (d *doctor) checkPort(p portCheck) checkResult {
	if Off(p.addr) {
		return ok("%s: off", p.service)
	}
	port := listenPort(p.addr)
	what := fmt.Sprintf("port %d/%s (%s)", port, p.network, p.service)
	if port == 0 {
		return ok("%s: %s picks a free port at start", p.service, p.addr)
	}
	var err error
	if p.network == "tcp" {
		var l net.Listener
		if l, err = net.Listen("tcp", p.addr); err == nil {
			l.Close()
		}
	} else {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", p.addr); err == nil {
			c.Close()
		}
	}
	switch {
	case err == nil && p.off:
		return ok("%s: free (provbox's DHCP is off)", what)
	case err == nil:
		return ok("%s: can be bound", what)
	case errors.Is(err, syscall.EADDRINUSE):
		holders := d.portHolders(p.network, port)
		if len(holders) > 0 && allProvbox(holders) {
			return ok("%s: in use by %s — provbox is running", what, strings.Join(holders, ", "))
		}
		who := "another program"
		if len(holders) > 0 {
			who = strings.Join(holders, ", ")
		}
		if p.service == "dhcp" {
			if p.off {
				return warn("fine while provbox's DHCP is off; before setting dhcp.interface, stop that server (e.g. sudo systemctl disable --now dnsmasq) or keep using it with option 66 pointing at provbox",
					"%s: another DHCP server runs on this machine: %s", what, who)
			}
			return fail("stop that server (e.g. sudo systemctl disable --now dnsmasq isc-dhcp-server), or turn provbox's DHCP off (dhcp.interface = \"\") and set option 66 there",
				"%s: in use by %s", what, who)
		}
		return fail(fmt.Sprintf("stop it (%s), or set %s = %q in the config", stopHint(holders), p.flag, p.alt),
			"%s: in use by %s", what, who)
	case errors.Is(err, syscall.EACCES) && p.off:
		return ok("%s: not checked (provbox's DHCP is off; binding it needs CAP_NET_BIND_SERVICE)", what)
	case errors.Is(err, syscall.EACCES):
		fix := "run provbox under its systemd unit (it grants CAP_NET_BIND_SERVICE), or: sudo setcap cap_net_bind_service,cap_net_raw,cap_net_broadcast=+ep " + executable()
		if p.alt != "" {
			fix += fmt.Sprintf("; or set %s = %q", p.flag, p.alt)
		}
		if d.euid != 0 {
			// The service gets the capability from its unit; this shell
			// does not have it. Root sees what the service would.
			return warn(fix+"; run sudo provbox doctor to check as the service would", "%s: this process may not bind it (no CAP_NET_BIND_SERVICE)", what)
		}
		return fail(fix, "%s: permission denied", what)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fail(fmt.Sprintf("use an address of this machine, or %s = \":%d\" for all", p.flag, port), "%s: %s is not an address of this machine", what, hostOf(p.addr))
	}
	return fail("check "+p.flag, "%s: %v", what, err)
}

// portHolders names the processes holding a local port: "name (pid N)",
// or "a process of user U" where /proc/PID/fd cannot be read.
func (d *doctor) portHolders(network string, port int) []string {
	var socks []procSocket
	for _, f := range []string{network, network + "6"} {
		fh, err := os.Open(filepath.Join(d.proc, "net", f))
		if err != nil {
			continue
		}
		socks = append(socks, parseProcNet(fh, port, network == "tcp")...)
		fh.Close()
	}
	if len(socks) == 0 {
		return nil
	}
	inodes := map[uint64]bool{}
	for _, s := range socks {
		inodes[s.inode] = true
	}
	owners := socketOwners(d.proc, inodes)
	seen := map[string]bool{}
	var out []string
	for _, s := range socks {
		names := owners[s.inode]
		if len(names) == 0 {
			names = []string{"a process of user " + userName(s.uid) + " (run sudo provbox doctor to name it)"}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// procSocket is one line of /proc/net/{tcp,udp}[6].
type procSocket struct {
	inode uint64
	uid   int
}

// parseProcNet returns the sockets bound to local port (listening ones
// only, for TCP) in /proc/net/tcp, tcp6, udp or udp6 text.
func parseProcNet(r io.Reader, port int, tcp bool) []procSocket {
	var out []procSocket
	sc := bufio.NewScanner(r)
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 10 {
			continue
		}
		_, hexPort, found := strings.Cut(f[1], ":")
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if !found || err != nil || int(p) != port {
			continue
		}
		if tcp && f[3] != "0A" { // TCP_LISTEN
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		uid, _ := strconv.Atoi(f[7])
		out = append(out, procSocket{inode: inode, uid: uid})
	}
	return out
}

// socketOwners maps socket inodes to "name (pid N)" for every process under
// proc whose open files include them (only those this user may look into).
func socketOwners(proc string, inodes map[uint64]bool) map[uint64][]string {
	out := map[uint64][]string{}
	pids, _ := os.ReadDir(proc)
	for _, e := range pids {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join(proc, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
			if err != nil || !inodes[inode] {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
			name := strings.TrimSpace(string(comm))
			if name == "" {
				name = "?"
			}
			out[inode] = append(out[inode], fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	return out
}

func allProvbox(holders []string) bool {
	for _, h := range holders {
		if !strings.HasPrefix(h, "provbox (pid ") {
			return false
		}
	}
	return true
}

// stopHint suggests how to stop the holders: by their systemd service for
// the usual suspects.
func stopHint(holders []string) string {
	units := map[string]string{
		"in.tftpd": "tftpd-hpa", "atftpd": "atftpd", "dnsmasq": "dnsmasq", "asterisk": "asterisk",
		"freeswitch": "freeswitch", "kamailio": "kamailio", "nginx": "nginx", "apache2": "apache2", "lighttpd": "lighttpd",
	}
	for _, h := range holders {
		name, _, _ := strings.Cut(h, " (")
		if u, ok := units[name]; ok {
			return "e.g. sudo systemctl disable --now " + u
		}
	}
	return "find it with sudo ss -lntup"
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func executable() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "/usr/bin/provbox"
}

// Capability bits (linux/capability.h).
const (
	capNetBindService = 10
	capNetBroadcast   = 11
	capNetRaw         = 13
)

// effectiveCaps returns the CapEff mask from /proc/self/status text.
func effectiveCaps(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, found := strings.CutPrefix(line, "CapEff:"); found {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line")
}

func (d *doctor) checkCapabilities() checkResult {
	status, err := os.ReadFile(filepath.Join(d.proc, "self", "status"))
	if err != nil {
		return skip("capabilities: %v", err)
	}
	caps, err := effectiveCaps(string(status))
	if err != nil {
		return skip("capabilities: %v", err)
	}
	has := func(bit uint) bool { return caps&(1<<bit) != 0 }
	if d.euid == 0 && has(capNetBindService) && has(capNetRaw) && has(capNetBroadcast) {
		return ok("capabilities: running as root (NET_BIND_SERVICE, NET_RAW, NET_BROADCAST)")
	}
	// Which capabilities this config needs: low ports need
	// NET_BIND_SERVICE unless the kernel lets anyone bind them; DHCP
	// needs raw and broadcast sockets.
	unprivileged := 1024
	if b, err := os.ReadFile(filepath.Join(d.proc, "sys", "net", "ipv4", "ip_unprivileged_port_start")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			unprivileged = n
		}
	}
	var missing, have []string
	need := func(bit uint, name string, needed bool) {
		switch {
		case has(bit):
			have = append(have, name)
		case needed:
			missing = append(missing, name)
		}
	}
	lowPort := false
	for _, p := range d.ports() {
		if port := listenPort(p.addr); !Off(p.addr) && !p.off && port > 0 && port < unprivileged {
			lowPort = true
		}
	}
	dhcp := d.cfg.DHCP.Interface != ""
	need(capNetBindService, "NET_BIND_SERVICE", lowPort)
	need(capNetRaw, "NET_RAW", dhcp)
	need(capNetBroadcast, "NET_BROADCAST", dhcp)
	if len(missing) == 0 {
		if len(have) == 0 {
			return ok("capabilities: this config needs none (no port below %d, DHCP off)", unprivileged)
		}
		return ok("capabilities: this config needs what this process has (CAP_%s)", strings.Join(have, ", CAP_"))
	}
	return warn("the systemd unit grants them (AmbientCapabilities=); to run provbox by hand: sudo setcap cap_net_bind_service,cap_net_raw,cap_net_broadcast=+ep "+executable()+", or run sudo provbox doctor to check as the service would",
		"capabilities: this process lacks CAP_%s", strings.Join(missing, ", CAP_"))
}

// checkInterfaces wants an interface up with IPv4, and the configured
// DHCP and PnP interfaces present, up and addressed.
func (d *doctor) checkInterfaces() checkResult {
	ifs, err := net.Interfaces()
	if err != nil {
		return fail("check the network configuration", "interfaces: %v", err)
	}
	var up []string
	nets := map[string][]*net.IPNet{}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 || ifi.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if n, isNet := a.(*net.IPNet); isNet && n.IP.To4() != nil {
				nets[ifi.Name] = append(nets[ifi.Name], n)
				up = append(up, ifi.Name+" "+n.String())
			}
		}
	}
	for _, want := range []struct{ key, name string }{{"dhcp.interface", d.cfg.DHCP.Interface}, {"sip.pnp_interface", d.cfg.SIP.PnPInterface}} {
		if want.name == "" {
			continue
		}
		if len(nets[want.name]) == 0 {
			return fail(fmt.Sprintf("set %s to one of: %s; or bring %s up with an address", want.key, listOrNone(up), want.name),
				"interfaces: %s %q is not up with an IPv4 address", want.key, want.name)
		}
	}
	if d.cfg.DHCP.Interface != "" && d.cfg.DHCP.RangeStart != "" {
		start := net.ParseIP(d.cfg.DHCP.RangeStart)
		inside := false
		for _, n := range nets[d.cfg.DHCP.Interface] {
			inside = inside || n.Contains(start)
		}
		if !inside {
			return fail("give the interface an address in the pool's subnet, or change dhcp.range_start/range_end",
				"interfaces: dhcp.range_start %s is not in a subnet of %s", start, d.cfg.DHCP.Interface)
		}
	}
	if len(up) == 0 {
		return fail("connect the network and give the box an IPv4 address (a fixed one suits a provisioning server)", "interfaces: none is up with an IPv4 address")
	}
	return ok("interfaces up with IPv4: %s", strings.Join(up, ", "))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none is up with IPv4)"
	}
	names := make([]string, 0, len(s))
	for _, x := range s {
		name, _, _ := strings.Cut(x, " ")
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}

// checkDefaultRoute matters for the public URL: without http.public_url,
// phones are told the default interface's address.
func (d *doctor) checkDefaultRoute() checkResult {
	f, err := os.Open(filepath.Join(d.proc, "net", "route"))
	if err != nil {
		return skip("default route: %v", err)
	}
	defer f.Close()
	iface, err := defaultRouteInterface(f)
	if err != nil {
		if d.cfg.HTTP.PublicURL != "" {
			return ok("default route: none; phones are told http.public_url %s", d.cfg.HTTP.PublicURL)
		}
		return warn("set http.public_url (e.g. \"http://192.168.1.2:8080/prov/\"), or give the box a default route",
			"default route: none, so phones would be told 127.0.0.1")
	}
	if d.cfg.HTTP.PublicURL != "" {
		return ok("default route via %s; phones are told http.public_url %s", iface, d.cfg.HTTP.PublicURL)
	}
	port := listenPort(d.cfg.HTTP.Listen)
	if port == 0 {
		return ok("default route via %s; phones are told its address and the port http picks at start", iface)
	}
	u, why := derivePublicURL(d.cfg.HTTP.Listen, port)
	if why != nil {
		return warn("give "+iface+" an IPv4 address, or set http.public_url", "default route via %s, but %v: phones would be told %s", iface, why, u)
	}
	return ok("default route via %s; phones are told %s", iface, u)
}

func (d *doctor) checkClock() checkResult {
	now := d.now()
	if now.Year() < 2024 {
		return fail("set the time (sudo timedatectl set-ntp true, or sudo date -s '2025-01-31 12:00'); a Raspberry Pi has no battery clock and needs an NTP server at boot",
			"clock: it is %s; certificates, logs and lease times will be wrong", now.Format(time.DateTime))
	}
	return ok("clock: %s", now.UTC().Format(time.DateTime+" MST"))
}

// checkNTP asks timedatectl, where systemd runs.
func (d *doctor) checkNTP(ctx context.Context) checkResult {
	path, err := exec.LookPath("timedatectl")
	if err != nil {
		return skip("NTP sync status: timedatectl not found")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "show", "--property=NTPSynchronized", "--value").CombinedOutput()
	answer := strings.TrimSpace(string(out))
	switch {
	case err != nil:
		return skip("NTP sync status unknown: timedatectl: %s", firstLine(orErr(answer, err)))
	case answer == "yes":
		return ok("NTP: the clock is synchronized")
	}
	return warn("sudo timedatectl set-ntp true; check that the box reaches an NTP server (journalctl -u systemd-timesyncd)",
		"NTP: the clock is not synchronized")
}

func orErr(s string, err error) string {
	if s != "" {
		return s
	}
	return err.Error()
}

// checkDataDir reports whether the data directory exists and is writable;
// the database check runs only when it does.
func (d *doctor) checkDataDir() (bool, checkResult) {
	dir := d.cfg.ResolveDataDir(d.g.data)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	hint := ""
	if d.g.data == "" && d.cfg.DataDir == "" && os.Getenv("STATE_DIRECTORY") == "" {
		hint = "; the service keeps its data in /var/lib/provbox: run provbox doctor --data /var/lib/provbox"
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, warn("provbox serve or provbox user add creates it"+hint, "data dir %s does not exist yet", dir)
	case err != nil:
		return false, fail("run sudo provbox doctor", "data dir %s: %v", dir, err)
	case !fi.IsDir():
		return false, fail("point data_dir or --data at a directory", "data dir %s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".provbox-doctor-*")
	if err != nil {
		return true, fail("run provbox as the user that owns "+dir+" (under systemd the unit's StateDirectory= does this), or run sudo provbox doctor",
			"data dir %s is not writable: %v", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return true, ok("data dir %s is writable", dir)
}

// openDatabase opens the database read-only: it never creates, migrates or
// changes the owner of a file.
func (d *doctor) openDatabase() (*sql.DB, string, error) {
	path := filepath.Join(d.cfg.ResolveDataDir(d.g.data), "provbox.db")
	u := url.URL{Scheme: "file", Opaque: path}
	db, err := sql.Open("sqlite3", u.String()+"?mode=ro&_busy_timeout=5000")
	return db, path, err
}

// checkPhones reports the phones that are not ready, one line per problem
// with the phones it affects (as serve logs them at start; the store
// recomputes them with every change and at every start).
func (d *doctor) checkPhones(ctx context.Context) []checkResult {
	if _, err := os.Stat(filepath.Join(d.cfg.ResolveDataDir(d.g.data), "provbox.db")); err != nil {
		return nil // checkDatabase said why
	}
	db, _, err := d.openDatabase()
	if err != nil {
		return nil // checkDatabase said why
	}
	defer db.Close()
	var schema int
	if db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&schema); schema == 0 {
		return nil // no tables yet: checkDatabase said so
	} else if schema < 7 {
		return []checkResult{skip("ready checks of the phones: the database predates them; start provbox serve once")}
	}
	rows, err := db.QueryContext(ctx, `SELECT mac, name, problems FROM phones ORDER BY name, mac`)
	if err != nil {
		return []checkResult{fail("run sudo provbox doctor", "phones: %v", err)}
	}
	defer rows.Close()
	var phones []*appliance.Phone
	for rows.Next() {
		p := &appliance.Phone{}
		var problems string
		if err := rows.Scan(&p.MAC, &p.Name, &problems); err != nil {
			return []checkResult{fail("run sudo provbox doctor", "phones: %v", err)}
		}
		json.Unmarshal([]byte(problems), &p.Sync.Problems)
		phones = append(phones, p)
	}
	groups := groupProblems(phones)
	if len(groups) == 0 {
		return []checkResult{ok("all %d phone(s) are ready", len(phones))}
	}
	var out []checkResult
	for _, g := range groups {
		out = append(out, warn("each phone's page in the admin UI lists what it needs; affected: "+g.phoneList(),
			"%d phone(s) not ready: %s", len(g.Phones), g.Problem))
	}
	return out
}

// checkDatabase opens the database read-only: it never creates, migrates
// or changes the owner of a file.
func (d *doctor) checkDatabase(ctx context.Context) checkResult {
	path := filepath.Join(d.cfg.ResolveDataDir(d.g.data), "provbox.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return warn("provbox user add NAME creates it, or start the service (sudo systemctl start provbox)", "database %s does not exist yet", path)
	}
	db, path, err := d.openDatabase()
	if err != nil {
		return fail("run sudo provbox doctor", "database %s: %v", path, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return fail("run sudo provbox doctor (the database is readable by its owner only)", "database %s cannot be opened: %v", path, err)
	}
	if check != "ok" {
		return fail("stop the service and restore the last backup (provbox backup makes them; see Install on a Raspberry Pi in the README)", "database %s is damaged: %s", path, check)
	}
	var schema, phones, admins int
	db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&schema)
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM phones), (SELECT count(*) FROM users)`).Scan(&phones, &admins); err != nil {
		if schema == 0 {
			return warn("start provbox serve once; it creates the tables", "database %s has no tables yet", path)
		}
		return fail("run provbox serve once to migrate it, or restore a backup", "database %s: %v", path, err)
	}
	if admins == 0 {
		return warn("provbox user add NAME, or open the admin page and enter the setup code from the log (journalctl -u provbox)",
			"database %s opens (schema %d, %d phones) but has no admin user", path, schema, phones)
	}
	return ok("database %s opens (schema %d, %d phones, %d admins)", path, schema, phones, admins)
}
