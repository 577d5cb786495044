package webui

import (
	"bytes"
	"context"
	"mime"
	"net/http"

	"github.com/provbox/provbox/appliance"
)

// The create bodies are their own types so that read-only fields (id, sync,
// password_set, attached_to…) are refused as unknown rather than silently
// ignored, and so that write-only ones (an extension's password) can be
// read at all.

type extensionInput struct {
	Number    string `json:"number"`
	Name      string `json:"name"`
	AuthUser  string `json:"auth_user"`
	Password  string `json:"password"`
	SIPServer string `json:"sip_server"`
	Transport string `json:"transport"`
	Voicemail string `json:"voicemail"`
}

type locationInput struct {
	Name           string `json:"name"`
	Street         string `json:"street"`
	City           string `json:"city"`
	Region         string `json:"region"`
	PostalCode     string `json:"postal_code"`
	Country        string `json:"country"`
	CallbackNumber string `json:"callback_number"`
}

type phoneInput struct {
	MAC          string `json:"mac"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	LocationID   *int64 `json:"location_id"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	// ExpansionModules is how many key modules are chained (default 0).
	ExpansionModules int    `json:"expansion_modules"`
	Extension        string `json:"extension"` // number whose account key goes to positions 1 and 2
}

type keyInput struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Label string `json:"label"`
}

// update answers PATCH /{id} or /{mac}: it reads the update (a struct of
// pointer fields, JSON) and applies it with upd to the thing of the path's
// key; ok is false when it has answered an error.
func update[K, U, T any](s *Server, w http.ResponseWriter, r *http.Request, key func(*http.Request) (K, error), upd func(context.Context, K, U) (T, error)) (v T, ok bool) {
	var in U
	k, err := key(r)
	if err == nil {
		err = s.readJSON(w, r, &in)
	}
	if err == nil {
		v, err = upd(r.Context(), k, in)
	}
	if err != nil {
		s.fail(w, r, err)
		return v, false
	}
	return v, true
}

// deleteByID answers DELETE /{id}?force=true|false: 204 once del has
// deleted the thing of the path's id.
func (s *Server) deleteByID(w http.ResponseWriter, r *http.Request, del func(ctx context.Context, id int64, force bool) error) {
	id, err := pathID(r)
	var force bool
	if err == nil {
		force, _, err = queryBool(r, "force")
	}
	if err == nil {
		err = del(r.Context(), id, force)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Extensions.

func (s *Server) handleListExtensions(w http.ResponseWriter, r *http.Request) {
	exts, err := s.Services.Extensions.FindExtensions(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, nonNil(exts))
}

func (s *Server) handleCreateExtension(w http.ResponseWriter, r *http.Request) {
	var in extensionInput
	if err := s.readJSON(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	ext, err := s.Services.Extensions.CreateExtension(r.Context(), &appliance.Extension{
		Number: in.Number, Name: in.Name, AuthUser: in.AuthUser, Password: in.Password,
		SIPServer: in.SIPServer, Transport: in.Transport, Voicemail: in.Voicemail,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, ext)
}

func (s *Server) handleGetExtension(w http.ResponseWriter, r *http.Request) {
	if v, ok := lookup(s, w, r, pathID, s.Services.Extensions.FindExtension); ok {
		s.writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleUpdateExtension(w http.ResponseWriter, r *http.Request) {
	if v, ok := update(s, w, r, pathID, s.Services.Extensions.UpdateExtension); ok {
		s.writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleDeleteExtension(w http.ResponseWriter, r *http.Request) {
	s.deleteByID(w, r, s.Services.Extensions.DeleteExtension)
}

// Locations.

func (s *Server) handleListLocations(w http.ResponseWriter, r *http.Request) {
	locs, err := s.Services.Locations.FindLocations(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, nonNil(locs))
}

func (s *Server) handleCreateLocation(w http.ResponseWriter, r *http.Request) {
	var in locationInput
	if err := s.readJSON(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	loc, err := s.Services.Locations.CreateLocation(r.Context(), &appliance.Location{
		Name: in.Name, Street: in.Street, City: in.City, Region: in.Region,
		PostalCode: in.PostalCode, Country: in.Country, CallbackNumber: in.CallbackNumber,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, loc)
}

func (s *Server) handleGetLocation(w http.ResponseWriter, r *http.Request) {
	if v, ok := lookup(s, w, r, pathID, s.Services.Locations.FindLocation); ok {
		s.writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleUpdateLocation(w http.ResponseWriter, r *http.Request) {
	if v, ok := update(s, w, r, pathID, s.Services.Locations.UpdateLocation); ok {
		s.writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleDeleteLocation(w http.ResponseWriter, r *http.Request) {
	s.deleteByID(w, r, s.Services.Locations.DeleteLocation)
}

// Phones.

func (s *Server) handleListPhones(w http.ResponseWriter, r *http.Request) {
	phones, err := s.Services.Phones.FindPhones(r.Context(), appliance.PhoneFilter{Q: r.URL.Query().Get("q")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, nonNil(phones))
}

func (s *Server) handleCreatePhone(w http.ResponseWriter, r *http.Request) {
	var in phoneInput
	if err := s.readJSON(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	ph, err := s.Services.Phones.CreatePhone(r.Context(), &appliance.Phone{
		MAC: in.MAC, Name: in.Name, Description: in.Description, LocationID: in.LocationID,
		Manufacturer: in.Manufacturer, Model: in.Model, ExpansionModules: in.ExpansionModules,
	}, in.Extension)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, ph)
}

func (s *Server) handleGetPhone(w http.ResponseWriter, r *http.Request) {
	if v, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone); ok {
		s.writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleUpdatePhone(w http.ResponseWriter, r *http.Request) {
	if v, ok := update(s, w, r, pathMAC, s.Services.Phones.UpdatePhone); ok {
		s.writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleDeletePhone(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Services.Phones.DeletePhone(r.Context(), mac); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleGetLayout(w http.ResponseWriter, r *http.Request) {
	if v, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindLayout); ok {
		s.writeJSON(w, http.StatusOK, nonNil(v))
	}
}

// handleReplaceLayout takes an array of {"position", "key_id", "module"}
// (module optional: 0, the phone itself). An entry without key_id names
// its key by "type", "value" and "label" (label defaults to the value; an
// account key by its extension's number): the existing key, else created
// in the same transaction. Otherwise the type,
// value and label that GET adds are accepted and ignored, so a client can
// send back what it read.
func (s *Server) handleReplaceLayout(w http.ResponseWriter, r *http.Request) {
	mac, err := pathMAC(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var layout []appliance.LayoutEntry
	if err := s.readJSON(w, r, &layout); err != nil {
		s.fail(w, r, err)
		return
	}
	if layout == nil {
		layout = []appliance.LayoutEntry{}
	}
	for i := range layout {
		e := layout[i]
		if e.KeyID != 0 {
			e.Type, e.Value, e.Label = "", "", "" // what GET added: the key is key_id
		}
		layout[i] = e
	}
	layout, err = s.Services.Phones.ReplaceLayout(r.Context(), mac, layout)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, nonNil(layout))
}

// handleExportPhones answers the phones CSV (the columns of
// appliance.CSVColumns).
func (s *Server) handleExportPhones(w http.ResponseWriter, r *http.Request) {
	s.exportPhones(w, r, "phones.csv")
}

// exportPhones answers the phones CSV as a download named name, built in
// memory first so that a failure is still a clean error answer.
func (s *Server) exportPhones(w http.ResponseWriter, r *http.Request, name string) {
	phones, err := s.Services.Import.ExportPhones(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := appliance.WriteCSV(&buf, phones); err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// handleImportPhones reads a phones CSV as the body (up to 16 MiB) and
// imports it all or nothing; ?dry_run=true only checks it.
func (s *Server) handleImportPhones(w http.ResponseWriter, r *http.Request) {
	dryRun, _, err := queryBool(r, "dry_run")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	phones, err := appliance.ParseCSV(http.MaxBytesReader(w, r.Body, s.csvMaxBody), s.Catalog)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.Services.Import.ImportPhones(r.Context(), phones, dryRun)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, res)
}

// Keys.

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := appliance.KeyFilter{Type: q.Get("type"), Value: q.Get("value"), Label: q.Get("label"), Q: q.Get("q")}
	attached, set, err := queryBool(r, "attached")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if set {
		f.Attached = &attached
	}
	keys, err := s.Services.Keys.FindKeys(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, k := range keys {
		fixAttached(k)
	}
	s.writeJSON(w, http.StatusOK, nonNil(keys))
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	var in keyInput
	if err := s.readJSON(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	k, err := s.Services.Keys.CreateKey(r.Context(), &appliance.Key{Type: in.Type, Value: in.Value, Label: in.Label})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusCreated, fixAttached(k))
}

func (s *Server) handleGetKey(w http.ResponseWriter, r *http.Request) {
	if v, ok := lookup(s, w, r, pathID, s.Services.Keys.FindKey); ok {
		s.writeJSON(w, http.StatusOK, fixAttached(v))
	}
}

func (s *Server) handleUpdateKey(w http.ResponseWriter, r *http.Request) {
	if v, ok := update(s, w, r, pathID, s.Services.Keys.UpdateKey); ok {
		s.writeJSON(w, http.StatusOK, fixAttached(v))
	}
}

func (s *Server) handleDeleteKey(w http.ResponseWriter, r *http.Request) {
	s.deleteByID(w, r, s.Services.Keys.DeleteKey)
}

// fixAttached makes a key's attached_to "[]" rather than "null" when no
// phone uses it.
func fixAttached(k *appliance.Key) *appliance.Key {
	if k != nil && k.AttachedTo == nil {
		k.AttachedTo = []string{}
	}
	return k
}
