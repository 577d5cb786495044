package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// KeyService implements appliance.KeyService.
type KeyService struct{ db *DB }

var _ appliance.KeyService = (*KeyService)(nil)

// findKeys returns keys with their attached_to lists.
func findKeys(ctx context.Context, q querier, where string, args ...any) ([]*appliance.Key, error) {
	rows, err := q.QueryContext(ctx, `SELECT k.id, k.type, k.value, k.label, k.extension_id,
		(SELECT group_concat(mac, ',') FROM (SELECT DISTINCT p.mac FROM layout l JOIN phones p ON p.id = l.phone_id WHERE l.key_id = k.id ORDER BY p.mac))
		FROM keys k `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*appliance.Key{}
	for rows.Next() {
		var k appliance.Key
		var ext sql.NullInt64
		var macs sql.NullString
		if err := rows.Scan(&k.ID, &k.Type, &k.Value, &k.Label, &ext, &macs); err != nil {
			return nil, err
		}
		k.ExtensionID = ext.Int64
		k.AttachedTo = []string{}
		if macs.String != "" {
			k.AttachedTo = strings.Split(macs.String, ",")
		}
		out = append(out, &k)
	}
	return out, rows.Err()
}

func findKey(ctx context.Context, q querier, id int64) (*appliance.Key, error) {
	list, err := findKeys(ctx, q, `WHERE k.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "id", "key %d not found", id)
	}
	return list[0], nil
}

// keyTypeOrder sorts keys as the UI lists them: account keys first.
const keyTypeOrder = `CASE k.type WHEN 'account' THEN 0 WHEN 'blf' THEN 1 WHEN 'speed_dial' THEN 2 WHEN 'park' THEN 3 ELSE 4 END`

// FindKeys lists keys matching f (substring matches, case-insensitive).
func (s *KeyService) FindKeys(ctx context.Context, f appliance.KeyFilter) (out []*appliance.Key, err error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if f.Type != "" {
		where = append(where, `k.type = ?`)
		args = append(args, strings.ToLower(f.Type))
	}
	if f.Value != "" {
		where = append(where, `k.value LIKE ? ESCAPE '\'`)
		args = append(args, containing(f.Value))
	}
	if f.Label != "" {
		where = append(where, `k.label LIKE ? ESCAPE '\'`)
		args = append(args, containing(f.Label))
	}
	if f.Q != "" {
		where = append(where, `(k.value LIKE ? ESCAPE '\' OR k.label LIKE ? ESCAPE '\')`)
		args = append(args, containing(f.Q), containing(f.Q))
	}
	if f.Attached != nil {
		not := "NOT "
		if *f.Attached {
			not = ""
		}
		where = append(where, not+`EXISTS (SELECT 1 FROM layout l WHERE l.key_id = k.id)`)
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	err = s.db.view(ctx, func(q querier) error {
		out, err = findKeys(ctx, q, clause+` ORDER BY `+keyTypeOrder+`, k.value, k.label, k.id`, args...)
		return err
	})
	return out, err
}

// FindKey returns one key.
func (s *KeyService) FindKey(ctx context.Context, id int64) (out *appliance.Key, err error) {
	err = s.db.view(ctx, func(q querier) error {
		out, err = findKey(ctx, q, id)
		return err
	})
	return out, err
}

// CreateKey creates a key that is not an account key.
func (s *KeyService) CreateKey(ctx context.Context, in *appliance.Key) (out *appliance.Key, err error) {
	err = s.db.update(ctx, func(tx *Tx) error {
		out, err = tx.createKey(in)
		if err == nil {
			tx.audit("key.create", keyObject(out), nil, out)
		}
		return err
	})
	return out, err
}

func (tx *Tx) createKey(in *appliance.Key) (*appliance.Key, error) {
	k := *in
	if err := k.Normalize(); err != nil {
		return nil, err
	}
	if err := tx.checkDuplicateKey(&k, 0); err != nil {
		return nil, err
	}
	res, err := tx.exec(`INSERT INTO keys (type, value, label, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`, k.Type, k.Value, k.Label, tx.now, tx.now)
	if err != nil {
		return nil, fmt.Errorf("insert key: %w", err)
	}
	k.ID, _ = res.LastInsertId()
	k.ExtensionID = 0
	k.AttachedTo = []string{}
	return &k, nil
}

// UpdateKey changes a key; every phone using it gets a new config version.
func (s *KeyService) UpdateKey(ctx context.Context, id int64, upd appliance.KeyUpdate) (out *appliance.Key, err error) {
	err = s.db.update(ctx, func(tx *Tx) error {
		k, err := findKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.Type == appliance.KeyAccount {
			return appliance.Errorf(appliance.ECONFLICT, "id", "key %d is the account key of extension %s; edit the extension instead", id, k.Value)
		}
		before := *k
		upd.Apply(k)
		if k.Type == appliance.KeyAccount {
			return appliance.Errorf(appliance.EINVALID, "type", "account keys are created with their extension; create an extension instead")
		}
		if err := k.Validate(); err != nil {
			return err
		}
		if err := tx.checkDuplicateKey(k, id); err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE keys SET type = ?, value = ?, label = ?, updated_at = ? WHERE id = ?`, k.Type, k.Value, k.Label, tx.now, id); err != nil {
			return fmt.Errorf("update key: %w", err)
		}
		out = k
		tx.audit("key.update", keyObject(k), &before, k)
		return tx.touchQuery(`SELECT phone_id FROM layout WHERE key_id = ?`, id)
	})
	return out, err
}

// DeleteKey deletes a key that is not an account key.
func (s *KeyService) DeleteKey(ctx context.Context, id int64, force bool) error {
	return s.db.update(ctx, func(tx *Tx) error {
		k, err := findKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.Type == appliance.KeyAccount {
			return appliance.Errorf(appliance.ECONFLICT, "id", "key %d is the account key of extension %s; it goes when the extension is deleted", id, k.Value)
		}
		if err := tx.detachKey(id, force, fmt.Sprintf("key %d (%s %s)", id, k.Type, k.Value)); err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM keys WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete key: %w", err)
		}
		tx.audit("key.delete", keyObject(k), k, nil)
		return nil
	})
}

// checkDuplicateKey refuses a key with the type, value and label of
// another (but id): two identical rows could not be told apart in a list
// or a line-key select (SPEC §3: 409).
func (tx *Tx) checkDuplicateKey(k *appliance.Key, id int64) error {
	var other int64
	err := tx.QueryRowContext(tx.ctx, `SELECT id FROM keys WHERE type = ? AND value = ? AND label = ? AND id != ? LIMIT 1`,
		k.Type, k.Value, k.Label, id).Scan(&other)
	if err == sql.ErrNoRows {
		return nil
	} else if err != nil {
		return err
	}
	field := "value"
	if k.Label != k.Value {
		field = "label"
	}
	return appliance.Errorf(appliance.ECONFLICT, field, "this key exists already (key %d: %s %s “%s”); use it, or give this one another label", other, k.Type, k.Value, k.Label)
}
