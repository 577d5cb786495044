package webui

import "net/http"

func (s *Server) routesPhones(mux *http.ServeMux) {}
