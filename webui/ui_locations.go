package webui

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/provbox/provbox/appliance"
)

// Locations (/locations): where phones stand (the address an emergency
// call gives); a delete that phones stand in the way of asks again,
// naming them, with a force button.

func (s *Server) routesLocations(mux *http.ServeMux) {
	mux.HandleFunc("GET /locations", s.ui(s.handleLocationsUI))
	mux.HandleFunc("POST /locations", s.ui(s.handleCreateLocationUI))
	mux.HandleFunc("GET /locations/{id}", s.ui(s.handleEditLocationUI))
	mux.HandleFunc("POST /locations/{id}", s.ui(s.handleUpdateLocationUI))
	mux.HandleFunc("POST /locations/{id}/delete", s.ui(s.handleDeleteLocationUI))
}

type locationRow struct {
	*appliance.Location
	Phones []phoneRef
}

type locationsData struct {
	Locations []locationRow
	Edit      *appliance.Location // the one being edited, nil on the list
	Confirm   *locationRow        // a delete that needs force, with the phones at it
}

// phonesAt returns the phones at each location.
func (s *Server) phonesAt(r *http.Request) (map[int64][]phoneRef, error) {
	phones, err := s.Services.Phones.FindPhones(r.Context(), appliance.PhoneFilter{})
	if err != nil {
		return nil, err
	}
	at := map[int64][]phoneRef{}
	for _, p := range phones {
		if p.LocationID == nil {
			continue
		}
		at[*p.LocationID] = append(at[*p.LocationID], refOf(p, appliance.Model{}))
	}
	return at, nil
}

func (s *Server) locationsPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	list, err := s.Services.Locations.FindLocations(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	at, err := s.phonesAt(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := pageData[locationsData](p)
	d.Locations = nil
	for _, l := range list {
		d.Locations = append(d.Locations, locationRow{Location: l, Phones: at[l.ID]})
	}
	p.Data, p.Title, p.Active = d, "Locations", "locations"
	s.render(w, r, status, "locations.html", p)
}

func (s *Server) handleLocationsUI(w http.ResponseWriter, r *http.Request) {
	s.locationsPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r)})
}

func locationFromForm(f url.Values) *appliance.Location {
	return &appliance.Location{
		Name: f.Get("name"), Street: f.Get("street"), City: f.Get("city"), Region: f.Get("region"),
		PostalCode: f.Get("postal_code"), Country: f.Get("country"), CallbackNumber: f.Get("callback_number"),
	}
}

func (s *Server) handleCreateLocationUI(w http.ResponseWriter, r *http.Request) {
	l, err := s.Services.Locations.CreateLocation(r.Context(), locationFromForm(r.PostForm))
	if err != nil {
		p := &page{Form: r.PostForm}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.locationsPage(w, r, status, p)
		}
		return
	}
	redirectBack(w, r, "/locations", "Location "+l.Name+" added. Choose it on a phone's page to put the phone there.")
}

func (s *Server) handleEditLocationUI(w http.ResponseWriter, r *http.Request) {
	if l, ok := lookup(s, w, r, pathID, s.Services.Locations.FindLocation); ok {
		s.locationsPage(w, r, http.StatusOK, &page{Data: &locationsData{Edit: l}, Flash: flashOf(w, r)})
	}
}

func (s *Server) handleUpdateLocationUI(w http.ResponseWriter, r *http.Request) {
	l, ok := lookup(s, w, r, pathID, s.Services.Locations.FindLocation)
	if !ok {
		return
	}
	f := r.PostForm
	upd := appliance.LocationUpdate{Name: formPtr(f, "name"), Street: formPtr(f, "street"), City: formPtr(f, "city"),
		Region: formPtr(f, "region"), PostalCode: formPtr(f, "postal_code"), Country: formPtr(f, "country"),
		CallbackNumber: formPtr(f, "callback_number")}
	saved, err := s.Services.Locations.UpdateLocation(r.Context(), l.ID, upd)
	if err != nil {
		p := &page{Form: f, Data: &locationsData{Edit: l}}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.locationsPage(w, r, status, p)
		}
		return
	}
	msg := "Location " + saved.Name + " saved."
	if at, err := s.phonesAt(r); err == nil && len(at[l.ID]) > 0 {
		verb := "are"
		if len(at[l.ID]) == 1 {
			verb = "is"
		}
		msg += fmt.Sprintf(" Its %s %s being resynced.", appliance.Count(len(at[l.ID]), "phone", "phones"), verb)
	}
	redirectBack(w, r, "/locations", msg)
}

func (s *Server) handleDeleteLocationUI(w http.ResponseWriter, r *http.Request) {
	l, ok := lookup(s, w, r, pathID, s.Services.Locations.FindLocation)
	if !ok {
		return
	}
	force := r.PostFormValue("force") == "true"
	if err := s.Services.Locations.DeleteLocation(r.Context(), l.ID, force); err != nil {
		if appliance.ErrorCode(err) == appliance.ECONFLICT {
			at, _ := s.phonesAt(r)
			s.locationsPage(w, r, http.StatusConflict, &page{Data: &locationsData{Confirm: &locationRow{Location: l, Phones: at[l.ID]}}})
			return
		}
		p := &page{}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.locationsPage(w, r, status, p)
		}
		return
	}
	redirectBack(w, r, "/locations", "Location "+l.Name+" deleted.")
}
