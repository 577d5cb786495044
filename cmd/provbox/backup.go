package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// cmdBackup copies the live database to file with SQLite's online backup,
// consistent while serve runs. The copy is written beside file and renamed
// into place, so file is either the old content or a complete backup, and
// it is made readable by its owner only: it holds SIP passwords and the
// admins' password hashes.
func cmdBackup(ctx context.Context, g globalFlags, file string, stdout, stderr io.Writer) error {
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return usagef("backup: %s is a directory; name the file to write", file)
	}
	db, err := openStore(g, stderr, true)
	if err != nil {
		return err
	}
	defer db.Close()

	// A name in the same directory that nothing else uses; the store
	// creates the file itself.
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	os.Remove(tmpName)
	defer os.Remove(tmpName)

	if err := db.Backup(ctx, tmpName); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Chmod(tmpName, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmpName, file); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s (%d bytes)\n", file, fi.Size())
	return nil
}
