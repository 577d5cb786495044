package webui

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// Users (/users): the admins; add one, change a password (which ends that
// admin's other sessions), remove one (never the last).

func (s *Server) routesUsers(mux *http.ServeMux) {
	mux.HandleFunc("GET /users", s.ui(s.handleUsersUI))
	mux.HandleFunc("POST /users", s.ui(s.handleCreateUserUI))
	mux.HandleFunc("POST /users/{name}/password", s.ui(s.handleSetPasswordUI))
	mux.HandleFunc("POST /users/{name}/delete", s.ui(s.handleDeleteUserUI))
}

type usersData struct {
	Users  []*appliance.User
	Passwd string // the user whose password is being changed
	Me     string
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	list, err := s.Services.Users.FindUsers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := pageData[usersData](p)
	d.Users = list
	if sess := sessionFrom(r); sess != nil {
		d.Me = sess.UserName
	}
	if d.Passwd != "" && !slices.ContainsFunc(list, func(u *appliance.User) bool { return u.Name == d.Passwd }) {
		d.Passwd = ""
	}
	p.Data, p.Title, p.Active = d, "Users", "users"
	// Passwords are never sent back into a form.
	if p.Form != nil {
		p.Form = url.Values{"name": p.Form["name"]}
	}
	s.render(w, r, status, "users.html", p)
}

func (s *Server) handleUsersUI(w http.ResponseWriter, r *http.Request) {
	s.usersPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r), Data: &usersData{Passwd: r.URL.Query().Get("passwd")}})
}

func (s *Server) handleCreateUserUI(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	var errs appliance.Errors
	if f.Get("password") != f.Get("password2") {
		// Checked with the rules, so that one submit marks every mistake.
		errs.Add(appliance.ValidateUser(name, f.Get("password")))
		errs.Add(appliance.Errorf(appliance.EINVALID, "password2", "the two passwords differ"))
	}
	err := errs.Err()
	var u *appliance.User
	if err == nil {
		u, err = s.Services.Users.CreateUser(r.Context(), name, f.Get("password"))
	}
	if err != nil {
		p := &page{Form: f}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.usersPage(w, r, status, p)
		}
		return
	}
	s.logger().Info("admin added in the browser", "user", u.Name, "by", sessionFrom(r).UserName)
	redirectBack(w, r, "/users", "Admin "+u.Name+" added; they can log in now.")
}

func (s *Server) handleSetPasswordUI(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f := r.PostForm
	var errs appliance.Errors
	if f.Get("password") != f.Get("password2") {
		errs.Add(appliance.ValidatePassword(f.Get("password")))
		errs.Add(appliance.Errorf(appliance.EINVALID, "password2", "the two passwords differ"))
	}
	err := errs.Err()
	if err == nil {
		err = s.Services.Users.SetPassword(r.Context(), name, f.Get("password"))
	}
	if err != nil {
		// Passwords are never sent back: the form shows empty, its
		// fields marked.
		p := &page{Form: url.Values{}, Data: &usersData{Passwd: name}}
		if appliance.ErrorCode(err) == appliance.ENOTFOUND {
			s.fail(w, r, err)
		} else if status, ok := s.formFailed(w, r, p, err); ok {
			s.usersPage(w, r, status, p)
		}
		return
	}
	// The change ended every session of that admin (SPEC §9); one who
	// changed their own password gets a fresh session in this browser.
	if sess := sessionFrom(r); sess != nil && sess.UserName == name {
		if token, _, err := s.Services.Sessions.CreateSession(r.Context(), sess.UserID); err == nil {
			s.setSessionCookie(w, r, token)
		}
	}
	s.logger().Info("admin password changed in the browser", "user", name, "by", sessionFrom(r).UserName)
	redirectBack(w, r, "/users", "Password of "+name+" changed; its other sessions have ended.")
}

func (s *Server) handleDeleteUserUI(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.Services.Users.DeleteUser(r.Context(), name); err != nil {
		p := &page{}
		if appliance.ErrorCode(err) == appliance.ENOTFOUND {
			s.fail(w, r, err)
		} else if status, ok := s.formFailed(w, r, p, err); ok {
			s.usersPage(w, r, status, p)
		}
		return
	}
	me := sessionFrom(r).UserName
	s.logger().Info("admin removed in the browser", "user", name, "by", me)
	if name == me {
		// Their session went with them: the next request asks to log in.
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	redirectBack(w, r, "/users", "Admin "+name+" removed.")
}
