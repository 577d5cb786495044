package webui_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/provbox/provbox/webui"
)

// The Host check accepts the box's names in any notation and refuses the
// rest with 421 on the admin pages, API and /metrics — never on /prov/ or
// /healthz.
func TestHostCheck(t *testing.T) {
	allowed := webui.HostSet(func() []string { return []string{"provbox", "192.168.1.10", "::1", "localhost"} })
	ts := MustOpenServer(t, func(s *webui.Server) { s.HostAllowed = allowed })
	for _, tc := range []struct {
		host, path string
		want       int
	}{
		{"provbox:8080", "/login", 200},
		{"PROVBOX", "/login", 200},
		{"192.168.1.10:8080", "/login", 200},
		{"[::1]:8080", "/login", 200},
		{"[0:0:0:0:0:0:0:1]", "/login", 200},
		{"localhost.", "/login", 200},
		{"attacker.example:8080", "/login", 421},
		{"provbox.attacker.example", "/api/v1/phones", 421},
		{"192.168.1.11", "/metrics", 421},
		{"attacker.example", "/healthz", 200},
		{"attacker.example", "/prov/y000000000028.cfg", 404}, // no resolver here: reached the handler
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		ts.Server.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Host %s %s: %d, want %d (%s)", tc.host, tc.path, rec.Code, tc.want, rec.Body)
		}
	}
	req := httptest.NewRequest("GET", "/login", nil)
	req.Host = "evil.example"
	rec := httptest.NewRecorder()
	ts.Server.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusMisdirectedRequest || !strings.Contains(rec.Body.String(), "allowed_hosts") {
		t.Fatalf("421 body: %s", rec.Body)
	}
}
