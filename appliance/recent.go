package appliance

import (
	"sync"
	"time"
)

// Recent remembers keys for a while, in bounded memory, so that an edge
// acts on a repeated event (a lease renewed, a file asked for again, a log
// line about the same client) once per interval:
//
//	seen := appliance.NewRecent(10*time.Minute, 8192)
//	if seen.First(mac+" "+ip, now) {
//		// tell the store
//	}
//
// It is safe for concurrent use.
type Recent struct {
	within time.Duration
	max    int

	mu sync.Mutex
	at map[string]time.Time
}

// NewRecent remembers each key for within, and at most max keys.
func NewRecent(within time.Duration, max int) *Recent {
	return &Recent{within: within, max: max, at: map[string]time.Time{}}
}

// First reports whether key was not seen within the interval before now,
// and if so notes it seen now. When max keys are held, those older than
// the interval are forgotten first; if none is, all are: a flood of new
// keys makes it forget, never grow.
func (r *Recent) First(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.at[key]; ok && now.Sub(t) < r.within {
		return false
	}
	if _, ok := r.at[key]; !ok && len(r.at) >= r.max {
		for k, t := range r.at {
			if now.Sub(t) >= r.within {
				delete(r.at, k)
			}
		}
		if len(r.at) >= r.max {
			clear(r.at)
		}
	}
	r.at[key] = now
	return true
}
