package webui

// SetCSVMaxBody lowers the CSV import limit so a test need not send 16 MiB.
func SetCSVMaxBody(s *Server, n int64) { s.csvMaxBody = n }
