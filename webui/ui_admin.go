package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// The admin pages besides phones and extensions: Button Configurations
// (/keys), Locations, Leases, Settings and Users. They follow the
// Extensions page: GET renders, POST acts and redirects with a flash (or
// re-renders with the field errors and what was typed), and a delete that
// phones stand in the way of asks again, naming them, with a force button.

func (s *Server) routesAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /keys", s.ui(s.handleKeysUI))
	mux.HandleFunc("POST /keys", s.ui(s.handleCreateKeyUI))
	mux.HandleFunc("GET /keys/{id}", s.ui(s.handleKeyLinkUI))
	mux.HandleFunc("POST /keys/{id}", s.ui(s.handleUpdateKeyUI))
	mux.HandleFunc("POST /keys/{id}/delete", s.ui(s.handleDeleteKeyUI))

	mux.HandleFunc("GET /locations", s.ui(s.handleLocationsUI))
	mux.HandleFunc("POST /locations", s.ui(s.handleCreateLocationUI))
	mux.HandleFunc("GET /locations/{id}", s.ui(s.handleEditLocationUI))
	mux.HandleFunc("POST /locations/{id}", s.ui(s.handleUpdateLocationUI))
	mux.HandleFunc("POST /locations/{id}/delete", s.ui(s.handleDeleteLocationUI))

	mux.HandleFunc("GET /leases", s.ui(s.handleLeasesUI))

	mux.HandleFunc("GET /settings", s.ui(s.handleSettingsUI))
	mux.HandleFunc("POST /settings", s.ui(s.handleSaveSettingsUI))

	mux.HandleFunc("GET /users", s.ui(s.handleUsersUI))
	mux.HandleFunc("POST /users", s.ui(s.handleCreateUserUI))
	mux.HandleFunc("POST /users/{name}/password", s.ui(s.handleSetPasswordUI))
	mux.HandleFunc("POST /users/{name}/delete", s.ui(s.handleDeleteUserUI))
}

// phoneRef is a phone as the pages name it: by name when it has one, else
// by its MAC with colons; it links to /phones/{mac}.
type phoneRef struct {
	MAC, Name string
	Model     appliance.Model // zero when the phone cannot be found
}

// phoneRefs looks the names of phones up; a phone that cannot be found is
// named by its MAC. It also returns the models of all phones, each once.
func (s *Server) phoneRefs(r *http.Request) (func(mac string) phoneRef, []appliance.Model) {
	names := map[string]string{}
	models := map[string]appliance.Model{}
	var inUse []appliance.Model
	if s.Services.Phones != nil {
		if phones, err := s.Services.Phones.FindPhones(r.Context(), appliance.PhoneFilter{}); err == nil {
			for _, p := range phones {
				names[p.MAC] = p.Name
				m, ok := s.Catalog.Lookup(p.Manufacturer, p.Model)
				models[p.MAC] = m
				if ok && !slices.ContainsFunc(inUse, func(x appliance.Model) bool { return x.Name == m.Name }) {
					inUse = append(inUse, m)
				}
			}
		}
	}
	return func(mac string) phoneRef {
		name := names[mac]
		if name == "" || name == mac {
			name = appliance.FormatMAC(mac)
		}
		return phoneRef{MAC: mac, Name: name, Model: models[mac]}
	}, inUse
}

// labelHint says how many characters of a label the models show, the
// most first: "T46U phones show 16 characters, T33G 8". Models showing
// the same count are named together ("T46U and T48U phones show 16
// characters"). Empty when none is known.
func labelHint(models []appliance.Model) string {
	byChars := map[int][]string{}
	var counts []int
	for _, m := range models {
		if m.LabelChars <= 0 {
			continue
		}
		if _, ok := byChars[m.LabelChars]; !ok {
			counts = append(counts, m.LabelChars)
		}
		if !slices.Contains(byChars[m.LabelChars], m.Name) {
			byChars[m.LabelChars] = append(byChars[m.LabelChars], m.Name)
		}
	}
	if len(counts) == 0 {
		return ""
	}
	slices.SortFunc(counts, func(a, b int) int { return b - a })
	var parts []string
	for i, n := range counts {
		names := byChars[n]
		slices.Sort(names)
		if len(names) > 3 {
			names = append(names[:3], fmt.Sprintf("%d more", len(names)-3))
		}
		who := strings.Join(names[:len(names)-1], ", ")
		if who != "" {
			who += " and "
		}
		who += names[len(names)-1]
		if i == 0 {
			parts = append(parts, fmt.Sprintf("%s phones show %s", who, appliance.Count(n, "character", "characters")))
		} else {
			parts = append(parts, fmt.Sprintf("%s %d", who, n))
		}
	}
	return strings.Join(parts, ", ")
}

// minLabelChars is the fewest label characters any of the models shows,
// 0 when none is known.
func minLabelChars(models []appliance.Model) int {
	least := 0
	for _, m := range models {
		if m.LabelChars > 0 && (least == 0 || m.LabelChars < least) {
			least = m.LabelChars
		}
	}
	return least
}

// flashMessage is an error as a flash says it: the message without the
// field prefix ("name: ") that an API client needs.
func flashMessage(err error) string {
	if all := appliance.AllErrors(err); len(all) > 0 {
		return all[0].Message
	}
	return appliance.ErrorMessage(err)
}

func namesOf(phones []phoneRef) string {
	names := make([]string, 0, len(phones))
	for _, p := range phones {
		names = append(names, p.Name)
	}
	if len(names) > 10 {
		names = append(names[:10], fmt.Sprintf("and %d more", len(names)-10))
	}
	return strings.Join(names, ", ")
}

// ---- Button Configurations ----

// keyQuery is the state of the Button Configurations list, all of it in
// the query string so that a search is a link: the search fields (type,
// value, label, q) and the toggles (accounts=hide, attached=true|false).
type keyQuery struct {
	Type, Value, Label, Q string
	Accounts              string // "hide": no account keys
	Attached              string // "true": keys on a phone; "false": keys on no phone; "": all
}

func keyQueryFrom(v url.Values) keyQuery {
	q := keyQuery{
		Type: strings.TrimSpace(v.Get("type")), Value: strings.TrimSpace(v.Get("value")),
		Label: strings.TrimSpace(v.Get("label")), Q: strings.TrimSpace(v.Get("q")),
	}
	if v.Get("accounts") == "hide" {
		q.Accounts = "hide"
	}
	if a := v.Get("attached"); a == "true" || a == "false" {
		q.Attached = a
	}
	return q
}

func (q keyQuery) values() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"type", q.Type}, {"value", q.Value}, {"label", q.Label}, {"q", q.Q}, {"accounts", q.Accounts}, {"attached", q.Attached}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

// URL is /keys with this query.
func (q keyQuery) URL() string {
	if e := q.values().Encode(); e != "" {
		return "/keys?" + e
	}
	return "/keys"
}

// Encode is the query string (for the hidden "back" field of forms).
func (q keyQuery) Encode() string { return q.values().Encode() }

// Cleared is the query without the search, toggles kept.
func (q keyQuery) Cleared() keyQuery { return keyQuery{Accounts: q.Accounts, Attached: q.Attached} }

// Searching reports whether the search fields narrow the list.
func (q keyQuery) Searching() bool {
	return q.Type != "" || q.Value != "" || q.Label != "" || q.Q != ""
}

func (q keyQuery) filter() appliance.KeyFilter {
	f := appliance.KeyFilter{Type: q.Type, Value: q.Value, Label: q.Label, Q: q.Q}
	if q.Attached != "" {
		b := q.Attached == "true"
		f.Attached = &b
	}
	return f
}

// toggle is a Show/Hide link; the current choice is shown, not linked.
type toggle struct {
	Label, URL string
	Current    bool
}

type toggleGroup struct {
	Name  string
	Links []toggle
}

type keyRow struct {
	*appliance.Key
	Phones []phoneRef
	// Cut is the label as the phone that shows the fewest characters of it
	// shows it (SPEC §3: a warning, not a refusal), with that model and
	// count; empty when every phone it is on shows it whole.
	Cut, CutModel string
	CutChars      int
}

// LabelHint says how many label characters the phones the key is on show.
func (row *keyRow) LabelHint() string {
	var models []appliance.Model
	for _, p := range row.Phones {
		models = append(models, p.Model)
	}
	return labelHint(models)
}

// labelCut finds the attached phone whose model shows the fewest label
// characters, and what it shows of the key's label when that is less.
func (row *keyRow) labelCut() {
	for _, p := range row.Phones {
		n := p.Model.LabelChars
		if n <= 0 || (row.CutChars > 0 && n >= row.CutChars) {
			continue
		}
		if cut, ok := cutLabel(row.Label, n); ok {
			row.Cut, row.CutModel, row.CutChars = cut+"…", p.Model.Name, n
		}
	}
}

type keysData struct {
	Keys     []keyRow
	Total    int // keys before the toggles and search, to tell "none yet" from "none match"
	Query    keyQuery
	Toggles  []toggleGroup
	Types    []string // the types the add and edit forms offer
	AllTypes []string // the types the search offers
	EditID   int64    // the row shown as inputs
	Confirm  *keyRow  // a delete that needs force
	// LabelHint says how many label characters the models of the phones
	// in use show, LabelChars the fewest of them (0: no phone yet): what
	// a new key's label should fit in.
	LabelHint  string
	LabelChars int
	// failed is the form whose submission p.Form and p.Errors hold: "add"
	// or "edit".
	failed string
	form   url.Values
	errs   map[string]string
}

// AddVal is what was typed into the add form's field, else def.
func (d *keysData) AddVal(field, def string) string {
	if d.failed == "add" {
		if _, ok := d.form[field]; ok {
			return d.form.Get(field)
		}
	}
	return def
}

// AddErr is the add form's error for a field.
func (d *keysData) AddErr(field string) string {
	if d.failed == "add" {
		return d.errs[field]
	}
	return ""
}

// EditVal is what was typed into the edited row's field, else def.
func (d *keysData) EditVal(field, def string) string {
	if d.failed == "edit" {
		if _, ok := d.form[field]; ok {
			return d.form.Get(field)
		}
	}
	return def
}

// EditErr is the edited row's error for a field.
func (d *keysData) EditErr(field string) string {
	if d.failed == "edit" {
		return d.errs[field]
	}
	return ""
}

// EditURL is the list as it is, with key id's row as inputs.
func (d *keysData) EditURL(id int64) string {
	v := d.Query.values()
	v.Set("edit", strconv.FormatInt(id, 10))
	return "/keys?" + v.Encode() + "#key-" + strconv.FormatInt(id, 10)
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request, status int, p *page, d *keysData) {
	ctx := r.Context()
	list, err := s.Services.Keys.FindKeys(ctx, d.Query.filter())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	all, err := s.Services.Keys.FindKeys(ctx, appliance.KeyFilter{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ref, inUse := s.phoneRefs(r)
	d.LabelHint, d.LabelChars = labelHint(inUse), minLabelChars(inUse)
	d.Total = len(all)
	d.Keys = d.Keys[:0]
	for _, k := range list {
		if d.Query.Accounts == "hide" && k.Type == appliance.KeyAccount {
			continue
		}
		row := keyRow{Key: k}
		for _, mac := range k.AttachedTo {
			row.Phones = append(row.Phones, ref(mac))
		}
		row.labelCut()
		d.Keys = append(d.Keys, row)
	}
	if d.Confirm != nil {
		d.Confirm.Phones = nil
		for _, mac := range d.Confirm.AttachedTo {
			d.Confirm.Phones = append(d.Confirm.Phones, ref(mac))
		}
	}
	with := func(param, value string) string {
		v := d.Query.values()
		if value == "" {
			v.Del(param)
		} else {
			v.Set(param, value)
		}
		if e := v.Encode(); e != "" {
			return "/keys?" + e
		}
		return "/keys"
	}
	q := d.Query
	d.Toggles = []toggleGroup{
		{"Account keys", []toggle{
			{"Show", with("accounts", ""), q.Accounts == ""},
			{"Hide", with("accounts", "hide"), q.Accounts == "hide"},
		}},
		{"Phones", []toggle{
			{"All keys", with("attached", ""), q.Attached == ""},
			{"Only keys on a phone", with("attached", "true"), q.Attached == "true"},
			{"Only keys on no phone", with("attached", "false"), q.Attached == "false"},
		}},
	}
	d.AllTypes = appliance.KeyTypes
	d.Types = []string{appliance.KeyBLF, appliance.KeySpeedDial, appliance.KeyPark, appliance.KeyPrefix}
	if d.failed != "" {
		d.form, d.errs = p.Form, p.Errors
	}
	p.Data, p.Title, p.Active = d, "Button Configurations", "keys"
	s.render(w, r, status, "keys.html", p)
}

// backQuery is the list state a form came from (its hidden "back" field).
func backQuery(r *http.Request) keyQuery {
	v, _ := url.ParseQuery(r.PostFormValue("back"))
	return keyQueryFrom(v)
}

func (s *Server) handleKeysUI(w http.ResponseWriter, r *http.Request) {
	d := &keysData{Query: keyQueryFrom(r.URL.Query())}
	if id, err := strconv.ParseInt(r.URL.Query().Get("edit"), 10, 64); err == nil {
		d.EditID = id
	}
	s.keysPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r)}, d)
}

// handleKeyLinkUI sends /keys/{id} (where a failed edit leaves the
// browser) to the list with that row open for editing.
func (s *Server) handleKeyLinkUI(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	http.Redirect(w, r, "/keys?edit="+strconv.FormatInt(id, 10)+"#key-"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

func keyTitle(k *appliance.Key) string {
	t := funcs["keytype"].(func(string) string)(k.Type) + " " + k.Value
	if k.Label != "" && k.Label != k.Value {
		t += " “" + k.Label + "”"
	}
	return t
}

func (s *Server) handleCreateKeyUI(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	q := backQuery(r)
	k, err := s.Services.Keys.CreateKey(r.Context(), &appliance.Key{Type: f.Get("type"), Value: f.Get("value"), Label: f.Get("label")})
	if err != nil {
		if appliance.ErrorField(err) == "" {
			s.keysPage(w, r, statusOf(err), &page{Flash: flashMessage(err), FlashError: true}, &keysData{Query: q})
			return
		}
		// A rule broken or a duplicate (409): at its field, as typed.
		p := &page{Form: f, FlashError: true}
		p.Errors, p.Flash = formErrors(err)
		s.keysPage(w, r, statusOf(err), p, &keysData{Query: q, failed: "add"})
		return
	}
	redirectBack(w, r, q.URL(), "Key "+keyTitle(k)+" added. Put it on a phone's line keys from the phone's page.")
}

func (s *Server) handleUpdateKeyUI(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	q := backQuery(r)
	f := r.PostForm
	str := func(k string) *string {
		if _, ok := f[k]; !ok {
			return nil
		}
		v := f.Get(k)
		return &v
	}
	k, err := s.Services.Keys.UpdateKey(r.Context(), id, appliance.KeyUpdate{Type: str("type"), Value: str("value"), Label: str("label")})
	if err != nil {
		code, field := appliance.ErrorCode(err), appliance.ErrorField(err)
		switch {
		case code == appliance.ENOTFOUND:
			http.NotFound(w, r)
		case (code == appliance.EINVALID || code == appliance.ECONFLICT) && field != "" && field != "id":
			// A rule broken or a duplicate (409): at its field in the
			// row, as typed.
			p := &page{Form: f, FlashError: true}
			p.Errors, p.Flash = formErrors(err)
			s.keysPage(w, r, statusOf(err), p, &keysData{Query: q, EditID: id, failed: "edit"})
		case code == appliance.EINVALID || code == appliance.ECONFLICT:
			s.keysPage(w, r, statusOf(err), &page{Flash: flashMessage(err), FlashError: true}, &keysData{Query: q})
		default:
			s.writeError(w, r, err)
		}
		return
	}
	msg := "Key " + keyTitle(k) + " saved."
	if len(k.AttachedTo) > 0 {
		ref, _ := s.phoneRefs(r)
		var phones []phoneRef
		for _, mac := range k.AttachedTo {
			phones = append(phones, ref(mac))
		}
		verb := "is"
		if len(phones) > 1 {
			verb = "are"
		}
		msg += fmt.Sprintf(" Its %s %s being updated: %s.", appliance.Count(len(phones), "phone", "phones"), verb, namesOf(phones))
	}
	redirectBack(w, r, q.URL(), msg)
}

func (s *Server) handleDeleteKeyUI(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	q := backQuery(r)
	k, err := s.Services.Keys.FindKey(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	force := r.PostFormValue("force") == "true"
	if err := s.Services.Keys.DeleteKey(r.Context(), id, force); err != nil {
		if appliance.ErrorCode(err) == appliance.ECONFLICT {
			if k.Type == appliance.KeyAccount {
				s.keysPage(w, r, http.StatusConflict, &page{Flash: flashMessage(err), FlashError: true}, &keysData{Query: q})
				return
			}
			if now, err := s.Services.Keys.FindKey(r.Context(), id); err == nil {
				k = now // the phones as of now
			}
			s.keysPage(w, r, http.StatusConflict, &page{}, &keysData{Query: q, Confirm: &keyRow{Key: k}})
			return
		}
		s.keysPage(w, r, statusOf(err), &page{Flash: flashMessage(err), FlashError: true}, &keysData{Query: q})
		return
	}
	msg := "Key " + keyTitle(k) + " deleted."
	if force && len(k.AttachedTo) > 0 {
		they := "they are"
		if len(k.AttachedTo) == 1 {
			they = "it is"
		}
		msg += fmt.Sprintf(" It was removed from %s; %s being resynced.", appliance.Count(len(k.AttachedTo), "phone", "phones"), they)
	}
	redirectBack(w, r, q.URL(), msg)
}

// ---- Locations ----

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
		name := p.Name
		if name == "" || name == p.MAC {
			name = appliance.FormatMAC(p.MAC)
		}
		at[*p.LocationID] = append(at[*p.LocationID], phoneRef{MAC: p.MAC, Name: name})
	}
	return at, nil
}

func (s *Server) locationsPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	list, err := s.Services.Locations.FindLocations(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	at, err := s.phonesAt(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, _ := p.Data.(*locationsData)
	if d == nil {
		d = &locationsData{}
	}
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
		p := &page{Form: r.PostForm, FlashError: true}
		p.Errors, p.Flash = formErrors(err)
		s.locationsPage(w, r, statusOf(err), p)
		return
	}
	redirectBack(w, r, "/locations", "Location "+l.Name+" added. Choose it on a phone's page to put the phone there.")
}

func (s *Server) findLocationUI(w http.ResponseWriter, r *http.Request) *appliance.Location {
	id, err := pathID(r)
	if err != nil {
		http.NotFound(w, r)
		return nil
	}
	l, err := s.Services.Locations.FindLocation(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return nil
	}
	return l
}

func (s *Server) handleEditLocationUI(w http.ResponseWriter, r *http.Request) {
	if l := s.findLocationUI(w, r); l != nil {
		s.locationsPage(w, r, http.StatusOK, &page{Data: &locationsData{Edit: l}, Flash: flashOf(w, r)})
	}
}

func (s *Server) handleUpdateLocationUI(w http.ResponseWriter, r *http.Request) {
	l := s.findLocationUI(w, r)
	if l == nil {
		return
	}
	f := r.PostForm
	str := func(k string) *string {
		if _, ok := f[k]; !ok {
			return nil
		}
		v := f.Get(k)
		return &v
	}
	upd := appliance.LocationUpdate{Name: str("name"), Street: str("street"), City: str("city"), Region: str("region"),
		PostalCode: str("postal_code"), Country: str("country"), CallbackNumber: str("callback_number")}
	saved, err := s.Services.Locations.UpdateLocation(r.Context(), l.ID, upd)
	if err != nil {
		p := &page{Form: f, FlashError: true, Data: &locationsData{Edit: l}}
		p.Errors, p.Flash = formErrors(err)
		s.locationsPage(w, r, statusOf(err), p)
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
	l := s.findLocationUI(w, r)
	if l == nil {
		return
	}
	force := r.PostFormValue("force") == "true"
	if err := s.Services.Locations.DeleteLocation(r.Context(), l.ID, force); err != nil {
		if appliance.ErrorCode(err) == appliance.ECONFLICT {
			at, _ := s.phonesAt(r)
			s.locationsPage(w, r, http.StatusConflict, &page{Data: &locationsData{Confirm: &locationRow{Location: l, Phones: at[l.ID]}}})
			return
		}
		s.locationsPage(w, r, statusOf(err), &page{Flash: flashMessage(err), FlashError: true})
		return
	}
	redirectBack(w, r, "/locations", "Location "+l.Name+" deleted.")
}

// statusOf is the status of a page re-rendered for a failed form: 409 for
// a conflict (a duplicate name), else 400.
func statusOf(err error) int {
	switch appliance.ErrorCode(err) {
	case appliance.ECONFLICT:
		return http.StatusConflict
	case appliance.EUNAVAILABLE:
		return http.StatusInsufficientStorage
	case appliance.EINTERNAL:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// ---- Leases ----

type leasesData struct {
	ProvisioningURL string
	Loopback        bool
	DHCP            string // the interface this provbox serves DHCP on; "": off
	Leases          []*appliance.Lease
	Reservations    []*appliance.Reservation
}

// settingsInForce are the merged settings, or the server's own when the
// services have no SettingsService.
func (s *Server) settingsInForce() appliance.Settings {
	if s.Services.Settings != nil {
		return s.Services.Settings.Settings()
	}
	if s.Settings != nil {
		return s.Settings()
	}
	return appliance.Settings{}
}

// handleLeasesUI lists the DHCP leases and reservations when provbox
// serves DHCP; otherwise it says how phones find provbox without it.
func (s *Server) handleLeasesUI(w http.ResponseWriter, r *http.Request) {
	u := s.settingsInForce().ProvisioningURL
	d := &leasesData{ProvisioningURL: u, Loopback: appliance.IsLoopbackURL(u)}
	if s.Services.Leases != nil {
		d.DHCP = s.Services.Leases.Serving()
	}
	if d.DHCP != "" {
		var err error
		if d.Leases, err = s.Services.Leases.FindLeases(r.Context()); err == nil {
			d.Reservations, err = s.Services.Leases.FindReservations(r.Context())
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	p := &page{Flash: flashOf(w, r), Title: "Leases", Active: "leases", Data: d}
	s.render(w, r, http.StatusOK, "leases.html", p)
}

// ---- Settings ----

// Precedence: the config file (provbox.toml and the serve flags) gives
// every setting; a value saved on this page is an override that wins over
// it. Saving stores an override only for a field whose value differs from
// the config file's, so a field left at the config file's value keeps
// following the config file (a later edit of the file takes effect). "Use
// the config file's value" (reset_<field>) drops a field's override. A field
// absent from a submission keeps its override as it is.

type settingsData struct {
	InForce, Base appliance.Settings
	Over          appliance.SettingsOverrides
	ClaimWindow   string // "24h0m0s" as an admin reads it: "24 hours"
	Unavailable   bool
	Loopback      bool // the provisioning URL names this machine, which phones cannot reach
}

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	d := &settingsData{}
	if svc := s.Services.Settings; svc != nil {
		d.InForce, d.Base, d.Over = svc.Settings(), svc.BaseSettings(), svc.Overrides()
	} else {
		d.Unavailable = true
		d.InForce = s.settingsInForce()
		d.Base = d.InForce
	}
	d.Loopback = appliance.IsLoopbackURL(d.InForce.ProvisioningURL)
	d.ClaimWindow = humanDuration(d.InForce.ClaimWindow)
	p.Data, p.Title, p.Active = d, "Settings", "settings"
	s.render(w, r, status, "settings.html", p)
}

func (s *Server) handleSettingsUI(w http.ResponseWriter, r *http.Request) {
	s.settingsPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r)})
}

// overrideOf is the override for one field: none when reset or equal to
// the config file's value, the current one when the form lacks the field.
func overrideOf[T comparable](f url.Values, field string, typed T, base T, cur *T) *T {
	if f.Get("reset_"+field) != "" {
		return nil
	}
	if _, ok := f[field]; !ok {
		return cur
	}
	if typed == base {
		return nil
	}
	return &typed
}

func (s *Server) handleSaveSettingsUI(w http.ResponseWriter, r *http.Request) {
	svc := s.Services.Settings
	if svc == nil {
		s.settingsPage(w, r, http.StatusServiceUnavailable, &page{Flash: "Settings cannot be changed here in this setup.", FlashError: true})
		return
	}
	f := r.PostForm
	base, cur, before := svc.BaseSettings(), svc.Overrides(), svc.Settings()
	// Every field is checked before anything is saved, so that one
	// submit marks every mistake.
	var errs appliance.Errors

	var o appliance.SettingsOverrides
	o.ProvisioningURL = overrideOf(f, "provisioning_url", strings.TrimSpace(f.Get("provisioning_url")), base.ProvisioningURL, cur.ProvisioningURL)
	o.Registrar = overrideOf(f, "registrar", strings.TrimSpace(f.Get("registrar")), base.Registrar, cur.Registrar)

	rate := base.NotifyRate
	if _, ok := f["notify_rate"]; ok && f.Get("reset_notify_rate") == "" {
		n, err := strconv.Atoi(strings.TrimSpace(f.Get("notify_rate")))
		if err != nil {
			errs.Add(appliance.Errorf(appliance.EINVALID, "notify_rate", "not a whole number of NOTIFYs per second (1-10000)"))
		} else {
			rate = n
		}
	}
	if len(errs) == 0 {
		o.NotifyRate = overrideOf(f, "notify_rate", rate, base.NotifyRate, cur.NotifyRate)
	}
	errs.Add(o.Validate())

	err := errs.Err()
	if err == nil {
		err = svc.SetOverrides(r.Context(), o)
	}
	if err != nil {
		p := &page{Form: f, FlashError: true}
		p.Errors, p.Flash = formErrors(err)
		s.settingsPage(w, r, statusOf(err), p)
		return
	}
	after := svc.Settings()
	var msg string
	switch {
	case after.ProvisioningURL != before.ProvisioningURL || after.Registrar != before.Registrar:
		msg = fmt.Sprintf("Settings saved. These settings are in every phone's config, so every phone is being resynced (at most %d per second).", after.NotifyRate)
	case after.NotifyRate != before.NotifyRate:
		msg = fmt.Sprintf("Pacing saved: at most %d phones told per second from now on.", after.NotifyRate)
	default:
		msg = "Settings saved; nothing changed."
	}
	redirectBack(w, r, "/settings", msg)
}

// humanDuration says a claim window as an admin reads it ("24 hours").
func humanDuration(d time.Duration) string {
	if d <= 0 {
		d = appliance.DefaultClaimWindow
	}
	switch {
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// ---- Users ----

type usersData struct {
	Users  []*appliance.User
	Passwd string // the user whose password is being changed
	Me     string
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	list, err := s.Services.Users.FindUsers(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, _ := p.Data.(*usersData)
	if d == nil {
		d = &usersData{}
	}
	d.Users = list
	if sess := sessionFrom(r); sess != nil {
		d.Me = sess.UserName
	}
	if d.Passwd != "" && !slices.ContainsFunc(list, func(u *appliance.User) bool { return u.Name == d.Passwd }) {
		d.Passwd = ""
	}
	p.Data, p.Title, p.Active = d, "Users", "users"
	// Passwords are never sent back into a form.
	if p.Form != nil {
		p.Form = url.Values{"name": p.Form["name"]}
	}
	s.render(w, r, status, "users.html", p)
}

func (s *Server) handleUsersUI(w http.ResponseWriter, r *http.Request) {
	s.usersPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r), Data: &usersData{Passwd: r.URL.Query().Get("passwd")}})
}

func (s *Server) handleCreateUserUI(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	p := &page{Form: f, FlashError: true}
	var errs appliance.Errors
	if f.Get("password") != f.Get("password2") {
		// Checked with the rules, so that one submit marks every mistake.
		errs.Add(appliance.ValidateUser(name, f.Get("password")))
		errs.Add(appliance.Errorf(appliance.EINVALID, "password2", "the two passwords differ"))
	}
	err := errs.Err()
	var u *appliance.User
	if err == nil {
		u, err = s.Services.Users.CreateUser(r.Context(), name, f.Get("password"))
	}
	if err != nil {
		p.Errors, p.Flash = formErrors(err)
		s.usersPage(w, r, statusOf(err), p)
		return
	}
	s.logger().Info("admin added in the browser", "user", u.Name, "by", sessionFrom(r).UserName)
	redirectBack(w, r, "/users", "Admin "+u.Name+" added; they can log in now.")
}

func (s *Server) handleSetPasswordUI(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f := r.PostForm
	p := &page{Form: url.Values{}, FlashError: true, Data: &usersData{Passwd: name}}
	var errs appliance.Errors
	if f.Get("password") != f.Get("password2") {
		errs.Add(appliance.ValidatePassword(f.Get("password")))
		errs.Add(appliance.Errorf(appliance.EINVALID, "password2", "the two passwords differ"))
	}
	err := errs.Err()
	if err == nil {
		err = s.Services.Users.SetPassword(r.Context(), name, f.Get("password"))
	}
	if err != nil {
		if appliance.ErrorCode(err) == appliance.ENOTFOUND {
			http.NotFound(w, r)
			return
		}
		p.Errors, p.Flash = formErrors(err)
		s.usersPage(w, r, statusOf(err), p)
		return
	}
	// The change ended every session of that admin (SPEC §9); one who
	// changed their own password gets a fresh session in this browser.
	if sess := sessionFrom(r); sess != nil && sess.UserName == name {
		if token, _, err := s.Services.Sessions.CreateSession(r.Context(), sess.UserID); err == nil {
			s.setSessionCookie(w, r, token)
		}
	}
	s.logger().Info("admin password changed in the browser", "user", name, "by", sessionFrom(r).UserName)
	redirectBack(w, r, "/users", "Password of "+name+" changed; its other sessions have ended.")
}

func (s *Server) handleDeleteUserUI(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.Services.Users.DeleteUser(r.Context(), name); err != nil {
		if appliance.ErrorCode(err) == appliance.ENOTFOUND {
			http.NotFound(w, r)
			return
		}
		s.usersPage(w, r, statusOf(err), &page{Flash: flashMessage(err), FlashError: true})
		return
	}
	me := sessionFrom(r).UserName
	s.logger().Info("admin removed in the browser", "user", name, "by", me)
	if name == me {
		// Their session went with them: the next request asks to log in.
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	redirectBack(w, r, "/users", "Admin "+name+" removed.")
}
