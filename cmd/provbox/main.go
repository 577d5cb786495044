// Command provbox is the provisioning appliance for Yealink desk phones:
// one daemon (provbox serve) and the admin commands that work on the same
// SQLite file, also while the daemon runs.
//
//	provbox serve --http :8080 --tftp :6969 --sip :5062 # unprivileged ports, ./provbox-data (make run)
//	provbox user add admin                            # prompts twice for the password
//	provbox phones import phones.csv --dry-run        # checks every line, writes nothing
//
// This package is the only one that imports every other: it reads flags and
// the TOML config, opens the store, wires the services into the servers, and
// turns errors into messages and exit codes (0 ok, 1 runtime error, 2 usage
// error).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
	"github.com/provbox/provbox/configs"
)

// version is stamped at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usageText = `provbox provisions Yealink desk phones on an office LAN.

Usage:
  provbox serve [flags]                        run every service
  provbox user add NAME [--password-stdin]     create an admin (prompts twice without the flag)
  provbox user passwd NAME [--password-stdin]  set an admin's password
  provbox user list                            list the admins
  provbox user del NAME                        delete an admin
  provbox phones import FILE.csv [--dry-run]   all-or-nothing import; errors name the line and field
  provbox phones export [FILE.csv]             same columns as import (stdout without FILE)
  provbox render MAC [FILENAME]                print the file a phone would get (default <mac>.cfg)
  provbox resync MAC... | --all                send check-sync now, print each result
  provbox backup FILE                          consistent copy of the live database
  provbox doctor                               check ports, capabilities, interfaces, clock, data dir
  provbox version                              print the version

Global flags (before or after the command):
  --config FILE   TOML config (default /etc/provbox/provbox.toml when it exists)
  --data DIR      state directory holding provbox.db
                  (default: data_dir from the config, else $STATE_DIRECTORY, else ./provbox-data)

Serve flags (each overrides its config key):
  --http ADDR          admin pages, JSON API and /prov/ (default :8080)
  --tftp ADDR|off      TFTP (default :69)
  --sip ADDR|off       SIP (default :5060)
  --dhcp IFACE|off     DHCP (default off)
  --public-url URL     base URL phones are told (default http://<default interface>:<http port>/prov/)
  --log-level LEVEL    debug, info, warn or error (default info)

Exit codes: 0 ok, 1 runtime error, 2 usage error.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usageText)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "provbox: %s\nRun 'provbox help' for usage.\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "provbox: %s\n", errorText(err))
		return 1
	}
}

// errorText is what the user is told about a runtime error: the domain's
// own message for appliance errors (which never leak internals), and the
// whole chain otherwise — the admin at the console needs the path or the
// errno to fix the problem.
func errorText(err error) string {
	var e *appliance.Error
	if errors.As(err, &e) {
		return appliance.ErrorMessage(err)
	}
	return err.Error()
}

// valueFlags are the flags, of any command, that take a separate value; the
// command name is the first argument that is neither a flag nor such a value.
var valueFlags = map[string]bool{
	"config": true, "data": true, "http": true, "https": true, "tftp": true, "sip": true,
	"dhcp": true, "public-url": true, "log-level": true,
}

// splitCommand finds the command name among args (global flags may come
// first) and returns it with the other arguments.
func splitCommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) > 1 && a[0] == '-' {
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && valueFlags[name] {
				i++
			}
			continue
		}
		rest := append(append([]string(nil), args[:i]...), args[i+1:]...)
		return a, rest
	}
	return "", args
}

func dispatch(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) error {
	cmd, rest := splitCommand(args)
	var g globalFlags
	var sf serveFlags
	var passwordStdin, dryRun, all *bool
	fs := newFlagSet("provbox " + cmd)
	g.register(fs)
	// Each command's own flags: another command's flag is unknown here.
	switch cmd {
	case "help":
		return flag.ErrHelp
	case "serve":
		sf.register(fs)
	case "user":
		passwordStdin = fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	case "phones":
		dryRun = fs.Bool("dry-run", false, "check the file and report what would change, writing nothing")
	case "resync":
		all = fs.Bool("all", false, "every phone")
	case "", "render", "backup", "doctor", "version":
	default:
		return usagef("unknown command %q", cmd)
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	switch cmd {
	case "":
		fmt.Fprint(stderr, usageText)
		return usagef("missing command")
	case "serve":
		if len(pos) > 0 {
			return usagef("serve takes no arguments, got %q", pos[0])
		}
		return cmdServe(ctx, g, &sf, flagsSet(fs), stderr)
	case "user":
		return cmdUser(asCLI(ctx), g, *passwordStdin, pos, stdin, stdout, stderr)
	case "phones":
		return cmdPhones(asCLI(ctx), g, *dryRun, pos, stdin, stdout, stderr)
	case "render":
		if len(pos) < 1 || len(pos) > 2 {
			return usagef("usage: provbox render MAC [FILENAME]")
		}
		return cmdRender(ctx, g, pos, stdout, stderr)
	case "resync":
		return cmdResync(ctx, g, *all, pos, stdout, stderr)
	case "backup":
		if len(pos) != 1 {
			return usagef("usage: provbox backup FILE")
		}
		return cmdBackup(ctx, g, pos[0], stdout, stderr)
	case "doctor": // issue 7: doctor.go
		if len(pos) > 0 {
			return usagef("doctor takes no arguments")
		}
		return cmdDoctor(ctx, g, stdout)
	default: // version
		if len(pos) > 0 {
			return usagef("version takes no arguments")
		}
		fmt.Fprintf(stdout, "provbox %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
}

// newLogger returns the structured logger on w: JSON for machines (journald,
// log shippers, tests), text when w is a terminal.
func newLogger(w io.Writer, level string, text bool) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated by Config.Validate
	opts := &slog.HandlerOptions{Level: lv}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// store is the database an admin command works on, with the config and
// the renderer it was opened with.
type store struct {
	*sqlite.DB
	Config   *Config
	Renderer *configs.Renderer
}

// openStore loads the config and opens the database for an admin command.
// With mustExist, a missing database file is an error (a mistyped --data
// must not create an empty database to list or back up).
func openStore(g globalFlags, stderr io.Writer, mustExist bool) (*store, error) {
	cfg, _, err := loadConfig(g.config, nil, nil)
	if err != nil {
		return nil, err
	}
	// Admin commands print their own results; the store's info lines would
	// only be noise between them.
	level := cfg.LogLevel
	if level == "debug" || level == "info" {
		level = "warn"
	}
	dataDir := cfg.ResolveDataDir(g.data)
	path := filepath.Join(dataDir, "provbox.db")
	if mustExist {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("no database at %s (is --data right? provbox serve or provbox user add creates it)", path)
			}
			return nil, err
		}
	}
	db, renderer, err := newStore(cfg, dataDir, newLogger(stderr, level, true))
	if err != nil {
		return nil, err
	}
	if err := db.Open(); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return &store{DB: db, Config: cfg, Renderer: renderer}, nil
}

// newStore returns the (not yet open) store of dataDir as serve and every
// admin command use it, so that they agree: config versions are the hash
// of the rendered file, and the ready checks include the files a phone
// will ask for, rendered from the embedded templates or from overrides in
// <data>/templates/<vendor>/.
func newStore(cfg *Config, dataDir string, logger *slog.Logger) (*sqlite.DB, *configs.Renderer, error) {
	catalog, err := configs.Catalog()
	if err != nil {
		return nil, nil, fmt.Errorf("model catalog: %w", err)
	}
	r := &configs.Renderer{Catalog: catalog, TemplateDir: filepath.Join(dataDir, "templates")}
	db := sqlite.NewDB(filepath.Join(dataDir, "provbox.db"), catalog, r.Version)
	db.Logger = logger.With("component", "sqlite")
	db.ReportTimeout = cfg.ReportDuration()
	db.Check = r.Problems
	return db, r, nil
}
