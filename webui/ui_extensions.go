package webui

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/provbox/provbox/appliance"
)

// The Extensions page: list, add, edit, delete (with a confirmation naming
// the phones when they use the extension). It is the model the other pages
// follow: GET renders, POST acts and redirects (or re-renders with the
// field errors and what was typed), every form carries the CSRF token.

type extensionsData struct {
	Extensions []*appliance.Extension
	Edit       *appliance.Extension // the one being edited, nil on the list
	Confirm    string               // "used by …" when a delete needs force
}

func (s *Server) extensionsPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	list, err := s.Services.Extensions.FindExtensions(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, _ := p.Data.(*extensionsData)
	if d == nil {
		d = &extensionsData{}
	}
	d.Extensions = list
	p.Data, p.Title, p.Active = d, "Extensions", "extensions"
	s.render(w, r, status, "extensions.html", p)
}

func (s *Server) handleExtensionsUI(w http.ResponseWriter, r *http.Request) {
	s.extensionsPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r)})
}

func extensionFromForm(f url.Values) *appliance.Extension {
	return &appliance.Extension{
		Number: f.Get("number"), Name: f.Get("name"), AuthUser: f.Get("auth_user"), Password: f.Get("password"),
		SIPServer: f.Get("sip_server"), Transport: f.Get("transport"), Voicemail: f.Get("voicemail"),
	}
}

func (s *Server) handleCreateExtensionUI(w http.ResponseWriter, r *http.Request) {
	e, err := s.Services.Extensions.CreateExtension(r.Context(), extensionFromForm(r.PostForm))
	if err != nil {
		p := &page{Form: r.PostForm, FlashError: true}
		p.Errors, p.Flash = formErrors(err)
		s.extensionsPage(w, r, http.StatusBadRequest, p)
		return
	}
	redirectBack(w, r, "/extensions", "Extension "+e.Number+" added, with its account key.")
}

func (s *Server) handleEditExtensionUI(w http.ResponseWriter, r *http.Request) {
	e, ok := s.extensionOf(w, r)
	if !ok {
		return
	}
	s.extensionsPage(w, r, http.StatusOK, &page{Data: &extensionsData{Edit: e}, Flash: flashOf(w, r)})
}

func (s *Server) handleUpdateExtensionUI(w http.ResponseWriter, r *http.Request) {
	e, ok := s.extensionOf(w, r)
	if !ok {
		return
	}
	id := e.ID
	f := r.PostForm
	str := func(k string) *string { v := f.Get(k); return &v }
	upd := appliance.ExtensionUpdate{Number: str("number"), Name: str("name"), AuthUser: str("auth_user"),
		SIPServer: str("sip_server"), Transport: str("transport"), Voicemail: str("voicemail")}
	if f.Get("password") != "" { // blank keeps the password
		upd.Password = str("password")
	}
	if _, err := s.Services.Extensions.UpdateExtension(r.Context(), id, upd); err != nil {
		p := &page{Form: f, FlashError: true, Data: &extensionsData{Edit: e}}
		p.Errors, p.Flash = formErrors(err)
		s.extensionsPage(w, r, http.StatusBadRequest, p)
		return
	}
	redirectBack(w, r, "/extensions", "Extension "+f.Get("number")+" saved; its phones are being resynced.")
}

func (s *Server) handleDeleteExtensionUI(w http.ResponseWriter, r *http.Request) {
	e, ok := s.extensionOf(w, r)
	if !ok {
		return
	}
	id := e.ID
	force := r.PostFormValue("force") == "true"
	if err := s.Services.Extensions.DeleteExtension(r.Context(), id, force); err != nil {
		if appliance.ErrorCode(err) == appliance.ECONFLICT {
			s.extensionsPage(w, r, http.StatusConflict, &page{Data: &extensionsData{Edit: e, Confirm: appliance.ErrorMessage(err)}})
			return
		}
		s.extensionsPage(w, r, http.StatusBadRequest, &page{Flash: appliance.ErrorMessage(err), FlashError: true})
		return
	}
	redirectBack(w, r, "/extensions", "Extension "+e.Number+" deleted.")
}

// extensionOf finds the extension of the path's {id}, answering 404 when
// there is none.
func (s *Server) extensionOf(w http.ResponseWriter, r *http.Request) (*appliance.Extension, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return nil, false
	}
	e, err := s.Services.Extensions.FindExtension(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return nil, false
	}
	return e, true
}
