package main

// Reloading the config file on SIGHUP (systemctl reload provbox).
//
// What a reload applies is said once, by the reload tag of each Config
// field (config.go): reload:"live" is applied at once, reload:"settings" at
// once through the store's settings (every phone's config version is
// recomputed and phones whose file changed get a check-sync), and a key
// without the tag only after a restart: the reload logs one line naming
// those that changed and keeps the running values. The README's reload
// table says the same (TestReloadTableDocumented).
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
	"slices"
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

// logger returns serve's logger on w at the level a reload can change.
func (r *reloader) logger(w io.Writer, text bool) *slog.Logger {
	return serveLogger(w, r.level, text)
}

// serveLogger returns the structured logger on w (as newLogger) at level,
// rate-limited per kind and in bytes (logbudget.go).
func serveLogger(w io.Writer, level slog.Leveler, text bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
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

// configKey is one key of the config file and what a reload does with it.
type configKey struct {
	name   string // as in the file: "sip.listen"
	reload string // the field's reload tag: "live", "settings", or "" (restart)
	index  []int  // the field in Config (reflect.Value.FieldByIndex)
}

// configKeys are Config's keys, from its toml and reload tags.
var configKeys = listConfigKeys(reflect.TypeFor[Config](), "", nil)

func listConfigKeys(t reflect.Type, prefix string, index []int) []configKey {
	var out []configKey
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || opts == "removed" { // read only to refuse them
			continue
		}
		idx := append(slices.Clone(index), i)
		if f.Type.Kind() == reflect.Struct {
			out = append(out, listConfigKeys(f.Type, prefix+name+".", idx)...)
			continue
		}
		out = append(out, configKey{name: prefix + name, reload: f.Tag.Get("reload"), index: idx})
	}
	return out
}

// reloadOf is the reload tag of key ("" for an unknown key: a restart).
func reloadOf(key string) string {
	for _, k := range configKeys {
		if k.name == key {
			return k.reload
		}
	}
	return ""
}

func touchesSettings(keys []string) bool {
	return slices.ContainsFunc(keys, func(k string) bool { return reloadOf(k) == "settings" })
}

func needsRestart(key string) bool { return reloadOf(key) == "" }

// keepRestartKeys returns the config a reload leaves in force: the running
// one with the reloadable keys taken from next.
func keepRestartKeys(running, next *Config) *Config {
	eff := *running
	e, n := reflect.ValueOf(&eff).Elem(), reflect.ValueOf(next).Elem()
	for _, k := range configKeys {
		if k.reload != "" {
			e.FieldByIndex(k.index).Set(n.FieldByIndex(k.index))
		}
	}
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
	v := reflect.ValueOf(c).Elem()
	out := make(map[string]string, len(configKeys))
	for _, k := range configKeys {
		out[k.name] = fmt.Sprintf("%#v", v.FieldByIndex(k.index).Interface())
	}
	return out
}

// parseLevel turns a validated log_level into a slog level.
func parseLevel(s string) slog.Level {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(s)) // Config.Validate has checked it
	return lv
}
