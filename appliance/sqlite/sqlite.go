// Package sqlite implements the appliance services on one SQLite file
// through github.com/mattn/go-sqlite3.
//
// The file runs in WAL mode with foreign keys on and a busy timeout, so the
// CLI (user add, phones import, backup) can work on it while serve runs.
// Writes go through one connection whose transactions begin IMMEDIATE; reads
// use a separate query-only pool. Every service call is one transaction.
//
// A phone's config version is the hash of its rendered <mac>.cfg (SPEC §6),
// and rendering is most of what a change costs (about 250 µs a phone). So a
// change does not render: its transaction commits the change, its audit
// entry and the touched phones marked due; then a second, short transaction
// stores the versions, rendered in between outside any transaction, on every
// CPU, from inputs read in four queries whatever the number of phones
// (versions.go). Only then is EventPhonesChanged published with the phones
// whose version moved. A read waits for the versions of the changes made
// before it (view): no reader sees a phone "synced" with its previous file,
// and a phone's fetch gets the new file. A call that touched at most
// inlineVersions phones returns after both;
// a bigger change (a key on 1,000 phones) returns after the first, in a few
// milliseconds. Chosen over rendering lazily at fetch time, which would put
// writes back on the fetch path. For example:
//
//	r := &configs.Renderer{Catalog: configs.MustCatalog()}
//	db := sqlite.NewDB("/var/lib/provbox/provbox.db", r.Catalog, r.Version)
//	db.Events = appliance.NewEventBus(logger)
//	if err := db.Open(); err != nil { … }
//	svc := db.Services()
//	svc.Keys.UpdateKey(ctx, 7, appliance.KeyUpdate{Label: &label})
//	// → committed; then every phone with key 7 gets a new config_version,
//	//   state "pending", and one event naming them all.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/provbox/provbox/appliance"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the SQLite store.
type DB struct {
	Path string
	// Catalog is the model catalog phones are checked against (required;
	// package configs loads it).
	Catalog *appliance.Catalog

	Now    func() time.Time
	Logger *slog.Logger
	Events *appliance.EventBus
	// Version computes a phone's config version (required, given to
	// NewDB): configs.Renderer.Version, the hash of the rendered <mac>.cfg
	// (SPEC §6), in serve and in every CLI command alike, so they agree.
	Version appliance.VersionFunc
	// Check gives a phone's ready problems (stored with its version);
	// default (*appliance.PhoneConfig).Problems. cmd/provbox wires the
	// vendor's, which adds the files the phone will ask for.
	Check func(*appliance.PhoneConfig) []string
	// ReportTimeout is how long a phone that reports has to report after
	// it was told to sync or fetched an account change, before it is
	// stuck (default appliance.StuckAfter).
	ReportTimeout time.Duration
	// MaxDiscovered bounds the Discovered list (default
	// appliance.MaxDiscovered; tests lower it).
	MaxDiscovered int
	// AuditKeep and AuditMaxAge bound the audit trail (default
	// appliance.AuditKeep entries and appliance.AuditMaxAge; tests lower
	// them).
	AuditKeep   int
	AuditMaxAge time.Duration

	w *sql.DB // one writer connection, BEGIN IMMEDIATE
	r *sql.DB // query-only readers

	mu       sync.RWMutex
	settings appliance.Settings          // from the config file (serve)
	override appliance.SettingsOverrides // from the Settings page
	batch    batcher                     // group commit of fetch and NOTIFY records
	adminPW  string                      // the phones' admin password generated for this installation
	write    writeState                  // the last storage failure of a write (health.go)
	versions versioner                   // computes the versions of changed phones (versions.go)
}

// NewDB returns a store for the file at path that checks phones against
// catalog and versions their configs with version; call Open (which
// refuses a nil version).
func NewDB(path string, catalog *appliance.Catalog, version appliance.VersionFunc) *DB {
	return &DB{Path: path, Catalog: catalog, Now: time.Now, Version: version}
}

func dsn(path string, extra string) string {
	u := url.URL{Scheme: "file", Opaque: path}
	q := "_foreign_keys=on&_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_stmt_cache_size=64" + extra
	return u.String() + "?" + q
}

// Open creates the file (mode 0600, parent directory 0700) if needed, and
// migrates the schema.
func (db *DB) Open() error {
	if db.Path == "" {
		return errors.New("open db: path required")
	}
	if db.ReportTimeout <= 0 {
		db.ReportTimeout = appliance.StuckAfter
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	if db.Version == nil {
		return errors.New("open db: config version function required (sqlite.NewDB)")
	}
	if db.Check == nil {
		db.Check = (*appliance.PhoneConfig).Problems
	}
	if db.Logger == nil {
		db.Logger = slog.New(slog.DiscardHandler)
	}
	db.batch.db = db
	if err := os.MkdirAll(filepath.Dir(db.Path), 0o700); err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	f, err := os.OpenFile(db.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	f.Close()
	if db.w, err = sql.Open("sqlite3", dsn(db.Path, "&_txlock=immediate")); err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetConnMaxLifetime(0)
	if db.r, err = sql.Open("sqlite3", dsn(db.Path, "&_query_only=true")); err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	db.r.SetMaxOpenConns(4)
	if err := db.migrate(); err != nil {
		db.Close()
		return fmt.Errorf("migrate %s: %w", db.Path, err)
	}
	if db.adminPW, err = db.secret("phone_admin_password", func() string { return appliance.GeneratePassword(16) }); err != nil {
		db.Close()
		return fmt.Errorf("open db: %w", err)
	}
	if err := db.giveSecrets(); err != nil {
		db.Close()
		return fmt.Errorf("open db: %w", err)
	}
	for _, row := range []struct {
		table string
		into  any
	}{{"settings", &db.settings}, {"settings_overrides", &db.override}} {
		var raw string
		err = db.r.QueryRow(`SELECT value FROM ` + row.table + ` WHERE id = 1`).Scan(&raw)
		if err == nil {
			err = json.Unmarshal([]byte(raw), row.into)
		}
		if err != nil && err != sql.ErrNoRows {
			db.Close()
			return fmt.Errorf("load %s: %w", row.table, err)
		}
	}
	// Versions a crash left to compute (between a change's commit and its
	// versions'): computed now, in the background like any change's.
	var due bool
	if err := db.r.QueryRow(`SELECT EXISTS (SELECT 1 FROM versions_due)`).Scan(&due); err != nil {
		db.Close()
		return fmt.Errorf("open db: %w", err)
	}
	if due {
		db.versions.start(db)
	}
	return nil
}

// Close waits for the versions being computed, and closes the
// connections.
func (db *DB) Close() error {
	db.versions.close()
	var errs []error
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	return errors.Join(errs...)
}

// migrate runs, in one transaction each, the embedded migrations numbered
// above PRAGMA user_version.
func (db *DB) migrate() error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var current int
	if err := db.w.QueryRow(`PRAGMA user_version`).Scan(&current); err != nil {
		return err
	}
	if current > len(names) {
		return fmt.Errorf("database schema version %d is newer than this provbox knows (%d); upgrade provbox", current, len(names))
	}
	for i, name := range names {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil || n != i+1 {
			return fmt.Errorf("migration %s: bad number", name)
		}
		if n <= current {
			continue
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := db.w.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, n)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// secret returns the installation's secret of that name, generating and
// storing it the first time (a concurrent process generating it too loses:
// the first stored value wins).
func (db *DB) secret(name string, generate func() string) (string, error) {
	var v string
	err := db.r.QueryRow(`SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
	if err == sql.ErrNoRows {
		if _, err = db.w.Exec(`INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, generate()); err == nil {
			err = db.r.QueryRow(`SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
		}
	}
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}

// giveSecrets gives every phone without a provisioning secret (phones
// added before secrets existed) its own, and opens its claim window for the
// default length, so the phone can fetch the file that carries the secret
// without knowing it yet.
func (db *DB) giveSecrets() error {
	ids, err := queryColumn[int64](context.Background(), db.w, `SELECT id FROM phones WHERE secret = '' OR token = ''`)
	if err != nil {
		return fmt.Errorf("phones without secrets: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	tx, err := db.w.Begin()
	if err != nil {
		return err
	}
	until := db.Now().Add(appliance.DefaultClaimWindow).UnixMilli()
	secrets := 0
	for _, id := range ids {
		if _, err := tx.Exec(`UPDATE phones SET token = CASE WHEN token = '' THEN ? ELSE token END WHERE id = ?`, newToken(), id); err != nil {
			tx.Rollback()
			return fmt.Errorf("give phone %d a report token: %w", id, err)
		}
		res, err := tx.Exec(`UPDATE phones SET secret = ?, claim_until = ? WHERE id = ? AND secret = ''`, newSecret(), until, id)
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("give phone %d a secret: %w", id, err)
		}
		n, _ := res.RowsAffected()
		secrets += int(n)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if secrets > 0 {
		db.Logger.Info("gave existing phones their own provisioning secrets; each may fetch its config once without it within the claim window", "phones", secrets, "claim_window", appliance.DefaultClaimWindow.String())
	}
	return nil
}

// SchemaVersion returns PRAGMA user_version.
func (db *DB) SchemaVersion() (int, error) {
	var v int
	err := db.r.QueryRow(`PRAGMA user_version`).Scan(&v)
	return v, err
}

var _ appliance.SettingsService = (*DB)(nil)

// Settings returns the appliance-wide settings in force: the config
// file's, with the Settings page's overrides, and the generated phones'
// admin password when the config file sets none.
func (db *DB) Settings() appliance.Settings {
	db.mu.RLock()
	defer db.mu.RUnlock()
	s := db.override.Apply(db.settings)
	if s.PhoneAdminPassword == "" {
		s.PhoneAdminPassword = db.adminPW
	}
	return s
}

// BaseSettings returns the settings of the config file alone (an empty
// PhoneAdminPassword: the generated one is in force).
func (db *DB) BaseSettings() appliance.Settings {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.settings
}

// Overrides returns the Settings page's overrides.
func (db *DB) Overrides() appliance.SettingsOverrides {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.override
}

// SetOverrides validates and stores the Settings page's overrides (nil
// fields follow the config file) and recomputes every phone's version.
func (db *DB) SetOverrides(ctx context.Context, o appliance.SettingsOverrides) error {
	if err := o.Validate(); err != nil {
		return err
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	db.mu.Lock()
	old := db.override
	db.override = o
	db.mu.Unlock()
	err = db.update(ctx, func(tx *Tx) error {
		if _, err := tx.exec(`INSERT INTO settings_overrides (id, value) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value`, string(raw)); err != nil {
			return fmt.Errorf("save settings: %w", err)
		}
		tx.audit("settings.update", "settings", old, o)
		return tx.touchQuery(`SELECT id FROM phones`)
	})
	if err != nil {
		db.mu.Lock()
		db.override = old
		db.mu.Unlock()
	}
	return err
}

// SetSettings stores the config file's settings (the Settings page's
// overrides still win) and recomputes every phone's config
// version, publishing the phones whose version moved.
func (db *DB) SetSettings(ctx context.Context, s appliance.Settings) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	db.mu.Lock()
	old := db.settings
	db.settings = s
	db.mu.Unlock()
	err = db.update(ctx, func(tx *Tx) error {
		if _, err := tx.exec(`INSERT INTO settings (id, value) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value`, string(raw)); err != nil {
			return fmt.Errorf("save settings: %w", err)
		}
		tx.audit("settings.config_file", "settings of the config file", old, s).ifChanged = true
		return tx.touchQuery(`SELECT id FROM phones`)
	})
	if err != nil {
		db.mu.Lock()
		db.settings = old
		db.mu.Unlock()
	}
	return err
}

// Services returns the domain services backed by this store.
func (db *DB) Services() appliance.Services {
	return appliance.Services{
		Extensions: &ExtensionService{db},
		Locations:  &LocationService{db},
		Phones:     &PhoneService{db},
		Keys:       &KeyService{db},
		Users:      &UserService{db},
		Import:     &ImportService{db},
		Sync:       &SyncService{db},
		Discovery:  &DiscoveryService{db},
		Sessions:   &SessionService{db},
		Settings:   db,
		Leases:     &LeaseService{db},
		Audit:      &AuditService{db},
		Events:     db.Events,
	}
}

// Backup writes a consistent copy of the live database to dest through
// SQLite's online backup API (safe while serve runs). dest must not exist.
func (db *DB) Backup(ctx context.Context, dest string) error {
	if _, err := os.Stat(dest); err == nil {
		return appliance.Errorf(appliance.ECONFLICT, "file", "%s already exists", dest)
	}
	tmp := dest + ".partial"
	os.Remove(tmp)
	destDB, err := sql.Open("sqlite3", "file:"+tmp)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer destDB.Close()
	dconn, err := destDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer dconn.Close()
	sconn, err := db.r.Conn(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer sconn.Close()
	err = dconn.Raw(func(d any) error {
		return sconn.Raw(func(s any) error {
			b, err := d.(*sqlite3.SQLiteConn).Backup("main", s.(*sqlite3.SQLiteConn), "main")
			if err != nil {
				return err
			}
			for {
				done, err := b.Step(-1)
				if err != nil {
					b.Finish()
					return err
				}
				if done {
					return b.Finish()
				}
			}
		})
	})
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	dconn.Close()
	destDB.Close()
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// Tx is one service call's write transaction. It collects the phones the
// change touches, whose config versions are recomputed once it committed
// (versions.go).
type Tx struct {
	*sql.Tx
	db      *DB
	ctx     context.Context
	now     int64
	touched map[int64]bool
	changed []string        // MACs whose config version moved, or that were deleted
	audits  []*pendingAudit // audit entries, written before commit (audit.go)
}

// inlineVersions is the most phones a change may touch for its service
// call to return with their versions computed (and their check-syncs on
// the way): one phone's edit answers as it always did. A change to more
// phones answers once committed; its versions follow at once, in the
// background, and the reads that come after wait for them (view).
const inlineVersions = 64

// update runs fn in a write transaction with the audit entries it made and
// the touched phones marked due for new config versions, commits, tells the
// file caches, and has the versions computed (versions.go).
func (db *DB) update(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.storage(fmt.Errorf("begin: %w", err))
	}
	tx := &Tx{Tx: sqlTx, db: db, ctx: ctx, now: db.Now().UnixMilli(), touched: map[int64]bool{}}
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return db.storage(err)
	}
	audits, err := tx.writeAudit()
	if err != nil {
		sqlTx.Rollback()
		return db.storage(err)
	}
	due, err := tx.markDue(audits)
	if err != nil {
		sqlTx.Rollback()
		return db.storage(err)
	}
	if err := sqlTx.Commit(); err != nil {
		return db.storage(fmt.Errorf("commit: %w", err))
	}
	db.wrote()
	if db.Events != nil {
		if len(tx.changed) > 0 { // deleted phones
			db.Events.Publish(appliance.Event{Type: appliance.EventPhonesChanged, MACs: tx.changed})
		}
		if len(due) > 0 {
			// A cached file of a due phone must not be served: its fetch
			// reads the store, which waits for the new version.
			db.Events.Publish(appliance.Event{Type: appliance.EventAccessChanged, MACs: due})
		}
	}
	if len(due) > 0 {
		db.versions.start(db)
		if len(due) <= inlineVersions {
			db.versions.wait(context.WithoutCancel(ctx)) // committed: the caller hears of no cancellation
		}
	}
	return nil
}

// dryRun runs fn in a write transaction that is always rolled back, with
// the versions of the phones it touches computed (a file that would not
// render fails it).
func (db *DB) dryRun(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer sqlTx.Rollback()
	tx := &Tx{Tx: sqlTx, db: db, ctx: ctx, now: db.Now().UnixMilli(), touched: map[int64]bool{}}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.refreshVersions()
}

// view runs fn in a read transaction, once the versions of the changes
// made so far are computed: a read never sees a change it follows without
// its versions (a phone "synced" with its previous file).
func (db *DB) view(ctx context.Context, fn func(q querier) error) error {
	if err := db.versions.wait(ctx); err != nil {
		return err
	}
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// querier is what read helpers need; both *sql.Tx and *Tx satisfy it.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func (tx *Tx) exec(q string, args ...any) (sql.Result, error) {
	return tx.ExecContext(tx.ctx, q, args...)
}

func (tx *Tx) touch(ids ...int64) {
	for _, id := range ids {
		tx.touched[id] = true
	}
}

// touchQuery marks the phones whose ids the query returns.
func (tx *Tx) touchQuery(q string, args ...any) error {
	ids, err := queryColumn[int64](tx.ctx, tx, q, args...)
	if err != nil {
		return err
	}
	tx.touch(ids...)
	return nil
}

// queryColumn runs a query of one column and returns its values.
func queryColumn[T any](ctx context.Context, q querier, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// usedBy names the phones (name and MAC) matching a query on phone ids,
// for ECONFLICT messages: "Front desk (00:15:65:aa:bb:cc), …".
func usedBy(ctx context.Context, q querier, where string, args ...any) (string, int, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, mac FROM phones WHERE id IN (`+where+`) ORDER BY name, mac`, args...)
	if err != nil {
		return "", 0, err
	}
	defer rows.Close()
	var names []string
	n := 0
	for rows.Next() {
		var name, mac string
		if err := rows.Scan(&name, &mac); err != nil {
			return "", 0, err
		}
		n++
		if len(names) < 10 {
			names = append(names, (&appliance.Phone{Name: name, MAC: mac}).Title())
		}
	}
	s := strings.Join(names, ", ")
	if n > len(names) {
		s += fmt.Sprintf(" and %d more", n-len(names))
	}
	return s, n, rows.Err()
}

// containing is a LIKE pattern (ESCAPE '\') matching text that contains s
// literally: % and _ typed by an admin are not wildcards.
func containing(s string) string {
	return "%" + likeEscaper.Replace(s) + "%"
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// isUnique reports a UNIQUE constraint failure.
func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}

func msToTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}
