package main

// Reloading the config file on SIGHUP (systemctl reload provbox).
//
// What a reload applies at once, and what waits for a restart:
//
//	log_level                          at once
//	http.public_url                    at once (every phone's config version is recomputed;
//	sip.registrar, sip.phone_port,      phones whose file changed get a check-sync)
//	sip.pickup_prefix,
//	provisioning.phone_admin_password,
//	provisioning.claim_window, .open
//	sip.notify_rate                    at once (the sync loop reads it live)
//	provisioning.miss_limit            at once
//	data_dir, http.listen, tftp.listen, after a restart: the reload logs one line naming
//	sip.listen, sip.pnp,               those that changed and keeps the running values
//	sip.pnp_interface, dhcp.*, and
//	any key not listed in reloadable
//
// Serve flags still win over the file on a reload, as at start. A file that
// does not parse or validate is logged and the running config kept. A
// reload also checks the template overrides (configs.Resolver.CheckTemplates).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/provbox/provbox/appliance"
)

// reloader re-reads the config file on SIGHUP and applies what can change
// while serving. cmdServe makes it before the logger (whose level it owns)
// and catches SIGHUP from the start, so an early signal waits instead of
// killing the process (SIGHUP's default action); serve starts it once the
// store and the servers are open.
type reloader struct {
	g     globalFlags
	flags *serveFlags
	set   map[string]bool
	level *slog.LevelVar
	hup   chan os.Signal
}

// newReloader returns a reloader for the config serve started with, and
// starts catching SIGHUP; call stop when serve returns.
func newReloader(g globalFlags, sf *serveFlags, set map[string]bool, cfg *Config) (r *reloader, stop func()) {
	r = &reloader{g: g, flags: sf, set: set, level: new(slog.LevelVar), hup: make(chan os.Signal, 1)}
	r.level.Set(parseLevel(cfg.LogLevel))
	signal.Notify(r.hup, syscall.SIGHUP)
	return r, func() { signal.Stop(r.hup) }
}

// logger returns the structured logger on w (as newLogger) at the level a
// reload can change, rate-limited per kind and in bytes (logbudget.go).
func (r *reloader) logger(w io.Writer, text bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: r.level}
	w = &byteBudget{w: w, max: logBytesPerMinute, text: text, now: time.Now}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if text {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(appliance.LogLimit(h, logKindPerMinute, time.Now))
}

// run reloads on each SIGHUP until ctx is done; m is the opened Main.
func (r *reloader) run(ctx context.Context, m *Main) {
	running := m.Config
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.hup:
			if next, err := r.reload(ctx, m, running); err == nil {
				running = next
			}
		}
	}
}

// reload reads the config file again and applies it; it returns the
// config now in force (running values for the keys that need a restart).
func (r *reloader) reload(ctx context.Context, m *Main, running *Config) (*Config, error) {
	logger := m.Logger
	// The template overrides (<data>/templates/) are read again too, even
	// when the config file is refused: a moved template moves the config
	// version of every phone whose file changed, and they get a check-sync.
	if _, err := m.Resolver.CheckTemplates(ctx); err != nil {
		logger.Error("config reload: templates not applied; the next reload tries again", "err", err)
	}
	next, path, err := loadConfig(r.g.config, r.flags, r.set)
	if err != nil {
		logger.Error("config reload failed; still running with the previous config", "err", errorText(err))
		return nil, err
	}
	if path == "" {
		path = "(none: defaults and flags)"
	}
	applied, restart := diffConfig(running, next, r.g.data)
	eff := keepRestartKeys(running, next)

	if touchesSettings(applied) || eff.HTTP.PublicURL == "" {
		// A derived public URL is derived again: the box's address may
		// have changed since start.
		if _, err := settle(ctx, m.DB, eff, m.bound, logger); err != nil {
			logger.Error("config reload: settings not applied; still running with the previous config", "err", err)
			return nil, err
		}
	}
	m.Guard.SetLimit(eff.Provisioning.MissLimit)
	if len(restart) > 0 {
		logger.Warn("config reload: these keys take effect only after a restart (systemctl restart provbox)",
			"restart_needed", restart, "config", path)
	}
	// Logged before the level changes, so that raising it to warn still
	// leaves a trace of the reload.
	if applied == nil {
		applied = []string{}
	}
	logger.Info("config reloaded", "config", path, "applied", applied)
	r.level.Set(parseLevel(eff.LogLevel))
	return eff, nil
}

// settingsKeys are the keys settle hands to the store.
var settingsKeys = map[string]bool{
	"http.public_url": true, "sip.registrar": true, "sip.phone_port": true, "sip.notify_rate": true,
	"sip.pickup_prefix": true, "provisioning.phone_admin_password": true,
	"provisioning.claim_window": true, "provisioning.open": true,
}

func touchesSettings(keys []string) bool {
	for _, k := range keys {
		if settingsKeys[k] {
			return true
		}
	}
	return false
}

// reloadable are the keys a reload applies. Every other key — the
// sockets, the state directory, [dhcp], and any key added later until it
// is listed here — only takes effect at start.
var reloadable = map[string]bool{
	"log_level": true, "provisioning.miss_limit": true,
	"http.public_url": true, "sip.registrar": true, "sip.phone_port": true, "sip.notify_rate": true,
	"sip.pickup_prefix": true, "provisioning.phone_admin_password": true,
	"provisioning.claim_window": true, "provisioning.open": true,
}

func needsRestart(key string) bool { return !reloadable[key] }

// keepRestartKeys returns the config a reload leaves in force: the running
// one with the reloadable keys taken from next.
func keepRestartKeys(running, next *Config) *Config {
	eff := *running
	eff.LogLevel = next.LogLevel
	eff.HTTP.PublicURL = next.HTTP.PublicURL
	eff.SIP.Registrar = next.SIP.Registrar
	eff.SIP.PhonePort = next.SIP.PhonePort
	eff.SIP.NotifyRate = next.SIP.NotifyRate
	eff.SIP.PickupPrefix = next.SIP.PickupPrefix
	eff.Provisioning = next.Provisioning
	return &eff
}

// diffConfig returns the keys whose values differ between the running and
// the next config, split into those a reload applies and those that need
// a restart. data_dir is compared as resolved (--data wins over it).
func diffConfig(running, next *Config, dataFlag string) (applied, restart []string) {
	a, b := configValues(running), configValues(next)
	a["data_dir"] = running.ResolveDataDir(dataFlag)
	b["data_dir"] = next.ResolveDataDir(dataFlag)
	for k, v := range b {
		if a[k] == v {
			continue
		}
		if needsRestart(k) {
			restart = append(restart, k)
		} else {
			applied = append(applied, k)
		}
	}
	sort.Strings(applied)
	sort.Strings(restart)
	return applied, restart
}

// configValues flattens a config into its TOML keys ("sip.listen") and
// printed values, so configs compare key by key.
func configValues(c *Config) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			name, opts, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
			if name == "" || name == "-" || opts == "removed" { // read only to refuse them
				continue
			}
			f := v.Field(i)
			if f.Kind() == reflect.Struct {
				walk(prefix+name+".", f)
				continue
			}
			out[prefix+name] = fmt.Sprintf("%#v", f.Interface())
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	return out
}

// parseLevel turns a validated log_level into a slog level.
func parseLevel(s string) slog.Level {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(s)) // Config.Validate has checked it
	return lv
}
