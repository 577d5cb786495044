package webui

import (
	"net"
	"net/http"
	"strconv"
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

// handleListDiscovered answers a page of discovered phones, most recently
// seen first: ?offset= (default 0) and ?limit= (default and at most 1,000);
// X-Total-Count says how many there are in all.
func (s *Server) handleListDiscovered(w http.ResponseWriter, r *http.Request) {
	offset, err := queryInt(r, "offset", 0, appliance.MaxDiscovered)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit", discoveredAPILimit, discoveredAPILimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, total, err := s.Services.Discovery.PageDiscovered(r.Context(), offset, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	s.writeJSON(w, http.StatusOK, nonNil(list))
}

const discoveredAPILimit = 1000

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

// handlePhoneTimeline answers the phone's last changes, newest first: when
// each was made, triggered, fetched, applied and registered.
func (s *Server) handlePhoneTimeline(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tl, err := s.Services.Sync.Timeline(r.Context(), mac)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, tl)
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

// secretBody is a phone's provisioning credentials (GET and POST
// /phones/{mac}/secret): the only place the API shows a secret.
type secretBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// handlePhoneSecret answers the phone's user name and secret; POST first
// gives it a new one (rotation).
func (s *Server) handlePhoneSecret(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	find := s.Services.Phones.FindPhone
	if r.Method == http.MethodPost {
		find = s.Services.Phones.RotateSecret
	}
	p, err := find(r.Context(), mac)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, http.StatusOK, secretBody{Username: p.ProvUsername(), Password: p.Secret})
}

// handlePhoneClaim reopens the phone's claim window and answers its sync
// status (claim_open_until).
func (s *Server) handlePhoneClaim(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.reopenClaim(r, mac)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, p.Sync)
}

// reopenClaim reopens phone mac's claim window and forgives the failures
// of the address it last fetched from: a factory-reset phone fetching with
// a stale secret may have been refused meanwhile, and its next fetch must
// not meet that refusal.
func (s *Server) reopenClaim(r *http.Request, mac string) (*appliance.Phone, error) {
	p, err := s.Services.Phones.OpenClaim(r.Context(), mac)
	if err != nil {
		return nil, err
	}
	s.Guard.Forgive(p.Sync.LastFetchIP)
	return p, nil
}
