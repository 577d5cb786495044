package webui_test

import (
	"context"
	"testing"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	for _, tc := range []struct {
		name       string
		req        request
		wantStatus int
	}{
		{"no credentials", request{noAuth: true}, 401},
		{"wrong password", request{user: adminName, pass: "wrong password"}, 401},
		{"unknown user", request{user: "mallory", pass: adminPassword}, 401},
		{"empty password", request{user: adminName, pass: ""}, 401},
		{"empty user name", request{user: "", pass: "x"}, 401},
		{"user name with a colon", request{user: "ad:min", pass: adminPassword}, 401},
		{"right credentials", request{}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// bcrypt is slow (more so under -race) and failures are not
			// cached, so only a right login tries every endpoint.
			paths := []string{"/api/v1/phones"}
			if tc.wantStatus == 200 {
				paths = []string{"/api/v1/phones", "/api/v1/keys", "/api/v1/extensions", "/api/v1/locations", "/api/v1/phones.csv"}
			}
			for _, path := range paths {
				req := tc.req
				req.method, req.path = "GET", path
				r := ts.send(t, req)
				if r.Status != tc.wantStatus {
					t.Fatalf("GET %s: status %d, want %d: %s", path, r.Status, tc.wantStatus, r.Body)
				}
				if tc.wantStatus == 401 {
					if got := r.Header.Get("WWW-Authenticate"); got != `Basic realm="provbox"` {
						t.Errorf("WWW-Authenticate %q", got)
					}
					r.err(t)
				}
			}
		})
	}
}

func TestAuth_Cached(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.auths.Store(0)
	for range 5 {
		ts.call(t, "GET", "/api/v1/phones", nil, 200, nil)
	}
	if n := ts.auths.Load(); n != 1 {
		t.Fatalf("5 requests with the same credentials ran bcrypt %d times, want 1", n)
	}
	// A wrong password is never served from the cache, and not cached.
	for range 2 {
		if r := ts.send(t, request{method: "GET", path: "/api/v1/phones", user: adminName, pass: "not the password"}); r.Status != 401 {
			t.Fatalf("wrong password: status %d", r.Status)
		}
	}
	if n := ts.auths.Load(); n != 3 {
		t.Fatalf("Authenticate ran %d times, want 3", n)
	}
	// A second admin is cached separately.
	if _, err := ts.svc.Users.CreateUser(context.Background(), "bob", "another password"); err != nil {
		t.Fatal(err)
	}
	if r := ts.send(t, request{method: "GET", path: "/api/v1/phones", user: "bob", pass: "another password"}); r.Status != 200 {
		t.Fatalf("bob: status %d", r.Status)
	}
	if r := ts.send(t, request{method: "GET", path: "/api/v1/phones", user: "bob", pass: adminPassword}); r.Status != 401 {
		t.Fatalf("bob with admin's password: status %d", r.Status)
	}
	// A changed password ends bob's cached login at once (SPEC §9).
	if err := ts.svc.Users.SetPassword(context.Background(), "bob", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if r := ts.send(t, request{method: "GET", path: "/api/v1/phones", user: "bob", pass: "another password"}); r.Status != 401 {
		t.Fatalf("bob's old password after the change: status %d", r.Status)
	}
	if r := ts.send(t, request{method: "GET", path: "/api/v1/phones", user: "bob", pass: "a brand new password"}); r.Status != 200 {
		t.Fatalf("bob's new password: status %d", r.Status)
	}
}
