package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// usageError is a mistake in how provbox was called: a bad flag, a missing
// argument, a bad config value. main reports it and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// globalFlags are accepted by every subcommand, before or after its name.
type globalFlags struct {
	config string
	data   string
}

func (g *globalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "config", "", "config `FILE` (TOML; default "+defaultConfigPath+" when it exists)")
	fs.StringVar(&g.data, "data", "", "state `DIR` holding provbox.db (default $STATE_DIRECTORY, else ./provbox-data)")
}

// newFlagSet returns a flag set that reports errors instead of printing
// them and exiting: main prints one message and picks the exit code.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterspersed parses flags wherever they appear among args and returns
// the positional arguments in order. The flag package stops at the first
// positional argument, which would make `provbox user add alice --data /x`
// ignore --data; here parsing goes on after it. "--" ends the flags: what
// follows is positional. A lone "-" is positional (stdin).
//
// Accepted forms: -name, --name, -name=value, --name=value, and -name value
// for flags that take a value. Boolean flags take no separate value.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := a[1:]
		if name[0] == '-' {
			name = name[1:]
		}
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		if name == "" || name[0] == '-' {
			return nil, usagef("bad flag syntax: %s", a)
		}
		f := fs.Lookup(name)
		if f == nil {
			if name == "h" || name == "help" {
				return nil, flag.ErrHelp
			}
			return nil, usagef("unknown flag --%s", name)
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, usagef("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := fs.Set(name, value); err != nil {
			return nil, usagef("flag --%s: invalid value %q: %v", name, value, err)
		}
	}
	return pos, nil
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}
