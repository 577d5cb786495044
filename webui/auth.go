package webui

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"sync"
	"time"

	"github.com/provbox/provbox/appliance"
)

// A successful Basic login is remembered this long, so that a script making
// many calls pays for bcrypt once rather than on every request; each use
// still checks that the admin's password has not changed since.
const (
	authCacheTTL  = 60 * time.Second
	authCacheSize = 256
)

// requireAuth admits only authenticated admins.
func (s *Server) requireAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if info := infoFrom(r.Context()); info != nil {
			info.user = user.Name
		}
		// The changes this call makes are recorded as the admin's.
		next(w, r.WithContext(appliance.WithActor(r.Context(), user.Name)))
	}
}

// authenticate returns the admin a request speaks for, or an EUNAUTHORIZED
// error. It is the one seam for the ways of logging in: HTTP Basic now, the
// browser session (with its CSRF token) later.
func (s *Server) authenticate(r *http.Request) (*appliance.User, error) {
	name, password, ok := r.BasicAuth()
	if !ok {
		// The admin pages' own calls: the session cookie, and for a
		// state-changing request the session's CSRF token in a header.
		sess, err := s.sessionOf(r)
		if err != nil {
			return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "authentication required (HTTP Basic with an admin user, or a browser session)")
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(sess.CSRF)) != 1 {
			return nil, appliance.Errorf(appliance.EFORBIDDEN, "", "missing or wrong X-CSRF-Token for this session")
		}
		return &appliance.User{ID: sess.UserID, Name: sess.UserName}, nil
	}
	ip := remoteIP(r)
	if wait := s.Guard.Wait(appliance.ProtoHTTP, ip); wait > 0 {
		return nil, appliance.Errorf(appliance.ETOOMANY, "", "too many wrong passwords from %s; try again in %d minute(s)", ip, int(wait.Minutes())+1)
	}
	if s.Services.Users == nil {
		return nil, appliance.Errorf(appliance.EINTERNAL, "", "no user service")
	}
	if u := s.auth.get(name, password); u != nil {
		// Trusted only while the password is the one it was checked
		// against (a point read, not a bcrypt): a changed password or a
		// deleted admin ends cached logins at once, even when the change
		// came from the CLI in another process.
		if cur, err := s.Services.Users.FindUser(r.Context(), name); err == nil && cur.Stamp == u.Stamp {
			return u, nil
		}
		s.auth.drop(name, password)
	}
	u, err := s.Services.Users.Authenticate(r.Context(), name, password)
	if err != nil {
		switch appliance.ErrorCode(err) {
		case appliance.EUNAUTHORIZED, appliance.ENOTFOUND, appliance.EINVALID:
			// Whatever was wrong with the name or password, the answer is
			// the same 401.
			s.failed(ip)
			s.logger().Info("http login failed", "user", appliance.Clip(name), "remote", r.RemoteAddr)
			return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "wrong user name or password")
		}
		return nil, err
	}
	s.auth.put(name, password, u)
	return u, nil
}

// failed counts a wrong secret from ip on the Guard, and logs once when
// the address becomes refused.
func (s *Server) failed(ip string) {
	if s.Guard.Fail(appliance.ProtoHTTP, ip) {
		s.logger().Warn("refusing address for a while: too many wrong passwords or codes", "ip", ip,
			"limit_per_minute", s.Guard.CurrentLimit())
	}
}

// authCache remembers successful logins by name and a hash of the password
// (never the password itself) for a short time. It is bounded: when full,
// expired entries go, and if none have expired, everything does.
type authCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[authCacheKey]authCacheEntry
}

type authCacheKey struct {
	name string
	sum  [sha256.Size]byte
}

type authCacheEntry struct {
	user    *appliance.User
	expires time.Time
}

func newAuthCache(ttl time.Duration, max int) *authCache {
	return &authCache{ttl: ttl, max: max, now: time.Now, entries: map[authCacheKey]authCacheEntry{}}
}

func (c *authCache) get(name, password string) *appliance.User {
	k := authCacheKey{name, sha256.Sum256([]byte(password))}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return nil
	}
	if !c.now().Before(e.expires) {
		delete(c.entries, k)
		return nil
	}
	u := *e.user
	return &u
}

func (c *authCache) drop(name, password string) {
	k := authCacheKey{name, sha256.Sum256([]byte(password))}
	c.mu.Lock()
	delete(c.entries, k)
	c.mu.Unlock()
}

func (c *authCache) put(name, password string, u *appliance.User) {
	k := authCacheKey{name, sha256.Sum256([]byte(password))}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	cp := *u
	c.entries[k] = authCacheEntry{user: &cp, expires: now.Add(c.ttl)}
}
