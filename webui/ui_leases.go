package webui

import (
	"net/http"

	"github.com/provbox/provbox/appliance"
)

// Leases (/leases): the DHCP leases and reservations when provbox serves
// DHCP, else how phones find provbox without it.

func (s *Server) routesLeasesUI(mux *http.ServeMux) {
	mux.HandleFunc("GET /leases", s.ui(s.handleLeasesUI))
}

type leasesData struct {
	ProvisioningURL string
	Loopback        bool
	DHCP            string // the interface this provbox serves DHCP on; "": off
	Leases          []*appliance.Lease
	Reservations    []*appliance.Reservation
}

// handleLeasesUI lists the DHCP leases and reservations when provbox
// serves DHCP; otherwise it says how phones find provbox without it.
func (s *Server) handleLeasesUI(w http.ResponseWriter, r *http.Request) {
	u := s.settingsInForce().ProvisioningURL
	d := &leasesData{ProvisioningURL: u, Loopback: appliance.IsLoopbackURL(u)}
	if d.DHCP = s.dhcpInterface(); d.DHCP != "" && s.Services.Leases != nil {
		var err error
		if d.Leases, err = s.Services.Leases.FindLeases(r.Context()); err == nil {
			d.Reservations, err = s.Services.Leases.FindReservations(r.Context())
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	p := &page{Flash: flashOf(w, r), Title: "Leases", Active: "leases", Data: d}
	s.render(w, r, http.StatusOK, "leases.html", p)
}

// dhcpInterface is the interface DHCP is served on, "" when it is off.
func (s *Server) dhcpInterface() string {
	if s.DHCP == nil {
		return ""
	}
	return s.DHCP()
}
