package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// Settings (/settings): the settings in force, and overrides of the
// config file's values saved from the page.

func (s *Server) routesSettings(mux *http.ServeMux) {
	mux.HandleFunc("GET /settings", s.ui(s.handleSettingsUI))
	mux.HandleFunc("POST /settings", s.ui(s.handleSaveSettingsUI))
}

// Precedence: the config file (provbox.toml and the serve flags) gives
// every setting; a value saved on this page is an override that wins over
// it. Saving stores an override only for a field whose value differs from
// the config file's, so a field left at the config file's value keeps
// following the config file (a later edit of the file takes effect). "Use
// the config file's value" (reset_<field>) drops a field's override. A field
// absent from a submission keeps its override as it is.

type settingsData struct {
	InForce, Base appliance.Settings
	Over          appliance.SettingsOverrides
	ClaimWindow   string // "24h0m0s" as an admin reads it: "24 hours"
	Unavailable   bool
	Loopback      bool // the provisioning URL names this machine, which phones cannot reach
}

func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	d := &settingsData{}
	if svc := s.Services.Settings; svc != nil {
		d.InForce, d.Base, d.Over = svc.Settings(), svc.BaseSettings(), svc.Overrides()
	} else {
		d.Unavailable = true
		d.InForce = s.settingsInForce()
		d.Base = d.InForce
	}
	d.Loopback = appliance.IsLoopbackURL(d.InForce.ProvisioningURL)
	d.ClaimWindow = humanDuration(d.InForce.ClaimWindow)
	p.Data, p.Title, p.Active = d, "Settings", "settings"
	s.render(w, r, status, "settings.html", p)
}

func (s *Server) handleSettingsUI(w http.ResponseWriter, r *http.Request) {
	s.settingsPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r)})
}

// overrideOf is the override for one field: none when reset or equal to
// the config file's value, the current one when the form lacks the field.
func overrideOf[T comparable](f url.Values, field string, typed T, base T, cur *T) *T {
	if f.Get("reset_"+field) != "" {
		return nil
	}
	if _, ok := f[field]; !ok {
		return cur
	}
	if typed == base {
		return nil
	}
	return &typed
}

func (s *Server) handleSaveSettingsUI(w http.ResponseWriter, r *http.Request) {
	svc := s.Services.Settings
	if svc == nil {
		s.settingsPage(w, r, http.StatusServiceUnavailable, &page{Flash: "Settings cannot be changed here in this setup.", FlashError: true})
		return
	}
	f := r.PostForm
	base, cur, before := svc.BaseSettings(), svc.Overrides(), svc.Settings()
	// Every field is checked before anything is saved, so that one
	// submit marks every mistake.
	var errs appliance.Errors

	var o appliance.SettingsOverrides
	o.ProvisioningURL = overrideOf(f, "provisioning_url", strings.TrimSpace(f.Get("provisioning_url")), base.ProvisioningURL, cur.ProvisioningURL)
	o.Registrar = overrideOf(f, "registrar", strings.TrimSpace(f.Get("registrar")), base.Registrar, cur.Registrar)

	rate := base.NotifyRate
	if _, ok := f["notify_rate"]; ok && f.Get("reset_notify_rate") == "" {
		n, err := strconv.Atoi(strings.TrimSpace(f.Get("notify_rate")))
		if err != nil {
			errs.Add(appliance.Errorf(appliance.EINVALID, "notify_rate", "not a whole number of NOTIFYs per second (1-10000)"))
		} else {
			rate = n
		}
	}
	if len(errs) == 0 {
		o.NotifyRate = overrideOf(f, "notify_rate", rate, base.NotifyRate, cur.NotifyRate)
	}
	errs.Add(o.Validate())

	err := errs.Err()
	if err == nil {
		err = svc.SetOverrides(r.Context(), o)
	}
	if err != nil {
		p := &page{Form: f}
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.settingsPage(w, r, status, p)
		}
		return
	}
	after := svc.Settings()
	var msg string
	switch {
	case after.ProvisioningURL != before.ProvisioningURL || after.Registrar != before.Registrar:
		msg = fmt.Sprintf("Settings saved. These settings are in every phone's config, so every phone is being resynced (at most %d per second).", after.NotifyRate)
	case after.NotifyRate != before.NotifyRate:
		msg = fmt.Sprintf("Pacing saved: at most %d phones told per second from now on.", after.NotifyRate)
	default:
		msg = "Settings saved; nothing changed."
	}
	redirectBack(w, r, "/settings", msg)
}

// humanDuration says a claim window as an admin reads it ("24 hours").
func humanDuration(d time.Duration) string {
	if d <= 0 {
		d = appliance.DefaultClaimWindow
	}
	switch {
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// settingsInForce are the merged settings (none without a
// SettingsService).
func (s *Server) settingsInForce() appliance.Settings {
	if s.Services.Settings != nil {
		return s.Services.Settings.Settings()
	}
	return appliance.Settings{}
}
