package appliance

import (
	"context"
	"time"
)

// Session is an admin's browser session. The token (in the cookie) is
// stored only as a hash; CSRF is the token every state-changing request of
// the session must carry.
type Session struct {
	UserID    int64
	UserName  string
	CSRF      string
	CreatedAt time.Time
	LastSeen  time.Time
}

// SessionService keeps browser sessions. Errors: EUNAUTHORIZED (unknown or
// expired token).
type SessionService interface {
	// CreateSession starts a session for the user and returns its secret
	// token (for the cookie).
	CreateSession(ctx context.Context, userID int64) (token string, s *Session, err error)
	// FindSession returns the session of token and marks it used; a session
	// idle longer than idle is deleted and EUNAUTHORIZED.
	FindSession(ctx context.Context, token string, idle time.Duration) (*Session, error)
	DeleteSession(ctx context.Context, token string) error
}
