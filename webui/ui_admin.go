package webui

import "net/http"

func (s *Server) routesAdmin(mux *http.ServeMux) {}
