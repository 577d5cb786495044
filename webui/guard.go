package webui

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/provbox/provbox/appliance"
)

// guard applies the two rules of SPEC §4 that come before routing:
//   - Host check: a request whose Host is not one of the box's names or
//     addresses is refused with 421, so a web page on some other site
//     cannot reach the admin pages through DNS rebinding;
//   - HTTPS: with HTTPS on, a plain-HTTP request for the admin pages or the
//     API from anywhere but loopback is redirected there (308, which keeps
//     the method and body), so no password or session cookie crosses the
//     LAN in clear text.
//
// /prov/ and /healthz are exempt from both: phones reach the box by
// whatever name DHCP or PnP gave them, fetch their first config over plain
// HTTP, and prove their secret per request; /metrics is exempt from the
// redirect so a plain-HTTP scraper keeps working.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/prov/") || p == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		host := hostOnly(r.Host)
		if s.HostAllowed != nil && !s.HostAllowed(host) {
			http.Error(w, "misdirected request: this server does not answer to the name "+strconv.Quote(appliance.Clip(host))+
				" (add it to allowed_hosts in the config file if it is one of its names)", http.StatusMisdirectedRequest)
			return
		}
		if r.TLS == nil && p != "/metrics" && s.TLSAddr != "" && !isLoopback(remoteIP(r)) {
			if port := s.TLSPort(); port != 0 {
				target := "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + r.URL.RequestURI()
				http.Redirect(w, r, target, http.StatusPermanentRedirect)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostOnly strips the port (and IPv6 brackets) off a Host header value and
// lowercases it.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func isLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback()
}

// HostSet returns a HostAllowed that accepts the names names() gives (host
// names case-insensitively, addresses in any notation: both compared in the
// form the certificate authority normalizes its names to), asking names
// again at most every 30 s, since interfaces and their addresses come and
// go.
func HostSet(names func() []string) func(host string) bool {
	var mu sync.Mutex
	var set map[string]bool
	var at time.Time
	return func(host string) bool {
		host, ok := normalizeCertName(hostOnly(host))
		if !ok {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if set == nil || time.Since(at) > 30*time.Second {
			set = map[string]bool{}
			for _, n := range names() {
				if c, ok := normalizeCertName(n); ok {
					set[c] = true
				}
			}
			at = time.Now()
		}
		return set[host]
	}
}
