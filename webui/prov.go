package webui

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// handleProv serves phones their files (SPEC §5): GET and HEAD
// /prov/<file>, through the resolver shared with TFTP. A generated
// <mac>.cfg carries its config version as ETag. Optional HTTP Basic
// credentials (Settings.ProvUsername/ProvPassword) protect the folder; an
// address that guesses too many unknown files gets 429 for a while.
func (s *Server) handleProv(w http.ResponseWriter, r *http.Request) {
	if s.Files == nil {
		http.NotFound(w, r)
		return
	}
	if !s.provAuthorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="provbox provisioning"`)
		http.Error(w, "authorization required", http.StatusUnauthorized)
		s.logger().Info("provisioning request without valid credentials", "ip", remoteIP(r), "path", r.URL.EscapedPath())
		return
	}
	// The escaped path, so that an encoded slash or dot never turns into a
	// path the resolver would see as something else.
	name := strings.TrimPrefix(r.URL.EscapedPath(), "/prov/")
	f, err := s.Files.ResolveFile(r.Context(), appliance.FileRequest{Name: name, IP: remoteIP(r), Source: "http", UA: r.UserAgent()})
	if err != nil {
		switch appliance.ErrorCode(err) {
		case appliance.ENOTFOUND:
			http.Error(w, "not found", http.StatusNotFound)
		case appliance.ETOOMANY:
			w.Header().Set("Retry-After", "600")
			http.Error(w, "too many requests for unknown files; try again later", http.StatusTooManyRequests)
		default:
			s.logger().Error("provisioning file", "path", name, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
		return
	}
	defer f.Close()
	h := w.Header()
	if strings.HasSuffix(f.Name, ".cfg") || strings.HasSuffix(f.Name, ".boot") {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set("Cache-Control", "no-store")
	if f.Version != "" {
		h.Set("ETag", `"`+f.Version+`"`)
	}
	http.ServeContent(w, r, f.Name, f.ModTime, f.Content)
}

// provAuthorized checks the provisioning credentials, when configured.
func (s *Server) provAuthorized(r *http.Request) bool {
	if s.Settings == nil {
		return true
	}
	set := s.Settings()
	if set.ProvUsername == "" {
		return true
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u := subtle.ConstantTimeCompare([]byte(user), []byte(set.ProvUsername))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(set.ProvPassword))
	return u&p == 1
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// handlePhoneConfig answers the rendered <mac>.cfg of a phone (no fetch is
// recorded: this is the admin's preview).
func (s *Server) handlePhoneConfig(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.Files == nil {
		s.writeError(w, r, appliance.Errorf(appliance.ENOTFOUND, "file", "no renderer"))
		return
	}
	b, err := s.Files.RenderFile(r.Context(), mac, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

func (s *Server) handleListDiscovered(w http.ResponseWriter, r *http.Request) {
	list, err := s.Services.Discovery.FindDiscovered(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, nonNil(list))
}

// adoptInput is the optional body of POST /discovered/{mac}/adopt: what the
// admin sets on the new phone; detected vendor and model fill the blanks.
type adoptInput struct {
	Name         string `json:"name"`
	Description  string `json:"description"`
	LocationID   *int64 `json:"location_id"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Extension    string `json:"extension"`
}

func (s *Server) handleAdoptDiscovered(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in adoptInput
	if r.ContentLength != 0 {
		if err := s.readJSON(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	p, err := s.Services.Discovery.AdoptDiscovered(r.Context(), mac, &appliance.Phone{
		Name: in.Name, Description: in.Description, LocationID: in.LocationID, Manufacturer: in.Manufacturer, Model: in.Model,
	}, in.Extension)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, p)
}

// handlePhoneSync answers where the phone stands in the sync loop.
func (s *Server) handlePhoneSync(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.Services.Phones.FindPhone(r.Context(), mac)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, p.Sync)
}

// handlePhoneResync asks the sync loop for a check-sync NOTIFY now; the
// answer is 202 with the sync state as it stands (poll /sync for the
// result).
func (s *Server) handlePhoneResync(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Services.Sync.Resync(r.Context(), []string{mac}); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.Services.Phones.FindPhone(r.Context(), mac)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusAccepted, p.Sync)
}
