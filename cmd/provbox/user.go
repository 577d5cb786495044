package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/provbox/provbox/appliance"
)

// cmdUser manages admins: add NAME, passwd NAME, list, del NAME.
func cmdUser(ctx context.Context, g globalFlags, passwordStdin bool, pos []string, stdin *os.File, stdout, stderr io.Writer) error {
	action, name, err := userArgs(passwordStdin, pos)
	if err != nil {
		return err
	}
	db, err := openStore(g, stderr, action != "add")
	if err != nil {
		return err
	}
	defer db.Close()
	users := db.Services().Users

	existing, err := users.FindUsers(ctx)
	if err != nil {
		return fmt.Errorf("list admins: %w", err)
	}
	exists := false
	for _, u := range existing {
		exists = exists || u.Name == name
	}

	switch action {
	case "list":
		if len(existing) == 0 {
			// The hint carries the --data and --config this command got.
			hint := hereNow().userAdd(g, db.Config, db.Config.ResolveDataDir(g.data))
			fmt.Fprintln(stderr, "no admins yet; create one with: "+hint)
			return nil
		}
		return listUsers(existing, stdout)
	case "del":
		if err := users.DeleteUser(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted admin %s\n", name)
		return nil
	case "add":
		// Checked before the prompt, so nobody types a password twice for
		// nothing; the store checks again.
		if exists {
			return appliance.Errorf(appliance.ECONFLICT, "name", "an admin named %q already exists (provbox user passwd %s sets a new password)", name, name)
		}
	case "passwd":
		if !exists {
			return appliance.Errorf(appliance.ENOTFOUND, "name", "no admin named %q (provbox user list shows them)", name)
		}
	}

	pw, err := readPassword(name, passwordStdin, stdin, stderr)
	if err != nil {
		return err
	}
	if action == "add" {
		if _, err := users.CreateUser(ctx, name, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created admin %s\n", name)
		return nil
	}
	if err := users.SetPassword(ctx, name, pw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "password of %s changed\n", name)
	return nil
}

// userArgs checks the arguments of provbox user: the action, and the
// admin's name for all but list.
func userArgs(passwordStdin bool, pos []string) (action, name string, err error) {
	if len(pos) == 0 {
		return "", "", usagef("usage: provbox user add|passwd|list|del [NAME]")
	}
	action, args := pos[0], pos[1:]
	wantArgs := map[string]int{"add": 1, "passwd": 1, "list": 0, "del": 1}
	n, ok := wantArgs[action]
	if !ok {
		return "", "", usagef("unknown user command %q (add, passwd, list, del)", action)
	}
	if len(args) != n {
		if n == 0 {
			return "", "", usagef("usage: provbox user %s", action)
		}
		return "", "", usagef("usage: provbox user %s NAME", action)
	}
	if passwordStdin && action != "add" && action != "passwd" {
		return "", "", usagef("--password-stdin is for user add and user passwd")
	}
	if n == 1 {
		name = args[0]
		if err := appliance.ValidateUserName(name); err != nil {
			return "", "", err
		}
	}
	return action, name, nil
}

// listUsers prints the admins as a table.
func listUsers(users []*appliance.User, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\n", u.Name, u.CreatedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// readPassword reads a password: the first line of stdin with
// --password-stdin, else twice from the terminal without echo.
func readPassword(name string, fromStdin bool, stdin *os.File, stderr io.Writer) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", usagef("--password-stdin: stdin holds no password")
		}
		return pw, appliance.ValidatePassword(pw)
	}
	fd := int(stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", usagef("stdin is not a terminal: pass the password on stdin with --password-stdin")
	}
	// ReadPassword turns echo off; put the terminal back if the user gives
	// up with Ctrl-C, or their shell stays blind.
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-sigs:
			_ = term.Restore(fd, state)
			fmt.Fprintln(stderr)
			os.Exit(1)
		case <-stop:
		}
	}()

	fmt.Fprintf(stderr, "Password for %s: ", name)
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if err := appliance.ValidatePassword(string(first)); err != nil {
		return "", err
	}
	fmt.Fprint(stderr, "Again: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(first) != string(second) {
		return "", errors.New("the passwords do not match; nothing changed")
	}
	return string(first), nil
}
