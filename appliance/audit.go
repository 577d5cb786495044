package appliance

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The audit trail: every change an admin (or the CLI, or provbox itself)
// makes is one AuditEntry, written in the same transaction as the change.
// It says who, when, what (before → after, field by field) and which
// phones the change gave a new config, and follows each of those phones:
// reached when it fetched a config holding the change, confirmed when it
// reported applying it. For example, renaming key 7 on three phones:
//
//	{actor: "alice", action: "key.update", object: "key 7 BLF 102 “Bob”",
//	 changes: [{field: "label", before: "Bob", after: "Bob Smith"}],
//	 phones: [{mac: "001565aabbcc", version: "…", reached_at: …, confirmed_at: …}, …]}
//
// Secrets (extension and admin passwords, provisioning secrets, report
// tokens) are never stored: a change of one reads AuditSecret before and
// AuditSecretChanged after.

// How long and how many entries the trail keeps; older ones go as new
// ones come.
const (
	AuditMaxAge = 365 * 24 * time.Hour
	AuditKeep   = 100000
)

// Pages of the trail.
const (
	AuditPage    = 50  // entries a page shows (and the API's default)
	MaxAuditPage = 500 // most entries one request may ask for
)

// What a secret's change looks like in the trail.
const (
	AuditSecret        = "********"
	AuditSecretChanged = "******** (changed)"
	AuditSecretSet     = "******** (set)"
)

// AuditEntry is one change.
type AuditEntry struct {
	ID      int64         `json:"id"`
	At      time.Time     `json:"at"`
	Actor   string        `json:"actor"`  // the admin's user name, "cli:<os user>", or "system"
	Action  string        `json:"action"` // "phone.update", "key.create", "settings.update"…
	Object  string        `json:"object"` // what it changed, for people: "phone Front desk (00:15:65:aa:bb:cc)"
	Changes []AuditChange `json:"changes"`
	Phones  []AuditPhone  `json:"phones"` // the phones whose config the change moved (or, for a resync, that were told)
}

// AuditChange is one field's change; an empty Before is a creation, an
// empty After a removal.
type AuditChange struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// AuditPhone is a phone an entry concerns, as it was then, and how far the
// change has got: ReachedAt when the phone fetched a config holding it
// (Version or a later one), ConfirmedAt when it reported applying it
// (phones that do not report never confirm).
type AuditPhone struct {
	MAC         string     `json:"mac"`
	Name        string     `json:"name"`
	Version     string     `json:"version"` // the phone's config version right after the change
	ReachedAt   *time.Time `json:"reached_at"`
	ConfirmedAt *time.Time `json:"confirmed_at"`
}

// Title is the phone's name and MAC, as elsewhere.
func (p AuditPhone) Title() string { return (&Phone{MAC: p.MAC, Name: p.Name}).Title() }

// Progress counts the entry's phones: confirmed, reached but not
// confirmed, and neither yet.
func (e *AuditEntry) Progress() (confirmed, reached, waiting int) {
	for _, p := range e.Phones {
		switch {
		case p.ConfirmedAt != nil:
			confirmed++
		case p.ReachedAt != nil:
			reached++
		default:
			waiting++
		}
	}
	return confirmed, reached, waiting
}

// ProgressText says it in words: "3 phones: 2 confirmed, 1 reached".
func (e *AuditEntry) ProgressText() string {
	if len(e.Phones) == 0 {
		return "no phone"
	}
	c, r, w := e.Progress()
	var parts []string
	for _, p := range []struct {
		n    int
		word string
	}{{c, "confirmed"}, {r, "reached"}, {w, "waiting"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.word))
		}
	}
	noun := "phones"
	if len(e.Phones) == 1 {
		noun = "phone"
	}
	return fmt.Sprintf("%d %s: %s", len(e.Phones), noun, strings.Join(parts, ", "))
}

// AuditFilter selects entries, newest first.
type AuditFilter struct {
	Q      string // text in the actor, action, object or changes
	MAC    string // entries about this phone (any accepted notation)
	Before int64  // entries with an id below this (the "older" cursor); 0: from the newest
	Limit  int    // 0: AuditPage
}

// Validate checks the filter and fills in the default limit and the MAC's
// stored form.
func (f *AuditFilter) Validate() error {
	f.Q = strings.TrimSpace(f.Q)
	if len(f.Q) > 200 {
		return Errorf(EINVALID, "q", "search text too long (at most 200 characters)")
	}
	if m := strings.TrimSpace(f.MAC); m != "" {
		mac, err := ParseMAC(m)
		if err != nil {
			return err
		}
		f.MAC = mac
	}
	switch {
	case f.Before < 0:
		return Errorf(EINVALID, "before", "before must be an entry id (a positive number)")
	case f.Limit < 0 || f.Limit > MaxAuditPage:
		return Errorf(EINVALID, "limit", "limit must be between 1 and %d", MaxAuditPage)
	case f.Limit == 0:
		f.Limit = AuditPage
	}
	return nil
}

// AuditService reads the trail; the other services write it.
type AuditService interface {
	// FindAudit lists entries matching f, newest first, with their phones
	// (EINVALID for a bad filter).
	FindAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
}

type actorKey struct{}

// WithActor returns ctx speaking for name: the changes made with it are
// recorded as name's.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// ActorFrom is who ctx speaks for; "system" when nobody.
func ActorFrom(ctx context.Context) string {
	if ctx != nil {
		if s, _ := ctx.Value(actorKey{}).(string); s != "" {
			return s
		}
	}
	return "system"
}
