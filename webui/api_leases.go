package webui

import (
	"net/http"

	"github.com/provbox/provbox/appliance"
)

// routesLeases registers the DHCP endpoints (SPEC §4 GET /leases, plus
// reservations: the fixed address a phone always gets). With DHCP off
// (Services.Leases nil) the lists are empty and changes answer 404.
func (s *Server) routesLeases(api func(pattern string, h http.HandlerFunc)) {
	api("GET /api/v1/leases", s.handleListLeases)
	api("GET /api/v1/reservations", s.handleListReservations)
	api("PUT /api/v1/reservations/{mac}", s.handleSetReservation)
	api("DELETE /api/v1/reservations/{mac}", s.handleDeleteReservation)
}

// handleListLeases answers every stored lease, by address:
//
//	[{"ip":"192.168.1.100","mac":"001565aabbcc","hostname":"SIP-T46G","vendor":"yealink",
//	  "state":"bound","expires_at":"…","updated_at":"…","phone":"Front desk"}]
func (s *Server) handleListLeases(w http.ResponseWriter, r *http.Request) {
	if s.Services.Leases == nil {
		s.writeJSON(w, http.StatusOK, []*appliance.Lease{})
		return
	}
	list, err := s.Services.Leases.FindLeases(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, nonNil(list))
}

func (s *Server) handleListReservations(w http.ResponseWriter, r *http.Request) {
	if s.Services.Leases == nil {
		s.writeJSON(w, http.StatusOK, []*appliance.Reservation{})
		return
	}
	list, err := s.Services.Leases.FindReservations(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, nonNil(list))
}

// handleSetReservation: PUT {"ip": "192.168.1.50"} reserves that address
// for the MAC and answers the reservation.
func (s *Server) handleSetReservation(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Services.Leases == nil {
		s.fail(w, r, appliance.Errorf(appliance.ENOTFOUND, "", "DHCP is off"))
		return
	}
	var in struct {
		IP string `json:"ip"`
	}
	if err := s.readJSON(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.Services.Leases.SetReservation(r.Context(), mac, in.IP)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleDeleteReservation(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Services.Leases == nil {
		s.fail(w, r, appliance.Errorf(appliance.ENOTFOUND, "", "DHCP is off"))
		return
	}
	if err := s.Services.Leases.DeleteReservation(r.Context(), mac); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
