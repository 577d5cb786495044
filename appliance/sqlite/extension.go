package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/provbox/provbox/appliance"
)

// ExtensionService implements appliance.ExtensionService.
type ExtensionService struct{ db *DB }

var _ appliance.ExtensionService = (*ExtensionService)(nil)

const extensionCols = `e.id, e.number, e.name, e.auth_user, e.password, e.sip_server, e.transport, e.voicemail, k.id`

func scanExtension(s interface{ Scan(...any) error }) (*appliance.Extension, error) {
	var e appliance.Extension
	var key sql.NullInt64
	if err := s.Scan(&e.ID, &e.Number, &e.Name, &e.AuthUser, &e.Password, &e.SIPServer, &e.Transport, &e.Voicemail, &key); err != nil {
		return nil, err
	}
	e.AccountKey = key.Int64
	e.PasswordSet = e.Password != ""
	return &e, nil
}

func findExtensions(ctx context.Context, q querier, where string, args ...any) ([]*appliance.Extension, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+extensionCols+` FROM extensions e LEFT JOIN keys k ON k.extension_id = e.id `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*appliance.Extension{}
	for rows.Next() {
		e, err := scanExtension(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func findExtension(ctx context.Context, q querier, where string, args ...any) (*appliance.Extension, error) {
	list, err := findExtensions(ctx, q, where, args...)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "id", "extension not found")
	}
	return list[0], nil
}

// FindExtensions lists extensions by number.
func (s *ExtensionService) FindExtensions(ctx context.Context) (out []*appliance.Extension, err error) {
	err = s.db.view(ctx, func(q querier) error {
		out, err = findExtensions(ctx, q, `ORDER BY e.number`)
		return err
	})
	return out, err
}

// FindExtension returns one extension.
func (s *ExtensionService) FindExtension(ctx context.Context, id int64) (out *appliance.Extension, err error) {
	err = s.db.view(ctx, func(q querier) error {
		out, err = findExtension(ctx, q, `WHERE e.id = ?`, id)
		return err
	})
	return out, err
}

// FindExtensionByNumber returns the extension with that number.
func (s *ExtensionService) FindExtensionByNumber(ctx context.Context, number string) (out *appliance.Extension, err error) {
	err = s.db.view(ctx, func(q querier) error {
		out, err = findExtension(ctx, q, `WHERE e.number = ?`, number)
		if appliance.ErrorCode(err) == appliance.ENOTFOUND {
			err = appliance.Errorf(appliance.ENOTFOUND, "number", "no extension %q", number)
		}
		return err
	})
	return out, err
}

// CreateExtension creates an extension and its account key.
func (s *ExtensionService) CreateExtension(ctx context.Context, e *appliance.Extension) (out *appliance.Extension, err error) {
	err = s.db.update(ctx, func(tx *Tx) error {
		out, err = tx.createExtension(e)
		if err == nil {
			tx.audit("extension.create", extensionObject(out), nil, out)
		}
		return err
	})
	return out, err
}

func (tx *Tx) createExtension(in *appliance.Extension) (*appliance.Extension, error) {
	e := *in
	if err := e.Normalize(tx.db.Settings().Registrar); err != nil {
		return nil, err
	}
	res, err := tx.exec(`INSERT INTO extensions (number, name, auth_user, password, sip_server, transport, voicemail, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Number, e.Name, e.AuthUser, e.Password, e.SIPServer, e.Transport, e.Voicemail, tx.now, tx.now)
	if isUnique(err) {
		return nil, appliance.Errorf(appliance.ECONFLICT, "number", "extension %q already exists", e.Number)
	} else if err != nil {
		return nil, fmt.Errorf("insert extension: %w", err)
	}
	e.ID, _ = res.LastInsertId()
	res, err = tx.exec(`INSERT INTO keys (type, value, label, extension_id, created_at, updated_at) VALUES ('account', ?, ?, ?, ?, ?)`,
		e.Number, e.AccountLabel(), e.ID, tx.now, tx.now)
	if err != nil {
		return nil, fmt.Errorf("insert account key: %w", err)
	}
	e.AccountKey, _ = res.LastInsertId()
	e.PasswordSet = e.Password != ""
	return &e, nil
}

// UpdateExtension changes an extension and keeps its account key in step.
func (s *ExtensionService) UpdateExtension(ctx context.Context, id int64, upd appliance.ExtensionUpdate) (out *appliance.Extension, err error) {
	err = s.db.update(ctx, func(tx *Tx) error {
		e, err := findExtension(ctx, tx, `WHERE e.id = ?`, id)
		if err != nil {
			return err
		}
		before := *e
		upd.Apply(e)
		if err := e.Validate(); err != nil {
			return err
		}
		_, err = tx.exec(`UPDATE extensions SET number = ?, name = ?, auth_user = ?, password = ?, sip_server = ?, transport = ?, voicemail = ?, updated_at = ? WHERE id = ?`,
			e.Number, e.Name, e.AuthUser, e.Password, e.SIPServer, e.Transport, e.Voicemail, tx.now, id)
		if isUnique(err) {
			return appliance.Errorf(appliance.ECONFLICT, "number", "extension %q already exists", e.Number)
		} else if err != nil {
			return fmt.Errorf("update extension: %w", err)
		}
		if _, err := tx.exec(`UPDATE keys SET value = ?, label = ?, updated_at = ? WHERE extension_id = ?`, e.Number, e.AccountLabel(), tx.now, id); err != nil {
			return fmt.Errorf("update account key: %w", err)
		}
		e.PasswordSet = e.Password != ""
		out = e
		tx.audit("extension.update", extensionObject(e), &before, e)
		return tx.touchQuery(`SELECT l.phone_id FROM layout l JOIN keys k ON k.id = l.key_id WHERE k.extension_id = ?`, id)
	})
	return out, err
}

// DeleteExtension deletes an extension and its account key.
func (s *ExtensionService) DeleteExtension(ctx context.Context, id int64, force bool) error {
	return s.db.update(ctx, func(tx *Tx) error {
		e, err := findExtension(ctx, tx, `WHERE e.id = ?`, id)
		if err != nil {
			return err
		}
		if err := tx.detachKey(e.AccountKey, force, fmt.Sprintf("extension %s", e.Number)); err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM keys WHERE id = ?`, e.AccountKey); err != nil {
			return fmt.Errorf("delete account key: %w", err)
		}
		if _, err := tx.exec(`DELETE FROM extensions WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete extension: %w", err)
		}
		tx.audit("extension.delete", extensionObject(e), e, nil)
		return nil
	})
}

// ExtensionPhones lists the phones holding the extension's account key, by
// name, each with whether another extension's account key stays on it.
func (s *ExtensionService) ExtensionPhones(ctx context.Context, id int64) (out []appliance.ExtensionPhone, err error) {
	err = s.db.view(ctx, func(q querier) error {
		e, err := findExtension(ctx, q, `WHERE e.id = ?`, id)
		if err != nil {
			return err
		}
		rows, err := q.QueryContext(ctx, `SELECT p.mac, p.name, EXISTS (SELECT 1 FROM layout l JOIN keys k ON k.id = l.key_id
				WHERE l.phone_id = p.id AND k.type = 'account' AND k.id != ?)
			FROM phones p WHERE p.id IN (SELECT phone_id FROM layout WHERE key_id = ?) ORDER BY p.name, p.mac`, e.AccountKey, e.AccountKey)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []appliance.ExtensionPhone{}
		for rows.Next() {
			var p appliance.ExtensionPhone
			if err := rows.Scan(&p.MAC, &p.Name, &p.KeepsAccount); err != nil {
				return err
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	return out, err
}

// detachKey refuses (ECONFLICT naming the phones) while phones use the key,
// unless force, which removes it from their layouts and touches them.
func (tx *Tx) detachKey(keyID int64, force bool, what string) error {
	const phonesUsing = `SELECT phone_id FROM layout WHERE key_id = ?`
	names, n, err := usedBy(tx.ctx, tx, phonesUsing, keyID)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if !force {
		return appliance.Errorf(appliance.ECONFLICT, "id", "%s is used by %s: %s; remove it from them first or delete with force=true", what, appliance.Count(n, "phone", "phones"), names)
	}
	if err := tx.touchQuery(phonesUsing, keyID); err != nil {
		return err
	}
	if _, err := tx.exec(`DELETE FROM layout WHERE key_id = ?`, keyID); err != nil {
		return fmt.Errorf("detach key: %w", err)
	}
	return nil
}
