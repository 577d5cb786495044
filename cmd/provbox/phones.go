package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/configs"
)

// cmdPhones imports or exports the phones CSV (format: appliance.ParseCSV).
func cmdPhones(ctx context.Context, g globalFlags, dryRun bool, pos []string, stdin *os.File, stdout, stderr io.Writer) error {
	if len(pos) == 0 {
		return usagef("usage: provbox phones import FILE.csv [--dry-run] | phones export [FILE.csv]")
	}
	switch action, args := pos[0], pos[1:]; action {
	case "import":
		if len(args) != 1 {
			return usagef("usage: provbox phones import FILE.csv [--dry-run] (- reads stdin)")
		}
		return importPhones(ctx, g, args[0], dryRun, stdin, stdout, stderr)
	case "export":
		if dryRun {
			return usagef("--dry-run is for phones import")
		}
		if len(args) > 1 {
			return usagef("usage: provbox phones export [FILE.csv]")
		}
		file := ""
		if len(args) == 1 && args[0] != "-" {
			file = args[0]
		}
		return exportPhones(ctx, g, file, stdout, stderr)
	default:
		return usagef("unknown phones command %q (import, export)", action)
	}
}

func importPhones(ctx context.Context, g globalFlags, file string, dryRun bool, stdin *os.File, stdout, stderr io.Writer) error {
	// Parse before opening the store: a broken file is reported the same
	// whether or not a database exists.
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	catalog, err := configs.Catalog()
	if err != nil {
		return fmt.Errorf("model catalog: %w", err)
	}
	phones, err := appliance.ParseCSV(bufio.NewReader(r), catalog)
	if err != nil {
		return err
	}
	db, err := openStore(g, stderr, false)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.Services().Import.ImportPhones(ctx, phones, dryRun)
	if err != nil {
		return err
	}
	verb, note := "imported", ""
	if dryRun {
		verb, note = "would import", " (dry run: nothing written)"
	}
	fmt.Fprintf(stdout, "%s %d phones: %d created, %d updated, %d line keys, %d new keys%s\n",
		verb, res.Phones, res.PhonesCreated, res.PhonesUpdated, res.LineKeys, res.KeysCreated, note)
	return nil
}

// exportPhones writes the CSV to stdout, or to file through a temporary file
// renamed into place, so a reader never sees half an export.
func exportPhones(ctx context.Context, g globalFlags, file string, stdout, stderr io.Writer) error {
	db, err := openStore(g, stderr, true)
	if err != nil {
		return err
	}
	defer db.Close()
	phones, err := db.Services().Import.ExportPhones(ctx)
	if err != nil {
		return err
	}
	if file == "" {
		w := bufio.NewWriter(stdout)
		if err := appliance.WriteCSV(w, phones); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		return w.Flush()
	}
	err = writeFileAtomic(file, 0o644, func(w io.Writer) error {
		return appliance.WriteCSV(w, phones)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d phones to %s\n", len(phones), file)
	return nil
}

// writeFileAtomic writes path through a temporary file in the same
// directory, synced and renamed into place.
func writeFileAtomic(path string, mode os.FileMode, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	bw := bufio.NewWriter(tmp)
	if err := write(bw); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
