package webui_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Tests of the Users page (ui_users.go).

// login tries name and password on the login form of a fresh browser.
func login(t *testing.T, ts *testServer, name, password string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, ts: ts, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	return b.post("/login", url.Values{"username": {name}, "password": {password}}).Status
}

func TestUIAdmin_Users(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)

	// The last admin cannot go.
	r := b.post("/users/admin/delete", nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "is the last admin; add another first") || !strings.Contains(string(r.Body), `class="flash error"`) {
		t.Fatalf("delete last admin: %d\n%s", r.Status, r.Body)
	}

	for _, tc := range []struct {
		name string
		form url.Values
		want *regexp.Regexp
	}{
		{"passwords differ", url.Values{"name": {"bob"}, "password": {"long enough pw"}, "password2": {"long enough pW"}}, fieldErr("f-password2", "", "the two passwords differ")},
		{"too short", url.Values{"name": {"bob"}, "password": {"sh0rt"}, "password2": {"sh0rt"}}, fieldErr("f-password", "", "too short")},
		{"bad name", url.Values{"name": {"bob smith"}, "password": {"long enough pw"}, "password2": {"long enough pw"}}, fieldErr("f-name", "bob smith", "must be 1-32")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/users", tc.form)
			body := string(r.Body)
			if r.Status != http.StatusBadRequest || !tc.want.MatchString(body) {
				t.Fatalf("%d\n%s", r.Status, body)
			}
			if !strings.Contains(body, `value="`+tc.form.Get("name")+`"`) {
				t.Error("name not kept")
			}
			if strings.Contains(body, tc.form.Get("password")) {
				t.Error("password echoed")
			}
		})
	}
	if r := b.post("/users", url.Values{"name": {"admin"}, "password": {"long enough pw"}, "password2": {"long enough pw"}}); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "already exists") {
		t.Fatalf("duplicate: %d", r.Status)
	}
	if r := b.post("/users", url.Values{"name": {"bob"}, "password": {"bobs first pw"}, "password2": {"bobs first pw"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("add: %d %s", r.Status, r.Body)
	}
	body := string(b.get("/users").Body)
	if !strings.Contains(body, "Admin bob added") || !strings.Contains(body, `action="/users/bob/delete"`) {
		t.Fatalf("list:\n%s", body)
	}

	// Change bob's password; he logs in with the new one only.
	if body := string(b.get("/users?passwd=bob").Body); !strings.Contains(body, "Change the password of bob") || !strings.Contains(body, `action="/users/bob/password"`) {
		t.Fatalf("password form:\n%s", body)
	}
	r = b.post("/users/bob/password", url.Values{"password": {"bobs new pw!"}, "password2": {"bobs new pw?"}})
	if r.Status != http.StatusBadRequest || !fieldErr("f-password2", "", "the two passwords differ").Match(r.Body) || strings.Contains(string(r.Body), "bobs new pw") {
		t.Fatalf("mismatch: %d\n%s", r.Status, r.Body)
	}
	if r := b.post("/users/bob/password", url.Values{"password": {"bobs new pw!"}, "password2": {"bobs new pw!"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	if s := login(t, ts, "bob", "bobs new pw!"); s != http.StatusSeeOther {
		t.Fatalf("login with the new password: %d", s)
	}
	if s := login(t, ts, "bob", "bobs first pw"); s != http.StatusUnauthorized {
		t.Fatalf("login with the old password: %d", s)
	}
	if r := b.post("/users/nobody/password", url.Values{"password": {"long enough pw"}, "password2": {"long enough pw"}}); r.Status != http.StatusNotFound {
		t.Errorf("unknown user: %d", r.Status)
	}

	// With two admins, one can go; then the other is the last again.
	if r := b.post("/users/bob/delete", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("delete bob: %d %s", r.Status, r.Body)
	}
	if s := login(t, ts, "bob", "bobs new pw!"); s != http.StatusUnauthorized {
		t.Fatalf("removed admin logs in: %d", s)
	}
	if r := b.post("/users/admin/delete", nil); r.Status != http.StatusConflict {
		t.Fatalf("delete last admin: %d", r.Status)
	}
}

func TestUIAdmin_RemoveSelf(t *testing.T) {
	ts := MustOpenServer(t)
	if _, err := ts.svc.Users.CreateUser(t.Context(), "carol", "carols password"); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts)
	if body := string(b.get("/users").Body); !strings.Contains(body, "Remove your own account admin?") {
		t.Error("no warning on removing oneself")
	}
	r := b.post("/users/admin/delete", nil)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("remove self: %d %s", r.Status, r.Header.Get("Location"))
	}
	if r := b.get("/users"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Fatalf("after removing self: %d %s", r.Status, r.Header.Get("Location"))
	}
}
