package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// The Extensions page: list, add, edit, delete (with a confirmation naming
// the phones when they use the extension). It is the model the other pages
// follow: GET renders, POST acts and redirects (or re-renders with the
// field errors and what was typed, at formFailed's status: 400, 409 for a
// duplicate), every form carries the CSRF token; an error that is not the
// admin's to correct is fail's HTML error page (errors.go).

func (s *Server) routesExtensions(mux *http.ServeMux) {
	mux.HandleFunc("GET /extensions", s.ui(s.handleExtensionsUI))
	mux.HandleFunc("POST /extensions", s.ui(s.handleCreateExtensionUI))
	mux.HandleFunc("GET /extensions/{id}", s.ui(s.handleEditExtensionUI))
	mux.HandleFunc("POST /extensions/{id}", s.ui(s.handleUpdateExtensionUI))
	mux.HandleFunc("POST /extensions/{id}/delete", s.ui(s.handleDeleteExtensionUI))
}

type extensionsData struct {
	Extensions []*appliance.Extension
	Edit       *appliance.Extension // the one being edited, nil on the list
	Confirm    *extensionConfirm    // a delete that needs force
}

// extensionConfirm is what deleting an extension would do to the phones
// that hold its account key.
type extensionConfirm struct {
	Phones []appliance.ExtensionPhone
	// Stranded are the phones left with no account key at all: they
	// would register nothing (not ready). Keep are the others.
	Stranded, Keep []appliance.ExtensionPhone
	// Message is the store's refusal, shown only when the phones cannot
	// be listed.
	Message string
}

// StrandedTitles names the phones left without an account key.
func (c *extensionConfirm) StrandedTitles() string { return phoneTitles(c.Stranded) }

// KeepTitles names the phones that keep another account key.
func (c *extensionConfirm) KeepTitles() string { return phoneTitles(c.Keep) }

// phoneTitles names phones in a sentence: "A", "A and B", "A, B and C",
// at most 5 and then "and N more".
func phoneTitles(phones []appliance.ExtensionPhone) string {
	var names []string
	for i, p := range phones {
		if i == 5 {
			names = append(names, fmt.Sprintf("%d more", len(phones)-i))
			break
		}
		names = append(names, p.Title())
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// splitStranded sorts phones into those left without an account key and
// those that keep another.
func splitStranded(phones []appliance.ExtensionPhone) (stranded, keep []appliance.ExtensionPhone) {
	for _, p := range phones {
		if p.KeepsAccount {
			keep = append(keep, p)
		} else {
			stranded = append(stranded, p)
		}
	}
	return stranded, keep
}

func (s *Server) extensionsPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	list, err := s.Services.Extensions.FindExtensions(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := pageData[extensionsData](p)
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
		p := &page{Form: r.PostForm}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.extensionsPage(w, r, status, p)
		}
		return
	}
	redirectBack(w, r, "/extensions", "Extension "+e.Number+" added, with its account key.")
}

func (s *Server) handleEditExtensionUI(w http.ResponseWriter, r *http.Request) {
	e, ok := lookup(s, w, r, pathID, s.Services.Extensions.FindExtension)
	if !ok {
		return
	}
	s.extensionsPage(w, r, http.StatusOK, &page{Data: &extensionsData{Edit: e}, Flash: flashOf(w, r)})
}

func (s *Server) handleUpdateExtensionUI(w http.ResponseWriter, r *http.Request) {
	e, ok := lookup(s, w, r, pathID, s.Services.Extensions.FindExtension)
	if !ok {
		return
	}
	f := r.PostForm
	upd := appliance.ExtensionUpdate{Number: formPtr(f, "number"), Name: formPtr(f, "name"), AuthUser: formPtr(f, "auth_user"),
		SIPServer: formPtr(f, "sip_server"), Transport: formPtr(f, "transport"), Voicemail: formPtr(f, "voicemail")}
	if f.Get("password") != "" { // blank keeps the password
		upd.Password = formPtr(f, "password")
	}
	saved, err := s.Services.Extensions.UpdateExtension(r.Context(), e.ID, upd)
	if err != nil {
		p := &page{Form: f, Data: &extensionsData{Edit: e}}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.extensionsPage(w, r, status, p)
		}
		return
	}
	redirectBack(w, r, "/extensions", "Extension "+saved.Number+" saved; its phones are being resynced.")
}

func (s *Server) handleDeleteExtensionUI(w http.ResponseWriter, r *http.Request) {
	e, ok := lookup(s, w, r, pathID, s.Services.Extensions.FindExtension)
	if !ok {
		return
	}
	id := e.ID
	force := r.PostFormValue("force") == "true"
	var stranded []appliance.ExtensionPhone
	if force {
		// What the delete does to the phones, for the flash.
		if phones, err := s.Services.Extensions.ExtensionPhones(r.Context(), id); err == nil {
			stranded, _ = splitStranded(phones)
		}
	}
	if err := s.Services.Extensions.DeleteExtension(r.Context(), id, force); err != nil {
		if appliance.ErrorCode(err) == appliance.ECONFLICT {
			c := &extensionConfirm{Message: appliance.ErrorMessage(err)}
			if phones, err := s.Services.Extensions.ExtensionPhones(r.Context(), id); err == nil && len(phones) > 0 {
				c.Phones = phones
				c.Stranded, c.Keep = splitStranded(phones)
			}
			s.extensionsPage(w, r, http.StatusConflict, &page{Data: &extensionsData{Edit: e, Confirm: c}})
			return
		}
		p := &page{}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.extensionsPage(w, r, status, p)
		}
		return
	}
	msg := "Extension " + e.Number + " deleted."
	switch n := len(stranded); {
	case n == 1:
		msg += " " + phoneTitles(stranded) + " now has no account key and will not register (not ready): put an extension's account key on its line keys."
	case n > 1:
		msg += " " + phoneTitles(stranded) + " now have no account key and will not register (not ready): put an extension's account key on their line keys."
	}
	redirectBack(w, r, "/extensions", msg)
}
