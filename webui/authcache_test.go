package webui

import (
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

func TestAuthCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newAuthCache(time.Minute, 3)
	c.now = func() time.Time { return now }
	alice := &appliance.User{ID: 1, Name: "alice"}

	c.put("alice", "pw1", alice)
	if u := c.get("alice", "pw1"); u == nil || u.Name != "alice" {
		t.Fatalf("get = %v", u)
	}
	for _, tc := range []struct{ name, pw string }{{"alice", "pw2"}, {"bob", "pw1"}, {"alice", ""}} {
		if u := c.get(tc.name, tc.pw); u != nil {
			t.Errorf("get(%q, %q) = %v, want nil", tc.name, tc.pw, u)
		}
	}

	now = now.Add(59 * time.Second)
	if c.get("alice", "pw1") == nil {
		t.Fatal("expired before the TTL")
	}
	now = now.Add(time.Second)
	if c.get("alice", "pw1") != nil {
		t.Fatal("still cached after the TTL")
	}

	// Bounded: a full cache makes room.
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		c.put(name, "pw", &appliance.User{ID: int64(i), Name: name})
		if len(c.entries) > 3 {
			t.Fatalf("%d entries, at most 3", len(c.entries))
		}
	}
	if c.get("e", "pw") == nil {
		t.Fatal("the newest entry is missing")
	}
}
