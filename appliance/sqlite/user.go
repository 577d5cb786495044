package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/provbox/provbox/appliance"
)

// UserService implements appliance.UserService with bcrypt hashes.
type UserService struct{ db *DB }

var _ appliance.UserService = (*UserService)(nil)

// dummyHash is compared against when the user does not exist, so a wrong
// name costs the same time as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("provbox-no-such-user"), bcrypt.DefaultCost)

// FindUsers lists admins by name.
func (s *UserService) FindUsers(ctx context.Context) ([]*appliance.User, error) {
	out := []*appliance.User{}
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT id, name, created_at FROM users ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u appliance.User
			var at int64
			if err := rows.Scan(&u.ID, &u.Name, &at); err != nil {
				return err
			}
			u.CreatedAt = time.UnixMilli(at).UTC()
			out = append(out, &u)
		}
		return rows.Err()
	})
	return out, err
}

func hashPassword(pw string) (string, error) {
	if err := appliance.ValidatePassword(pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", appliance.Errorf(appliance.EINVALID, "password", "%v", err)
	}
	return string(h), nil
}

// CreateUser adds an admin.
func (s *UserService) CreateUser(ctx context.Context, name, password string) (*appliance.User, error) {
	return s.create(ctx, name, password, false)
}

// CreateFirstUser adds an admin only while there is none: the INSERT and
// its condition are one statement in the one writer's transaction.
func (s *UserService) CreateFirstUser(ctx context.Context, name, password string) (*appliance.User, error) {
	return s.create(ctx, name, password, true)
}

func (s *UserService) create(ctx context.Context, name, password string, first bool) (*appliance.User, error) {
	if err := appliance.ValidateUser(name, password); err != nil {
		return nil, err
	}
	h, err := hashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &appliance.User{Name: name, Stamp: stamp(h)}
	err = s.db.update(ctx, func(tx *Tx) error {
		query := `INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)`
		if first {
			query = `INSERT INTO users (name, password_hash, created_at) SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM users)`
		}
		res, err := tx.exec(query, name, h, tx.now)
		if isUnique(err) {
			return appliance.Errorf(appliance.ECONFLICT, "name", "user %q already exists", name)
		} else if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return appliance.Errorf(appliance.ECONFLICT, "name", "an admin already exists; log in instead")
		}
		u.ID, _ = res.LastInsertId()
		u.CreatedAt = time.UnixMilli(tx.now).UTC()
		tx.auditChanges("user.add", userObject(name), []appliance.AuditChange{{Field: "password", After: appliance.AuditSecretSet}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// stamp is a digest of a password hash: it changes with the password and
// tells nothing about it.
func stamp(hash string) string {
	sum := sha256.Sum256([]byte("provbox-stamp:" + hash))
	return hex.EncodeToString(sum[:8])
}

// findUser reads an admin and its password hash (sql.ErrNoRows when there
// is none); the user's Stamp is set from the hash.
func (s *UserService) findUser(ctx context.Context, name string) (*appliance.User, string, error) {
	var u appliance.User
	var hash string
	var at int64
	err := s.db.view(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT id, name, password_hash, created_at FROM users WHERE name = ?`, name).Scan(&u.ID, &u.Name, &hash, &at)
	})
	if err != nil {
		return nil, "", err
	}
	u.CreatedAt, u.Stamp = time.UnixMilli(at).UTC(), stamp(hash)
	return &u, hash, nil
}

// FindUser returns an admin by name.
func (s *UserService) FindUser(ctx context.Context, name string) (*appliance.User, error) {
	u, _, err := s.findUser(ctx, name)
	if err == sql.ErrNoRows {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "name", "no user %q", name)
	}
	return u, err
}

// SetPassword changes an admin's password and ends the admin's sessions
// in the same transaction.
func (s *UserService) SetPassword(ctx context.Context, name, password string) error {
	h, err := hashPassword(password)
	if err != nil {
		return err
	}
	return s.db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE users SET password_hash = ? WHERE name = ?`, h, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return appliance.Errorf(appliance.ENOTFOUND, "name", "no user %q", name)
		}
		tx.auditChanges("user.password", userObject(name), []appliance.AuditChange{secretChange("password")})
		_, err = tx.exec(`DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)`, name)
		return err
	})
}

// DeleteUser removes an admin, never the last one.
func (s *UserService) DeleteUser(ctx context.Context, name string) error {
	return s.db.update(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		res, err := tx.exec(`DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return appliance.Errorf(appliance.ENOTFOUND, "name", "no user %q", name)
		}
		if n == 1 {
			return appliance.Errorf(appliance.ECONFLICT, "name", "%q is the last admin; add another first", name)
		}
		tx.auditChanges("user.delete", userObject(name), nil)
		return nil
	})
}

// Authenticate checks a name and password.
func (s *UserService) Authenticate(ctx context.Context, name, password string) (*appliance.User, error) {
	u, hash, err := s.findUser(ctx, name)
	if err == sql.ErrNoRows {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "wrong user name or password")
	} else if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "wrong user name or password")
	}
	return u, nil
}
