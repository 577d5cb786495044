package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// The audit trail is written by the service methods themselves: each one
// that changes something calls tx.audit with what it changed (before and
// after), and DB.update writes the entries in the same transaction; the
// phones whose config version the change moved are added to them with
// those versions, in the versions' transaction (versions.go).
// A phone's fetch of a version marks its rows up to that version reached;
// its report that it applied one marks them confirmed.

// AuditService implements appliance.AuditService.
type AuditService struct{ db *DB }

var _ appliance.AuditService = (*AuditService)(nil)

// pendingAudit is an entry waiting for the end of its transaction.
type pendingAudit struct {
	action, object string
	changes        []appliance.AuditChange
	phones         []string // phones named by the action itself (a resync)
	moved          bool     // the phones whose version the transaction moved are its phones
	ifChanged      bool     // dropped when no field changed
	ifPhones       bool     // dropped when no phone is concerned
}

// audit records that the transaction changed object from before to after
// (nil for a creation or a deletion): the fields that differ.
func (tx *Tx) audit(action, object string, before, after any) *pendingAudit {
	return tx.auditChanges(action, object, diffFields(tx.fieldsOf(before), tx.fieldsOf(after)))
}

// auditChanges records an entry with changes as given.
func (tx *Tx) auditChanges(action, object string, changes []appliance.AuditChange) *pendingAudit {
	e := &pendingAudit{action: action, object: object, changes: changes, moved: true}
	tx.audits = append(tx.audits, e)
	return e
}

// writeAudit writes the transaction's entries and the phones they name (a
// resync), and drops entries beyond the trail's age and size. It returns
// the entries that list the phones whose version the change moves: the
// versions' transaction adds them (versions.go).
func (tx *Tx) writeAudit() ([]dueAudit, error) {
	if len(tx.audits) == 0 {
		return nil, nil
	}
	actor := appliance.ActorFrom(tx.ctx)
	var last int64
	var due []dueAudit
	for _, e := range tx.audits {
		macs := uniqueStrings(e.phones)
		if (e.ifChanged && len(e.changes) == 0) || (e.ifPhones && len(macs) == 0 && (!e.moved || len(tx.touched) == 0)) {
			continue
		}
		changes, err := marshalChanges(e.changes)
		if err != nil {
			return nil, err
		}
		res, err := tx.exec(`INSERT INTO audit (at, actor, action, object, changes) VALUES (?, ?, ?, ?, ?)`,
			tx.now, appliance.Clip(actor), e.action, e.object, changes)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if last, err = res.LastInsertId(); err != nil {
			return nil, err
		}
		if e.moved {
			due = append(due, dueAudit{id: last, ifPhones: e.ifPhones && len(macs) == 0})
		}
		for _, mac := range macs {
			var id int64
			var name, version string
			err := tx.QueryRowContext(tx.ctx, `SELECT id, name, config_version FROM phones WHERE mac = ?`, mac).Scan(&id, &name, &version)
			if err == sql.ErrNoRows {
				continue // deleted by this change
			} else if err != nil {
				return nil, err
			}
			if _, err := tx.exec(`INSERT OR IGNORE INTO audit_phones (audit_id, phone_id, mac, name, version) VALUES (?, ?, ?, ?, ?)`,
				last, id, mac, name, version); err != nil {
				return nil, fmt.Errorf("audit phones: %w", err)
			}
		}
	}
	tx.audits = nil
	if last == 0 {
		return due, nil
	}
	keep, age := int64(tx.db.AuditKeep), tx.db.AuditMaxAge
	if keep <= 0 {
		keep = appliance.AuditKeep
	}
	if age <= 0 {
		age = appliance.AuditMaxAge
	}
	// Ids only grow (the oldest go first), so the newest keep entries are
	// those above last-keep: two index probes, whatever the trail's size.
	if _, err := tx.exec(`DELETE FROM audit WHERE id <= ?`, last-keep); err != nil {
		return nil, fmt.Errorf("audit retention: %w", err)
	}
	if _, err := tx.exec(`DELETE FROM audit WHERE at < ?`, tx.now-age.Milliseconds()); err != nil {
		return nil, fmt.Errorf("audit retention: %w", err)
	}
	return due, nil
}

// auditMoved lists a phone whose version moved to version in its
// change's audit entries. A change back to what the phone already holds
// (an edit undone) reached it already, and is confirmed if the phone is
// synced: nothing will be fetched for it.
func (tx *Tx) auditMoved(audits []dueAudit, id int64, mac, name, version, fetched, state string) error {
	if len(audits) == 0 {
		return nil
	}
	for _, a := range audits {
		if _, err := tx.exec(`INSERT OR IGNORE INTO audit_phones (audit_id, phone_id, mac, name, version) VALUES (?, ?, ?, ?, ?)`,
			a.id, id, mac, name, version); err != nil {
			return fmt.Errorf("audit phones: %w", err)
		}
	}
	if fetched != version {
		return nil
	}
	if err := tx.auditReached(id, version); err != nil {
		return err
	}
	if state == appliance.SyncSynced {
		return tx.auditConfirmed(id, version)
	}
	return nil
}

// auditReached marks the phone's entries reached, up to the newest one
// that gave it version: the config it fetched holds every earlier change.
// On the fetch path, so it reads only the phone's rows not yet reached
// (the partial index, named: unanalysed, the planner would take the
// phone's whole history): nothing at all when there are none.
func (tx *Tx) auditReached(phoneID int64, version string) error {
	_, err := tx.exec(`UPDATE audit_phones INDEXED BY audit_phones_unreached SET reached_at = ?
		WHERE phone_id = ? AND reached_at IS NULL AND audit_id <= (
		SELECT max(audit_id) FROM audit_phones INDEXED BY audit_phones_unreached WHERE phone_id = ? AND reached_at IS NULL AND version = ?)`,
		tx.now, phoneID, phoneID, version)
	return err
}

// auditConfirmed marks the phone's entries confirmed (and reached), up to
// the newest one that gave it version: it reported applying that config.
func (tx *Tx) auditConfirmed(phoneID int64, version string) error {
	_, err := tx.exec(`UPDATE audit_phones INDEXED BY audit_phones_unconfirmed SET confirmed_at = ?, reached_at = COALESCE(reached_at, ?)
		WHERE phone_id = ? AND confirmed_at IS NULL AND audit_id <= (
		SELECT max(audit_id) FROM audit_phones INDEXED BY audit_phones_unconfirmed WHERE phone_id = ? AND confirmed_at IS NULL AND version = ?)`,
		tx.now, tx.now, phoneID, phoneID, version)
	return err
}

// FindAudit lists entries, newest first.
func (s *AuditService) FindAudit(ctx context.Context, f appliance.AuditFilter) ([]*appliance.AuditEntry, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if f.Before > 0 {
		where = append(where, `a.id < ?`)
		args = append(args, f.Before)
	}
	if f.MAC != "" {
		// A deleted phone has no phone rows: its MAC is in the object or
		// the changes.
		like := containing(appliance.FormatMAC(f.MAC))
		where = append(where, `(EXISTS (SELECT 1 FROM audit_phones ap WHERE ap.audit_id = a.id AND ap.mac = ?)
			OR a.object LIKE ? ESCAPE '\' OR a.changes LIKE ? ESCAPE '\')`)
		args = append(args, f.MAC, like, like)
	}
	if f.Q != "" {
		like := containing(f.Q)
		cond := `a.actor LIKE ? ESCAPE '\' OR a.action LIKE ? ESCAPE '\' OR a.object LIKE ? ESCAPE '\' OR a.changes LIKE ? ESCAPE '\'
			OR EXISTS (SELECT 1 FROM audit_phones ap WHERE ap.audit_id = a.id AND (ap.name LIKE ? ESCAPE '\' OR ap.mac LIKE ? ESCAPE '\'))`
		args = append(args, like, like, like, like, like, like)
		if m, err := appliance.ParseMAC(f.Q); err == nil {
			cond += ` OR EXISTS (SELECT 1 FROM audit_phones ap WHERE ap.audit_id = a.id AND ap.mac = ?) OR a.object LIKE ? ESCAPE '\'`
			args = append(args, m, containing(appliance.FormatMAC(m)))
		}
		where = append(where, "("+cond+")")
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	out := []*appliance.AuditEntry{}
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT a.id, a.at, a.actor, a.action, a.object, a.changes FROM audit a `+clause+` ORDER BY a.id DESC LIMIT ?`,
			append(args, f.Limit)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		byID := map[int64]*appliance.AuditEntry{}
		for rows.Next() {
			var e appliance.AuditEntry
			var at int64
			var changes string
			if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &changes); err != nil {
				return err
			}
			e.At = time.UnixMilli(at).UTC()
			if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil || e.Changes == nil {
				e.Changes = []appliance.AuditChange{}
			}
			e.Phones = []appliance.AuditPhone{}
			out = append(out, &e)
			byID[e.ID] = &e
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(out) == 0 {
			return nil
		}
		ids := make([]string, len(out))
		for i, e := range out {
			ids[i] = strconv.FormatInt(e.ID, 10)
		}
		prows, err := q.QueryContext(ctx, `SELECT audit_id, mac, name, version, reached_at, confirmed_at FROM audit_phones
			WHERE audit_id IN (`+strings.Join(ids, ",")+`) ORDER BY audit_id, name, mac`)
		if err != nil {
			return err
		}
		defer prows.Close()
		for prows.Next() {
			var id int64
			var p appliance.AuditPhone
			var reached, confirmed sql.NullInt64
			if err := prows.Scan(&id, &p.MAC, &p.Name, &p.Version, &reached, &confirmed); err != nil {
				return err
			}
			p.ReachedAt, p.ConfirmedAt = msToTime(reached), msToTime(confirmed)
			if e := byID[id]; e != nil {
				e.Phones = append(e.Phones, p)
			}
		}
		return prows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ---- what an entry says ----------------------------------------------------

func phoneObject(p *appliance.Phone) string { return "phone " + p.Title() }

func extensionObject(e *appliance.Extension) string {
	if e.Name == "" || e.Name == e.Number {
		return "extension " + e.Number
	}
	return "extension " + e.Number + " “" + e.Name + "”"
}

func locationObject(l *appliance.Location) string { return "location “" + l.Name + "”" }

func keyObject(k *appliance.Key) string {
	return "key " + strconv.FormatInt(k.ID, 10) + " " + keyText(k.Type, k.Value, k.Label)
}

func userObject(name string) string { return "user “" + name + "”" }

// keyText names a key as the pages do: "BLF 102 “Bob”" (no label when it
// is the value).
func keyText(typ, value, label string) string {
	name := typ
	switch typ {
	case appliance.KeyBLF:
		name = "BLF"
	case appliance.KeySpeedDial:
		name = "speed dial"
	}
	s := name + " " + value
	if label != "" && label != value {
		s += " “" + label + "”"
	}
	return s
}

// secretChange is a secret's change, without the secret.
func secretChange(field string) appliance.AuditChange {
	return appliance.AuditChange{Field: field, Before: appliance.AuditSecret, After: appliance.AuditSecretChanged}
}

// field is one field of an audited object as text. rank orders the fields
// of before and after together.
type field struct {
	name, value string
	rank        int
}

// skipFields are read-only or derived: never a change of their own.
var skipFields = map[string]bool{
	"id": true, "sync": true, "attached_to": true, "password_set": true, "account_key_id": true,
	"extension_id": true, "created_at": true, "updated_at": true,
}

// isSecret reports a field whose value the trail never holds.
func isSecret(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.Contains(n, "token")
}

// phoneSnap is a phone with what its page shows of it: its location's
// name and its line keys.
type phoneSnap struct {
	phone    appliance.Phone
	location string
	layout   []appliance.LayoutEntry
}

// phoneSnapshot reads a phone as the trail records it (the errors of
// findPhone).
func (tx *Tx) phoneSnapshot(mac string) (*phoneSnap, error) {
	p, err := findPhone(tx.ctx, tx, mac)
	if err != nil {
		return nil, err
	}
	return tx.snapPhone(p)
}

func (tx *Tx) snapPhone(p *appliance.Phone) (*phoneSnap, error) {
	s := &phoneSnap{phone: *p}
	if p.LocationID != nil {
		err := tx.QueryRowContext(tx.ctx, `SELECT name FROM locations WHERE id = ?`, *p.LocationID).Scan(&s.location)
		if err != nil && err != sql.ErrNoRows {
			return nil, err
		}
	}
	var err error
	s.layout, err = loadLayout(tx.ctx, tx, p.ID)
	return s, err
}

// auditPhone records a change of a phone from before (nil: created) to
// p as it is now, with its location and line keys.
func (tx *Tx) auditPhone(action string, before *phoneSnap, p *appliance.Phone) error {
	after, err := tx.snapPhone(p)
	if err != nil {
		return err
	}
	tx.audit(action, phoneObject(p), before, after)
	return nil
}

// fieldsOf turns what a service changed into fields: a phone with its
// location name and line keys, an extension with its password (compared,
// never kept), a layout by position, anything else by its JSON fields.
func (tx *Tx) fieldsOf(v any) []field {
	if v == nil {
		return nil
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil
	}
	switch x := v.(type) {
	case *phoneSnap:
		p := x.phone
		modules := ""
		if p.ExpansionModules > 0 {
			modules = strconv.Itoa(p.ExpansionModules)
		}
		out := []field{{"mac", appliance.FormatMAC(p.MAC), 0}, {"name", p.Name, 1}, {"description", p.Description, 2},
			{"location", x.location, 3}, {"manufacturer", p.Manufacturer, 4}, {"model", p.Model, 5}, {"expansion_modules", modules, 6}}
		return append(out, layoutFields(x.layout)...)
	case []appliance.LayoutEntry:
		return layoutFields(x)
	case *appliance.Extension:
		out := jsonFields(x)
		return append(out, field{"password", x.Password, len(out)})
	}
	return jsonFields(v)
}

// layoutFields names line keys as the layout editor does: "key 3", and
// "module 1 key 3" on an expansion module.
func layoutFields(layout []appliance.LayoutEntry) []field {
	out := make([]field, 0, len(layout))
	for _, e := range layout {
		name := "key " + strconv.Itoa(e.Position)
		if e.Module > 0 {
			name = "module " + strconv.Itoa(e.Module) + " " + name
		}
		out = append(out, field{name, keyText(e.Type, e.Value, e.Label), 1000 + e.Module*1000 + e.Position})
	}
	return out
}

// jsonFields is v's JSON object, field by field in its order; a nested
// value stays JSON. Not an object: no fields.
func jsonFields(v any) []field {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return out
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return out
		}
		if skipFields[name] {
			continue
		}
		out = append(out, field{name, jsonText(raw), len(out)})
	}
	return out
}

// jsonText is a JSON value as a person reads it: a string unquoted, null
// empty, anything else as written.
func jsonText(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	if t := string(raw); t != "null" {
		return t
	}
	return ""
}

// diffFields lists the fields whose value differs between before and
// after (missing is empty); a secret's change says only that it changed.
func diffFields(before, after []field) []appliance.AuditChange {
	type pair struct {
		before, after string
		rank          int
	}
	byName := map[string]*pair{}
	var names []string
	for _, side := range []struct {
		fields []field
		after  bool
	}{{before, false}, {after, true}} {
		for _, f := range side.fields {
			p := byName[f.name]
			if p == nil {
				p = &pair{rank: f.rank}
				byName[f.name] = p
				names = append(names, f.name)
			}
			if side.after {
				p.after = f.value
			} else {
				p.before = f.value
			}
		}
	}
	sort.SliceStable(names, func(i, j int) bool { return byName[names[i]].rank < byName[names[j]].rank })
	out := []appliance.AuditChange{}
	for _, n := range names {
		p := byName[n]
		if p.before == p.after {
			continue
		}
		c := appliance.AuditChange{Field: n, Before: p.before, After: p.after}
		if isSecret(n) {
			c = appliance.AuditChange{Field: n}
			switch {
			case p.before == "":
				c.After = appliance.AuditSecretSet
			case p.after == "":
				c.Before = appliance.AuditSecret
			default:
				c = secretChange(n)
			}
		}
		out = append(out, c)
	}
	return out
}

func marshalChanges(c []appliance.AuditChange) (string, error) {
	if c == nil {
		c = []appliance.AuditChange{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // searched with LIKE: keep < > & as typed
	if err := enc.Encode(c); err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

func uniqueStrings(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ---- several phones at once ------------------------------------------------

// bulkAudit is one entry for a change made to many phones: per field, the
// values it had and has (“3 values” when they differ too much to list).
type bulkAudit struct {
	tx     *Tx
	entry  *pendingAudit
	phones []string
	fields []string
	before map[string][]string
	after  map[string][]string
}

func (tx *Tx) bulkAudit(action string) *bulkAudit {
	return &bulkAudit{tx: tx, entry: tx.auditChanges(action, "", nil), before: map[string][]string{}, after: map[string][]string{}}
}

// add takes one phone's change (before nil: deleted, p nil).
func (b *bulkAudit) add(before *phoneSnap, p *appliance.Phone) error {
	var after *phoneSnap
	title := ""
	if p != nil {
		s, err := b.tx.snapPhone(p)
		if err != nil {
			return err
		}
		after, title = s, p.Title()
	} else if before != nil {
		title = before.phone.Title()
	}
	b.phones = append(b.phones, title)
	if p == nil {
		b.entry.object = fmt.Sprintf("%d phones", len(b.phones))
		b.entry.changes = []appliance.AuditChange{{Field: "phones", Before: listed(b.phones, 50)}}
		return nil
	}
	for _, c := range diffFields(b.tx.fieldsOf(before), b.tx.fieldsOf(after)) {
		if _, ok := b.before[c.Field]; !ok {
			b.fields = append(b.fields, c.Field)
		}
		b.before[c.Field] = appendNew(b.before[c.Field], c.Before)
		b.after[c.Field] = appendNew(b.after[c.Field], c.After)
	}
	b.entry.object = fmt.Sprintf("%d phones: %s", len(b.phones), listed(b.phones, 10))
	b.entry.changes = make([]appliance.AuditChange, 0, len(b.fields))
	for _, f := range b.fields {
		b.entry.changes = append(b.entry.changes, appliance.AuditChange{Field: f, Before: values(b.before[f]), After: values(b.after[f])})
	}
	return nil
}

func appendNew(list []string, v string) []string {
	for _, s := range list {
		if s == v {
			return list
		}
	}
	return append(list, v)
}

func values(list []string) string {
	if len(list) > 3 {
		return fmt.Sprintf("(%d values)", len(list))
	}
	var shown []string
	for _, v := range list {
		if v == "" {
			v = "(none)"
		}
		shown = append(shown, v)
	}
	if len(shown) == 1 && shown[0] == "(none)" {
		return ""
	}
	return strings.Join(shown, " / ")
}

// listed joins names, at most n of them: "A, B and 3 more".
func listed(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

// importChanges sums up an import.
func importChanges(r *appliance.ImportResult) []appliance.AuditChange {
	out := []appliance.AuditChange{{Field: "phones", After: fmt.Sprintf("%d (%d created, %d updated)", r.Phones, r.PhonesCreated, r.PhonesUpdated)}}
	if r.LineKeys > 0 {
		out = append(out, appliance.AuditChange{Field: "line keys", After: strconv.Itoa(r.LineKeys)})
	}
	if r.KeysCreated > 0 {
		out = append(out, appliance.AuditChange{Field: "keys created", After: strconv.Itoa(r.KeysCreated)})
	}
	return out
}

// auditResync records that macs were told to sync (all phones that
// fetched before when all).
func (db *DB) auditResync(ctx context.Context, macs []string, all bool) error {
	return db.update(ctx, func(tx *Tx) error {
		object := fmt.Sprintf("all phones (%d)", len(macs))
		if !all {
			names := make([]string, 0, len(macs))
			for _, m := range macs {
				var name string
				if err := tx.QueryRowContext(tx.ctx, `SELECT name FROM phones WHERE mac = ?`, m).Scan(&name); err != nil && err != sql.ErrNoRows {
					return err
				}
				names = append(names, (&appliance.Phone{MAC: m, Name: name}).Title())
			}
			object = "phone " + listed(names, 10)
			if len(macs) > 1 {
				object = fmt.Sprintf("%d phones: %s", len(macs), listed(names, 10))
			}
		}
		e := tx.auditChanges("phone.resync", object, nil)
		e.phones, e.moved = macs, false
		return nil
	})
}

// claimChange is the phone's claim window opened now until (Unix ms).
func (tx *Tx) claimChange(p *appliance.Phone, until int64) appliance.AuditChange {
	c := appliance.AuditChange{Field: "claim_window", Before: "closed", After: "open until " + time.UnixMilli(until).UTC().Format(time.RFC3339)}
	if t := p.Sync.ClaimOpenUntil; t != nil && t.UnixMilli() > tx.now {
		c.Before = "open until " + t.UTC().Format(time.RFC3339)
	}
	return c
}
