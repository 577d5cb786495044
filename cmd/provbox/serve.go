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

// serve opens Main, runs until ctx is done (reloading on SIGHUP), and
// closes it.
func serve(ctx context.Context, g globalFlags, cfg *Config, cfgPath string, logger *slog.Logger, rl *reloader) error {
	softMemoryLimit()
	m := &Main{Config: cfg, ConfigPath: cfgPath, Flags: g, Logger: logger}
	defer m.Close()
	if err := m.Open(ctx); err != nil {
		return err
	}
	// systemd (issue 7; systemd.go, reload.go). Every listener is bound by
	// now: READY=1, watchdog pings, SIGHUP reloads; STOPPING=1 once ctx is
	// done, before the deferred Close.
	go rl.run(ctx, m)
	defer notifySystemd(ctx, logger, m.status(), m.healthy)()
	<-ctx.Done()
	return nil
}

// Main is `provbox serve`: the config, the event bus, the store, the
// renderer, the resolver and every server. Open builds them in that order,
// each listener bound before the next starts, so that with port 0 (tests)
// the ports can be read back; Close closes them in reverse. Tests run it in
// process (MustRunMain in main_test.go).
type Main struct {
	Config     *Config
	ConfigPath string       // the file Config was read from, "" for none (the ready line names it)
	Flags      globalFlags  // --config and --data as given, for the hints in the log
	Logger     *slog.Logger // every component logs through it, with its "component"

	// Set by Open.
	DataDir    string
	Bus        *appliance.EventBus
	DB         *sqlite.DB
	Services   appliance.Services
	Renderer   *configs.Renderer
	Guard      *appliance.Guard
	Resolver   *configs.Resolver
	HTTPServer *webui.Server
	TFTPServer *tftpd.Server     // nil: tftp.listen is off
	SIPServer  *sipserver.Server // nil: sip.listen is off
	DHCPServer *dhcpopt.Server   // nil: DHCP is off
	PublicURL  string            // the provisioning URL phones are told

	bound        bound        // the bound ports, for the derived public URLs
	pnpListening atomic.Bool  // SIP plug-and-play answers (the dashboard says so)
	dhcpServing  atomic.Value // string: the interface DHCP is served on, "" off (the dashboard and Leases say so)
	cancel       context.CancelFunc
}

// Open opens the store and the servers and logs "provbox ready". On an
// error the caller still calls Close, which closes what was opened.
func (m *Main) Open(ctx context.Context) error {
	ctx, m.cancel = context.WithCancel(ctx)
	if err := m.openStore(); err != nil {
		return err
	}
	users, err := m.Services.Users.FindUsers(ctx)
	if err != nil {
		return fmt.Errorf("list admins: %w", err)
	}
	firstRun := len(users) == 0
	if err := m.openHTTP(ctx, firstRun); err != nil {
		return err
	}
	for _, open := range []func() error{m.openTFTP, m.openSIP, m.openDHCP} {
		if err := open(); err != nil {
			return err
		}
	}
	m.logReady(ctx, firstRun)
	return nil
}

// Close stops the background work and closes the servers in the reverse
// order of Open, then the database. Errors closing HTTP and the database
// are logged as well as returned.
func (m *Main) Close() error {
	if m.cancel != nil {
		m.cancel()
	}
	var errs []error
	if m.DHCPServer != nil {
		m.dhcpServing.Store("")
		errs = append(errs, m.DHCPServer.Close())
	}
	if m.SIPServer != nil {
		errs = append(errs, m.SIPServer.Close())
	}
	if m.TFTPServer != nil {
		errs = append(errs, m.TFTPServer.Close())
	}
	if m.HTTPServer != nil {
		if err := m.HTTPServer.Close(); err != nil {
			m.Logger.Error("close http server", "err", err)
			errs = append(errs, err)
		}
	}
	if m.Resolver != nil {
		m.Resolver.Close()
	}
	if m.DB != nil {
		if err := m.DB.Close(); err != nil {
			m.Logger.Error("close database", "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openStore opens the database of the data directory, its config versions
// and ready checks computed by the renderer (newStore), publishing its
// changes on the bus.
func (m *Main) openStore() error {
	m.DataDir = m.Config.ResolveDataDir(m.Flags.data)
	m.Bus = appliance.NewEventBus(m.Logger.With("component", "events"))
	db, renderer, err := newStore(m.Config, m.DataDir, m.Logger)
	if err != nil {
		return err
	}
	db.Events = m.Bus
	for _, dir := range []string{filepath.Join(m.DataDir, "firmware"), filepath.Join(m.DataDir, "templates", "yealink")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := db.Open(); err != nil {
		return fmt.Errorf("open database %s: %w", db.Path, err)
	}
	m.DB, m.Renderer = db, renderer
	m.Services = db.Services()
	if m.Services.Events == nil {
		m.Services.Events = m.Bus
	}
	return nil
}

// openHTTP hands the settings to the store, then opens the admin pages, the
// API and /prov/ (with HTTPS when on). firstRun (no admin yet) sets a
// one-time setup code.
func (m *Main) openHTTP(ctx context.Context, firstRun bool) error {
	cfg := m.Config
	// The settings go in before the API answers, so nothing is created with
	// a stale registrar. Only with port 0 (tests) is the port phones must use
	// known after binding; the URLs are set again then.
	m.bound = bound{http: listenPort(cfg.HTTP.Listen)}
	if !Off(cfg.HTTPS.Listen) {
		m.bound.https, m.bound.ownCA = listenPort(cfg.HTTPS.Listen), cfg.HTTPS.CertFile == ""
	}
	if err := m.settle(ctx); err != nil {
		return err
	}
	if cfg.Provisioning.Open {
		m.Logger.Warn("provisioning.open is on: every phone's config, SIP passwords included, is served to anyone who asks for it; turn it off outside a lab")
	}
	names := m.hostNames()
	// The public host first: it becomes the certificate's CommonName, which
	// some phones check instead of the alternative names.
	certNames := func() []string { return append([]string{m.publicHost()}, names()...) }
	tlsCert, caPEM, err := httpsCertificate(ctx, cfg, m.DataDir, certNames, m.Logger)
	if err != nil {
		return err
	}
	m.openResolver(ctx, caPEM)
	srv := m.newHTTPServer(names, tlsCert, firstRun)
	if err := srv.Open(); err != nil {
		if strings.HasPrefix(err.Error(), "https:") {
			return bindError("https", "--https", cfg.HTTPS.Listen, err)
		}
		return bindError("http", "--http", cfg.HTTP.Listen, err)
	}
	m.HTTPServer = srv
	if m.bound.http == 0 || tlsCert != nil && m.bound.https == 0 {
		m.bound.http, m.bound.https = srv.Port(), srv.TLSPort()
		return m.settle(ctx)
	}
	return nil
}

// newHTTPServer is the admin pages, API and /prov/ server over the store
// and the resolver; tlsCert nil: no HTTPS.
func (m *Main) newHTTPServer(names func() []string, tlsCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), firstRun bool) *webui.Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := webui.NewServer()
	srv.Catalog = m.DB.Catalog
	srv.Addr = m.Config.HTTP.Listen
	srv.Services = m.Services
	srv.Logger = m.Logger.With("component", "webui")
	srv.Registry = reg
	srv.Files = m.Resolver
	srv.PnP = m.pnpListening.Load
	srv.DHCP = func() string { s, _ := m.dhcpServing.Load().(string); return s }
	srv.HostAllowed = webui.HostSet(names)
	srv.Guard = m.Guard
	srv.Health = m.DB.Writable
	if tlsCert != nil {
		srv.TLSAddr, srv.TLSCert = m.Config.HTTPS.Listen, tlsCert
	}
	// First run: a one-time code, printed in the log only, lets whoever
	// installed the box create the first admin in the browser; the hints
	// (log and setup page) name the commands its reader can run.
	if firstRun {
		here := hereNow()
		srv.SetupCode = setupCode()
		srv.SetupHints = webui.SetupHints{UserAdd: here.userAdd(m.Flags, m.Config, m.DataDir), Journal: here.journal()}
	}
	return srv
}

// settle hands the settings for the bound ports to the store.
func (m *Main) settle(ctx context.Context) error {
	u, err := settle(ctx, m.DB, m.Config, m.bound, m.Logger)
	m.PublicURL = u
	return err
}

// publicHost is the host of the provisioning URL in force.
func (m *Main) publicHost() string { return hostOfURL(m.DB.Settings().ProvisioningURL) }

// hostNames returns the names the box answers to (Host check) and its
// certificate covers: its hostname, its addresses, the public URL's host
// and allowed_hosts; read again as they change.
func (m *Main) hostNames() func() []string {
	cfg := m.Config
	return func() []string {
		extra := append([]string{m.publicHost()}, cfg.AllowedHosts...)
		out := webui.ListenNames(cfg.HTTP.Listen, extra...)
		if !Off(cfg.HTTPS.Listen) {
			out = append(out, webui.ListenNames(cfg.HTTPS.Listen, extra...)...)
		}
		return out
	}
}

// openResolver makes the failure guard and the one resolver for /prov/ and
// TFTP: the same bytes, the same fetch records, the same guard.
func (m *Main) openResolver(ctx context.Context, caPEM func() []byte) {
	svc := m.Services
	// One failure guard for every secret and every miss (SPEC §9): the
	// login form, API Basic, the setup code, phones' secrets, unknown
	// files. A known phone's DHCP-leased address is never refused.
	m.Guard = &appliance.Guard{Limit: m.Config.Provisioning.MissLimit, Exempt: func(ip string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ok, err := svc.Leases.PhoneLeased(ctx, ip)
		return err == nil && ok
	}}
	m.Resolver = &configs.Resolver{
		Services:    svc,
		Renderer:    m.Renderer,
		FirmwareDir: filepath.Join(m.DataDir, "firmware"),
		Guard:       m.Guard,
		CACert:      caPEM,
		Logger:      m.Logger.With("component", "prov"),
	}
	// Notes the templates and follows the bus (Services.Events) until
	// Close; the first check of the templates cannot fail.
	if err := m.Resolver.Open(ctx); err != nil {
		m.Logger.Error("open resolver", "err", err)
	}
}

// openTFTP serves the resolver's files over TFTP unless tftp.listen is off.
func (m *Main) openTFTP() error {
	if Off(m.Config.TFTP.Listen) {
		return nil
	}
	ts := &tftpd.Server{Addr: m.Config.TFTP.Listen, Files: m.Resolver, Logger: m.Logger.With("component", "tftp")}
	if err := ts.Open(); err != nil {
		return bindError("tftp", "--tftp", m.Config.TFTP.Listen, err)
	}
	m.TFTPServer = ts
	return nil
}

// openSIP starts the sync loop and plug-and-play unless sip.listen is off.
func (m *Main) openSIP() error {
	cfg, db := m.Config, m.DB
	if Off(cfg.SIP.Listen) {
		return nil
	}
	ss := &sipserver.Server{
		Addr:         cfg.SIP.Listen,
		Services:     m.Services,
		Logger:       m.Logger.With("component", "sip"),
		Catalog:      db.Catalog,
		NotifyWindow: cfg.SIP.NotifyWindow,
		Trigger:      trigger(cfg, db, m.Logger),
		Fallback:     fallback(cfg, db, m.Logger),
		PnP:          cfg.SIP.PnP && !loopback(cfg.SIP.Listen),
		PnPInterface: pnpInterface(cfg.SIP.PnPInterface),
	}
	if cfg.SIP.PnP && !ss.PnP {
		m.Logger.Info("sip plug-and-play is off: sip.listen is a loopback address, which phones cannot reach", "listen", cfg.SIP.Listen)
	}
	if err := ss.Open(); err != nil {
		return bindError("sip", "--sip", cfg.SIP.Listen, err)
	}
	m.SIPServer = ss
	m.pnpListening.Store(ss.PnPListening())
	return nil
}

// openDHCP serves DHCP on dhcp.interface unless it is off.
func (m *Main) openDHCP() error {
	if Off(m.Config.DHCP.Interface) {
		return nil
	}
	ds := dhcpServer(m.Config, m.Services, m.DB.Catalog, m.Logger.With("component", "dhcp"))
	if err := ds.Open(); err != nil {
		return fmt.Errorf("dhcp on %s: %w", m.Config.DHCP.Interface, err)
	}
	m.DHCPServer = ds
	m.dhcpServing.Store(m.Config.DHCP.Interface)
	return nil
}

// logReady logs what phones still need (the ready checks, recomputed by
// settle for every phone: logged once, so whoever starts provbox sees
// them), how to create the first admin, and the "provbox ready" line with
// every address.
func (m *Main) logReady(ctx context.Context, firstRun bool) {
	cfg, logger := m.Config, m.Logger
	if phones, err := m.Services.Phones.FindPhones(ctx, appliance.PhoneFilter{}); err != nil {
		logger.Error("ready checks", "err", err)
	} else {
		logProblems(logger, phones)
	}
	url := adminURL(cfg.HTTP.Listen, m.HTTPServer.Port())
	if firstRun {
		hint, code := m.HTTPServer.SetupHints.UserAdd, m.HTTPServer.SetupCode
		logger.Warn("no admin user yet: open "+url+"setup and enter the setup code "+code+", or run: "+hint,
			"setup_code", code, "command", hint)
	}
	logger.Info("provbox ready",
		"url", url,
		"addr", m.HTTPAddr(),
		"public_url", m.PublicURL,
		"https", httpsAddr(cfg, m.HTTPServer.TLSPort()),
		"tftp", m.TFTPAddr(),
		"sip", m.SIPAddr(),
		"dhcp", m.dhcpInterface(),
		"data", m.DataDir,
		"config", m.ConfigPath,
		"version", version,
	)
}

// HTTPAddr is the bound host:port of the admin pages, API and /prov/.
func (m *Main) HTTPAddr() string {
	return net.JoinHostPort(hostOf(m.Config.HTTP.Listen), strconv.Itoa(m.HTTPServer.Port()))
}

// TFTPAddr is the bound host:port of TFTP, or "off".
func (m *Main) TFTPAddr() string {
	if m.TFTPServer == nil {
		return "off"
	}
	return net.JoinHostPort(hostOf(m.Config.TFTP.Listen), strconv.Itoa(m.TFTPServer.Port()))
}

// SIPAddr is the bound host:port of SIP, or "off".
func (m *Main) SIPAddr() string {
	if m.SIPServer == nil {
		return "off"
	}
	return net.JoinHostPort(hostOf(m.Config.SIP.Listen), strconv.Itoa(m.SIPServer.Port()))
}

func (m *Main) dhcpInterface() string {
	if m.DHCPServer == nil {
		return "off"
	}
	return m.Config.DHCP.Interface
}

// status is what `systemctl status` shows: what is served where.
func (m *Main) status() string {
	return "serving http " + m.HTTPAddr() + ", tftp " + m.TFTPAddr() + ", sip " + m.SIPAddr() + ", dhcp " + m.dhcpInterface()
}

// healthy is the watchdog's check: the store answers.
func (m *Main) healthy(context.Context) error {
	_, err := m.DB.SchemaVersion()
	return err
}

// bound are the ports serve listens on, as the public URLs need them.
type bound struct {
	http, https int  // https 0: HTTPS off
	ownCA       bool // the HTTPS certificate is issued by provbox's CA
}

// settle derives the public URLs for the bound ports and hands the
// settings to the store, which recomputes every phone's config version.
func settle(ctx context.Context, db *sqlite.DB, cfg *Config, b bound, logger *slog.Logger) (string, error) {
	s := settingsFor(cfg, b, logger)
	if err := db.SetSettings(ctx, s); err != nil {
		return "", fmt.Errorf("apply settings: %w", err)
	}
	return s.ProvisioningURL, nil
}

// settingsFor returns the settings cfg gives the store for the bound
// ports. The config keys it reads are tagged reload:"settings" (reload.go),
// or need a restart.
func settingsFor(cfg *Config, b bound, logger *slog.Logger) appliance.Settings {
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
	return s
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
