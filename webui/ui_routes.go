package webui

import "net/http"

// routesUI registers the admin pages other than login, setup and
// extensions (ui_*.go files add theirs here).
func (s *Server) routesUI(mux *http.ServeMux) {
}
