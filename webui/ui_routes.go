package webui

import "net/http"

// routesUI registers the admin pages other than login, setup and
// extensions: each ui_*.go file owns its own set.
func (s *Server) routesUI(mux *http.ServeMux) {
	s.routesPhones(mux) // ui_phones.go: /phones, /phones/{mac}, /discovered
	s.routesAdmin(mux)  // ui_admin.go: /keys, /locations, /leases, /settings, /users
	s.routesCSV(mux)    // ui_csv.go: /phones.csv, /phones/import
	s.routesAudit(mux)  // ui_audit.go: /audit, GET /api/v1/audit
}
