package webui

import (
	"net"
	"net/http"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// handleProv serves phones their files (SPEC §5): GET and HEAD
// /prov/<file>, through the resolver shared with TFTP. A generated
// <mac>.cfg carries its config version as ETag. A <mac>.cfg needs the
// phone's own secret as HTTP Basic credentials (user name: the MAC), except
// for the one fetch of an open claim window; without it the answer is 401,
// the same for a known and an unknown MAC. An address that guesses too
// many files gets 429 for a while.
func (s *Server) handleProv(w http.ResponseWriter, r *http.Request) {
	if s.Files == nil {
		http.NotFound(w, r)
		return
	}
	// The escaped path, so that an encoded slash or dot never turns into a
	// path the resolver would see as something else.
	name := strings.TrimPrefix(r.URL.EscapedPath(), "/prov/")
	req := appliance.FileRequest{Name: name, IP: remoteIP(r), Source: "http", UA: r.UserAgent()}
	req.User, req.Password, req.HasAuth = r.BasicAuth()
	f, err := s.Files.ResolveFile(r.Context(), req)
	if err != nil {
		switch appliance.ErrorCode(err) {
		case appliance.ENOTFOUND:
			http.Error(w, "not found", http.StatusNotFound)
		case appliance.EUNAUTHORIZED:
			w.Header().Set("WWW-Authenticate", `Basic realm="provbox provisioning"`)
			http.Error(w, "authorization required", http.StatusUnauthorized)
		case appliance.ETOOMANY:
			w.Header().Set("Retry-After", retryAfter(s.Guard.Wait(appliance.ProtoHTTP, req.IP)))
			http.Error(w, "too many requests for unknown files or with wrong secrets; try again later", http.StatusTooManyRequests)
		default:
			s.logger().Error("provisioning file", "path", name, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
		return
	}
	defer f.Close()
	h := w.Header()
	switch {
	case strings.HasSuffix(f.Name, ".cfg") || strings.HasSuffix(f.Name, ".boot"):
		h.Set("Content-Type", "text/plain; charset=utf-8")
	case strings.HasSuffix(f.Name, ".crt"):
		h.Set("Content-Type", "application/x-pem-file")
	default:
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set("Cache-Control", "no-store")
	if f.Version != "" {
		h.Set("ETag", `"`+f.Version+`"`)
	}
	http.ServeContent(w, r, f.Name, f.ModTime, f.Content)
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
