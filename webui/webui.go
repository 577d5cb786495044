// Package webui is the HTTP face of provbox: the admin pages (session
// login, one form per phone, Button Configurations, extensions, locations,
// discovered phones, leases, settings, users, audit), the JSON API under
// /api/v1/, /healthz, /metrics, and /prov/, the files phones fetch.
//
// Every /api/v1/ request authenticates as an admin with HTTP Basic (or the
// admin pages' session plus its CSRF token), and a state-changing request
// that a browser marks as cross-origin is refused with 403 (browsers replay
// cached Basic credentials to any page). Objects are the appliance types as
// JSON; errors are
//
//	{"error": "mac: \"00:15\" is not a MAC address (…)", "field": "mac"}
//
// with 400 for invalid input (plus "line" for a CSV row), 401, 404, 409 for
// a duplicate or a thing still in use, 413 for a body over the limit, 507
// when the store cannot take writes, and 500 for anything else, whose
// details are logged and never shown. The admin pages answer the same
// statuses with an HTML page (errors.go has the one table). For example:
//
//	curl -u admin:secret -d '{"mac":"00-15-65-AA-BB-CC","model":"T-46g","extension":"1001"}' \
//	    http://provbox:8080/api/v1/phones
//	→ 201 {"id":1,"mac":"001565aabbcc","name":"001565aabbcc","model":"T46G",…}
//
// The Server has the shape of every provbox server: exported configuration
// and dependencies, Open binds synchronously (so Addr ":0" works and Port
// reports the port), Close shuts down gracefully.
package webui

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"html/template"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provbox/provbox/appliance"
)

// Body limits. JSON objects are small; a CSV of many phones with all their
// line keys is not.
const (
	DefaultMaxBody = 1 << 20
	csvMaxBody     = 16 << 20
)

// shutdownTimeout bounds how long Close waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// SetupHints are what the first-run setup page tells its reader to run,
// as serve knows it: where its log with the setup code is, and the command
// that creates an admin from a shell.
type SetupHints struct {
	// UserAdd creates an admin from a shell where serve was started
	// ("./bin/provbox user add NAME --data x"); "" means
	// "provbox user add NAME".
	UserAdd string
	// Journal shows serve's setup-code line when serve runs under systemd
	// ("sudo journalctl -u provbox | grep setup_code"); "" when its log is
	// the terminal that started it.
	Journal string
}

// UserAddCommand is h.UserAdd, or the plain command.
func (h SetupHints) UserAddCommand() string {
	if h.UserAdd == "" {
		return "provbox user add NAME"
	}
	return h.UserAdd
}

// WhereCode says where the setup code is, for the page and its error.
func (h SetupHints) WhereCode() string {
	if h.Journal != "" {
		return "provbox runs under systemd: " + h.Journal + " shows it"
	}
	return "it is in the terminal where provbox was started (make run or provbox serve), on the line \"no admin user yet: open … and enter the setup code …\""
}

// Server serves the JSON API, /healthz and /metrics.
type Server struct {
	Addr     string // listen address, e.g. ":8080" or "127.0.0.1:0"
	Services appliance.Services
	// Catalog is the model catalog the phone pages offer and draw (required).
	Catalog  *appliance.Catalog
	Logger   *slog.Logger
	Registry *prometheus.Registry // metrics registry; nil → NewServer makes one
	MaxBody  int64                // request body limit; default 1 MiB, CSV import 16 MiB
	// Files resolves /prov/ files and renders config previews; nil: /prov/
	// answers 404.
	Files appliance.FileResolver
	// PnP reports whether SIP plug-and-play answers phones on the LAN (the
	// dashboard's "phones can find the box"); nil: it does not.
	PnP func() bool
	// DHCP gives the interface provbox serves DHCP on ("" when it does
	// not: the dashboard and Leases say so); nil: DHCP is off.
	DHCP func() string
	// SetupCode is the one-time code the first-run setup page asks for
	// (serve prints it in its log); empty: only `provbox user add` works.
	SetupCode string
	// SetupHints tell the setup page's reader where that log is and how
	// to create an admin from a shell on this box.
	SetupHints SetupHints
	// SessionIdle ends a browser session unused this long (default 8 h).
	SessionIdle time.Duration
	// TLSAddr is the HTTPS listen address ("" none); TLSCert gives its
	// certificate (tls.Config.GetCertificate). With HTTPS on, plain-HTTP
	// admin pages and API requests from anywhere but loopback are
	// redirected to it (308); /prov/, /healthz and /metrics stay on both.
	TLSAddr string
	TLSCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// HostAllowed reports whether a Host (without port) names this box;
	// admin pages, API and /metrics answer others 421 (DNS rebinding).
	// nil: every Host is accepted.
	HostAllowed func(host string) bool
	// Guard counts wrong secrets (login form, API Basic, setup code; the
	// file resolver counts the phones' own on the same Guard) and refuses
	// an address past its limit with 429. nil: NewServer's default, 20 a
	// minute.
	Guard *appliance.Guard
	// MaxConns and MaxConnsPerIP bound the connections the HTTP and HTTPS
	// listeners hold (listen.go); 0: the descriptor limit less a reserve,
	// and DefaultMaxConnsPerIP.
	MaxConns, MaxConnsPerIP int
	// Health reports why the appliance cannot work now (the database
	// cannot be written): /healthz answers 503 with it. nil: always ok.
	Health func(ctx context.Context) error

	csvMaxBody int64 // CSV import limit; tests lower it

	once    sync.Once
	handler http.Handler
	metrics *metrics
	auth    *authCache
	prov    *provServer

	limits *connLimits
	mu     sync.Mutex
	ln     net.Listener
	srv    *http.Server
	tlsLn  net.Listener
	tlsSrv *http.Server

	tmplOnce sync.Once
	tmpl     map[string]*template.Template
	tmplErr  error
}

// NewServer returns a Server with the defaults filled in; set Services (and
// usually Addr and Logger) before Open or Handler.
func NewServer() *Server {
	s := &Server{Addr: ":8080"}
	s.fillDefaults()
	return s
}

// fillDefaults sets every field left zero to its default: the one list of
// defaults, for NewServer and for a Server built without it (Handler).
func (s *Server) fillDefaults() {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	if s.MaxBody <= 0 {
		s.MaxBody = DefaultMaxBody
	}
	if s.Guard == nil {
		s.Guard = &appliance.Guard{Limit: 20}
	}
	if s.Catalog == nil {
		// No models: a server without a catalog offers none
		// (cmd/provbox sets the embedded catalog).
		s.Catalog, _ = appliance.NewCatalog(nil, nil, nil)
	}
}

// Open binds the listeners now (HTTP, and HTTPS when TLSAddr is set), so
// a busy port fails here and ":0" gets a port that Port and TLSPort
// report, then serves in goroutines until Close.
func (s *Server) Open() error {
	h := s.Handler()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("http: server already open")
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s: %w", s.Addr, err)
	}
	if s.limits == nil {
		s.limits = newConnLimits(s.MaxConns, s.MaxConnsPerIP)
	}
	total, perIP := s.limits.Max()
	refused := func(ip string) {
		if s.limits.logRefusal(ip, time.Now()) {
			s.logger().Warn("http connections refused: too many connections (logged once a minute per address)", "ip", ip, "per_ip", perIP, "total", total)
		}
	}
	ln = newLimitListener(ln, s.limits, refused)
	if s.TLSAddr != "" {
		if s.TLSCert == nil {
			ln.Close()
			return errors.New("https: no certificate")
		}
		tln, err := net.Listen("tcp", s.TLSAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("https: listen on %s: %w", s.TLSAddr, err)
		}
		tln = newLimitListener(tln, s.limits, refused)
		s.tlsLn = tln
		s.tlsSrv = s.newHTTPServer(h)
		srv := s.tlsSrv
		fast := s.fastTLS(tln, srv) // fastprov.go: TLS, then the /prov/ loop
		go func() {
			if err := srv.Serve(fast); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logger().Error("https server stopped", "addr", tln.Addr().String(), "err", err)
			}
		}()
		s.logger().Info("https listening", "addr", tln.Addr().String())
	}
	s.ln = ln
	s.srv = s.newHTTPServer(h)
	srv := s.srv
	fast := newFastListener(ln, s.prov, srv.ReadHeaderTimeout, srv.IdleTimeout) // fastprov.go
	go func() {
		if err := srv.Serve(fast); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger().Error("http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.logger().Info("http listening", "addr", ln.Addr().String())
	return nil
}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Bounds a slow upload (a CSV import is at most 16 MiB, which a LAN
		// moves in well under a minute). No WriteTimeout: firmware downloads
		// to phones may legitimately take long.
		ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
	}
}

// Close stops accepting connections and waits up to 5 s for requests in
// flight, then closes whatever is left. Closing a server that is not open
// does nothing; a closed server can be opened again.
func (s *Server) Close() error {
	s.mu.Lock()
	srvs := []*http.Server{s.srv, s.tlsSrv}
	s.srv, s.ln, s.tlsSrv, s.tlsLn = nil, nil, nil, nil
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	for _, srv := range srvs {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
			errs = append(errs, fmt.Errorf("http: shutdown: %w", err))
		}
	}
	return errors.Join(errs...)
}

// TLSPort returns the port the HTTPS listener is bound to, 0 when none.
func (s *Server) TLSPort() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tlsLn == nil {
		return 0
	}
	return s.tlsLn.Addr().(*net.TCPAddr).Port
}

// Port returns the port the server listens on, 0 when not open.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return 0
	}
	return s.ln.Addr().(*net.TCPAddr).Port
}

// URL returns the base URL of the server, e.g. "http://127.0.0.1:8080": the
// bound address, or the loopback address when bound to all interfaces.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	a := s.ln.Addr().(*net.TCPAddr)
	host := "127.0.0.1"
	if a.IP != nil && !a.IP.IsUnspecified() {
		host = a.IP.String()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// Handler returns the server's HTTP handler, for Open or httptest. It reads
// Services at request time, but Registry, Logger and the limits once, on
// the first call (filling in the defaults of what is still zero).
func (s *Server) Handler() http.Handler {
	s.once.Do(func() {
		s.fillDefaults()
		if s.csvMaxBody <= 0 { // a body limit, derived from MaxBody as it is now
			s.csvMaxBody = max(csvMaxBody, s.MaxBody)
		}
		s.auth = newAuthCache(authCacheTTL, authCacheSize)
		var states func() (map[string]int, error)
		if s.Services.Sync != nil {
			states = func() (map[string]int, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return s.Services.Sync.CountStates(ctx)
			}
		}
		s.metrics = newMetrics(s.Registry, s.droppedEvents, states, s.Logger)
		s.prov = newProvServer(s)
		s.handler = s.provFirst(s.instrument(s.guard(s.routes())))
	})
	return s.handler
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// droppedEvents reads the bus at scrape time; the bus may be absent.
func (s *Server) droppedEvents() float64 {
	if s.Services.Events == nil {
		return 0
	}
	return float64(s.Services.Events.Dropped())
}

// routes registers every endpoint. Patterns are also the "route" label of
// the request metrics, so they must stay few and fixed.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if s.Health != nil {
			if err := s.Health(r.Context()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(err.Error() + "\n"))
				return
			}
		}
		w.Write([]byte("ok\n"))
	})
	// /metrics is open like /healthz so Prometheus scrapes without
	// credentials: it holds request counts, latencies and event-bus drops,
	// never names, numbers, MACs or secrets.
	mux.Handle("GET /metrics", s.metrics.handler())

	api := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.requireAuth(h)) }

	api("GET /api/v1/extensions", s.handleListExtensions)
	api("POST /api/v1/extensions", s.handleCreateExtension)
	api("GET /api/v1/extensions/{id}", s.handleGetExtension)
	api("PATCH /api/v1/extensions/{id}", s.handleUpdateExtension)
	api("DELETE /api/v1/extensions/{id}", s.handleDeleteExtension)

	api("GET /api/v1/locations", s.handleListLocations)
	api("POST /api/v1/locations", s.handleCreateLocation)
	api("GET /api/v1/locations/{id}", s.handleGetLocation)
	api("PATCH /api/v1/locations/{id}", s.handleUpdateLocation)
	api("DELETE /api/v1/locations/{id}", s.handleDeleteLocation)

	api("GET /api/v1/phones", s.handleListPhones)
	api("POST /api/v1/phones", s.handleCreatePhone)
	api("GET /api/v1/phones/{mac}", s.handleGetPhone)
	api("PATCH /api/v1/phones/{mac}", s.handleUpdatePhone)
	api("DELETE /api/v1/phones/{mac}", s.handleDeletePhone)
	api("GET /api/v1/phones/{mac}/keys", s.handleGetLayout)
	api("PUT /api/v1/phones/{mac}/keys", s.handleReplaceLayout)
	api("GET /api/v1/phones.csv", s.handleExportPhones)
	api("POST /api/v1/phones.csv", s.handleImportPhones)

	api("GET /api/v1/phones/{mac}/config", s.handlePhoneConfig)
	api("GET /api/v1/phones/{mac}/sync", s.handlePhoneSync)
	api("GET /api/v1/phones/{mac}/timeline", s.handlePhoneTimeline)
	api("POST /api/v1/phones/{mac}/resync", s.handlePhoneResync)
	api("POST /api/v1/phones/{mac}/claim", s.handlePhoneClaim)
	api("GET /api/v1/phones/{mac}/secret", s.handlePhoneSecret)
	api("POST /api/v1/phones/{mac}/secret", s.handlePhoneSecret)
	api("GET /api/v1/discovered", s.handleListDiscovered)
	api("POST /api/v1/discovered/{mac}/adopt", s.handleAdoptDiscovered)
	s.routesLeases(api) // api_leases.go: /leases, /reservations

	// Files for phones; GET also answers HEAD. The phones' own reports
	// (their action URLs): /prov/ev/<token>/<event>.
	mux.HandleFunc("GET /prov/", s.handleProv)
	mux.HandleFunc("GET /prov/ev/{token}/{event}", s.handleReport)

	api("GET /api/v1/keys", s.handleListKeys)
	api("POST /api/v1/keys", s.handleCreateKey)
	api("GET /api/v1/keys/{id}", s.handleGetKey)
	api("PATCH /api/v1/keys/{id}", s.handleUpdateKey)
	api("DELETE /api/v1/keys/{id}", s.handleDeleteKey)

	// Admin pages (session + CSRF).
	static, _ := fs.Sub(uiFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", s.handleLoginForm)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.HandleFunc("POST /logout", s.ui(s.handleLogout))
	mux.HandleFunc("GET /setup", s.handleSetupForm)
	mux.HandleFunc("POST /setup", s.handleSetup)
	s.routesUI(mux)

	// Anything else under /api/ answers in JSON too (after authentication,
	// so the API's shape is not probed anonymously): 405 when the path
	// exists with other methods, else 404.
	mux.Handle("/api/", s.requireAuth(func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: r.Method + " is not allowed here"})
			return
		}
		s.fail(w, r, appliance.Errorf(appliance.ENOTFOUND, "", "no such endpoint: %s", appliance.Clip(r.URL.Path)))
	}))

	// Browsers attach cached Basic credentials to cross-site requests too;
	// refuse state-changing ones that a browser marks as cross-origin (curl
	// and scripts send no such headers and pass). The session CSRF token of
	// the admin pages comes on top of this.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, appliance.Errorf(appliance.EFORBIDDEN, "", "cross-origin request refused"))
	}))
	return cop.Handler(mux)
}

// allowedMethods lists the methods that a registered pattern other than the
// /api/ catch-all serves for r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/api/" {
			allow = append(allow, m)
		}
	}
	return allow
}
