package webui_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
	"github.com/provbox/provbox/configs"
	"github.com/provbox/provbox/webui"
)

// browser is an HTTP client with a cookie jar, as a logged-in admin's
// browser (redirects are not followed, so tests see them).
type browser struct {
	t    testing.TB
	ts   *testServer
	hc   *http.Client
	csrf string
}

var csrfRe = regexp.MustCompile(`name="csrf-token" content="([^"]*)"`)

// newBrowser logs in as the admin through the login form.
func newBrowser(t testing.TB, ts *testServer) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, ts: ts, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	r := b.post("/login", url.Values{"username": {adminName}, "password": {adminPassword}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	b.get("/extensions") // picks up the CSRF token
	return b
}

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindSubmatch(body); m != nil && len(m[1]) > 0 {
		b.csrf = string(m[1])
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func (b *browser) get(path string) response {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.ts.URL()+path, nil)
	return b.do(req)
}

// post submits a form; the session's CSRF token is added unless the form
// has its own "csrf".
func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok && b.csrf != "" {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.ts.URL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func TestUI_LoginLogoutAndRedirects(t *testing.T) {
	ts := MustOpenServer(t)
	anon := &browser{t: t, ts: ts, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if r := anon.get("/extensions"); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/login?next=%2Fextensions" {
		t.Fatalf("anonymous: %d %s", r.Status, r.Header.Get("Location"))
	}
	if r := anon.post("/login", url.Values{"username": {adminName}, "password": {"wrong"}}); r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "Wrong user name or password") {
		t.Fatalf("wrong password: %d", r.Status)
	}
	b := newBrowser(t, ts)
	cookie := b.hc.Jar.Cookies(mustURL(ts.URL()))[0]
	if r := b.get("/extensions"); r.Status != 200 || !strings.Contains(string(r.Body), "Add extension") {
		t.Fatalf("logged in: %d", r.Status)
	}
	if r := b.post("/logout", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.Status)
	}
	// The old cookie is dead on the server, not just in the browser.
	req, _ := http.NewRequest("GET", ts.URL()+"/extensions", nil)
	req.AddCookie(cookie)
	if r := anon.do(req); r.Status != http.StatusSeeOther {
		t.Fatalf("after logout: %d", r.Status)
	}
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil"} {
		r := newBrowser(t, ts).post("/login", url.Values{"username": {adminName}, "password": {adminPassword}, "next": {next}})
		if loc := r.Header.Get("Location"); loc != "/" {
			t.Errorf("next %q → %q", next, loc)
		}
	}
}

func TestUI_SessionCookieFlags(t *testing.T) {
	ts := MustOpenServer(t)
	anon := &browser{t: t, ts: ts, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	r := anon.post("/login", url.Values{"username": {adminName}, "password": {adminPassword}})
	c := r.Header.Get("Set-Cookie")
	for _, want := range []string{"provbox_session=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(c, want) {
			t.Errorf("cookie %q lacks %s", c, want)
		}
	}
}

func TestUI_LoginThrottled(t *testing.T) {
	ts := MustOpenServer(t, func(s *webui.Server) { s.Guard = &appliance.Guard{Limit: 5} })
	anon := &browser{t: t, ts: ts, hc: &http.Client{}}
	for i := range 6 { // the 6th failure refuses the address
		if st := anon.post("/login", url.Values{"username": {adminName}, "password": {"nope"}}).Status; st != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %d", i+1, st)
		}
	}
	r := anon.post("/login", url.Values{"username": {adminName}, "password": {"nope"}})
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("7th failed login: %d %v", r.Status, r.Header)
	}
	// API Basic from the same address is refused too, without a bcrypt.
	if r := ts.send(t, request{method: "GET", path: "/api/v1/phones", user: adminName, pass: adminPassword}); r.Status != http.StatusTooManyRequests {
		t.Fatalf("API Basic with the right password: %d", r.Status)
	}
	// Even the right password waits now.
	if r := anon.post("/login", url.Values{"username": {adminName}, "password": {adminPassword}}); r.Status != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d", r.Status)
	}
}

func TestUI_CSRF(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	for _, tc := range []struct {
		name string
		csrf []string
	}{{"missing", nil}, {"wrong", []string{"forged"}}} {
		form := url.Values{"number": {"1001"}}
		if tc.csrf != nil {
			form["csrf"] = tc.csrf
		} else {
			form["csrf"] = []string{""}
		}
		if r := b.post("/extensions", form); r.Status != http.StatusForbidden {
			t.Errorf("%s token: %d", tc.name, r.Status)
		}
	}
	if exts, _ := ts.svc.Extensions.FindExtensions(t.Context()); len(exts) != 0 {
		t.Fatal("a refused form created something")
	}
	// The API with the session cookie: GET is fine, a change needs the header.
	req, _ := http.NewRequest("POST", ts.URL()+"/api/v1/extensions", strings.NewReader(`{"number":"1001"}`))
	if r := b.do(req); r.Status != http.StatusForbidden {
		t.Errorf("API POST without X-CSRF-Token: %d %s", r.Status, r.Body)
	}
	req, _ = http.NewRequest("POST", ts.URL()+"/api/v1/extensions", strings.NewReader(`{"number":"1001"}`))
	req.Header.Set("X-CSRF-Token", b.csrf)
	if r := b.do(req); r.Status != http.StatusCreated {
		t.Errorf("API POST with X-CSRF-Token: %d %s", r.Status, r.Body)
	}
	req, _ = http.NewRequest("GET", ts.URL()+"/api/v1/extensions", nil)
	if r := b.do(req); r.Status != http.StatusOK {
		t.Errorf("API GET with the session: %d", r.Status)
	}
}

func TestUI_FirstRunSetup(t *testing.T) {
	fresh := MustOpenEmptyServer(t, "abcde-fghjk")
	anon := &browser{t: t, ts: fresh, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if r := anon.get("/extensions"); r.Header.Get("Location") != "/setup" {
		t.Fatalf("first run: %d %s", r.Status, r.Header.Get("Location"))
	}
	jar, _ := cookiejar.New(nil)
	anon.hc.Jar = jar
	if r := anon.post("/setup", url.Values{"code": {"wrong"}, "username": {"boss"}, "password": {"long enough pw"}, "password2": {"long enough pw"}}); r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), `value="boss"`) {
		t.Fatalf("wrong code: %d", r.Status)
	}
	if r := anon.post("/setup", url.Values{"code": {"abcde-fghjk"}, "username": {"boss"}, "password": {"short"}, "password2": {"short"}}); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "too short") {
		t.Fatalf("short password: %d %s", r.Status, r.Body)
	}
	if r := anon.post("/setup", url.Values{"code": {"abcde-fghjk"}, "username": {"boss"}, "password": {"long enough pw"}, "password2": {"long enough pw"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("setup: %d %s", r.Status, r.Body)
	}
	if r := anon.get("/extensions"); r.Status != 200 {
		t.Fatalf("logged in after setup: %d", r.Status)
	}
	if r := anon.get("/setup"); r.Header.Get("Location") != "/login" {
		t.Fatalf("setup after the first admin: %d", r.Status)
	}
}

// TestUI_SetupHints: the setup page and its wrong-code error point at the
// terminal that started provbox, or at the journal under systemd, and name
// the admin command serve gave (issue 17).
func TestUI_SetupHints(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hints     webui.SetupHints
		want, not []string
	}{
		{"terminal", webui.SetupHints{UserAdd: "./bin/provbox user add NAME --data 'my data'"},
			[]string{"the terminal where you started it", "<code>make run</code>", "<code>./bin/provbox user add NAME --data &#39;my data&#39;</code>", "in the directory you started provbox from"},
			[]string{"journalctl", "systemd"}},
		{"systemd", webui.SetupHints{UserAdd: "sudo provbox user add NAME", Journal: "sudo journalctl -u provbox-lab | grep setup_code"},
			[]string{"runs under systemd", "<code>sudo journalctl -u provbox-lab | grep setup_code</code>", "<code>sudo provbox user add NAME</code>"},
			[]string{"terminal", "make run", "directory you started"}},
		{"none given", webui.SetupHints{},
			[]string{"the terminal where you started it", "<code>provbox user add NAME</code>"},
			[]string{"journalctl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := MustOpenEmptyServer(t, "abcde-fghjk", tc.hints)
			anon := &browser{t: t, ts: ts, hc: &http.Client{}}
			page := string(anon.get("/setup").Body)
			hint := page[strings.Index(page, `<p class="hint">`):strings.Index(page, "<form")]
			for _, w := range tc.want {
				if !strings.Contains(hint, w) {
					t.Errorf("setup page lacks %q:\n%s", w, hint)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(hint, w) {
					t.Errorf("setup page says %q:\n%s", w, hint)
				}
			}
			r := anon.post("/setup", url.Values{"code": {"wrong"}, "username": {"boss"}, "password": {"long enough pw"}, "password2": {"long enough pw"}})
			body := string(r.Body)
			errText := body[strings.Index(body, `<div class="err">`):]
			errText = errText[:strings.Index(errText, "</div>")]
			wantErr := "the terminal where provbox was started"
			if tc.hints.Journal != "" {
				wantErr = "runs under systemd: " + tc.hints.Journal
			}
			if r.Status != http.StatusForbidden || !strings.Contains(errText, wantErr) {
				t.Errorf("wrong code: %d, error %q, want it to say %q", r.Status, errText, wantErr)
			}
		})
	}
}

func TestUI_Extensions(t *testing.T) {
	ts := MustOpenServer(t)
	b := newBrowser(t, ts)
	// Bad input: 400, the field's error next to it, what was typed kept.
	r := b.post("/extensions", url.Values{"number": {"10 01"}, "name": {"Alice <script>alert(1)</script>"}})
	body := string(r.Body)
	if r.Status != http.StatusBadRequest || !strings.Contains(body, "may only hold") || !strings.Contains(body, `value="10 01"`) {
		t.Fatalf("bad number: %d\n%s", r.Status, body)
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatal("typed text not escaped")
	}
	r = b.post("/extensions", url.Values{"number": {"1001"}, "name": {"<script>x</script>"}, "password": {"pw"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	r = b.get("/extensions")
	if !strings.Contains(string(r.Body), "Extension 1001 added") || strings.Contains(string(r.Body), "<script>x") {
		t.Fatalf("list:\n%s", r.Body)
	}
	ext, _ := ts.svc.Extensions.FindExtensionByNumber(t.Context(), "1001")
	id := strconvI(ext.ID)
	if r := b.get("/extensions/" + id); r.Status != 200 || !strings.Contains(string(r.Body), "Edit extension 1001") {
		t.Fatalf("edit form: %d", r.Status)
	}
	if r := b.post("/extensions/"+id, url.Values{"number": {"1001"}, "name": {"Alice"}, "transport": {"sctp"}}); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "not one of udp, tcp, tls") {
		t.Fatalf("bad transport: %d", r.Status)
	}
	if r := b.post("/extensions/"+id, url.Values{"number": {"1001"}, "name": {"Alice"}, "transport": {"tcp"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	ext, _ = ts.svc.Extensions.FindExtensionByNumber(t.Context(), "1001")
	if ext.Transport != "tcp" || !ext.PasswordSet {
		t.Fatalf("after update (blank password keeps it): %+v", ext)
	}
	// Delete while a phone uses it: asks, naming the phone; force deletes.
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	r = b.post("/extensions/"+id+"/delete", nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "00:15:65:aa:bb:cc") || !strings.Contains(string(r.Body), "Delete anyway") {
		t.Fatalf("delete in use: %d\n%s", r.Status, r.Body)
	}
	if r := b.post("/extensions/"+id+"/delete", url.Values{"force": {"true"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("force delete: %d", r.Status)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func strconvI(i int64) string { return strconv.FormatInt(i, 10) }

// MustOpenEmptyServer is a server over a new database without any admin;
// hints, when given, are its SetupHints (set before Open: the requests'
// goroutines read them).
func MustOpenEmptyServer(tb testing.TB, setupCode string, hints ...webui.SetupHints) *testServer {
	tb.Helper()
	db := sqlite.NewDB(filepath.Join(tb.TempDir(), "provbox.db"), configs.MustCatalog(), appliance.HashConfig)
	db.Events = appliance.NewEventBus(nil)
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	s := webui.NewServer()
	s.Catalog = configs.MustCatalog()
	s.Addr, s.Services, s.SetupCode = "127.0.0.1:0", db.Services(), setupCode
	for _, h := range hints {
		s.SetupHints = h
	}
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return &testServer{Server: s, db: db, svc: db.Services(), logs: &syncBuffer{}}
}

// TestUI_LoginRedirectLocalOnly: after login, next= leads only to a local
// path (SPEC §9); anything else goes to the dashboard.
func TestUI_LoginRedirectLocalOnly(t *testing.T) {
	ts := MustOpenServer(t)
	for _, tc := range []struct{ next, want string }{
		{"/keys?q=a", "/keys?q=a"},
		{"/phones/001565aabbcc", "/phones/001565aabbcc"},
		{"", "/"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"/\t/evil.example/pwned", "/"},
		{"/\n/evil.example", "/"},
		{"/\x00x", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/ /evil.example", "/"},
		{"/\u2028/evil.example", "/"},
	} {
		t.Run(strconv.Quote(tc.next), func(t *testing.T) {
			anon := &browser{t: t, ts: ts, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
			r := anon.post("/login", url.Values{"username": {adminName}, "password": {adminPassword}, "next": {tc.next}})
			if r.Status != http.StatusSeeOther || r.Header.Get("Location") != tc.want {
				t.Fatalf("%d Location %q, want %q", r.Status, r.Header.Get("Location"), tc.want)
			}
		})
	}
}
