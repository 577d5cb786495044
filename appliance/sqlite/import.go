package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// ImportService implements appliance.ImportService.
type ImportService struct{ db *DB }

var _ appliance.ImportService = (*ImportService)(nil)

// ImportPhones applies all phones in one transaction (rolled back when dry).
func (s *ImportService) ImportPhones(ctx context.Context, phones []appliance.PhoneImport, dryRun bool) (*appliance.ImportResult, error) {
	res := &appliance.ImportResult{DryRun: dryRun}
	fn := func(tx *Tx) error {
		*res = appliance.ImportResult{DryRun: dryRun}
		keys := map[string]int64{}
		for i := range phones {
			if err := tx.importPhone(&phones[i], keys, res); err != nil {
				return err
			}
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

func (tx *Tx) importPhone(pi *appliance.PhoneImport, keys map[string]int64, res *appliance.ImportResult) error {
	at := func(err error) error { return appliance.AtLine(err, pi.Line) }
	p := pi.Phone
	if pi.Location != "" {
		var id int64
		err := tx.QueryRowContext(tx.ctx, `SELECT id FROM locations WHERE name = ?`, pi.Location).Scan(&id)
		if err == sql.ErrNoRows {
			return at(appliance.Errorf(appliance.EINVALID, "location", "no location named %q; create it first", pi.Location))
		} else if err != nil {
			return err
		}
		p.LocationID = &id
	} else {
		p.LocationID = nil
	}
	// Resolve keys first, so that errors name the key's own line.
	entries := append([]appliance.ImportKey(nil), pi.Keys...)
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].Module != entries[j].Module {
			return entries[i].Module < entries[j].Module
		}
		return entries[i].Position < entries[j].Position
	})
	layout := make([]appliance.LayoutEntry, len(entries))
	for i, k := range entries {
		id, err := tx.importKey(k, keys, res)
		if err != nil {
			return appliance.AtLine(err, k.Line)
		}
		layout[i] = appliance.LayoutEntry{Module: k.Module, Position: k.Position, KeyID: id}
	}
	var phone *appliance.Phone
	existing, err := findPhone(tx.ctx, tx, p.MAC)
	switch appliance.ErrorCode(err) {
	case "":
		if _, err := tx.exec(`DELETE FROM layout WHERE phone_id = ?`, existing.ID); err != nil {
			return err
		}
		loc := int64(0)
		if p.LocationID != nil {
			loc = *p.LocationID
		}
		phone, err = tx.updatePhone(p.MAC, appliance.PhoneUpdate{Name: &p.Name, Description: &p.Description,
			LocationID: &loc, Manufacturer: &p.Manufacturer, Model: &p.Model, ExpansionModules: &p.ExpansionModules})
		if err != nil {
			return at(err)
		}
		res.PhonesUpdated++
	case appliance.ENOTFOUND:
		if phone, _, err = tx.createPhone(&p); err != nil {
			return at(err)
		}
		res.PhonesCreated++
	default:
		return at(err)
	}
	res.Phones++
	if _, err := tx.replaceLayout(phone, layout); err != nil {
		return layoutErrorAtLine(err, pi.Line, entries)
	}
	res.LineKeys += len(layout)
	return nil
}

// layoutErrorAtLine turns a layout error ("keys[3].position") into one
// naming the CSV line of that key and its column.
func layoutErrorAtLine(err error, phoneLine int, entries []appliance.ImportKey) error {
	var e *appliance.Error
	if !errors.As(err, &e) {
		return err
	}
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
	return &c
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
