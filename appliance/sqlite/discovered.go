package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/provbox/provbox/appliance"
)

// DiscoveryService implements appliance.DiscoveryService.
type DiscoveryService struct{ db *DB }

var _ appliance.DiscoveryService = (*DiscoveryService)(nil)

// clip keeps untrusted text (User-Agents, model strings from the network)
// printable and short before it is stored and shown.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

// RecordDiscovered upserts a phone seen on the network. A new MAC from a
// source address that brought DiscoveredPerMinute new ones within the last
// minute is dropped; past MaxDiscovered rows, the least recently seen go.
func (s *DiscoveryService) RecordDiscovered(ctx context.Context, d appliance.Discovered) error {
	mac, err := appliance.ParseMAC(d.MAC)
	if err != nil {
		return err
	}
	if d.Vendor == "" {
		d.Vendor = s.db.Catalog.VendorByMAC(mac)
	}
	ip := clip(d.IP, 64)
	return s.db.update(ctx, func(tx *Tx) error {
		var known, seen int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM phones WHERE mac = ?), (SELECT count(*) FROM discovered WHERE mac = ?)`, mac, mac).Scan(&known, &seen); err != nil || known > 0 {
			return err
		}
		if seen == 0 {
			var recent int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM discovered WHERE ip = ? AND first_seen > ?`, ip, tx.now-time.Minute.Milliseconds()).Scan(&recent); err != nil {
				return err
			}
			if recent >= appliance.DiscoveredPerMinute {
				return nil
			}
		}
		_, err := tx.exec(`INSERT INTO discovered (mac, vendor, model, firmware, ip, source, user_agent, first_seen, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (mac) DO UPDATE SET
				vendor = CASE WHEN excluded.vendor != '' THEN excluded.vendor ELSE vendor END,
				model = CASE WHEN excluded.model != '' THEN excluded.model ELSE model END,
				firmware = CASE WHEN excluded.firmware != '' THEN excluded.firmware ELSE firmware END,
				user_agent = CASE WHEN excluded.user_agent != '' THEN excluded.user_agent ELSE user_agent END,
				ip = excluded.ip, source = excluded.source, last_seen = excluded.last_seen, seen = seen + 1`,
			mac, clip(d.Vendor, 32), clip(d.Model, 32), clip(d.Firmware, 64), ip, clip(d.Source, 8), clip(d.UserAgent, 256), tx.now, tx.now)
		if err != nil {
			return fmt.Errorf("record discovered: %w", err)
		}
		if seen == 0 {
			_, err = tx.exec(`DELETE FROM discovered WHERE mac IN (SELECT mac FROM discovered ORDER BY last_seen, mac
				LIMIT max(0, (SELECT count(*) FROM discovered) - ?))`, s.db.maxDiscovered())
		}
		return err
	})
}

func (db *DB) maxDiscovered() int {
	if db.MaxDiscovered > 0 {
		return db.MaxDiscovered
	}
	return appliance.MaxDiscovered
}

// FindDiscovered lists phones seen, most recent first.
func (s *DiscoveryService) FindDiscovered(ctx context.Context) ([]*appliance.Discovered, error) {
	list, _, err := s.PageDiscovered(ctx, 0, appliance.MaxDiscovered*2)
	return list, err
}

// PageDiscovered lists phones seen, most recent first, from offset.
func (s *DiscoveryService) PageDiscovered(ctx context.Context, offset, limit int) ([]*appliance.Discovered, int, error) {
	out := []*appliance.Discovered{}
	var total int
	err := s.db.view(ctx, func(q querier) error {
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM discovered`).Scan(&total); err != nil {
			return err
		}
		rows, err := q.QueryContext(ctx, `SELECT mac, vendor, model, firmware, ip, source, user_agent, first_seen, last_seen, seen
			FROM discovered ORDER BY last_seen DESC, mac LIMIT ? OFFSET ?`, max(limit, 0), max(offset, 0))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d appliance.Discovered
			var first, last int64
			if err := rows.Scan(&d.MAC, &d.Vendor, &d.Model, &d.Firmware, &d.IP, &d.Source, &d.UserAgent, &first, &last, &d.Seen); err != nil {
				return err
			}
			d.FirstSeen, d.LastSeen = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
			out = append(out, &d)
		}
		return rows.Err()
	})
	return out, total, err
}

// findDiscovered returns one discovered phone, or nil.
func (s *DiscoveryService) findDiscovered(ctx context.Context, mac string) (*appliance.Discovered, error) {
	var d appliance.Discovered
	err := s.db.view(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT mac, vendor, model, ip FROM discovered WHERE mac = ?`, mac).Scan(&d.MAC, &d.Vendor, &d.Model, &d.IP)
	})
	if err == sql.ErrNoRows {
		return nil, nil
	}
	return &d, err
}

// AdoptDiscovered turns a discovered phone into a provisioned one.
func (s *DiscoveryService) AdoptDiscovered(ctx context.Context, macIn string, in *appliance.Phone, extension string) (*appliance.Phone, error) {
	mac, err := appliance.ParseMAC(macIn)
	if err != nil {
		return nil, err
	}
	d, err := s.findDiscovered(ctx, mac)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "mac", "%s has not been discovered", appliance.FormatMAC(mac))
	}
	p := appliance.Phone{MAC: mac}
	if in != nil {
		p = *in
		p.MAC = mac
	}
	if p.Manufacturer == "" {
		p.Manufacturer = d.Vendor
	}
	if p.Model == "" {
		p.Model = d.Model
	}
	var out *appliance.Phone
	err = s.db.update(ctx, func(tx *Tx) error {
		created, err := (&PhoneService{s.db}).createInTx(tx, &p, extension)
		if err != nil {
			return err
		}
		if err := tx.auditPhone("phone.adopt", nil, created); err != nil {
			return err
		}
		out = created
		if d.IP != "" {
			if _, err := tx.exec(`UPDATE phones SET sip_address = ? WHERE id = ?`, sipAddress(d.IP, s.db.Settings().PhoneSIPPort), created.ID); err != nil {
				return err
			}
		}
		_, err = tx.exec(`DELETE FROM discovered WHERE mac = ?`, mac)
		return err
	})
	if err != nil {
		return nil, err
	}
	return (&PhoneService{s.db}).FindPhone(ctx, out.MAC)
}

// sipAddress is ip:port for a phone whose SIP port is assumed.
func sipAddress(ip string, port int) string {
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// RecordFetch notes a config fetch by a known phone. It is group-committed
// (see batcher): it returns once its fetch is committed, so a phone's state
// is current when its file is sent, and a burst of boots costs one fsync
// per batch, not per phone.
func (s *SyncService) RecordFetch(ctx context.Context, f appliance.Fetch) error {
	mac, err := appliance.ParseMAC(f.MAC)
	if err != nil {
		return err
	}
	f.MAC = mac
	var retired bool
	err = s.db.batch.do(ctx, func(tx *Tx) (err error) {
		retired, err = tx.recordFetch(f)
		return err
	})
	if err == nil && s.db.Events != nil {
		if retired {
			// Like ConsumeClaim and OpenClaim: who may fetch changed.
			s.db.Events.Publish(appliance.Event{Type: appliance.EventAccessChanged, MACs: []string{mac}})
		}
		s.db.Events.Publish(appliance.Event{Type: appliance.EventFetched, MACs: []string{mac}})
	}
	return err
}

// batcher gathers small writes made at the same time (fetch and NOTIFY
// records) into shared transactions: group commit. Each call still returns
// only after its own write is committed, with its own error; a domain error
// of one write does not undo the others.
type batcher struct {
	db   *DB
	mu   sync.Mutex
	wait []batchReq
	busy bool
}

type batchReq struct {
	apply func(tx *Tx) error
	done  chan error
}

func (b *batcher) do(ctx context.Context, apply func(tx *Tx) error) error {
	r := batchReq{apply: apply, done: make(chan error, 1)}
	b.mu.Lock()
	b.wait = append(b.wait, r)
	lead := !b.busy
	b.busy = true
	b.mu.Unlock()
	if lead {
		// A writer runs until nothing waits; callers wait for their result.
		go b.flush()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *batcher) flush() {
	for {
		b.mu.Lock()
		batch := b.wait
		b.wait = nil
		if len(batch) == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		errs := make([]error, len(batch))
		err := b.db.update(context.Background(), func(tx *Tx) error {
			for i, r := range batch {
				errs[i] = r.apply(tx)
				if errs[i] != nil && appliance.ErrorCode(errs[i]) == appliance.EINTERNAL {
					return errs[i]
				}
			}
			return nil
		})
		for i, r := range batch {
			if err != nil {
				r.done <- err
			} else {
				r.done <- errs[i]
			}
		}
	}
}

// recordFetch records f; retired reports that it closed the phone's claim
// window or retired its previous secret (a fetch with the current secret).
func (tx *Tx) recordFetch(f appliance.Fetch) (retired bool, err error) {
	var id int64
	var open bool // a claim window or a previous secret to retire
	err = tx.QueryRowContext(tx.ctx, `SELECT id, claim_until IS NOT NULL OR prev_secret != '' FROM phones WHERE mac = ?`, f.MAC).Scan(&id, &open)
	if err == sql.ErrNoRows {
		return false, appliance.Errorf(appliance.ENOTFOUND, "mac", "no phone %s", appliance.FormatMAC(f.MAC))
	} else if err != nil {
		return false, err
	}
	// Fetching the current version makes the phone fetched (synced once it
	// reports); an older version (a fetch that raced an edit) leaves it
	// pending. Fetching again what it already fetched changes nothing: a
	// synced phone stays synced, a stuck one stuck, and the report awaited
	// stays awaited. A phone that reports, fetching a change to its
	// accounts, must report their registration within the report timeout;
	// other changes a Yealink applies without a word (setup_autop_finish is
	// sent after power-on provisioning only), so no report is awaited for
	// them. After a fetch of another version than the current one, which
	// accounts the phone holds is unknown (''): no report is awaited then.
	fresh := `(? = config_version AND (fetched_version != ? OR state NOT IN ('fetched', 'synced', 'stuck')))`
	state := `CASE WHEN ` + fresh + ` THEN 'fetched' WHEN state = 'new' THEN 'pending' ELSE state END`
	due := `CASE WHEN ` + fresh + ` THEN CASE WHEN confirms = 1 AND fetched_accounts_hash != '' AND accounts_hash != fetched_accounts_hash
		THEN ? END ELSE report_due END`
	held := `CASE WHEN ? = config_version THEN accounts_hash WHEN ? != fetched_version THEN '' ELSE fetched_accounts_hash END`
	// The SIP address becomes the fetch's IP and the configured phone
	// port, unless a PnP SUBSCRIBE or DHCP already told the port for
	// this very IP.
	addr, prefix := "", ""
	if f.IP != "" {
		addr, prefix = sipAddress(f.IP, tx.db.Settings().PhoneSIPPort), net.JoinHostPort(f.IP, "")
	}
	// A fetch with the current secret shows the phone holds it: the claim
	// window and the secret (and report token) before a rotation are no
	// longer needed.
	withSecret := f.Auth == appliance.AuthSecret
	v := f.Version
	_, err = tx.exec(`UPDATE phones SET state = `+state+`, report_due = `+due+`, fetched_accounts_hash = `+held+`,
		fetched_version = ?, last_fetch_at = ?, last_fetch_ip = ?, last_fetch_ua = ?,
		sip_address = CASE WHEN ? = '' OR substr(sip_address, 1, length(?)) = ? THEN sip_address ELSE ? END,
		claim_until = CASE WHEN ? THEN NULL ELSE claim_until END, prev_secret = CASE WHEN ? THEN '' ELSE prev_secret END,
		prev_token = CASE WHEN ? THEN '' ELSE prev_token END WHERE id = ?`,
		v, v, v, v, tx.now+tx.db.ReportTimeout.Milliseconds(), v, v,
		v, tx.now, clip(f.IP, 64), clip(f.UA, 256), addr, prefix, prefix, addr, withSecret, withSecret, withSecret, id)
	if err != nil {
		return false, err
	}
	if err := tx.changeStep(id, f.Version, `fetched_at = COALESCE(fetched_at, ?), outcome = ''`, tx.now); err != nil {
		return false, err
	}
	if err := tx.auditReached(id, f.Version); err != nil {
		return false, err
	}
	if f.Body != nil {
		// Written once per version: a phone fetching what it has costs nothing here.
		if _, err := tx.exec(`INSERT INTO fetched_configs (phone_id, version, body, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (phone_id) DO UPDATE SET version = excluded.version, body = excluded.body, at = excluded.at
			WHERE fetched_configs.version != excluded.version`, id, f.Version, f.Body, tx.now); err != nil {
			return false, err
		}
	}
	return withSecret && open, nil
}

// RefreshVersions recomputes the config versions of phones (every phone
// when macs is empty), e.g. after a template override changed the files.
func (s *SyncService) RefreshVersions(ctx context.Context, macs []string) error {
	return s.db.update(ctx, func(tx *Tx) error {
		// Recorded when a phone's config moved (a template changed).
		tx.auditChanges("templates.refresh", "phone config templates", nil).ifPhones = true
		if len(macs) == 0 {
			return tx.touchQuery(`SELECT id FROM phones`)
		}
		for _, m := range macs {
			mac, err := appliance.ParseMAC(m)
			if err != nil {
				return err
			}
			if err := tx.touchQuery(`SELECT id FROM phones WHERE mac = ?`, mac); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecordNotify notes a trigger's outcome.
func (s *SyncService) RecordNotify(ctx context.Context, n appliance.NotifyResult) error {
	mac, err := appliance.ParseMAC(n.MAC)
	if err != nil {
		return err
	}
	via := n.Via
	if via == "" {
		via = appliance.TriggerNotify
	}
	return s.db.batch.do(ctx, func(tx *Tx) error {
		var id int64
		var state, config, fetched string
		var confirms bool
		err := tx.QueryRowContext(tx.ctx, `SELECT id, state, config_version, fetched_version, confirms FROM phones WHERE mac = ?`, mac).
			Scan(&id, &state, &config, &fetched, &confirms)
		if err == sql.ErrNoRows {
			return appliance.Errorf(appliance.ENOTFOUND, "mac", "no phone %s", appliance.FormatMAC(mac))
		} else if err != nil {
			return err
		}
		// Only a phone still waiting for this version moves: not one that
		// has meanwhile fetched it (the fetch can be recorded before the
		// answer), nor one that changed again.
		waiting := state != appliance.SyncSynced && state != appliance.SyncFetched && config == n.Version && fetched != n.Version
		next, setDue, due, outcome := state, false, sql.NullInt64{}, ""
		keepOutcome := true
		switch {
		case n.Status >= 200 && n.Status < 300:
			if waiting {
				next = appliance.SyncNotified
				if confirms {
					// A phone that reports must fetch within the timeout.
					setDue, due = true, sql.NullInt64{Int64: tx.now + tx.db.ReportTimeout.Milliseconds(), Valid: true}
				}
			}
			keepOutcome = false // answered: whatever happened before, this try got through
		case n.Status == 0 && n.Reason == "":
			if waiting {
				next, setDue = appliance.SyncUnreachable, true
				outcome, keepOutcome = appliance.SyncUnreachable, false
			}
		}
		if _, err := tx.exec(`UPDATE phones SET state = ?, report_due = CASE WHEN ? THEN ? ELSE report_due END,
			last_notify_at = ?, last_notify_result = ? WHERE id = ?`,
			next, setDue, due, tx.now, clip(n.Text(), 128), id); err != nil {
			return err
		}
		set, args := `triggered_at = ?, trigger = ?`, []any{tx.now, clip(via+": "+n.Text(), 128)}
		if !keepOutcome {
			set, args = set+`, outcome = ?`, append(args, outcome)
		}
		return tx.changeStep(id, n.Version, set, args...)
	})
}

// LearnAddress records a phone's SIP address.
func (s *SyncService) LearnAddress(ctx context.Context, macIn, addr, source string) error {
	mac, err := appliance.ParseMAC(macIn)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || net.ParseIP(host) == nil || perr != nil || n < 1 || n > 65535 {
		return appliance.Errorf(appliance.EINVALID, "addr", "%q is not ip:port", addr)
	}
	var waiting bool
	err = s.db.update(ctx, func(tx *Tx) error {
		var old, state string
		var fetched bool
		if err := tx.QueryRowContext(ctx, `SELECT sip_address, state, last_fetch_at IS NOT NULL FROM phones WHERE mac = ?`, mac).Scan(&old, &state, &fetched); err != nil {
			return appliance.Errorf(appliance.ENOTFOUND, "mac", "no phone %s", appliance.FormatMAC(mac))
		}
		// PnP is unauthenticated UDP: it may teach a new phone where it
		// is, never move one that has fetched its config (SPEC §6).
		if old == addr || (source == "pnp" && fetched) {
			return nil
		}
		waiting = state == appliance.SyncPending || state == appliance.SyncUnreachable
		_, err := tx.exec(`UPDATE phones SET sip_address = ? WHERE mac = ?`, addr, mac)
		return err
	})
	if err != nil {
		return err
	}
	if waiting && s.db.Events != nil {
		s.db.Events.Publish(appliance.Event{Type: appliance.EventAddressLearned, MACs: []string{mac}})
	}
	s.db.Logger.Debug("sip address learned", "mac", mac, "addr", addr, "source", source)
	return nil
}

// PendingPhones lists phones that have fetched before, hold an older
// config than their current one (pending, notified, unreachable, stuck)
// and whose address is known.
func (s *SyncService) PendingPhones(ctx context.Context) ([]string, error) {
	var out []string
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT mac FROM phones
			WHERE fetched_version != config_version AND last_fetch_at IS NOT NULL AND sip_address != '' ORDER BY mac`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}
