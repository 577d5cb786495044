package sqlite

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/provbox/provbox/appliance"
)

// SessionService implements appliance.SessionService.
type SessionService struct{ db *DB }

var _ appliance.SessionService = (*SessionService)(nil)

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// CreateSession starts a session.
func (s *SessionService) CreateSession(ctx context.Context, userID int64) (string, *appliance.Session, error) {
	token, csrf := randomToken(), randomToken()
	var sess appliance.Session
	err := s.db.update(ctx, func(tx *Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT name FROM users WHERE id = ?`, userID).Scan(&sess.UserName); err != nil {
			return appliance.Errorf(appliance.EUNAUTHORIZED, "", "no such user")
		}
		// Sessions idle for a week are gone for good.
		if _, err := tx.exec(`DELETE FROM sessions WHERE last_seen < ?`, tx.now-7*24*3600*1000); err != nil {
			return err
		}
		_, err := tx.exec(`INSERT INTO sessions (token_hash, user_id, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)`,
			hashToken(token), userID, csrf, tx.now, tx.now)
		sess.UserID, sess.CSRF = userID, csrf
		sess.CreatedAt, sess.LastSeen = time.UnixMilli(tx.now).UTC(), time.UnixMilli(tx.now).UTC()
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return token, &sess, nil
}

// FindSession returns a live session and marks it used (at most once a
// minute, to keep page views from writing).
func (s *SessionService) FindSession(ctx context.Context, token string, idle time.Duration) (*appliance.Session, error) {
	if token == "" {
		return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "not logged in")
	}
	var sess appliance.Session
	var created, seen int64
	h := hashToken(token)
	err := s.db.view(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT s.user_id, u.name, s.csrf, s.created_at, s.last_seen FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE s.token_hash = ?`, h).Scan(&sess.UserID, &sess.UserName, &sess.CSRF, &created, &seen)
	})
	if err == sql.ErrNoRows {
		return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "session expired; log in again")
	} else if err != nil {
		return nil, err
	}
	now := s.db.Now()
	if now.Sub(time.UnixMilli(seen)) > idle {
		s.DeleteSession(ctx, token)
		return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "session expired; log in again")
	}
	if now.Sub(time.UnixMilli(seen)) > time.Minute {
		s.db.update(ctx, func(tx *Tx) error {
			_, err := tx.exec(`UPDATE sessions SET last_seen = ? WHERE token_hash = ?`, tx.now, h)
			return err
		})
	}
	sess.CreatedAt, sess.LastSeen = time.UnixMilli(created).UTC(), now.UTC()
	return &sess, nil
}

// DeleteSession ends a session (logout).
func (s *SessionService) DeleteSession(ctx context.Context, token string) error {
	return s.db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM sessions WHERE token_hash = ?`, hashToken(token))
		return err
	})
}
