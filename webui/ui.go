package webui

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/provbox/provbox/appliance"
)

//go:embed templates/*.html static/*
var uiFS embed.FS

const (
	sessionCookie      = "provbox_session"
	defaultSessionIdle = 8 * time.Hour
)

// page is what every page template gets.
type page struct {
	Title, Active    string
	User             *appliance.Session
	CSRF             string
	Flash            string
	FlashError       bool
	Errors           map[string]string // field → message
	Form             url.Values        // what the user typed, kept on errors
	Data             any
	SetupCodeMissing bool
	Setup            SetupHints // the setup page's hints
}

// pageData is p's Data as the *T a page handler set (an edit, a
// confirmation), a new T when it set none.
func pageData[T any](p *page) *T {
	if d, ok := p.Data.(*T); ok {
		return d
	}
	return new(T)
}

// Err returns the message for a field, "" when it is fine.
func (p *page) Err(field string) string { return p.Errors[field] }

// Val returns what was typed into a field, else def.
func (p *page) Val(field string, def any) string {
	if p.Form != nil {
		if _, ok := p.Form[field]; ok {
			return p.Form.Get(field)
		}
	}
	if def == nil {
		return ""
	}
	return fmt.Sprint(def)
}

// timeLayout is how pages show a time: with its zone ("2026-11-29
// 21:04:05 UTC"), so an admin reading it from another place knows which.
const timeLayout = "2006-01-02 15:04:05 MST"

var funcs = template.FuncMap{
	// dict builds the map the "field" template takes.
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"mac": appliance.FormatMAC,
	// plural says a count in words: {{plural 1 "phone" "phones"}} is "1 phone".
	"plural": appliance.Count,
	"when": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.Local().Format(timeLayout)
	},
	"time":    func(t time.Time) string { return t.Local().Format(timeLayout) },
	"keytype": keyTypeName,
	"seq": func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i + 1
		}
		return out
	},
	"int64": func(i int64) string { return strconv.FormatInt(i, 10) },
	// parkslot tells the two forms of a Parking Lot key apart (SPEC §3).
	"parkslot": appliance.IsParkSlot,
}

// keyTypeName is a key type as the pages name it: "Account Key", "BLF",
// "Speed Dial", "Parking Lot", "Prefix"; an unknown type as it is.
func keyTypeName(t string) string {
	switch t {
	case appliance.KeyAccount:
		return "Account Key"
	case appliance.KeyBLF:
		return "BLF"
	case appliance.KeySpeedDial:
		return "Speed Dial"
	case appliance.KeyPark:
		return "Parking Lot"
	case appliance.KeyPrefix:
		return "Prefix"
	}
	return t
}

// formPtr is a form field for an update struct's pointer field: nil when
// the form lacks the field (the value is kept), else what was sent.
func formPtr(f url.Values, key string) *string {
	if !f.Has(key) {
		return nil
	}
	v := f.Get(key)
	return &v
}

// templates parses layout.html with each page file once.
func (s *Server) templates() (map[string]*template.Template, error) {
	s.tmplOnce.Do(func() {
		s.tmpl = map[string]*template.Template{}
		base, err := template.New("layout").Funcs(funcs).ParseFS(uiFS, "templates/layout.html")
		if err != nil {
			s.tmplErr = err
			return
		}
		names, _ := fs.Glob(uiFS, "templates/*.html")
		for _, n := range names {
			if strings.HasSuffix(n, "/layout.html") {
				continue
			}
			t, err := template.Must(base.Clone()).ParseFS(uiFS, n)
			if err != nil {
				s.tmplErr = err
				return
			}
			s.tmpl[strings.TrimPrefix(n, "templates/")] = t
		}
	})
	return s.tmpl, s.tmplErr
}

// render writes a page; a template failure is a logged 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	tmpls, err := s.templates()
	t := tmpls[name]
	if err != nil || t == nil {
		s.logger().Error("template", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if sess := sessionFrom(r); sess != nil && p.User == nil {
		p.User, p.CSRF = sess, sess.CSRF
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.logger().Error("render", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// formErrors turns a domain error into field messages, one for every field
// it names (an appliance.Errors names several), and the flash above them:
// "Please correct the 2 fields marked below." An error without a field is
// the flash itself.
func formErrors(err error) (map[string]string, string) {
	fields := map[string]string{}
	var loose []string
	for _, e := range appliance.AllErrors(err) {
		switch {
		case e.Field == "":
			loose = append(loose, e.Message)
		case fields[e.Field] != "":
			fields[e.Field] += "; " + e.Message
		default:
			fields[e.Field] = e.Message
		}
	}
	if len(fields) == 0 {
		return fields, appliance.ErrorMessage(err)
	}
	flash := correctFlash(len(fields))
	if len(loose) > 0 {
		flash = strings.Join(loose, "; ") + ". " + flash
	}
	return fields, flash
}

// correctFlash is the flash over a form with n fields marked.
func correctFlash(n int) string {
	if n == 1 {
		return "Please correct the field marked below."
	}
	return fmt.Sprintf("Please correct the %d fields marked below.", n)
}

type sessionKey struct{}

func sessionFrom(r *http.Request) *appliance.Session {
	s, _ := r.Context().Value(sessionKey{}).(*appliance.Session)
	return s
}

// sessionOf reads the request's session cookie.
func (s *Server) sessionOf(r *http.Request) (*appliance.Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || s.Services.Sessions == nil {
		return nil, appliance.Errorf(appliance.EUNAUTHORIZED, "", "not logged in")
	}
	return s.Services.Sessions.FindSession(r.Context(), c.Value, s.sessionIdle())
}

func (s *Server) sessionIdle() time.Duration {
	if s.SessionIdle > 0 {
		return s.SessionIdle
	}
	return defaultSessionIdle
}

// needUsers reports whether nobody can log in yet (first run).
func (s *Server) needUsers(r *http.Request) bool {
	users, err := s.Services.Users.FindUsers(r.Context())
	return err == nil && len(users) == 0
}

// ui wraps a page handler: it needs a session (else to /login, or to
// /setup on first run) and, for anything but GET and HEAD, the session's
// CSRF token in the form field "csrf" (else 403).
func (s *Server) ui(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessionOf(r)
		if err != nil {
			if s.needUsers(r) {
				http.Redirect(w, r, "/setup", http.StatusSeeOther)
				return
			}
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				next = "/"
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
				s.logger().Warn("form refused: missing or wrong CSRF token", "path", r.URL.Path, "remote", r.RemoteAddr)
				s.fail(w, r, appliance.Errorf(appliance.EFORBIDDEN, "", "this form is stale or did not come from provbox; reload the page and try again"))
				return
			}
		}
		if info := infoFrom(r.Context()); info != nil {
			info.user = sess.UserName
		}
		h(w, r.WithContext(contextWith(r, sess)))
	}
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// safeNext keeps a post-login redirect on this site: a local path only,
// with no scheme, host, backslash or control character (browsers drop a
// TAB or newline and read "/\t/evil.example" as "//evil.example").
func safeNext(next string) string {
	const home = "/"
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return home
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f || c == '\\' || unicode.IsControl(c) || unicode.IsSpace(c) {
			return home
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return home
	}
	return next
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	if s.needUsers(r) {
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return
	}
	if _, err := s.sessionOf(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login.html", &page{Title: "Log in", Form: url.Values{"next": {r.URL.Query().Get("next")}}})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ip := remoteIP(r)
	p := &page{Title: "Log in", Form: url.Values{"username": {r.PostFormValue("username")}, "next": {r.PostFormValue("next")}}}
	if wait := s.Guard.Wait(appliance.ProtoHTTP, ip); wait > 0 {
		p.Flash, p.FlashError = fmt.Sprintf("Too many failed logins from %s. Try again in %d minute(s).", ip, int(wait.Minutes())+1), true
		w.Header().Set("Retry-After", retryAfter(wait))
		s.render(w, r, http.StatusTooManyRequests, "login.html", p)
		return
	}
	u, err := s.Services.Users.Authenticate(r.Context(), r.PostFormValue("username"), r.PostFormValue("password"))
	if err != nil {
		s.failed(ip)
		s.logger().Info("login failed", "user", appliance.Clip(r.PostFormValue("username")), "remote", r.RemoteAddr)
		p.Flash, p.FlashError = "Wrong user name or password.", true
		s.render(w, r, http.StatusUnauthorized, "login.html", p)
		return
	}
	token, _, err := s.Services.Sessions.CreateSession(r.Context(), u.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.setSessionCookie(w, r, token)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.Services.Sessions.DeleteSession(r.Context(), c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// First run: with no admin yet, the setup form creates one, given the
// one-time code serve printed in its log (so nobody else on the LAN can
// claim the appliance).
func (s *Server) handleSetupForm(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(r) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "setup.html", &page{Title: "Set up provbox", SetupCodeMissing: s.SetupCode == "", Setup: s.SetupHints})
}

func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(r) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	ip := remoteIP(r)
	p := &page{Title: "Set up provbox", Form: url.Values{"username": {r.PostFormValue("username")}}, Errors: map[string]string{}, SetupCodeMissing: s.SetupCode == "", Setup: s.SetupHints}
	if wait := s.Guard.Wait(appliance.ProtoHTTP, ip); wait > 0 {
		p.Flash, p.FlashError = "Too many wrong codes. Try again later.", true
		w.Header().Set("Retry-After", retryAfter(wait))
		s.render(w, r, http.StatusTooManyRequests, "setup.html", p)
		return
	}
	// Every field is checked at once, so one submit shows every mistake.
	code := strings.TrimSpace(r.PostFormValue("code"))
	name, pw := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	status := http.StatusBadRequest
	if s.SetupCode == "" || subtle.ConstantTimeCompare([]byte(code), []byte(s.SetupCode)) != 1 {
		s.failed(ip)
		p.Errors["code"] = "wrong setup code; provbox prints it in its log at start-up: " + s.SetupHints.WhereCode()
		status = http.StatusForbidden
	}
	for _, e := range appliance.AllErrors(appliance.ValidateUser(name, pw)) {
		field := e.Field
		if field == "name" {
			field = "username"
		}
		p.Errors[field] = e.Message
	}
	if pw != r.PostFormValue("password2") {
		p.Errors["password2"] = "the two passwords differ"
	}
	if len(p.Errors) > 0 {
		p.Flash, p.FlashError = correctFlash(len(p.Errors)), true
		s.render(w, r, status, "setup.html", p)
		return
	}
	u, err := s.Services.Users.CreateFirstUser(r.Context(), name, pw)
	if appliance.ErrorCode(err) == appliance.ECONFLICT && appliance.ErrorField(err) == "name" && !s.needUsers(r) {
		// Another request used the code first: one admin only.
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err != nil {
		p.Errors, p.Flash = formErrors(err)
		if f := appliance.ErrorField(err); f == "name" {
			p.Errors["username"] = p.Errors["name"]
		}
		p.FlashError = true
		s.render(w, r, http.StatusBadRequest, "setup.html", p)
		return
	}
	s.logger().Info("first admin created in the browser", "user", u.Name, "remote", r.RemoteAddr)
	token, _, err := s.Services.Sessions.CreateSession(r.Context(), u.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.setSessionCookie(w, r, token)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// redirectBack answers a successful form with a redirect, carrying a flash
// message in a short-lived cookie (Post/Redirect/Get; a cookie, not the
// URL, so that nobody can craft a link that shows provbox saying things).
func redirectBack(w http.ResponseWriter, r *http.Request, to, flash string) {
	if flash != "" {
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(flash), Path: "/", MaxAge: 60,
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

const flashCookie = "provbox_flash"

// flashOf reads and clears the flash message.
func flashOf(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	f, _ := url.QueryUnescape(c.Value)
	if len(f) > 300 {
		f = f[:300]
	}
	return f
}

func contextWith(r *http.Request, sess *appliance.Session) context.Context {
	// The admin is who the changes made by this request are recorded as.
	return appliance.WithActor(context.WithValue(r.Context(), sessionKey{}, sess), sess.UserName)
}

// flashMessage is an error as a flash says it: the message without the
// field prefix ("name: ") that an API client needs.
func flashMessage(err error) string {
	if all := appliance.AllErrors(err); len(all) > 0 {
		return all[0].Message
	}
	return appliance.ErrorMessage(err)
}
