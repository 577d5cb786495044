package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/term"

	"github.com/provbox/provbox/actionuri"
	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
	"github.com/provbox/provbox/configs"
	"github.com/provbox/provbox/dhcpopt"
	sipserver "github.com/provbox/provbox/sip"
	"github.com/provbox/provbox/tftpd"
	"github.com/provbox/provbox/webui"
)

// cmdServe runs the appliance until SIGINT or SIGTERM, then shuts down
// gracefully; a second signal exits at once with status 1.
func cmdServe(ctx context.Context, g globalFlags, sf *serveFlags, set map[string]bool, stderr io.Writer) error {
	cfg, cfgPath, err := loadConfig(g.config, sf, set)
	if err != nil {
		return err
	}
	// systemd (issue 7): SIGHUP reloads the config, log level included (reload.go).
	rl, stopHUP := newReloader(g, sf, set, cfg)
	defer stopHUP()
	logger := rl.logger(stderr, isTerminal(stderr))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			logger.Info("shutting down", "signal", s.String())
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			logger.Error("second signal: exiting without a clean shutdown", "signal", s.String())
			os.Exit(1)
		case <-done:
		}
	}()

	if err := serve(ctx, g, cfg, cfgPath, logger, rl); err != nil {
		return err
	}
	logger.Info("provbox stopped")
	return nil
}

// serve opens the store and the servers, logs "provbox ready" and runs
// until ctx is done.
func serve(ctx context.Context, g globalFlags, cfg *Config, cfgPath string, logger *slog.Logger, rl *reloader) error {
	softMemoryLimit()
	catalog, err := configs.Catalog()
	if err != nil {
		return fmt.Errorf("model catalog: %w", err)
	}
	dataDir := cfg.ResolveDataDir(g.data)
	dbPath := filepath.Join(dataDir, "provbox.db")
	bus := appliance.NewEventBus(logger.With("component", "events"))
	db := sqlite.NewDB(dbPath, catalog)
	db.Logger = logger.With("component", "sqlite")
	db.Events = bus
	db.ReportTimeout = cfg.ReportDuration()
	renderer := newRenderer(dataDir, catalog)
	useRenderer(db, renderer)
	for _, dir := range []string{filepath.Join(dataDir, "firmware"), filepath.Join(dataDir, "templates", "yealink")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := db.Open(); err != nil {
		return fmt.Errorf("open database %s: %w", dbPath, err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			logger.Error("close database", "err", err)
		}
	}()
	svc := db.Services()
	if svc.Events == nil {
		svc.Events = bus
	}

	// The settings go in before the API answers, so nothing is created with
	// a stale registrar. Only with port 0 (tests) is the port phones must use
	// known after binding; the URLs are set again then.
	b := bound{http: listenPort(cfg.HTTP.Listen)}
	if !Off(cfg.HTTPS.Listen) {
		b.https, b.ownCA = listenPort(cfg.HTTPS.Listen), cfg.HTTPS.CertFile == ""
	}
	publicURL, err := settle(ctx, db, cfg, b, logger)
	if err != nil {
		return err
	}
	if cfg.Provisioning.Open {
		logger.Warn("provisioning.open is on: every phone's config, SIP passwords included, is served to anyone who asks for it; turn it off outside a lab")
	}
	// The names the box answers to (Host check) and its certificate
	// covers: its hostname, its addresses, the public URL's host and
	// allowed_hosts. Read again as they change.
	publicHost := func() string { return hostOfURL(db.Settings().ProvisioningURL) }
	names := func() []string {
		extra := append([]string{publicHost()}, cfg.AllowedHosts...)
		out := webui.ListenNames(cfg.HTTP.Listen, extra...)
		if !Off(cfg.HTTPS.Listen) {
			out = append(out, webui.ListenNames(cfg.HTTPS.Listen, extra...)...)
		}
		return out
	}
	// The public host first: it becomes the certificate's CommonName, which
	// some phones check instead of the alternative names.
	certNames := func() []string { return append([]string{publicHost()}, names()...) }
	tlsCert, caPEM, err := httpsCertificate(ctx, cfg, dataDir, certNames, logger)
	if err != nil {
		return err
	}

	// One failure guard for every secret and every miss (SPEC §9): the
	// login form, API Basic, the setup code, phones' secrets, unknown
	// files. A known phone's DHCP-leased address is never refused.
	guard := &appliance.Guard{Limit: cfg.Provisioning.MissLimit, Exempt: func(ip string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ok, err := svc.Leases.PhoneLeased(ctx, ip)
		return err == nil && ok
	}}

	// One resolver for /prov/ and TFTP: the same bytes, the same fetch
	// records, the same guard.
	resolver := &configs.Resolver{
		Services:    svc,
		Renderer:    renderer,
		Settings:    db.Settings,
		FirmwareDir: filepath.Join(dataDir, "firmware"),
		Guard:       guard,
		CACert:      caPEM,
		Logger:      logger.With("component", "prov"),
	}

	go resolver.Watch(ctx, bus)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := webui.NewServer()
	srv.Catalog = catalog
	srv.Addr = cfg.HTTP.Listen
	srv.Services = svc
	srv.Logger = logger.With("component", "webui")
	srv.Registry = reg
	srv.Files = resolver
	srv.Settings = db.Settings
	var pnpListening atomic.Bool // set once SIP is open, below
	srv.PnP = pnpListening.Load
	srv.HostAllowed = webui.HostSet(names)
	srv.Guard = guard
	srv.Health = db.Writable
	if tlsCert != nil {
		srv.TLSAddr, srv.TLSCert = cfg.HTTPS.Listen, tlsCert
	}
	// First run: a one-time code, printed in the log only, lets whoever
	// installed the box create the first admin in the browser.
	if users, err := svc.Users.FindUsers(ctx); err == nil && len(users) == 0 {
		srv.SetupCode = setupCode()
	}
	if err := srv.Open(); err != nil {
		if strings.HasPrefix(err.Error(), "https:") {
			return bindError("https", "--https", cfg.HTTPS.Listen, err)
		}
		return bindError("http", "--http", cfg.HTTP.Listen, err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			logger.Error("close http server", "err", err)
		}
	}()
	if b.http == 0 || tlsCert != nil && b.https == 0 {
		b.http, b.https = srv.Port(), srv.TLSPort()
		if publicURL, err = settle(ctx, db, cfg, b, logger); err != nil {
			return err
		}
	}

	tftpAddr := "off"
	if !Off(cfg.TFTP.Listen) {
		ts := &tftpd.Server{Addr: cfg.TFTP.Listen, Files: resolver, Logger: logger.With("component", "tftp")}
		if err := ts.Open(); err != nil {
			return bindError("tftp", "--tftp", cfg.TFTP.Listen, err)
		}
		defer ts.Close()
		tftpAddr = net.JoinHostPort(hostOf(cfg.TFTP.Listen), strconv.Itoa(ts.Port()))
	}

	sipAddr := "off"
	if !Off(cfg.SIP.Listen) {
		ss := &sipserver.Server{
			Addr:            cfg.SIP.Listen,
			Services:        svc,
			Logger:          logger.With("component", "sip"),
			ProvisioningURL: func() string { return db.Settings().ProvisioningURL },
			Catalog:         catalog,
			NotifyWindow:    cfg.SIP.NotifyWindow,
			Trigger:         trigger(cfg, db, logger),
			Fallback:        fallback(cfg, db, logger),
			PnP:             cfg.SIP.PnP && !loopback(cfg.SIP.Listen),
			PnPInterface:    pnpInterface(cfg.SIP.PnPInterface),
		}
		if cfg.SIP.PnP && !ss.PnP {
			logger.Info("sip plug-and-play is off: sip.listen is a loopback address, which phones cannot reach", "listen", cfg.SIP.Listen)
		}
		if err := ss.Open(); err != nil {
			return bindError("sip", "--sip", cfg.SIP.Listen, err)
		}
		defer ss.Close()
		pnpListening.Store(ss.PnPListening())
		sipAddr = net.JoinHostPort(hostOf(cfg.SIP.Listen), strconv.Itoa(ss.Port()))
	}

	dhcpIface := "off"
	if !Off(cfg.DHCP.Interface) {
		ds := dhcpServer(cfg, svc, catalog, logger.With("component", "dhcp"))
		if err := ds.Open(); err != nil {
			return fmt.Errorf("dhcp on %s: %w", cfg.DHCP.Interface, err)
		}
		defer ds.Close()
		dhcpIface = cfg.DHCP.Interface
	}

	// The ready checks, recomputed by settle for every phone: logged once,
	// so whoever starts provbox sees what phones still need.
	if phones, err := svc.Phones.FindPhones(ctx, appliance.PhoneFilter{}); err != nil {
		logger.Error("ready checks", "err", err)
	} else {
		logProblems(logger, phones)
	}

	users, err := svc.Users.FindUsers(ctx)
	if err != nil {
		return fmt.Errorf("list admins: %w", err)
	}
	if len(users) == 0 {
		hint := "provbox user add NAME"
		if g.data != "" {
			hint += " --data " + g.data
		}
		if g.config != "" {
			hint += " --config " + g.config
		}
		logger.Warn("no admin user yet: open "+adminURL(cfg.HTTP.Listen, srv.Port())+"setup and enter the setup code "+srv.SetupCode+", or run: "+hint,
			"setup_code", srv.SetupCode, "command", hint)
	}

	addr := net.JoinHostPort(hostOf(cfg.HTTP.Listen), strconv.Itoa(srv.Port()))
	logger.Info("provbox ready",
		"url", adminURL(cfg.HTTP.Listen, srv.Port()),
		"addr", addr,
		"public_url", publicURL,
		"https", httpsAddr(cfg, srv.TLSPort()),
		"tftp", tftpAddr,
		"sip", sipAddr,
		"dhcp", dhcpIface,
		"data", dataDir,
		"config", cfgPath,
		"version", version,
	)
	// systemd (issue 7; systemd.go, reload.go). Every listener is bound by
	// now (open new ones above this): READY=1, watchdog pings, SIGHUP
	// reloads; STOPPING=1 once ctx is done.
	go rl.run(ctx, live{db: db, guard: guard, bound: b, cfg: cfg, logger: logger})
	defer notifySystemd(ctx, logger, "serving http "+addr+", tftp "+tftpAddr+", sip "+sipAddr+", dhcp "+dhcpIface,
		func(context.Context) error { _, err := db.SchemaVersion(); return err })()
	<-ctx.Done()
	return nil // the deferred closes run: HTTP first, then the database
}

// bound are the ports serve listens on, as the public URLs need them.
type bound struct {
	http, https int  // https 0: HTTPS off
	ownCA       bool // the HTTPS certificate is issued by provbox's CA
}

// settle derives the public URLs for the bound ports and hands the
// settings to the store, which recomputes every phone's config version.
func settle(ctx context.Context, db *sqlite.DB, cfg *Config, b bound, logger *slog.Logger) (string, error) {
	publicURL := cfg.HTTP.PublicURL
	if publicURL == "" {
		var why error
		publicURL, why = derivePublicURL(cfg.HTTP.Listen, b.http)
		if why != nil {
			logger.Warn("no address of the default interface; phones are told 127.0.0.1, set http.public_url or --public-url", "public_url", publicURL, "err", why)
		}
	}
	s := appliance.Settings{
		ProvisioningURL: publicURL,
		Registrar:       cfg.SIP.Registrar,
		NotifyRate:      cfg.SIP.NotifyRate,
		SyncTrigger:     appliance.TriggerNotify,
		PhoneSIPPort:    cfg.SIP.PhonePort,
		PickupPrefix:    cfg.SIP.PickupPrefix,
		// Empty: the store's generated one is in force.
		PhoneAdminPassword: cfg.Provisioning.PhoneAdminPassword,
		ClaimWindow:        cfg.ClaimDuration(),
		OpenProvisioning:   cfg.Provisioning.Open,
	}
	if cfg.SIP.SyncTrigger == "action_uri" {
		s.SyncTrigger = appliance.TriggerActionURI
		// The phones allow Action URI requests from this address only.
		s.BoxIP = boxIP(publicURL)
		if s.BoxIP == "" {
			logger.Warn("sip.sync_trigger = action_uri, but the box's IPv4 address is unknown: phones will refuse its requests; set http.public_url to http://<this box's IPv4>:<port>/prov/")
		}
	}
	if b.https != 0 {
		// Phones move to HTTPS on the host they bootstrapped from; with
		// provbox's own CA they first download its certificate.
		s.SecureURL = "https://" + net.JoinHostPort(hostOfURL(publicURL), strconv.Itoa(b.https)) + "/prov/"
		if b.ownCA {
			s.CACertURL = strings.TrimSuffix(publicURL, "/") + "/" + configs.CACertFile
		}
	}
	if err := db.SetSettings(ctx, s); err != nil {
		return "", fmt.Errorf("apply settings: %w", err)
	}
	return publicURL, nil
}

// hostOfURL is the host (without port or brackets) of a URL.
func hostOfURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return parsed.Hostname()
}

// httpsCertificate returns the HTTPS listener's certificate source and, for
// provbox's own CA, its certificate as phones download it (nil with
// https.cert_file, or with HTTPS off).
func httpsCertificate(ctx context.Context, cfg *Config, dataDir string, names func() []string, logger *slog.Logger) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), func() []byte, error) {
	switch {
	case Off(cfg.HTTPS.Listen):
		return nil, nil, nil
	case cfg.HTTPS.CertFile != "":
		cert, err := tls.LoadX509KeyPair(cfg.HTTPS.CertFile, cfg.HTTPS.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("https: cert_file %s / key_file %s: %w", cfg.HTTPS.CertFile, cfg.HTTPS.KeyFile, err)
		}
		return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }, nil, nil
	}
	ca := &webui.CertAuthority{Dir: filepath.Join(dataDir, "tls"), Names: names, Logger: logger.With("component", "tls")}
	if err := ca.Open(); err != nil {
		return nil, nil, fmt.Errorf("https: %w", err)
	}
	// New addresses (DHCP renumbering, a new interface) and the approach
	// of expiry get a new certificate within a minute.
	go ca.Run(ctx, time.Minute)
	return ca.GetCertificate, ca.CACertPEM, nil
}

// httpsAddr is the HTTPS address for the ready line ("off" when off).
func httpsAddr(cfg *Config, port int) string {
	if Off(cfg.HTTPS.Listen) || port == 0 {
		return "off"
	}
	return net.JoinHostPort(hostOf(cfg.HTTPS.Listen), strconv.Itoa(port))
}

// bindError explains a listen failure: which port, and how to fix it.
func bindError(service, flagName, addr string, err error) error {
	_, port, _ := net.SplitHostPort(addr)
	alt := map[string]string{"http": ":8080", "https": ":8443", "tftp": ":6969", "sip": ":5062"}[service]
	if alt == ":"+port {
		alt = ":8081"
	}
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.EADDRINUSE) || strings.Contains(msg, "address already in use"):
		return fmt.Errorf("%s: address %s (port %s) is in use by another program; stop it or use %s %s", service, addr, port, flagName, alt)
	case errors.Is(err, syscall.EACCES) || strings.Contains(msg, "permission denied"):
		return fmt.Errorf("%s: port %s needs root or CAP_NET_BIND_SERVICE (sudo setcap cap_net_bind_service=+ep $(command -v provbox), or AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit); or use %s %s", service, port, flagName, alt)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || strings.Contains(msg, "assign requested address"):
		return fmt.Errorf("%s: address %s is not an address of this machine; use %s :%s to listen on all", service, addr, flagName, port)
	}
	return fmt.Errorf("%w (check %s)", err, flagName)
}

// setupCode returns a one-time code for the first-run page: 10 characters
// without look-alikes (no 0/O, 1/l/I), grouped for reading off a log.
func setupCode() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	b := make([]byte, 10)
	rand.Read(b)
	out := make([]byte, 0, 11)
	for i, c := range b {
		if i == 5 {
			out = append(out, '-')
		}
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
}

// dhcpServer builds the DHCP server from the [dhcp] config (validated).
func dhcpServer(cfg *Config, svc appliance.Services, catalog *appliance.Catalog, logger *slog.Logger) *dhcpopt.Server {
	ips := func(list []string) []net.IP {
		var out []net.IP
		for _, s := range list {
			out = append(out, net.ParseIP(s).To4())
		}
		return out
	}
	d := cfg.DHCP
	s := &dhcpopt.Server{
		Catalog:           catalog,
		Interface:         d.Interface,
		RangeStart:        net.ParseIP(d.RangeStart).To4(),
		RangeEnd:          net.ParseIP(d.RangeEnd).To4(),
		Netmask:           net.IPMask(net.ParseIP(d.Netmask).To4()),
		DNS:               ips(d.DNS),
		NTP:               ips(d.NTP),
		LeaseTime:         cfg.LeaseDuration(),
		PhonesOnly:        d.PhonesOnly,
		AllowOtherServers: d.AllowOtherServers,
		Option66:          d.Option66,
		TFTP:              !Off(cfg.TFTP.Listen),
		SkipConflictCheck: !d.ConflictCheck,
		Services:          svc,
		Logger:            logger,
	}
	if d.Router != "" {
		s.Router = net.ParseIP(d.Router).To4()
	}
	return s
}

// loopback reports a listen address on a loopback IP.
func loopback(listen string) bool {
	ip := net.ParseIP(hostOf(listen))
	return ip != nil && ip.IsLoopback()
}

// pnpInterface is sip.pnp_interface, else the default route's interface,
// else "" (the kernel picks).
func pnpInterface(configured string) string {
	if configured != "" {
		return configured
	}
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	iface, err := defaultRouteInterface(f)
	if err != nil {
		return ""
	}
	return iface
}

// newRenderer renders phone files from the embedded templates, or from
// overrides in <data>/templates/<vendor>/.
func newRenderer(dataDir string, catalog *appliance.Catalog) *configs.Renderer {
	return &configs.Renderer{Catalog: catalog, TemplateDir: filepath.Join(dataDir, "templates")}
}

// useRenderer makes the store compute what serve and every CLI command
// agree on: config versions as the hash of the rendered file, and the
// ready checks including the files a phone will ask for.
func useRenderer(db *sqlite.DB, r *configs.Renderer) {
	db.Version = r.Version
	db.Check = r.Problems
}

// listenPort returns the port of a host:port (0 when it cannot tell).
func listenPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

// adminURL is the address to open in a browser: the listen host, or
// localhost when listening on every address.
func adminURL(listen string, port int) string {
	host := hostOf(listen)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// trigger is the sync loop's way to tell a phone to sync: nil for the SIP
// check-sync NOTIFY, or the Action URI client.
func trigger(cfg *Config, db *sqlite.DB, logger *slog.Logger) func(context.Context, *appliance.SyncTarget) appliance.NotifyResult {
	if cfg.SIP.SyncTrigger != "action_uri" {
		return nil
	}
	return actionURI(cfg, db, logger)
}

// fallback is the other trigger a phone may still take after
// sip.sync_trigger changed from action_uri to notify: the Action URI client
// (with the notify trigger), else nil (the NOTIFY is the built-in one).
func fallback(cfg *Config, db *sqlite.DB, logger *slog.Logger) func(context.Context, *appliance.SyncTarget) appliance.NotifyResult {
	if cfg.SIP.SyncTrigger == "action_uri" {
		return nil
	}
	return actionURI(cfg, db, logger)
}

// actionURI is the Action URI trigger: the phones' HTTPS port and admin
// password.
func actionURI(cfg *Config, db *sqlite.DB, logger *slog.Logger) func(context.Context, *appliance.SyncTarget) appliance.NotifyResult {
	c := &actionuri.Client{Port: cfg.SIP.ActionURIPort, Password: func() string { return db.Settings().PhoneAdminPassword },
		Logger: logger.With("component", "actionuri")}
	return c.Trigger
}

// boxIP is the IPv4 address phones see provbox at: the public URL's host
// when it is one (loopback too: a lab on one machine), else the default
// interface's address.
func boxIP(publicURL string) string {
	if ip := net.ParseIP(hostOfURL(publicURL)); ip != nil && ip.To4() != nil {
		return ip.String()
	}
	if ip, err := defaultIPv4(); err == nil && ip != nil {
		return ip.String()
	}
	return ""
}

// defaultMemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT says otherwise. provbox's live data is small (a few MiB per
// thousand phones); a burst (1,000 phones fetching over TLS within
// seconds) leaves tens of MiB of garbage that the default GC pacing (GOGC
// 100) keeps, and RSS with it, for minutes. Near this limit the GC collects
// sooner and returns the memory: a Raspberry Pi shares its RAM.
const defaultMemoryLimit = 40 << 20

func softMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
