package webui

import (
	"net/http"

	"github.com/provbox/provbox/appliance"
)

// Discovered (/discovered): the phones that asked provbox for their config,
// or were seen in DHCP or SIP PnP, but are not added yet, most recently
// seen first, each with Adopt (the Add phone form, prefilled).

func (s *Server) routesDiscovered(mux *http.ServeMux) {
	mux.HandleFunc("GET /discovered", s.ui(s.handleDiscoveredUI))
}

type discoveredRow struct {
	*appliance.Discovered
	Supported bool // its vendor is one provbox provisions
	Source    string
}

var discoverySources = map[string]string{"http": "HTTP fetch", "tftp": "TFTP fetch", "dhcp": "DHCP lease", "pnp": "SIP PnP"}

// discoveredData is one page of the Discovered list.
type discoveredData struct {
	Rows               []discoveredRow
	Total, First, Last int // rows First..Last (1-based) of Total
	PrevPage, NextPage int // 0: none
}

const discoveredPageSize = 100

func (s *Server) handleDiscoveredUI(w http.ResponseWriter, r *http.Request) {
	pageNo, err := queryInt(r, "page", 1, appliance.MaxDiscovered)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pageNo = max(pageNo, 1)
	list, total, err := s.Services.Discovery.PageDiscovered(r.Context(), (pageNo-1)*discoveredPageSize, discoveredPageSize)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := &discoveredData{Total: total}
	if len(list) > 0 {
		d.First = (pageNo-1)*discoveredPageSize + 1
		d.Last = d.First + len(list) - 1
	}
	if pageNo > 1 {
		d.PrevPage = pageNo - 1
	}
	if pageNo*discoveredPageSize < total {
		d.NextPage = pageNo + 1
	}
	rows := make([]discoveredRow, 0, len(list))
	for _, d := range list {
		_, supported := s.Catalog.Manufacturer(d.Vendor)
		src := discoverySources[d.Source]
		if src == "" {
			src = d.Source
		}
		rows = append(rows, discoveredRow{Discovered: d, Supported: supported, Source: src})
	}
	d.Rows = rows
	s.render(w, r, http.StatusOK, "discovered.html", &page{Title: "Discovered phones", Active: "discovered", Flash: flashOf(w, r), Data: d})
}
