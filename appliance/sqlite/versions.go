package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provbox/provbox/appliance"
)

// A phone's config version is the hash of its rendered <mac>.cfg (SPEC §6),
// and rendering is most of what a change costs: about 250 µs a phone, a
// quarter of a second for a key on 1,000 phones. So a change commits first,
// with the phones it touched marked due (versions_due), and their versions
// follow in a second, short transaction:
//
//  1. the change's transaction (DB.update): the change, its audit entry,
//     and a versions_due row per touched phone; committed, then
//     EventAccessChanged drops the phones' cached files;
//  2. a round of the versioner: the due phones' inputs read in one read
//     transaction (four queries for any number of phones), their files
//     rendered outside any transaction on every CPU, and in one write
//     transaction their versions, states, ready problems and timelines
//     stored, the audit entry given its phones, the rows removed; then
//     EventPhonesChanged names the phones whose version moved.
//
// Until a round is done every read waits for it (DB.view): a phone's
// fetch, the sync loop and GET /phones/{mac}/sync see the new versions,
// never a phone "synced" with its previous file. A change to at most
// inlineVersions phones waits for its round before it returns. Rows a
// crash leaves are computed at the next Open.

// versioner runs the rounds, one at a time, in a goroutine that lives
// while there is work. A reader waits for the changes marked before it
// began waiting, not for later ones, so a stream of changes cannot hold
// reads back.
type versioner struct {
	mu       sync.Mutex
	marked   uint64        // changes that marked phones due, counted
	finished uint64        // the count a finished round covered
	running  bool          // the goroutine runs
	round    chan struct{} // closed, and replaced, when a round finishes
	closed   bool          // the store is closing: rows left wait for the next Open
}

// retryAfter is when a round that failed (the database, not a phone's
// file) is tried again.
const retryAfter = 5 * time.Second

// start has the due rows of a change just committed computed: by a round
// that starts now, or by the next round of the running goroutine.
func (v *versioner) start(db *DB) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.marked++
	if v.round == nil {
		v.round = make(chan struct{})
	}
	if !v.running {
		v.running = true
		go v.run(db)
	}
}

func (v *versioner) run(db *DB) {
	for {
		v.mu.Lock()
		if v.finished == v.marked {
			v.running = false
			v.mu.Unlock()
			return
		}
		// Every change counted so far has committed, so the round, which
		// reads after this, sees its rows.
		target := v.marked
		v.mu.Unlock()
		if err := db.refreshDue(context.Background()); err != nil {
			// The rows stay, and are tried again a little later (and by
			// the next change, or the next start). Reads go on meanwhile,
			// with the versions before.
			db.Logger.Error("config versions not computed; trying again", "err", err, "in", retryAfter.String())
			time.AfterFunc(retryAfter, func() { v.start(db) })
		}
		v.mu.Lock()
		v.finished = target
		close(v.round)
		v.round = make(chan struct{})
		v.mu.Unlock()
	}
}

// wait returns once the rounds of the changes counted so far are done
// (or ctx ends).
func (v *versioner) wait(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	target := v.marked
	for v.finished < target {
		round := v.round
		v.mu.Unlock()
		select {
		case <-round:
		case <-ctx.Done():
			v.mu.Lock()
			return ctx.Err()
		}
		v.mu.Lock()
	}
	return nil
}

// close lets the rounds pending finish and starts no more.
func (v *versioner) close() {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	v.wait(context.Background())
}

// markDue records the phones the transaction touched as due for new
// versions, each once per audit entry that will list it if its version
// moves (audits, from writeAudit), and returns their MACs.
func (tx *Tx) markDue(audits []dueAudit) ([]string, error) {
	ids := tx.takeTouched()
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	if len(audits) == 0 {
		audits = []dueAudit{{}}
	}
	for _, a := range audits {
		// Phones touched and then deleted by the change are gone.
		if _, err := tx.exec(`INSERT INTO versions_due (phone_id, audit_id, if_phones)
			SELECT id, ?, ? FROM phones WHERE id IN (SELECT value FROM json_each(?))`,
			sql.NullInt64{Int64: a.id, Valid: a.id != 0}, a.ifPhones, string(list)); err != nil {
			return nil, fmt.Errorf("mark versions due: %w", err)
		}
	}
	return queryColumn[string](tx.ctx, tx, `SELECT mac FROM phones WHERE id IN (SELECT value FROM json_each(?)) ORDER BY mac`, string(list))
}

// takeTouched returns the ids of the phones the transaction touched so
// far, and forgets them.
func (tx *Tx) takeTouched() []int64 {
	ids := make([]int64, 0, len(tx.touched))
	for id := range tx.touched {
		ids = append(ids, id)
	}
	tx.touched = map[int64]bool{}
	return ids
}

// refreshDue is one round: it computes the versions of the phones due so
// far and stores them.
func (db *DB) refreshDue(ctx context.Context) error {
	rtx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	last, audits, ids, err := readDue(ctx, rtx)
	var cfgs []*appliance.PhoneConfig
	if err == nil {
		cfgs, err = phoneConfigs(ctx, rtx, db.Catalog, ids, db.Settings())
	}
	rtx.Rollback()
	if err != nil {
		return fmt.Errorf("read due phones: %w", err)
	}
	computed := db.computeVersions(cfgs)

	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.storage(fmt.Errorf("begin: %w", err))
	}
	tx := &Tx{Tx: sqlTx, db: db, ctx: ctx, now: db.Now().UnixMilli()}
	if err := tx.storeDue(last, computed, audits); err != nil {
		sqlTx.Rollback()
		return db.storage(err)
	}
	if err := sqlTx.Commit(); err != nil {
		return db.storage(fmt.Errorf("commit: %w", err))
	}
	db.wrote()
	if len(tx.changed) > 0 && db.Events != nil {
		db.Events.Publish(appliance.Event{Type: appliance.EventPhonesChanged, MACs: tx.changed})
	}
	return nil
}

// dueAudit is an audit entry waiting for the phones whose version its
// change moves (id 0: none).
type dueAudit struct {
	id       int64
	ifPhones bool // the entry goes when no phone's version moved
}

// readDue returns the due rows up to seq last: the audit entries of each
// phone, and the phones by id.
func readDue(ctx context.Context, q querier) (last int64, audits map[int64][]dueAudit, ids []int64, err error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, phone_id, audit_id, if_phones FROM versions_due ORDER BY seq`)
	if err != nil {
		return 0, nil, nil, err
	}
	defer rows.Close()
	audits = map[int64][]dueAudit{}
	for rows.Next() {
		var seq, id int64
		var audit sql.NullInt64
		var ifPhones bool
		if err := rows.Scan(&seq, &id, &audit, &ifPhones); err != nil {
			return 0, nil, nil, err
		}
		last = seq
		if _, ok := audits[id]; !ok {
			audits[id] = nil
			ids = append(ids, id)
		}
		if audit.Valid {
			audits[id] = append(audits[id], dueAudit{audit.Int64, ifPhones})
		}
	}
	return last, audits, ids, rows.Err()
}

// storeDue stores the versions computed for the rows up to seq last and
// removes those rows, but for a phone whose file did not render (logged;
// tried again by the next round). A phone changed again since it was read
// gets the version of what was read, a version it really had: readers who
// waited for the first change see it, and the next round computes the
// second.
func (tx *Tx) storeDue(last int64, computed []versioned, audits map[int64][]dueAudit) error {
	store := computed[:0:0]
	done := []int64{}
	for _, v := range computed {
		if v.err != nil {
			tx.db.Logger.Error("config version not computed", "mac", v.mac, "err", v.err)
			continue
		}
		store = append(store, v)
		done = append(done, v.id)
	}
	if err := tx.storeVersions(store, audits); err != nil {
		return err
	}
	// Phones deleted since they were read are gone with their rows; the
	// due rows of the phones stored go.
	list, err := json.Marshal(done)
	if err != nil {
		return err
	}
	if _, err := tx.exec(`DELETE FROM versions_due WHERE seq <= ? AND phone_id IN (SELECT value FROM json_each(?))`, last, string(list)); err != nil {
		return err
	}
	// An entry that is recorded only when phones moved (a template
	// refresh) goes once none did and none is left to compute.
	_, err = tx.exec(`DELETE FROM audit WHERE id IN (SELECT value FROM json_each(?))
		AND NOT EXISTS (SELECT 1 FROM audit_phones WHERE audit_id = audit.id)
		AND NOT EXISTS (SELECT 1 FROM versions_due WHERE audit_id = audit.id)`, ifPhonesAudits(done, audits))
	return err
}

// ifPhonesAudits is the JSON list of the if-phones audit entries of the
// phones ids.
func ifPhonesAudits(ids []int64, audits map[int64][]dueAudit) string {
	seen := map[int64]bool{}
	list := []int64{}
	for _, id := range ids {
		for _, a := range audits[id] {
			if a.ifPhones && !seen[a.id] {
				seen[a.id] = true
				list = append(list, a.id)
			}
		}
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// versioned is what a phone's config inputs gave: its version, ready
// problems (JSON) and accounts hash, or the error of its render.
type versioned struct {
	id                          int64
	mac                         string
	version, problems, accounts string
	err                         error
}

// computeVersions renders the phones' files (db.Version) and runs their
// ready checks on every CPU; the configs are read-only meanwhile.
func (db *DB) computeVersions(cfgs []*appliance.PhoneConfig) []versioned {
	out := make([]versioned, len(cfgs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(cfgs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(cfgs); i = int(next.Add(1)) - 1 {
				out[i] = db.version(cfgs[i])
			}
		}()
	}
	wg.Wait()
	return out
}

func (db *DB) version(cfg *appliance.PhoneConfig) versioned {
	v := versioned{id: cfg.Phone.ID, mac: cfg.Phone.MAC}
	var err error
	if v.version, err = db.Version(cfg); err != nil {
		v.err = fmt.Errorf("config version of %s: %w", cfg.Phone.MAC, err)
		return v
	}
	problems, err := json.Marshal(nonNilStrings(db.Check(cfg)))
	if err != nil {
		v.err = err
		return v
	}
	v.problems, v.accounts = string(problems), cfg.AccountsHash()
	return v
}

// refreshVersions computes and stores, inside the transaction, the
// versions of the phones it touched (a dry run's: it is rolled back).
func (tx *Tx) refreshVersions() error {
	cfgs, err := phoneConfigs(tx.ctx, tx, tx.db.Catalog, tx.takeTouched(), tx.db.Settings())
	if err != nil {
		return err
	}
	computed := tx.db.computeVersions(cfgs)
	for _, v := range computed {
		if v.err != nil {
			return v.err
		}
	}
	return tx.storeVersions(computed, nil)
}

// storeVersions stores the phones' computed versions and ready problems.
// A phone whose version moved becomes pending (or stays new if it never
// fetched; or becomes synced or fetched again if it already holds that
// version), its timeline gets a new change, and its audit entries list it.
func (tx *Tx) storeVersions(computed []versioned, audits map[int64][]dueAudit) error {
	if len(computed) == 0 {
		return nil
	}
	sort.Slice(computed, func(i, j int) bool { return computed[i].id < computed[j].id })
	ids := make([]int64, len(computed))
	for i, v := range computed {
		ids[i] = v.id
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	type current struct {
		mac, name, version, fetched, state, problems, accounts string
		applied                                                bool // the phone reported applying the version it fetched
	}
	rows, err := tx.QueryContext(tx.ctx, `SELECT id, mac, name, config_version, fetched_version, state, problems, accounts_hash,
		confirms = 1 AND applied_at IS NOT NULL AND applied_at >= last_fetch_at FROM phones WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return err
	}
	cur := map[int64]current{}
	for rows.Next() {
		var id int64
		var c current
		if err := rows.Scan(&id, &c.mac, &c.name, &c.version, &c.fetched, &c.state, &c.problems, &c.accounts, &c.applied); err != nil {
			rows.Close()
			return err
		}
		cur[id] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, v := range computed {
		c, ok := cur[v.id]
		if !ok {
			continue // deleted
		}
		if v.version == c.version {
			if v.problems != c.problems || v.accounts != c.accounts {
				if _, err := tx.exec(`UPDATE phones SET problems = ?, accounts_hash = ? WHERE id = ?`, v.problems, v.accounts, v.id); err != nil {
					return err
				}
			}
			continue
		}
		next := c.state
		switch {
		case c.state == appliance.SyncNew:
		case v.version == c.fetched && c.applied:
			next = appliance.SyncSynced // back to what the phone has applied
		case v.version == c.fetched:
			next = appliance.SyncFetched
		default:
			next = appliance.SyncPending
		}
		// A new version awaits no report until the phone is told or fetches.
		if _, err := tx.exec(`UPDATE phones SET config_version = ?, state = ?, problems = ?, accounts_hash = ?, report_due = NULL WHERE id = ?`,
			v.version, next, v.problems, v.accounts, v.id); err != nil {
			return err
		}
		if err := tx.addChange(v.id, v.version); err != nil {
			return err
		}
		if err := tx.auditMoved(audits[v.id], v.id, c.mac, c.name, v.version, c.fetched, next); err != nil {
			return err
		}
		tx.changed = append(tx.changed, c.mac)
	}
	return nil
}
