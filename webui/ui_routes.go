package webui

import "net/http"

// routesUI registers the admin pages other than login and setup: each
// ui_*.go file owns the routes of its resource.
func (s *Server) routesUI(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.ui(s.handleDashboardUI)) // ui_dashboard.go
	s.routesPhones(mux)                                   // ui_phones.go: /phones, /phones/{mac}
	s.routesDiscovered(mux)                               // ui_discovered.go: /discovered
	s.routesCSV(mux)                                      // ui_csv.go: /phones.csv, /phones/import
	s.routesKeys(mux)                                     // ui_keys.go: /keys
	s.routesExtensions(mux)                               // ui_extensions.go: /extensions
	s.routesLocations(mux)                                // ui_locations.go: /locations
	s.routesLeasesUI(mux)                                 // ui_leases.go: /leases
	s.routesSettings(mux)                                 // ui_settings.go: /settings
	s.routesUsers(mux)                                    // ui_users.go: /users
	s.routesAudit(mux)                                    // ui_audit.go: /audit, GET /api/v1/audit
}
