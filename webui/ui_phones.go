package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// The Phones pages, in the words of the hosted-PBX help page the admins
// know: a phone has its Device Settings (MAC Address, Name, Description,
// Location, Manufacturer, Model) and its Device Provisioning (the line keys,
// each a button configuration; at least 1 account key, 2 recommended).
//
//	GET  /phones                 list, ?q= searches MAC, name, description, model;
//	                             ?state= (a sync state, not_ready), ?sort=&dir=desc, ?page= (50 a page)
//	POST /phones/bulk            Resync, set location, copy line keys, delete the ticked phones
//	GET  /phones/new             Device Settings form (+ extension for keys 1 and 2);
//	                             ?mac=&manufacturer=&model= prefill it (Adopt on /discovered)
//	POST /phones                 create
//	GET  /phones/{mac}           summary, sync state (live), Resync, line keys, config preview
//	GET  /phones/{mac}/edit      the phone's one form: Device Settings and Device Provisioning
//	POST /phones/{mac}           update the Device Settings, and with layout=1 the line keys, together
//	POST /phones/{mac}/keys      replace the line keys alone (no page posts here any more; kept for
//	                             forms and scripts made before the one form)
//	POST /phones/{mac}/resync    send a check-sync now
//	POST /phones/{mac}/delete    delete
//
// As on the Extensions page: GET renders, POST acts and redirects with a
// flash, or re-renders with the field errors next to the fields and what
// was typed kept (400, 409 for a duplicate MAC).

func (s *Server) routesPhones(mux *http.ServeMux) {
	mux.HandleFunc("GET /phones", s.ui(s.handlePhonesUI))
	mux.HandleFunc("POST /phones", s.ui(s.handleCreatePhoneUI))
	mux.HandleFunc("POST /phones/bulk", s.ui(s.handleBulkUI)) // ui_bulk.go
	mux.HandleFunc("GET /phones/new", s.ui(s.handleNewPhoneUI))
	mux.HandleFunc("GET /phones/{mac}", s.ui(s.handlePhoneUI))
	mux.HandleFunc("POST /phones/{mac}", s.ui(s.handleUpdatePhoneUI))
	mux.HandleFunc("GET /phones/{mac}/edit", s.ui(s.handleEditPhoneUI))
	mux.HandleFunc("POST /phones/{mac}/keys", s.ui(s.handleLayoutUI))
	mux.HandleFunc("POST /phones/{mac}/resync", s.ui(s.handleResyncUI))
	mux.HandleFunc("POST /phones/{mac}/claim", s.ui(s.handleClaimUI))
	mux.HandleFunc("POST /phones/{mac}/secret", s.ui(s.handleRotateSecretUI))
	mux.HandleFunc("POST /phones/{mac}/delete", s.ui(s.handleDeletePhoneUI))
}

// ---- /phones ---------------------------------------------------------------

type phoneRow struct {
	*appliance.Phone
	Location string
	LineKeys int
}

// phonesData is one page of the Phones list: the rows on it, how they are
// filtered and sorted, and what the bulk actions offer.
type phonesData struct {
	Q, State, Sort string
	Desc           bool
	Phones         []phoneRow
	Stuck          []*appliance.Phone // phones whose report did not come in time, whatever the search
	Total, All     int                // phones matching; phones in all
	First, Last    int                // rows First..Last (1-based) of Total
	Page, Pages    int
	Columns        []sortColumn
	States         []option // the state filter
	Locations      []option // bulk "set location"
	Sources        []option // bulk "copy the line keys of"
}

// sortColumn is a column header: a link that sorts by it.
type sortColumn struct {
	Key, Title, Class string
	Sorted            string // "ascending", "descending" or "" (aria-sort)
	Href              string
}

const phonesPageSize = 50

// phoneSorts are the sortable columns of the Phones list, in order.
var phoneSorts = []struct {
	key, title, class string
	less              func(a, b *phoneRow) int
}{
	{"name", "Name", "", func(a, b *phoneRow) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) }},
	{"state", "Sync", "", func(a, b *phoneRow) int { return strings.Compare(a.Sync.StateText(), b.Sync.StateText()) }},
	{"mac", "MAC", "opt", func(a, b *phoneRow) int { return strings.Compare(a.MAC, b.MAC) }},
	{"model", "Model", "", func(a, b *phoneRow) int { return strings.Compare(a.Manufacturer+a.Model, b.Manufacturer+b.Model) }},
	{"location", "Location", "opt", func(a, b *phoneRow) int { return strings.Compare(a.Location, b.Location) }},
	{"keys", "Line keys", "opt", func(a, b *phoneRow) int { return a.LineKeys - b.LineKeys }},
	{"fetch", "Last fetch", "opt", func(a, b *phoneRow) int { return compareTimes(a.Sync.LastFetchAt, b.Sync.LastFetchAt) }},
}

func compareTimes(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}

// phoneStateFilters are the values of ?state=: a sync state, or not_ready.
var phoneStateFilters = []option{{Value: "", Text: "any state"}, {Value: "not_ready", Text: "not ready"},
	{Value: appliance.SyncSynced, Text: "synced"}, {Value: appliance.SyncFetched, Text: "fetched"},
	{Value: appliance.SyncNotified, Text: "notified"}, {Value: appliance.SyncPending, Text: "pending"},
	{Value: appliance.SyncNew, Text: "new"}, {Value: appliance.SyncUnreachable, Text: "unreachable"},
	{Value: appliance.SyncStuck, Text: "stuck"}}

// checkPhoneListQuery refuses a ?state=, ?sort= or ?dir= the list does
// not know (rather than showing an empty or unsorted list).
func checkPhoneListQuery(state, sortKey, dir string) error {
	known := state == "" || state == "fetched (phone does not confirm)"
	for _, o := range phoneStateFilters {
		known = known || o.Value == state
	}
	if !known {
		return appliance.Errorf(appliance.EINVALID, "state", "%q is not a sync state (synced, fetched, notified, pending, new, unreachable, stuck) or not_ready", state)
	}
	known = sortKey == ""
	var keys []string
	for _, c := range phoneSorts {
		known = known || c.key == sortKey
		keys = append(keys, c.key)
	}
	if !known {
		return appliance.Errorf(appliance.EINVALID, "sort", "%q is not a column to sort by (%s)", sortKey, strings.Join(keys, ", "))
	}
	if dir != "" && dir != "asc" && dir != "desc" {
		return appliance.Errorf(appliance.EINVALID, "dir", "%q is not a direction (asc or desc)", dir)
	}
	return nil
}

// matchesState tells whether a phone passes the ?state= filter.
func matchesState(ph *appliance.Phone, state string) bool {
	switch state {
	case "":
		return true
	case "not_ready":
		return len(ph.Sync.Problems) > 0
	case "fetched (phone does not confirm)":
		return ph.Sync.StateText() == state
	}
	return ph.Sync.State == state
}

func (s *Server) handlePhonesUI(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	qs := r.URL.Query()
	d := &phonesData{Q: strings.TrimSpace(qs.Get("q")), State: qs.Get("state"), Sort: qs.Get("sort"), Desc: qs.Get("dir") == "desc"}
	pageNo, err := queryInt(r, "page", 1, 1_000_000)
	if err == nil {
		err = checkPhoneListQuery(d.State, d.Sort, qs.Get("dir"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all, err := s.Services.Phones.FindPhones(ctx, appliance.PhoneFilter{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	phones := all
	if d.Q != "" {
		if phones, err = s.Services.Phones.FindPhones(ctx, appliance.PhoneFilter{Q: d.Q}); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	locs, err := s.locationNames(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.All = len(all)
	rows := make([]phoneRow, 0, len(phones))
	for _, ph := range phones {
		if !matchesState(ph, d.State) {
			continue
		}
		row := phoneRow{Phone: ph, LineKeys: ph.LineKeys}
		if ph.LocationID != nil {
			row.Location = locs[*ph.LocationID]
		}
		rows = append(rows, row)
	}
	sortBy := phoneSorts[0]
	for _, c := range phoneSorts {
		if c.key == d.Sort {
			sortBy = c
		}
	}
	d.Sort = sortBy.key
	sort.SliceStable(rows, func(i, j int) bool {
		c := sortBy.less(&rows[i], &rows[j])
		if c == 0 {
			c = strings.Compare(rows[i].MAC, rows[j].MAC)
		}
		if d.Desc {
			return c > 0
		}
		return c < 0
	})
	d.Total = len(rows)
	d.Pages = max(1, (d.Total+phonesPageSize-1)/phonesPageSize)
	d.Page = min(max(pageNo, 1), d.Pages)
	if d.Total > 0 {
		d.First = (d.Page-1)*phonesPageSize + 1
		d.Last = min(d.First+phonesPageSize-1, d.Total)
		d.Phones = rows[d.First-1 : d.Last]
	}
	for _, c := range phoneSorts {
		col := sortColumn{Key: c.key, Title: c.title, Class: c.class}
		dir := ""
		if c.key == d.Sort {
			col.Sorted = "ascending"
			if d.Desc {
				col.Sorted = "descending"
			} else {
				dir = "desc"
			}
		}
		col.Href = d.link(c.key, dir, 1)
		d.Columns = append(d.Columns, col)
	}
	d.States = selectOptions(append([]option(nil), phoneStateFilters...), d.State, "")
	d.Locations = []option{{Value: "0", Text: "(no location)"}}
	list, err := s.Services.Locations.FindLocations(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, l := range list {
		d.Locations = append(d.Locations, option{Value: strconv.FormatInt(l.ID, 10), Text: l.Name})
	}
	d.Sources = []option{{Value: "", Text: "(choose a phone)"}}
	for _, ph := range all {
		if ph.LineKeys > 0 {
			d.Sources = append(d.Sources, option{Value: ph.MAC, Text: ph.Title() + " — " + ph.Model})
		}
	}
	for _, ph := range all {
		if ph.Sync.State == appliance.SyncStuck {
			d.Stuck = append(d.Stuck, ph)
		}
	}
	s.render(w, r, http.StatusOK, "phones.html", &page{Title: "Phones", Active: "phones", Flash: flashOf(w, r), Data: d})
}

// link is the list's URL with its filter, and the given sort and page.
func (d *phonesData) link(sortKey, dir string, pageNo int) string {
	v := url.Values{}
	if d.Q != "" {
		v.Set("q", d.Q)
	}
	if d.State != "" {
		v.Set("state", d.State)
	}
	if sortKey != "" && sortKey != "name" || dir != "" {
		v.Set("sort", sortKey)
	}
	if dir != "" {
		v.Set("dir", dir)
	}
	if pageNo > 1 {
		v.Set("page", strconv.Itoa(pageNo))
	}
	if len(v) == 0 {
		return "/phones"
	}
	return "/phones?" + v.Encode()
}

// PrevPage and NextPage are the neighbouring page numbers.
func (d *phonesData) PrevPage() int { return d.Page - 1 }
func (d *phonesData) NextPage() int { return d.Page + 1 }

// PageLink is the link to another page of the same list.
func (d *phonesData) PageLink(pageNo int) string {
	dir := ""
	if d.Desc {
		dir = "desc"
	}
	return d.link(d.Sort, dir, pageNo)
}

func (s *Server) locationNames(r *http.Request) (map[int64]string, error) {
	list, err := s.Services.Locations.FindLocations(r.Context())
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(list))
	for _, l := range list {
		out[l.ID] = l.Name
	}
	return out, nil
}

// ---- Device Settings and Device Provisioning forms ---------------------------

// option is one <option> of a <select>.
type option struct {
	Value, Text string
	Selected    bool
	Label       string // a key's label (the key editor shows it as the phone would)
}

type phoneFormData struct {
	Phone *appliance.Phone // nil when adding
	Adopt string           // the discovered MAC being adopted, if any
	// Device Settings: what the text fields show when nothing was typed.
	MAC, Name, Description string
	Locations              []option
	Manufacturers          []option
	Models                 []option
	Extensions             []option // adding only
	HasExtensions          bool
	// Device Provisioning (editing only).
	Model    appliance.Model
	Module   appliance.ExpansionModule // the model's module type, if any
	Keys     []option                  // every button configuration, account keys first
	Boards   []keyBoard                // the phone's keys, then each module's
	Orphans  []keySlot                 // saved keys the model or modules no longer have
	Slots    []option                  // positions for the new key
	NewTypes []option                  // key types the model takes
	Accounts int                       // distinct account keys in the saved layout
	// ModuleChoices are the expansion_modules values the model takes.
	ModuleChoices []option
	LabelHint     string // under the new key's label: how much the phone shows
}

// selectOptions marks the option whose value is sel; a value that is not
// among them (typed by hand, or a model the list lacks) is added on top,
// marked as not supported, so the form shows what was sent.
func selectOptions(opts []option, sel, unknown string) []option {
	found := false
	for i := range opts {
		if opts[i].Value == sel {
			opts[i].Selected, found = true, true
		}
	}
	if !found && sel != "" {
		opts = append([]option{{Value: sel, Text: sel + " " + unknown, Selected: true}}, opts...)
	}
	return opts
}

// keyText labels a button configuration in a line-key select:
// "Account Key — 1001 Alice", "BLF — 1002 Bob", "Speed Dial — 5551234".
func keyText(k *appliance.Key) string {
	t := keyTypeName(k.Type) + " — " + k.Value
	if k.Label != "" && k.Label != k.Value {
		t += " " + k.Label
	}
	return t
}

func keyRank(t string) int {
	for i, kt := range appliance.KeyTypes {
		if kt == t {
			return i
		}
	}
	return len(appliance.KeyTypes)
}

// phoneFormPage renders the Device Settings form (ph nil: adding), and for
// a phone its Device Provisioning. def holds prefills from the query string.
func (s *Server) phoneFormPage(w http.ResponseWriter, r *http.Request, status int, p *page, ph *appliance.Phone, def url.Values) {
	ctx := r.Context()
	d := &phoneFormData{Phone: ph}
	var loc, mf, model string
	if ph != nil {
		d.MAC, d.Name, d.Description, mf, model = appliance.FormatMAC(ph.MAC), ph.Name, ph.Description, ph.Manufacturer, ph.Model
		if ph.LocationID != nil {
			loc = strconv.FormatInt(*ph.LocationID, 10)
		}
		p.Title = "Edit " + ph.Name
	} else {
		d.MAC, d.Name, d.Description = def.Get("mac"), def.Get("name"), def.Get("description")
		mf, model = def.Get("manufacturer"), def.Get("model")
		if m, err := s.Catalog.Normalize(mf, model); err == nil {
			mf, model = m.Manufacturer, m.Name
		} else if name, ok := s.Catalog.Manufacturer(mf); ok {
			mf = name // a known vendor ("" is the first, Yealink), the model left to choose
		}
		if mac, err := appliance.ParseMAC(def.Get("mac")); err == nil && def.Get("mac") != "" {
			d.Adopt = appliance.FormatMAC(mac)
			d.MAC = d.Adopt
		}
		p.Title = "Add phone"
	}

	locs, err := s.Services.Locations.FindLocations(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Locations = []option{{Value: "", Text: "(none)"}}
	for _, l := range locs {
		t := l.Name
		if l.City != "" {
			t += " — " + l.City
		}
		d.Locations = append(d.Locations, option{Value: strconv.FormatInt(l.ID, 10), Text: t})
	}
	d.Locations = selectOptions(d.Locations, p.Val("location_id", loc), "(unknown location)")

	for _, name := range s.Catalog.Manufacturers() {
		d.Manufacturers = append(d.Manufacturers, option{Value: name, Text: name})
	}
	maxModules := 0
	for _, m := range s.Catalog.Models() {
		d.Models = append(d.Models, option{Value: m.Name, Text: modelText(m)})
		maxModules = max(maxModules, m.MaxModules)
	}
	modules := "0"
	if ph != nil {
		modules = strconv.Itoa(ph.ExpansionModules)
	} else if v := def.Get("expansion_modules"); v != "" {
		modules = v
	}
	for n := 0; n <= maxModules; n++ {
		t := strconv.Itoa(n)
		if n == 0 {
			t = "none"
		}
		d.ModuleChoices = append(d.ModuleChoices, option{Value: strconv.Itoa(n), Text: t})
	}
	d.ModuleChoices = selectOptions(d.ModuleChoices, p.Val("expansion_modules", modules), "(not a number)")
	d.Manufacturers = selectOptions(d.Manufacturers, p.Val("manufacturer", mf), "(not supported)")
	if p.Val("model", model) == "" {
		d.Models = append([]option{{Value: "", Text: "(choose the model)"}}, d.Models...)
	}
	d.Models = selectOptions(d.Models, p.Val("model", model), "(not supported)")

	if ph == nil {
		exts, err := s.Services.Extensions.FindExtensions(ctx)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		d.HasExtensions = len(exts) > 0
		d.Extensions = []option{{Value: "", Text: "(none)"}}
		for _, e := range exts {
			t := e.Number
			if e.Name != "" {
				t += " — " + e.Name
			}
			d.Extensions = append(d.Extensions, option{Value: e.Number, Text: t})
		}
		d.Extensions = selectOptions(d.Extensions, p.Val("extension", def.Get("extension")), "(no such extension)")
	} else {
		if !s.provisioningData(w, r, p, ph, d) {
			return
		}
	}
	p.Data, p.Active = d, "phones"
	s.render(w, r, status, "phone_form.html", p)
}

// provisioningData fills the line-key selects: the saved layout, or what
// was chosen when the save failed.
func (s *Server) provisioningData(w http.ResponseWriter, r *http.Request, p *page, ph *appliance.Phone, d *phoneFormData) bool {
	ctx := r.Context()
	keys, err := s.Services.Keys.FindKeys(ctx, appliance.KeyFilter{})
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	sort.SliceStable(keys, func(i, j int) bool { return keyRank(keys[i].Type) < keyRank(keys[j].Type) })
	d.Model, _ = s.Catalog.Lookup(ph.Manufacturer, ph.Model)
	byID := map[string]*appliance.Key{}
	d.Keys = []option{{Value: "", Text: "(empty)"}}
	for _, k := range keys {
		id := strconv.FormatInt(k.ID, 10)
		byID[id] = k
		if d.Model.LineKeys == 0 && k.Type != appliance.KeyAccount {
			continue // accounts only
		}
		d.Keys = append(d.Keys, option{Value: id, Text: keyText(k), Label: k.Label})
	}
	layout, err := s.Services.Phones.FindLayout(ctx, ph.MAC)
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	saved := map[string]string{}
	accounts := map[int64]bool{}
	for _, e := range layout {
		saved[slotName(e.Module, e.Position)] = strconv.FormatInt(e.KeyID, 10)
		if e.Type == appliance.KeyAccount {
			accounts[e.KeyID] = true
		}
	}
	d.Accounts = len(accounts)
	// After a failed save, a key the form did not send was empty in what
	// the admin tried, so it shows empty, not as saved.
	for name := range p.Form {
		if strings.HasPrefix(name, "key_") {
			saved = map[string]string{}
			break
		}
	}
	selected := func(name string) string { return p.Val(name, saved[name]) }
	m := d.Model
	if m.LineKeys == 0 {
		// A DECT base or an AX8x: its extensions are accounts 1..Accounts.
		m.LineKeys, m.KeysPerPage, m.Columns = m.Accounts, m.Accounts, 1
	}
	d.LabelHint = "defaults to the value"
	if h := labelHint([]appliance.Model{d.Model}); h != "" {
		d.LabelHint += "; " + h
	}
	d.Boards = buildBoards(s.Catalog, m, ph.ExpansionModules, selected, byID, p.Errors)
	d.Slots = slotOptions(d.Boards, p.Val("new_at", ""), d.Model.LineKeys == 0)
	d.NewTypes = []option{}
	for _, t := range appliance.KeyTypes {
		if d.Model.LineKeys == 0 && t != appliance.KeyAccount || d.Model.LineKeys > 0 && !d.Model.Supports(t) {
			continue
		}
		d.NewTypes = append(d.NewTypes, option{Value: t, Text: keyTypeName(t)})
	}
	d.NewTypes = selectOptions(d.NewTypes, p.Val("new_type", appliance.KeyBLF), "(unknown type)")
	if x, ok := s.Catalog.ModuleOf(d.Model); ok {
		d.Module = x
	}
	// A saved key beyond what the model and modules have now (a model
	// changed under it) is listed so it can be cleared.
	for name, id := range saved {
		if pos, ok := parseSlotName(name); ok && !onBoards(d.Boards, pos) {
			d.Orphans = append(d.Orphans, keySlot{Name: name, Module: pos.Module, Position: pos.Position, Selected: p.Val(name, id)})
		}
	}
	sort.Slice(d.Orphans, func(i, j int) bool {
		return d.Orphans[i].Module < d.Orphans[j].Module || d.Orphans[i].Module == d.Orphans[j].Module && d.Orphans[i].Position < d.Orphans[j].Position
	})
	return true
}

// onBoards reports whether a position is drawn on the boards.
func onBoards(boards []keyBoard, pos appliance.Position) bool {
	for _, b := range boards {
		if b.Module == pos.Module && len(b.Pages) > 0 && pos.Position >= 1 && pos.Position <= b.Pages[len(b.Pages)-1].Last {
			return true
		}
	}
	return false
}

func (s *Server) handleNewPhoneUI(w http.ResponseWriter, r *http.Request) {
	s.phoneFormPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r)}, nil, r.URL.Query())
}

// formModules reads the expansion_modules select ("" is 0).
func formModules(f url.Values) (int, error) {
	v := strings.TrimSpace(f.Get("expansion_modules"))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, appliance.Errorf(appliance.EINVALID, "expansion_modules", "%q is not a number of modules", v)
	}
	return n, nil
}

// modelText is a model as the model select shows it.
func modelText(m appliance.Model) string {
	t := fmt.Sprintf("%s — %d line keys", m.Name, m.LineKeys)
	if m.LineKeys == 0 {
		t = fmt.Sprintf("%s — no line keys, %d accounts", m.Name, m.Accounts)
	}
	if m.Module != "" {
		t += fmt.Sprintf(", up to %d %s", m.MaxModules, m.Module)
	}
	return t
}

// formLocation reads the location select: "" is none (0 for an update).
func formLocation(f url.Values) (int64, error) {
	v := strings.TrimSpace(f.Get("location_id"))
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, appliance.Errorf(appliance.EINVALID, "location_id", "%q is not a location", v)
	}
	return id, nil
}

func (s *Server) phoneFormError(w http.ResponseWriter, r *http.Request, ph *appliance.Phone, err error) {
	p := &page{Form: r.PostForm}
	if status, ok := s.formFailed(w, r, p, err); ok {
		s.phoneFormPage(w, r, status, p, ph, url.Values{})
	}
}

func (s *Server) handleCreatePhoneUI(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	loc, err := formLocation(f)
	if err != nil {
		s.phoneFormError(w, r, nil, err)
		return
	}
	modules, err := formModules(f)
	if err != nil {
		s.phoneFormError(w, r, nil, err)
		return
	}
	in := &appliance.Phone{MAC: f.Get("mac"), Name: f.Get("name"), Description: f.Get("description"),
		Manufacturer: f.Get("manufacturer"), Model: f.Get("model"), ExpansionModules: modules}
	if loc > 0 {
		in.LocationID = &loc
	}
	ext := strings.TrimSpace(f.Get("extension"))
	ph, err := s.Services.Phones.CreatePhone(r.Context(), in, ext)
	if err != nil {
		s.phoneFormError(w, r, nil, err)
		return
	}
	if ext == "" {
		redirectBack(w, r, "/phones/"+ph.MAC+"/edit#provisioning",
			"Phone "+ph.Name+" added. Now give it its line keys below: at least 1 account key (2 recommended).")
		return
	}
	redirectBack(w, r, "/phones/"+ph.MAC, "Phone "+ph.Name+" added, with extension "+ext+
		" on line keys 1 and 2. It gets its config the next time it boots or asks provbox; the sync badge shows when it has.")
}

func (s *Server) handleEditPhoneUI(w http.ResponseWriter, r *http.Request) {
	ph, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone)
	if !ok {
		return
	}
	s.phoneFormPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r)}, ph, nil)
}

// changedFlash tells whether the phone's config moved, and so whether it
// is being updated (the sync loop sends the check-sync by itself).
func changedFlash(what string, before, after *appliance.Phone) string {
	switch {
	case before.Sync.ConfigVersion == after.Sync.ConfigVersion:
		return what + " saved. Its config is unchanged, so the phone needs no update."
	case after.Sync.State == appliance.SyncNew:
		return what + " saved. The phone has not fetched its config yet; it gets this one the next time it boots or asks provbox."
	default:
		return what + " saved; the phone is being told to fetch it — watch its sync badge."
	}
}

// handleUpdatePhoneUI saves the phone's one form: its device settings
// and, when the form carries the key editor (field "layout"), its line
// keys, in one transaction: both are saved or neither.
func (s *Server) handleUpdatePhoneUI(w http.ResponseWriter, r *http.Request) {
	ph, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone)
	if !ok {
		return
	}
	f := r.PostForm
	var layout []appliance.LayoutEntry
	upd, err := phoneUpdateFromForm(f)
	if err == nil && f.Get("layout") != "" {
		if layout, err = layoutFromForm(f); err == nil {
			upd.Layout = &layout
		}
	}
	var after *appliance.Phone
	if err == nil {
		after, err = s.Services.Phones.UpdatePhone(r.Context(), ph.MAC, upd)
	}
	if err != nil {
		p := &page{Form: r.PostForm}
		status, ok := s.formFailed(w, r, p, err)
		if !ok {
			return
		}
		if f := appliance.ErrorField(err); !deviceField[f] && f != "" {
			p.Errors = layoutErrors(err, layout)
			p.Flash = "Nothing saved: " + p.Errors["keys"]
		}
		s.phoneFormPage(w, r, status, p, ph, nil)
		return
	}
	what := "Phone " + after.Name
	if upd.Layout != nil {
		what = "Device settings and line keys of " + after.Name
	}
	redirectBack(w, r, "/phones/"+after.MAC, changedFlash(what, ph, after))
}

// deviceField names the Device Settings fields of the phone form.
var deviceField = map[string]bool{"mac": true, "name": true, "description": true, "location_id": true,
	"manufacturer": true, "model": true, "expansion_modules": true}

// phoneUpdateFromForm reads the Device Settings of the phone form.
func phoneUpdateFromForm(f url.Values) (appliance.PhoneUpdate, error) {
	loc, err := formLocation(f)
	if err != nil {
		return appliance.PhoneUpdate{}, err
	}
	upd := appliance.PhoneUpdate{MAC: formPtr(f, "mac"), Name: formPtr(f, "name"), Description: formPtr(f, "description"),
		LocationID: &loc, Manufacturer: formPtr(f, "manufacturer"), Model: formPtr(f, "model")}
	if f.Has("expansion_modules") {
		n, err := formModules(f)
		if err != nil {
			return upd, err
		}
		upd.ExpansionModules = &n
	}
	return upd, nil
}

func (s *Server) handleLayoutUI(w http.ResponseWriter, r *http.Request) {
	ph, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone)
	if !ok {
		return
	}
	layout, err := layoutFromForm(r.PostForm)
	if err == nil {
		_, err = s.Services.Phones.ReplaceLayout(r.Context(), ph.MAC, layout)
	}
	if err != nil {
		p := &page{Form: r.PostForm}
		if status, ok := s.formFailed(w, r, p, err); ok {
			p.Errors = layoutErrors(err, layout)
			p.Flash = "Line keys not saved: " + p.Errors["keys"]
			s.phoneFormPage(w, r, status, p, ph, nil)
		}
		return
	}
	after, err := s.Services.Phones.FindPhone(r.Context(), ph.MAC)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	redirectBack(w, r, "/phones/"+ph.MAC, changedFlash("Line keys of "+ph.Name, ph, after))
}

// ---- /phones/{mac} -----------------------------------------------------------

// registrations lists the phone's reported registrations by account
// index, naming each account's extension (accounts numbered as configs
// numbers them: appliance.BuildAccounts).
func registrations(ph *appliance.Phone, accounts []appliance.Account) []accountReg {
	var out []accountReg
	for k, r := range ph.Sync.Registration {
		a := accountReg{Account: k, State: r.State}
		if i, err := strconv.Atoi(k); err == nil && i >= 1 && i <= len(accounts) {
			a.User = accounts[i-1].Extension.Number
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		return len(out[i].Account) < len(out[j].Account) || len(out[i].Account) == len(out[j].Account) && out[i].Account < out[j].Account
	})
	return out
}

type phoneData struct {
	Phone       *appliance.Phone
	Location    *appliance.Location
	Model       appliance.Model
	Layout      []appliance.LayoutEntry
	Accounts    int // distinct account keys on the phone (extensions it registers)
	AccountKeys int // line keys holding an account key
	// The generated <mac>.cfg: Masked has the secrets replaced by ********,
	// Plain is the file as the phone gets it (in a hidden element, shown by
	// the Reveal button). ConfigErr says why there is no preview.
	Masked, Plain string
	HasSecrets    bool
	ConfigErr     string
	// View is Masked cut into sections, what changed since the phone's
	// last fetch marked; Fetched is that fetch (nil: none kept).
	View         *configView
	Fetched      *appliance.FetchedConfig
	ClaimOpen    bool   // the phone may fetch its config once without its secret now
	ClaimWindow  string // provisioning.claim_window as an admin reads it
	Timeline     []appliance.Change
	Registration []accountReg // by account index
}

// accountReg is one account's reported registration, for the page.
type accountReg struct {
	Account string
	User    string // the extension number, when the account is on the phone
	State   string
}

func (s *Server) handlePhoneUI(w http.ResponseWriter, r *http.Request) {
	ph, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone)
	if !ok {
		return
	}
	ctx := r.Context()
	d := &phoneData{Phone: ph, ClaimOpen: ph.ClaimOpen(time.Now()), ClaimWindow: humanDuration(s.settingsInForce().ClaimWindow)}
	d.Model, _ = s.Catalog.Lookup(ph.Manufacturer, ph.Model)
	if ph.LocationID != nil {
		if l, err := s.Services.Locations.FindLocation(ctx, *ph.LocationID); err == nil {
			d.Location = l
		}
	}
	layout, err := s.Services.Phones.FindLayout(ctx, ph.MAC)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Layout = layout
	if d.Timeline, err = s.Services.Sync.Timeline(ctx, ph.MAC); err != nil {
		s.fail(w, r, err)
		return
	}
	// The layout's account keys are the extensions (their numbers are the
	// keys' values), numbered as the phone's accounts.
	accounts, _ := appliance.BuildAccounts(layout, func(id int64) *appliance.Extension {
		for _, e := range layout {
			if e.KeyID == id {
				return &appliance.Extension{ID: id, Number: e.Value}
			}
		}
		return nil
	})
	d.Accounts = len(accounts)
	d.Registration = registrations(ph, accounts)
	for _, e := range layout {
		if e.Type == appliance.KeyAccount {
			d.AccountKeys++
		}
	}
	switch {
	case s.Files == nil:
		d.ConfigErr = "The config preview is not available on this server."
	default:
		b, err := s.Files.RenderFile(ctx, ph.MAC, "")
		if err != nil {
			s.logger().Warn("config preview", "mac", ph.MAC, "err", err)
			d.ConfigErr = "The config could not be generated: " + appliance.ErrorMessage(err)
		} else {
			d.Plain = string(b)
			d.Masked, d.HasSecrets = maskSecrets(d.Plain)
			var fetched *string
			if s.Services.Sync != nil {
				if d.Fetched, err = s.Services.Sync.FetchedConfig(ctx, ph.MAC); err != nil {
					s.fail(w, r, err)
					return
				}
			}
			if d.Fetched != nil {
				f := string(d.Fetched.Body)
				fetched = &f
			}
			d.View = buildConfigView(d.Plain, d.Masked, fetched)
		}
	}
	s.render(w, r, http.StatusOK, "phone.html", &page{Title: ph.Name, Active: "phones", Flash: flashOf(w, r), Data: d})
}

// maskSecrets replaces the value of every "key = value" line whose key ends
// in "password" (account.1.password, static.auto_provision.server.password,
// and the like in a template override) with ********.
func maskSecrets(cfg string) (string, bool) {
	lines := strings.Split(cfg, "\n")
	masked := false
	for i, l := range lines {
		k, v, ok := strings.Cut(l, "=")
		key := strings.ToLower(strings.TrimSpace(k))
		if !ok || strings.HasPrefix(key, "#") || !strings.HasSuffix(key, "password") {
			continue
		}
		if v = strings.TrimSpace(v); v == "" || v == "%NULL%" {
			continue
		}
		lines[i] = strings.TrimRight(k, " \t") + " = ********"
		masked = true
	}
	return strings.Join(lines, "\n"), masked
}

// handleClaimUI reopens the phone's claim window (Reopen claim).
func (s *Server) handleClaimUI(w http.ResponseWriter, r *http.Request) {
	ph, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone)
	if !ok {
		return
	}
	p, err := s.reopenClaim(r.Context(), ph.MAC)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	redirectBack(w, r, "/phones/"+ph.MAC, "Claim reopened: until "+p.Sync.ClaimOpenUntil.Local().Format("Jan 2 15:04")+
		", "+ph.Name+" may fetch its config once without its secret. Reboot the phone (or reset it to factory settings) so it fetches it now.")
}

// handleRotateSecretUI gives the phone a new secret (Rotate secret).
func (s *Server) handleRotateSecretUI(w http.ResponseWriter, r *http.Request) {
	ph, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone)
	if !ok {
		return
	}
	if _, err := s.Services.Phones.RotateSecret(r.Context(), ph.MAC); err != nil {
		s.fail(w, r, err)
		return
	}
	msg := "New secret for " + ph.Name + ": the phone gets it with its next config (being sent now); until it fetches it, the old secret still works."
	if !ph.Sync.HasFetched() {
		msg = "New secret for " + ph.Name + ": it gets it with its first config."
	}
	redirectBack(w, r, "/phones/"+ph.MAC, msg)
}

func (s *Server) handleResyncUI(w http.ResponseWriter, r *http.Request) {
	ph, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone)
	if !ok {
		return
	}
	if s.Services.Sync == nil {
		redirectBack(w, r, "/phones/"+ph.MAC, "Resync is not available on this server.")
		return
	}
	if err := s.Services.Sync.Resync(r.Context(), []string{ph.MAC}); err != nil {
		if appliance.ErrorCode(err) == appliance.ECONFLICT { // never fetched: nothing is sent
			redirectBack(w, r, "/phones/"+ph.MAC, "Nothing sent: "+ph.Name+" has never fetched its config. "+
				"A phone that was never provisioned reboots on check-sync; it fetches its config by itself when it boots and finds provbox.")
			return
		}
		s.fail(w, r, err)
		return
	}
	how := "check-sync"
	if s.settingsInForce().SyncTrigger == appliance.TriggerActionURI {
		how = "Action URI request"
	}
	msg := "Resync: " + how + " sent to " + ph.Name + "; it fetches its config again now — watch its sync badge."
	if ph.Sync.SIPAddress == "" {
		msg = "Resync: " + how + " sent to " + ph.Name + " as soon as its address is known (it has not contacted provbox yet)."
	}
	redirectBack(w, r, "/phones/"+ph.MAC, msg)
}

func (s *Server) handleDeletePhoneUI(w http.ResponseWriter, r *http.Request) {
	ph, ok := lookup(s, w, r, pathMAC, s.Services.Phones.FindPhone)
	if !ok {
		return
	}
	if err := s.Services.Phones.DeletePhone(r.Context(), ph.MAC); err != nil {
		s.fail(w, r, err)
		return
	}
	redirectBack(w, r, "/phones", "Phone "+ph.Name+" ("+appliance.FormatMAC(ph.MAC)+
		") deleted. The handset keeps its last config until it is reset; if it asks for its config again it shows under Discovered.")
}
