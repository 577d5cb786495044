package webui

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provbox/provbox/appliance"
)

// provRoute is the metrics label of /prov/ files: the router's pattern.
const provRoute = "GET /prov/"

// provFirst answers GET and HEAD /prov/<file> ahead of the admin side's
// handler chain (request wrapper, host and HTTPS checks, cross-origin
// check, router), none of which applies to a phone's fetch: that is the
// appliance's hot path (SPEC §8: at least nginx's rate), answered from
// prepared bytes with no allocation of its own. It keeps what does apply:
// the request metrics (their counters looked up once), nosniff, and a
// logged panic. Everything else goes to next, including /prov/ paths the
// router treats otherwise (/prov/ev/…, more than one segment, dot
// segments it redirects).
func (s *Server) provFirst(next http.Handler) http.Handler {
	p := s.prov
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := provName(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		code := http.StatusInternalServerError
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					s.logger().Error("http request failed", "method", r.Method, "path", appliance.Clip(r.URL.Path), "err", fmt.Sprintf("handler panicked: %v", v))
				}
				p.count(r.Context(), r.Method, r.URL.Path, r.RemoteAddr, code, start)
				panic(http.ErrAbortHandler) // the connection is closed; net/http logs nothing more
			}
			p.count(r.Context(), r.Method, r.URL.Path, r.RemoteAddr, code, start)
		}()
		code = p.serve(w, r, name)
	})
}

// provName is the file a request asks for when provFirst answers it: a GET
// or HEAD of a single clean segment under /prov/ other than ev (the
// phones' reports). The escaped path, so that an encoded slash or dot
// never turns into a path the resolver would see as something else.
func provName(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/prov/")
	if !ok || strings.HasPrefix(rest, "ev/") || strings.Contains(rest, "/") || rest == "." || rest == ".." {
		return "", false
	}
	return strings.TrimPrefix(r.URL.EscapedPath(), "/prov/"), true
}

// handleProv serves phones their files (SPEC §5): GET and HEAD
// /prov/<file>, through the resolver shared with TFTP. A generated
// <mac>.cfg carries its config version as ETag. A <mac>.cfg needs the
// phone's own secret as HTTP Basic credentials (user name: the MAC), except
// for the one fetch of an open claim window; without it the answer is 401,
// the same for a known and an unknown MAC. An address that guesses too
// many files gets 429 for a while. provFirst answers most requests before
// the router; this is the router's route for the rest.
func (s *Server) handleProv(w http.ResponseWriter, r *http.Request) {
	s.prov.serve(w, r, strings.TrimPrefix(r.URL.EscapedPath(), "/prov/"))
}

// provServer answers /prov/ files, to provFirst, the router's route and
// the listener's own loop (fastprov.go) alike; the headers of files in
// memory are made once per config version (a version is the hash of the
// file's bytes).
type provServer struct {
	s        *Server
	duration prometheus.Observer          // provFirst's and the loop's answers (the request wrapper counts the router's)
	codes    [600]atomic.Pointer[counter] // requests by status, looked up once each
	// headers keeps the header values of recent file versions, by the
	// first three hex digits of the version: a lookup without a lock, a
	// hash or an allocation; two versions that share a slot take turns.
	headers [1 << 12]atomic.Pointer[fileHeaders]
}

func newProvServer(s *Server) *provServer {
	return &provServer{s: s, duration: s.metrics.duration.WithLabelValues(provRoute)}
}

type counter struct{ prometheus.Counter }

// fileHeaders are the header values of one file version. Header values
// are shared by every response: net/http only reads them. block is the
// same headers as the listener's loop writes them.
type fileHeaders struct {
	version      string
	size         int64
	etag, length []string
	contentType  []string
	block        []byte
}

// Header values that never change.
var (
	provNoStore = []string{"no-store"}
	provNosniff = []string{"nosniff"}
	typeText    = []string{"text/plain; charset=utf-8"}
	typePEM     = []string{"application/x-pem-file"}
	typeBinary  = []string{"application/octet-stream"}
)

// count records an answer of provFirst or of the listener's loop in the
// request metrics and, at debug level, in the access log, as the request
// wrapper does for the rest.
func (p *provServer) count(ctx context.Context, method, path, remote string, code int, start time.Time) {
	if code < 0 || code >= len(p.codes) {
		code = http.StatusInternalServerError
	}
	c := p.codes[code].Load()
	if c == nil {
		c = &counter{p.s.metrics.requests.WithLabelValues(provRoute, strconv.Itoa(code))}
		p.codes[code].Store(c)
	}
	c.Inc()
	elapsed := time.Since(start)
	p.duration.Observe(elapsed.Seconds())
	p.s.logRequest(ctx, method, path, remote, code, elapsed, "")
}

// provAnswer is the answer to a phone's request for a file: the file
// (status 200), or an error status with its message and at most one
// header (WWW-Authenticate, Retry-After).
type provAnswer struct {
	code             int
	file             *appliance.ServedFile
	msg              string
	header, hdrValue string
	wait             bool // asked with NoWait, and it would wait
}

// answer resolves a file for a phone (req: its name, address, user
// agent and Basic credentials): the one place that turns the resolver's
// answer (secret check, guard, fetch record) into a status, for net/http's
// paths and the listener's loop alike. The caller closes the file.
func (p *provServer) answer(ctx context.Context, req appliance.FileRequest) provAnswer {
	s := p.s
	if s.Files == nil {
		return provAnswer{code: http.StatusNotFound, msg: "404 page not found"}
	}
	req.Source = "http"
	f, err := s.Files.ResolveFile(ctx, req)
	if err == nil {
		return provAnswer{code: http.StatusOK, file: f}
	}
	if err == appliance.ErrWouldWait {
		return provAnswer{wait: true}
	}
	switch appliance.ErrorCode(err) {
	case appliance.ENOTFOUND:
		return provAnswer{code: http.StatusNotFound, msg: "not found"}
	case appliance.EUNAUTHORIZED:
		return provAnswer{code: http.StatusUnauthorized, msg: "authorization required",
			header: "WWW-Authenticate", hdrValue: `Basic realm="provbox provisioning"`}
	case appliance.ETOOMANY:
		return provAnswer{code: http.StatusTooManyRequests, msg: "too many requests for unknown files or with wrong secrets; try again later",
			header: "Retry-After", hdrValue: retryAfter(s.Guard.Wait(appliance.ProtoHTTP, req.IP))}
	default:
		s.logger().Error("provisioning file", "path", appliance.Clip(req.Name), "err", err)
		return provAnswer{code: http.StatusInternalServerError, msg: "internal error"}
	}
}

// serve answers the file name and returns the status sent.
func (p *provServer) serve(w http.ResponseWriter, r *http.Request, name string) int {
	h := w.Header()
	h["X-Content-Type-Options"] = provNosniff
	req := appliance.FileRequest{Name: name, IP: remoteIP(r), UA: r.UserAgent()}
	req.User, req.Password, req.HasAuth = r.BasicAuth()
	a := p.answer(r.Context(), req)
	f := a.file
	if f == nil {
		if a.header != "" {
			h.Set(a.header, a.hdrValue)
		}
		http.Error(w, a.msg, a.code)
		return a.code
	}
	defer f.Close()
	fh := p.headersOf(f)
	h["Content-Type"] = fh.contentType
	h["Cache-Control"] = provNoStore
	if fh.etag != nil {
		h["Etag"] = fh.etag
	}
	if f.Body == nil || conditional(r) {
		// From disk (firmware), or a conditional or range request: the
		// standard library's full treatment. A file in memory has no
		// modification time to offer: it is generated (its ETag says
		// which version it is).
		var mod time.Time
		if f.Body == nil {
			mod = f.ModTime
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		http.ServeContent(sw, r, f.Name, mod, f.Reader())
		return sw.status
	}
	h["Content-Length"] = fh.length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(f.Body)
	}
	return http.StatusOK
}

// conditional reports whether r asks for part of a file or for it only
// under a condition.
func conditional(r *http.Request) bool {
	h := r.Header
	return h["Range"] != nil || h["If-None-Match"] != nil || h["If-Match"] != nil ||
		h["If-Modified-Since"] != nil || h["If-Unmodified-Since"] != nil
}

// headersOf returns f's header values: made once per version of a
// generated file, else now.
func (p *provServer) headersOf(f *appliance.ServedFile) *fileHeaders {
	slot := versionSlot(f.Version)
	if slot >= 0 {
		if fh := p.headers[slot].Load(); fh != nil && fh.version == f.Version && fh.size == f.Size {
			return fh
		}
	}
	fh := &fileHeaders{version: f.Version, size: f.Size, length: []string{strconv.FormatInt(f.Size, 10)}, contentType: contentTypeOf(f.Name)}
	if f.Version != "" {
		fh.etag = []string{`"` + f.Version + `"`}
	}
	fh.block = headerBlock(fh)
	if slot >= 0 {
		p.headers[slot].Store(fh)
	}
	return fh
}

// versionSlot is the headers slot of a version: its first three hex
// digits; -1 for none.
func versionSlot(v string) int {
	if len(v) < 3 {
		return -1
	}
	n := 0
	for _, c := range []byte(v[:3]) {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		default:
			return -1
		}
	}
	return n
}

func contentTypeOf(name string) []string {
	switch {
	case strings.HasSuffix(name, ".cfg") || strings.HasSuffix(name, ".boot"):
		return typeText
	case strings.HasSuffix(name, ".crt"):
		return typePEM
	default:
		return typeBinary
	}
}

// statusWriter remembers the status sent through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// handleReport takes a phone's report: an action URL its config gave it,
// /prov/ev/<token>/<event>?mac=$mac&ip=$ip&user=$active_user... (SPEC §6).
// The phone ignores the answer; 204 when taken, 404 — changing nothing —
// for a token no phone has, an unknown event or another phone's MAC.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rep := appliance.Report{
		Token: r.PathValue("token"), Event: r.PathValue("event"), IP: remoteIP(r),
		MAC: q.Get("mac"), User: q.Get("user"), Model: q.Get("model"), Firmware: q.Get("firmware"),
	}
	// A variable the phone did not fill in stays "$name" (it replaces
	// plain text): treat it as absent.
	for _, v := range []*string{&rep.MAC, &rep.User, &rep.Model, &rep.Firmware} {
		if strings.HasPrefix(*v, "$") {
			*v = ""
		}
	}
	if err := s.Services.Sync.RecordReport(r.Context(), rep); err != nil {
		if appliance.ErrorCode(err) == appliance.ENOTFOUND {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		s.logger().Error("phone report", "event", rep.Event, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
