package webui

import (
	"context"
	"net/http"
	"strconv"

	"github.com/provbox/provbox/appliance"
)

// handlePhoneConfig answers the rendered <mac>.cfg of a phone (no fetch is
// recorded: this is the admin's preview).
func (s *Server) handlePhoneConfig(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Files == nil {
		s.fail(w, r, appliance.Errorf(appliance.ENOTFOUND, "file", "no renderer"))
		return
	}
	b, err := s.Files.RenderFile(r.Context(), mac, "")
	if err != nil {
		s.fail(w, r, err)
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
		s.fail(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit", discoveredAPILimit, discoveredAPILimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, total, err := s.Services.Discovery.PageDiscovered(r.Context(), offset, limit)
	if err != nil {
		s.fail(w, r, err)
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
		s.fail(w, r, err)
		return
	}
	var in adoptInput
	if r.ContentLength != 0 {
		if err := s.readJSON(w, r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	p, err := s.Services.Discovery.AdoptDiscovered(r.Context(), mac, &appliance.Phone{
		Name: in.Name, Description: in.Description, LocationID: in.LocationID, Manufacturer: in.Manufacturer, Model: in.Model,
	}, in.Extension)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, p)
}

// handlePhoneSync answers where the phone stands in the sync loop.
func (s *Server) handlePhoneSync(w http.ResponseWriter, r *http.Request) {
	if p, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone); ok {
		s.writeJSON(w, http.StatusOK, p.Sync)
	}
}

// handlePhoneTimeline answers the phone's last changes, newest first: when
// each was made, triggered, fetched, applied and registered.
func (s *Server) handlePhoneTimeline(w http.ResponseWriter, r *http.Request) {
	if tl, ok := lookup(s, w, r, pathMAC, s.Services.Sync.Timeline); ok {
		s.writeJSON(w, http.StatusOK, tl)
	}
}

// handlePhoneResync asks the sync loop for a check-sync NOTIFY now; the
// answer is 202 with the sync state as it stands (poll /sync for the
// result).
func (s *Server) handlePhoneResync(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Services.Sync.Resync(r.Context(), []string{mac}); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.Services.Phones.FindPhone(r.Context(), mac)
	if err != nil {
		s.fail(w, r, err)
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
	find := s.Services.Phones.FindPhone
	if r.Method == http.MethodPost {
		find = s.Services.Phones.RotateSecret
	}
	p, ok := lookup(s, w, r, pathMAC, find)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, http.StatusOK, secretBody{Username: p.ProvUsername(), Password: p.Secret})
}

// handlePhoneClaim reopens the phone's claim window and answers its sync
// status (claim_open_until).
func (s *Server) handlePhoneClaim(w http.ResponseWriter, r *http.Request) {
	if p, ok := lookup(s, w, r, pathMAC, s.reopenClaim); ok {
		s.writeJSON(w, http.StatusOK, p.Sync)
	}
}

// reopenClaim reopens phone mac's claim window and forgives the failures
// of the address it last fetched from: a factory-reset phone fetching with
// a stale secret may have been refused meanwhile, and its next fetch must
// not meet that refusal.
func (s *Server) reopenClaim(ctx context.Context, mac string) (*appliance.Phone, error) {
	p, err := s.Services.Phones.OpenClaim(ctx, mac)
	if err != nil {
		return nil, err
	}
	s.Guard.Forgive(p.Sync.LastFetchIP)
	return p, nil
}
