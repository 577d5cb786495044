package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// Button Configurations (/keys): the keys the phones' line keys are made
// of, searched through the query string (so a search is a link), added
// and edited in the list, deleted with a confirmation naming the phones
// they are on. Like every admin page: GET renders, POST acts and
// redirects with a flash (or re-renders with the field errors and what was
// typed).

func (s *Server) routesKeys(mux *http.ServeMux) {
	mux.HandleFunc("GET /keys", s.ui(s.handleKeysUI))
	mux.HandleFunc("POST /keys", s.ui(s.handleCreateKeyUI))
	mux.HandleFunc("GET /keys/{id}", s.ui(s.handleKeyLinkUI))
	mux.HandleFunc("POST /keys/{id}", s.ui(s.handleUpdateKeyUI))
	mux.HandleFunc("POST /keys/{id}/delete", s.ui(s.handleDeleteKeyUI))
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
	refs := map[string]phoneRef{}
	var inUse []appliance.Model
	if s.Services.Phones != nil {
		if phones, err := s.Services.Phones.FindPhones(r.Context(), appliance.PhoneFilter{}); err == nil {
			for _, p := range phones {
				m, ok := s.Catalog.Lookup(p.Manufacturer, p.Model)
				refs[p.MAC] = refOf(p, m)
				if ok && !slices.ContainsFunc(inUse, func(x appliance.Model) bool { return x.Name == m.Name }) {
					inUse = append(inUse, m)
				}
			}
		}
	}
	return func(mac string) phoneRef {
		if ref, ok := refs[mac]; ok {
			return ref
		}
		return phoneRef{MAC: mac, Name: appliance.FormatMAC(mac)}
	}, inUse
}

// refOf is phone p as the pages name it, its model m.
func refOf(p *appliance.Phone, m appliance.Model) phoneRef {
	name := p.Name
	if name == "" || name == p.MAC {
		name = appliance.FormatMAC(p.MAC)
	}
	return phoneRef{MAC: p.MAC, Name: name, Model: m}
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

// phoneNames names the phones of macs for a flash: "Lobby, 00:15:65:00:00:02,
// …": the first 10 (read one by one, so that naming the phones of a key on
// 1,000 phones reads 10), and how many more.
func (s *Server) phoneNames(r *http.Request, macs []string) string {
	const named = 10
	names := make([]string, 0, min(len(macs), named+1))
	for i, mac := range macs {
		if i == named {
			names = append(names, fmt.Sprintf("and %d more", len(macs)-named))
			break
		}
		ref := phoneRef{MAC: mac, Name: appliance.FormatMAC(mac)}
		if p, err := s.Services.Phones.FindPhone(r.Context(), mac); err == nil {
			ref = refOf(p, appliance.Model{})
		}
		names = append(names, ref.Name)
	}
	return strings.Join(names, ", ")
}

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
	// Add and Edit are the add form and the edited row: what was typed
	// and the errors, for the one whose submission failed (failed: "add"
	// or "edit"; p.Form and p.Errors hold it).
	Add, Edit formView
	failed    string
}

// formView is one of the forms of a page that has several: what was typed
// into it and its errors when its submission failed; the zero formView
// shows the saved values.
type formView struct {
	form url.Values
	errs map[string]string
}

// Val is what was typed into a field, else def.
func (f formView) Val(field, def string) string {
	if f.form.Has(field) {
		return f.form.Get(field)
	}
	return def
}

// Err is the form's error for a field.
func (f formView) Err(field string) string { return f.errs[field] }

// EditURL is the list as it is, with key id's row as inputs.
func (d *keysData) EditURL(id int64) string {
	v := d.Query.values()
	v.Set("edit", strconv.FormatInt(id, 10))
	return "/keys?" + v.Encode() + "#key-" + strconv.FormatInt(id, 10)
}

func (s *Server) keysPage(w http.ResponseWriter, r *http.Request, status int, p *page, d *keysData) {
	list, total, err := s.findKeys(r, d.Query)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ref, inUse := s.phoneRefs(r)
	d.LabelHint, d.LabelChars = labelHint(inUse), minLabelChars(inUse)
	d.Total = total
	d.Keys = d.Keys[:0]
	for _, k := range list {
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
	switch d.failed {
	case "add":
		d.Add = formView{p.Form, p.Errors}
	case "edit":
		d.Edit = formView{p.Form, p.Errors}
	}
	p.Data, p.Title, p.Active = d, "Button Configurations", "keys"
	s.render(w, r, status, "keys.html", p)
}

// findKeys reads the keys of the list and how many there are in all, with
// one read of the store unless the list searches by value or label (the
// store's LIKE matching, which this does not repeat): type, the account
// toggle and the attached toggle are applied here.
func (s *Server) findKeys(r *http.Request, q keyQuery) (list []*appliance.Key, total int, err error) {
	if err := q.filter().Validate(); err != nil {
		return nil, 0, err
	}
	all, err := s.Services.Keys.FindKeys(r.Context(), appliance.KeyFilter{})
	if err != nil {
		return nil, 0, err
	}
	list = all
	if q.Value != "" || q.Label != "" || q.Q != "" {
		if list, err = s.Services.Keys.FindKeys(r.Context(), q.filter()); err != nil {
			return nil, 0, err
		}
	}
	kept := list[:0:0]
	for _, k := range list {
		switch {
		case q.Type != "" && k.Type != strings.ToLower(q.Type),
			q.Accounts == "hide" && k.Type == appliance.KeyAccount,
			q.Attached == "true" && len(k.AttachedTo) == 0,
			q.Attached == "false" && len(k.AttachedTo) > 0:
			continue
		}
		kept = append(kept, k)
	}
	return kept, len(all), nil
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
	if k, ok := lookup(s, w, r, pathID, s.Services.Keys.FindKey); ok {
		id := strconv.FormatInt(k.ID, 10)
		http.Redirect(w, r, "/keys?edit="+id+"#key-"+id, http.StatusSeeOther)
	}
}

func keyTitle(k *appliance.Key) string {
	t := keyTypeName(k.Type) + " " + k.Value
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
		// A rule broken or a duplicate (409): at its field, as typed.
		p, d := &page{Form: f}, &keysData{Query: q, failed: "add"}
		if appliance.ErrorField(err) == "" {
			p, d = &page{}, &keysData{Query: q}
		}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.keysPage(w, r, status, p, d)
		}
		return
	}
	redirectBack(w, r, q.URL(), "Key "+keyTitle(k)+" added. Put it on a phone's line keys from the phone's page.")
}

func (s *Server) handleUpdateKeyUI(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, notFound(r))
		return
	}
	q := backQuery(r)
	f := r.PostForm
	k, err := s.Services.Keys.UpdateKey(r.Context(), id, appliance.KeyUpdate{Type: formPtr(f, "type"), Value: formPtr(f, "value"), Label: formPtr(f, "label")})
	if err != nil {
		// A rule broken or a duplicate (409): at its field in the row, as
		// typed; a key gone meanwhile (404): in the flash.
		p, d := &page{Form: f}, &keysData{Query: q, EditID: id, failed: "edit"}
		if field := appliance.ErrorField(err); field == "" || field == "id" || appliance.ErrorCode(err) == appliance.ENOTFOUND {
			p, d = &page{}, &keysData{Query: q}
		}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.keysPage(w, r, status, p, d)
		}
		return
	}
	msg := "Key " + keyTitle(k) + " saved."
	if n := len(k.AttachedTo); n > 0 {
		verb := "is"
		if n > 1 {
			verb = "are"
		}
		msg += fmt.Sprintf(" Its %s %s being updated: %s.", appliance.Count(n, "phone", "phones"), verb, s.phoneNames(r, k.AttachedTo))
	}
	redirectBack(w, r, q.URL(), msg)
}

func (s *Server) handleDeleteKeyUI(w http.ResponseWriter, r *http.Request) {
	k, ok := lookup(s, w, r, pathID, s.Services.Keys.FindKey)
	if !ok {
		return
	}
	q := backQuery(r)
	force := r.PostFormValue("force") == "true"
	if err := s.Services.Keys.DeleteKey(r.Context(), k.ID, force); err != nil {
		if appliance.ErrorCode(err) == appliance.ECONFLICT && k.Type != appliance.KeyAccount {
			// Phones stand in the way: ask again, naming them as of now.
			if now, err := s.Services.Keys.FindKey(r.Context(), k.ID); err == nil {
				k = now
			}
			s.keysPage(w, r, http.StatusConflict, &page{}, &keysData{Query: q, Confirm: &keyRow{Key: k}})
			return
		}
		p := &page{}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.keysPage(w, r, status, p, &keysData{Query: q})
		}
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
