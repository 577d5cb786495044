package sqlite

import (
	"context"
	"fmt"

	"github.com/provbox/provbox/appliance"
)

// LocationService implements appliance.LocationService.
type LocationService struct{ db *DB }

var _ appliance.LocationService = (*LocationService)(nil)

const locationCols = `id, name, street, city, region, postal_code, country, callback_number`

func findLocations(ctx context.Context, q querier, where string, args ...any) ([]*appliance.Location, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+locationCols+` FROM locations `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*appliance.Location{}
	for rows.Next() {
		var l appliance.Location
		if err := rows.Scan(&l.ID, &l.Name, &l.Street, &l.City, &l.Region, &l.PostalCode, &l.Country, &l.CallbackNumber); err != nil {
			return nil, err
		}
		out = append(out, &l)
	}
	return out, rows.Err()
}

func findLocation(ctx context.Context, q querier, id int64) (*appliance.Location, error) {
	list, err := findLocations(ctx, q, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "id", "location %d not found", id)
	}
	return list[0], nil
}

// FindLocations lists locations by name.
func (s *LocationService) FindLocations(ctx context.Context) (out []*appliance.Location, err error) {
	err = s.db.view(ctx, func(q querier) error {
		out, err = findLocations(ctx, q, `ORDER BY name`)
		return err
	})
	return out, err
}

// FindLocation returns one location.
func (s *LocationService) FindLocation(ctx context.Context, id int64) (out *appliance.Location, err error) {
	err = s.db.view(ctx, func(q querier) error {
		out, err = findLocation(ctx, q, id)
		return err
	})
	return out, err
}

// CreateLocation creates a location.
func (s *LocationService) CreateLocation(ctx context.Context, in *appliance.Location) (*appliance.Location, error) {
	l := *in
	if err := l.Normalize(); err != nil {
		return nil, err
	}
	err := s.db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`INSERT INTO locations (name, street, city, region, postal_code, country, callback_number, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.Name, l.Street, l.City, l.Region, l.PostalCode, l.Country, l.CallbackNumber, tx.now, tx.now)
		if isUnique(err) {
			return appliance.Errorf(appliance.ECONFLICT, "name", "location %q already exists", l.Name)
		} else if err != nil {
			return fmt.Errorf("insert location: %w", err)
		}
		l.ID, _ = res.LastInsertId()
		tx.audit("location.create", locationObject(&l), nil, &l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// UpdateLocation changes a location; phones at it get a new config version.
func (s *LocationService) UpdateLocation(ctx context.Context, id int64, upd appliance.LocationUpdate) (out *appliance.Location, err error) {
	err = s.db.update(ctx, func(tx *Tx) error {
		l, err := findLocation(ctx, tx, id)
		if err != nil {
			return err
		}
		before := *l
		upd.Apply(l)
		if err := l.Normalize(); err != nil {
			return err
		}
		_, err = tx.exec(`UPDATE locations SET name = ?, street = ?, city = ?, region = ?, postal_code = ?, country = ?, callback_number = ?, updated_at = ? WHERE id = ?`,
			l.Name, l.Street, l.City, l.Region, l.PostalCode, l.Country, l.CallbackNumber, tx.now, id)
		if isUnique(err) {
			return appliance.Errorf(appliance.ECONFLICT, "name", "location %q already exists", l.Name)
		} else if err != nil {
			return fmt.Errorf("update location: %w", err)
		}
		out = l
		tx.audit("location.update", locationObject(l), &before, l)
		return tx.touchQuery(`SELECT id FROM phones WHERE location_id = ?`, id)
	})
	return out, err
}

// DeleteLocation deletes a location; with force, phones at it lose it.
func (s *LocationService) DeleteLocation(ctx context.Context, id int64, force bool) error {
	return s.db.update(ctx, func(tx *Tx) error {
		l, err := findLocation(ctx, tx, id)
		if err != nil {
			return err
		}
		const at = `SELECT id FROM phones WHERE location_id = ?`
		names, n, err := usedBy(ctx, tx, at, id)
		if err != nil {
			return err
		}
		if n > 0 && !force {
			return appliance.Errorf(appliance.ECONFLICT, "id", "location %q is used by %s: %s; move them first or delete with force=true", l.Name, appliance.Count(n, "phone", "phones"), names)
		}
		if err := tx.touchQuery(at, id); err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE phones SET location_id = NULL, updated_at = ? WHERE location_id = ?`, tx.now, id); err != nil {
			return fmt.Errorf("clear location: %w", err)
		}
		if _, err := tx.exec(`DELETE FROM locations WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete location: %w", err)
		}
		tx.audit("location.delete", locationObject(l), l, nil)
		return nil
	})
}
