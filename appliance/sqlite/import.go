package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// ImportService implements appliance.ImportService.
type ImportService struct{ db *DB }

var _ appliance.ImportService = (*ImportService)(nil)

// ImportPhones applies all phones in one transaction (rolled back when dry).
// A phone's error does not stop the check: every rule broken, in every
// phone, is collected (up to appliance.MaxCSVErrors) and returned as an
// appliance.Errors, and nothing is written.
func (s *ImportService) ImportPhones(ctx context.Context, phones []appliance.PhoneImport, dryRun bool) (*appliance.ImportResult, error) {
	res := &appliance.ImportResult{DryRun: dryRun}
	fn := func(tx *Tx) error {
		*res = appliance.ImportResult{DryRun: dryRun, Details: &appliance.ImportDetails{}}
		keys := map[string]int64{}
		var errs appliance.Errors
		for i := range phones {
			if err := tx.importPhone(&phones[i], keys, res, &errs); err != nil {
				return err
			}
			if len(errs) >= appliance.MaxCSVErrors {
				break
			}
		}
		if len(errs) > 0 {
			sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
			return errs.Err()
		}
		tx.auditChanges("phones.import", "phones import", importChanges(res))
		return nil
	}
	var err error
	if dryRun {
		err = s.db.dryRun(ctx, fn)
	} else {
		err = s.db.update(ctx, fn)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// keepError adds err to errs when it is a rule broken (a domain error other
// than an internal or storage failure), each at line unless it names its
// own, and reports whether it did; nil is kept as nothing.
func keepError(errs *appliance.Errors, err error, line int) bool {
	if err == nil {
		return true
	}
	switch appliance.ErrorCode(err) {
	case appliance.EINTERNAL, appliance.EUNAVAILABLE:
		return false
	}
	for _, e := range appliance.AllErrors(err) {
		c := *e
		if c.Line == 0 {
			c.Line = line
		}
		*errs = append(*errs, &c)
	}
	return true
}

// importPhone adds or updates one phone and replaces its layout, adding the
// rules it breaks to errs; other errors come back. A phone with errors (or
// Partial, from ParseCSV) is checked but not written.
func (tx *Tx) importPhone(pi *appliance.PhoneImport, keys map[string]int64, res *appliance.ImportResult, errs *appliance.Errors) error {
	failed := len(*errs)
	p := pi.Phone
	p.LocationID = nil
	if pi.Location != "" {
		var id int64
		err := tx.QueryRowContext(tx.ctx, `SELECT id FROM locations WHERE name = ?`, pi.Location).Scan(&id)
		if err == sql.ErrNoRows {
			keepError(errs, appliance.Errorf(appliance.EINVALID, "location", "no location named %q; create it first", pi.Location), pi.Line)
		} else if err != nil {
			return err
		} else {
			p.LocationID = &id
		}
	}
	layout, entries, keysFailed, err := tx.importLayout(pi, keys, res, errs)
	if err != nil || pi.Partial {
		return err // a Partial phone's other errors were found reading the file
	}
	var change appliance.PhoneChange
	var phone *appliance.Phone
	var oldLayout []appliance.LayoutEntry
	existing, err := findPhone(tx.ctx, tx, p.MAC)
	switch appliance.ErrorCode(err) {
	case "":
		change, phone, oldLayout, err = tx.updateImported(existing, &p, pi)
	case appliance.ENOTFOUND:
		change = appliance.PhoneChange{Line: pi.Line, MAC: p.MAC, Action: appliance.ImportAdded}
		phone, _, err = tx.createPhone(&p)
	}
	if err != nil {
		if !keepError(errs, err, pi.Line) {
			return err
		}
		return nil
	}
	change.Name = phone.Name
	if change.Action == appliance.ImportAdded {
		res.PhonesCreated++
	} else {
		res.PhonesUpdated++
	}
	res.Phones++
	if keysFailed {
		return nil
	}
	newLayout, err := tx.replaceLayout(phone, layout)
	if err != nil {
		if !keepError(errs, layoutErrorAtLine(err, pi.Line, entries), pi.Line) {
			return err
		}
		return nil
	}
	res.LineKeys += len(layout)
	if len(*errs) > failed {
		return nil
	}
	change.LineKeys = len(newLayout)
	if change.Action != appliance.ImportAdded {
		change.Changes = append(change.Changes, layoutChanges(oldLayout, newLayout)...)
		if len(change.Changes) > 0 {
			change.Action = appliance.ImportChanged
		}
	}
	res.Details.Phones = append(res.Details.Phones, change)
	return nil
}

// importLayout resolves phone pi's keys (creating missing ones) into its
// layout first, so that errors name the key's own line. entries are the
// keys sorted by module and position, as the layout is; failed reports a
// key that could not be resolved (the error is in errs).
func (tx *Tx) importLayout(pi *appliance.PhoneImport, keys map[string]int64, res *appliance.ImportResult, errs *appliance.Errors) (layout []appliance.LayoutEntry, entries []appliance.ImportKey, failed bool, err error) {
	entries = slices.Clone(pi.Keys)
	slices.SortStableFunc(entries, func(a, b appliance.ImportKey) int {
		return cmp.Or(cmp.Compare(a.Module, b.Module), cmp.Compare(a.Position, b.Position))
	})
	layout = make([]appliance.LayoutEntry, len(entries))
	for i, k := range entries {
		id, err := tx.importKey(k, keys, res)
		if err != nil {
			if !keepError(errs, appliance.AtLine(err, k.Line), k.Line) {
				return nil, nil, false, err
			}
			failed = true
			continue
		}
		layout[i] = appliance.LayoutEntry{Module: k.Module, Position: k.Position, KeyID: id}
	}
	return layout, entries, failed, nil
}

// updateImported updates the existing phone to p (its layout emptied, to
// be replaced) and says which of its fields changed; it returns the
// layout it had.
func (tx *Tx) updateImported(existing *appliance.Phone, p *appliance.Phone, pi *appliance.PhoneImport) (appliance.PhoneChange, *appliance.Phone, []appliance.LayoutEntry, error) {
	change := appliance.PhoneChange{Line: pi.Line, MAC: p.MAC, Action: appliance.ImportUnchanged}
	oldLayout, err := loadLayout(tx.ctx, tx, existing.ID)
	if err != nil {
		return change, nil, nil, err
	}
	oldLocation := ""
	if existing.LocationID != nil {
		if err := tx.QueryRowContext(tx.ctx, `SELECT name FROM locations WHERE id = ?`, *existing.LocationID).Scan(&oldLocation); err != nil && err != sql.ErrNoRows {
			return change, nil, nil, err
		}
	}
	if _, err := tx.exec(`DELETE FROM layout WHERE phone_id = ?`, existing.ID); err != nil {
		return change, nil, nil, err
	}
	loc := int64(0)
	if p.LocationID != nil {
		loc = *p.LocationID
	}
	phone, err := tx.updatePhone(p.MAC, appliance.PhoneUpdate{Name: &p.Name, Description: &p.Description,
		LocationID: &loc, Manufacturer: &p.Manufacturer, Model: &p.Model, ExpansionModules: &p.ExpansionModules})
	if err != nil {
		return change, nil, nil, err
	}
	newLocation := pi.Location
	if p.LocationID == nil {
		newLocation = oldLocation // not found: reported by importPhone
	}
	for _, f := range []appliance.FieldChange{
		{Field: "name", Old: existing.Name, New: phone.Name},
		{Field: "description", Old: existing.Description, New: phone.Description},
		{Field: "location", Old: oldLocation, New: newLocation},
		{Field: "model", Old: existing.Manufacturer + " " + existing.Model, New: phone.Manufacturer + " " + phone.Model},
		{Field: "expansion_modules", Old: strconv.Itoa(existing.ExpansionModules), New: strconv.Itoa(phone.ExpansionModules)},
	} {
		if f.Old != f.New {
			change.Changes = append(change.Changes, f)
		}
	}
	return change, phone, oldLayout, nil
}

// layoutChanges lists the line keys that differ between two layouts, by
// module and position.
func layoutChanges(old, new []appliance.LayoutEntry) []appliance.FieldChange {
	type slot struct{ module, position int }
	text := func(e appliance.LayoutEntry) string {
		t := e.Type + " " + e.Value
		if e.Label != "" && e.Label != e.Value {
			t += " " + e.Label
		}
		return t
	}
	was := map[slot]appliance.LayoutEntry{}
	var slots []slot
	for _, e := range old {
		s := slot{e.Module, e.Position}
		was[s] = e
		slots = append(slots, s)
	}
	is := map[slot]appliance.LayoutEntry{}
	for _, e := range new {
		s := slot{e.Module, e.Position}
		is[s] = e
		if _, ok := was[s]; !ok {
			slots = append(slots, s)
		}
	}
	sort.Slice(slots, func(i, j int) bool {
		if slots[i].module != slots[j].module {
			return slots[i].module < slots[j].module
		}
		return slots[i].position < slots[j].position
	})
	var out []appliance.FieldChange
	for _, s := range slots {
		o, hadOld := was[s]
		n, hasNew := is[s]
		if hadOld && hasNew && o.KeyID == n.KeyID {
			continue
		}
		f := appliance.FieldChange{Field: fmt.Sprintf("key %d", s.position)}
		if s.module > 0 {
			f.Field = fmt.Sprintf("module %d key %d", s.module, s.position)
		}
		if hadOld {
			f.Old = text(o)
		}
		if hasNew {
			f.New = text(n)
		}
		out = append(out, f)
	}
	return out
}

// layoutErrorAtLine turns a layout error ("keys[3].position") into one
// naming the CSV line of that key and its column (each of an Errors).
func layoutErrorAtLine(err error, phoneLine int, entries []appliance.ImportKey) error {
	list := appliance.AllErrors(err)
	if list == nil {
		return err
	}
	var out appliance.Errors
	for _, e := range list {
		c := *e
		c.Line = phoneLine
		if strings.HasPrefix(c.Field, "keys[") {
			if end := strings.Index(c.Field, "]"); end > 0 {
				if i, err := strconv.Atoi(c.Field[5:end]); err == nil && i < len(entries) {
					c.Line = entries[i].Line
					c.Field = strings.TrimPrefix(c.Field[end+1:], ".")
					if c.Field == "key_id" {
						c.Field = "key_value"
					}
				}
			}
		} else if c.Field == "keys" {
			c.Field = "key_type"
		}
		out = append(out, &c)
	}
	return out.Err()
}

// importKey finds (or creates) the key a CSV row names.
func (tx *Tx) importKey(k appliance.ImportKey, cache map[string]int64, res *appliance.ImportResult) (int64, error) {
	if k.Type == appliance.KeyAccount {
		var id int64
		err := tx.QueryRowContext(tx.ctx, `SELECT k.id FROM keys k JOIN extensions e ON e.id = k.extension_id WHERE e.number = ?`, k.Value).Scan(&id)
		if err == sql.ErrNoRows {
			return 0, appliance.Errorf(appliance.EINVALID, "key_value", "no extension %q; create it first", k.Value)
		}
		return id, err
	}
	ck := k.Type + "\x00" + k.Value + "\x00" + k.Label
	if id, ok := cache[ck]; ok {
		return id, nil
	}
	var id int64
	err := tx.QueryRowContext(tx.ctx, `SELECT id FROM keys WHERE type = ? AND value = ? AND label = ? ORDER BY id LIMIT 1`, k.Type, k.Value, k.Label).Scan(&id)
	if err == sql.ErrNoRows {
		created, err := tx.createKey(&appliance.Key{Type: k.Type, Value: k.Value, Label: k.Label})
		if err != nil {
			var e *appliance.Error
			if errors.As(err, &e) {
				c := *e
				c.Field = "key_" + c.Field
				return 0, &c
			}
			return 0, err
		}
		id = created.ID
		res.KeysCreated++
		if res.Details != nil {
			res.Details.NewKeys = append(res.Details.NewKeys, appliance.ImportKey{Line: k.Line, Type: created.Type, Value: created.Value, Label: created.Label})
		}
	} else if err != nil {
		return 0, fmt.Errorf("find key: %w", err)
	}
	cache[ck] = id
	return id, nil
}

// ExportPhones returns every phone with its location name and line keys.
func (s *ImportService) ExportPhones(ctx context.Context) ([]appliance.PhoneImport, error) {
	var out []appliance.PhoneImport
	err := s.db.view(ctx, func(q querier) error {
		phones, err := findPhones(ctx, q, `ORDER BY mac`)
		if err != nil {
			return err
		}
		locs, err := findLocations(ctx, q, ``)
		if err != nil {
			return err
		}
		locName := map[int64]string{}
		for _, l := range locs {
			locName[l.ID] = l.Name
		}
		for _, p := range phones {
			pi := appliance.PhoneImport{Phone: *p}
			if p.LocationID != nil {
				pi.Location = locName[*p.LocationID]
			}
			layout, err := loadLayout(ctx, q, p.ID)
			if err != nil {
				return err
			}
			for _, e := range layout {
				pi.Keys = append(pi.Keys, appliance.ImportKey{Module: e.Module, Position: e.Position, Type: e.Type, Value: e.Value, Label: e.Label})
			}
			out = append(out, pi)
		}
		return nil
	})
	return out, err
}
