package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/provbox/provbox/appliance"
)

// Storage failures (SPEC §9): with the disk full or the database read-only,
// every write answers EUNAVAILABLE with the reason (the HTTP API's 507),
// reads go on, and Writable reports the failure (/healthz 503) until a
// write succeeds again, which needs no restart.

// writeState is the last storage failure of a write; zero when the last
// write succeeded.
type writeState struct {
	reason string
	at     time.Time
	probed time.Time
}

// storage turns a storage failure of a write into EUNAVAILABLE and
// remembers it; other errors pass unchanged.
func (db *DB) storage(err error) error {
	if err == nil {
		return nil
	}
	var domain *appliance.Error
	if errors.As(err, &domain) {
		return err
	}
	reason := storageReason(err)
	if reason == "" {
		return err
	}
	db.mu.Lock()
	first := db.write.reason == ""
	db.write.reason, db.write.at = reason, db.Now()
	db.mu.Unlock()
	if first && db.Logger != nil {
		db.Logger.Error("the database cannot be written; changes are refused until it can (reads go on)", "reason", reason, "err", err)
	}
	return appliance.Errorf(appliance.EUNAVAILABLE, "", "the database cannot be written: %s; nothing was changed", reason)
}

// wrote notes a committed write: a storage failure is over.
func (db *DB) wrote() {
	db.mu.RLock()
	failing := db.write.reason != ""
	db.mu.RUnlock()
	if !failing {
		return
	}
	db.mu.Lock()
	was := db.write.reason
	db.write = writeState{}
	db.mu.Unlock()
	if was != "" && db.Logger != nil {
		db.Logger.Info("the database can be written again", "was", was)
	}
}

// storageReason names the storage failure behind err, "" for anything
// else.
func storageReason(err error) string {
	var se sqlite3.Error
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "disk full"
	case !errors.As(err, &se):
		return ""
	case se.Code == sqlite3.ErrFull:
		return "disk full"
	case se.Code == sqlite3.ErrReadonly:
		return "the database file or its folder is read-only"
	case se.Code == sqlite3.ErrIoErr:
		return "disk I/O error (full or failing storage)"
	case se.Code == sqlite3.ErrCantOpen:
		return "cannot open the database's files (folder missing or not writable)"
	}
	return ""
}

// minFree is the free space below which the store reports itself
// unwritable before a write fails: a phone import needs some room.
const minFree = 1 << 20

// Writable reports whether writes can succeed now: an error naming the
// reason while the disk holding the database has less than 1 MiB free or
// the last write failed for storage. After a failure it tries a small
// write itself (at most every 2 s), so that it recovers without anyone
// writing.
func (db *DB) Writable(ctx context.Context) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(db.Path), &st); err == nil {
		if free := uint64(st.Bavail) * uint64(st.Bsize); free < minFree {
			return fmt.Errorf("disk full: %d KiB free where the database is (%s)", free>>10, filepath.Dir(db.Path))
		}
	}
	db.mu.Lock()
	reason, probe := db.write.reason, db.write.reason != "" && db.Now().Sub(db.write.probed) >= 2*time.Second
	if probe {
		db.write.probed = db.Now()
	}
	db.mu.Unlock()
	if reason == "" {
		return nil
	}
	if probe {
		err := db.update(ctx, func(tx *Tx) error {
			_, err := tx.exec(`INSERT INTO secrets (name, value) VALUES ('healthz_probe', ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, fmt.Sprint(tx.now))
			return err
		})
		if err == nil {
			return nil
		}
	}
	return errors.New("the database cannot be written: " + reason)
}
