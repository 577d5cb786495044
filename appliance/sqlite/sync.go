package sqlite

import (
	"context"
	"database/sql"
	"net"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// keepChanges is how many changes a phone's timeline keeps.
const keepChanges = 5

// addChange starts the timeline of a phone's new config version.
func (tx *Tx) addChange(id int64, version string) error {
	if _, err := tx.exec(`INSERT INTO phone_changes (phone_id, version, changed_at) VALUES (?, ?, ?)`, id, version, tx.now); err != nil {
		return err
	}
	_, err := tx.exec(`DELETE FROM phone_changes WHERE phone_id = ? AND id <= (
		SELECT id FROM phone_changes WHERE phone_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`, id, id, keepChanges)
	return err
}

// changeStep sets columns (set, with args) of the newest change of the
// phone to version: a step of its timeline.
func (tx *Tx) changeStep(id int64, version, set string, args ...any) error {
	_, err := tx.exec(`UPDATE phone_changes SET `+set+` WHERE id = (
		SELECT max(id) FROM phone_changes WHERE phone_id = ? AND version = ?)`, append(args, id, version)...)
	return err
}

// RecordReport takes a phone's report. It is group-committed with the
// fetch and trigger records: a bulk change brings 1,000 of each at once.
func (s *SyncService) RecordReport(ctx context.Context, r appliance.Report) error {
	notFound := appliance.Errorf(appliance.ENOTFOUND, "token", "no phone reports with this token")
	known := false
	for _, e := range appliance.ReportEvents {
		known = known || e == r.Event
	}
	if !known || r.Token == "" || len(r.Token) > 64 {
		return notFound
	}
	// A read first: a flood of made-up tokens costs the writer nothing.
	var holders int
	if err := s.db.r.QueryRowContext(ctx, `SELECT count(*) FROM phones WHERE token = ? OR prev_token = ? AND prev_token != ''`,
		r.Token, r.Token).Scan(&holders); err != nil {
		return err
	} else if holders == 0 {
		return notFound
	}
	var mac string
	var learned bool
	err := s.db.batch.do(ctx, func(tx *Tx) error {
		var id int64
		var config, fetched, state, addr string
		var fetchedAt sql.NullInt64
		err := tx.QueryRowContext(tx.ctx, `SELECT id, mac, config_version, fetched_version, last_fetch_at, state, sip_address FROM phones
			WHERE token = ? OR prev_token = ? AND prev_token != ''`, r.Token, r.Token).Scan(&id, &mac, &config, &fetched, &fetchedAt, &state, &addr)
		if err == sql.ErrNoRows {
			return notFound
		} else if err != nil {
			return err
		}
		if r.MAC != "" {
			if m, err := appliance.ParseMAC(r.MAC); err != nil || m != mac {
				return notFound // the same answer as a wrong token: a report tells nothing
			}
		}
		// Every report teaches that the phone reports. Its address only
		// while it has never fetched: the token is weaker than the secret
		// (an action URL can be seen in a log or on plain HTTP), and a
		// provisioned phone's address moves only with an authenticated
		// fetch, its lease or (never fetched) PnP — else whoever holds the
		// token could send its triggers, and with the Action URI the
		// phones' admin password, anywhere.
		set, args := `confirms = 1, last_report_at = ?`, []any{tx.now}
		if ip := net.ParseIP(r.IP); ip != nil && !fetchedAt.Valid {
			prefix := net.JoinHostPort(ip.String(), "")
			if !strings.HasPrefix(addr, prefix) {
				set += `, sip_address = ?`
				args = append(args, sipAddress(ip.String(), tx.db.Settings().PhoneSIPPort))
				learned = state == appliance.SyncPending || state == appliance.SyncUnreachable
			}
		}
		// A report that the phone acted on a file — provisioning finished,
		// or an account (re)registered, failed or went — after it fetched
		// the current version makes it synced. One from a round that got
		// an older file (or none) moves nothing; an IP change proves no
		// file was applied.
		if r.Event != appliance.ReportIPChanged && fetchedAt.Valid && fetched == config {
			set += `, state = 'synced', applied_at = ?, report_due = NULL`
			args = append(args, tx.now)
			if err := tx.changeStep(id, config, `applied_at = COALESCE(applied_at, ?), outcome = ''`, tx.now); err != nil {
				return err
			}
			if err := tx.auditConfirmed(id, config); err != nil {
				return err
			}
		}
		switch r.Event {
		case appliance.ReportRegistered, appliance.ReportRegisterFail, appliance.ReportUnregistered:
			if err := tx.recordRegistration(id, fetched, r); err != nil {
				return err
			}
		}
		_, err = tx.exec(`UPDATE phones SET `+set+` WHERE id = ?`, append(args, id)...)
		return err
	})
	if err != nil {
		return err
	}
	if learned && s.db.Events != nil {
		s.db.Events.Publish(appliance.Event{Type: appliance.EventAddressLearned, MACs: []string{mac}})
	}
	return nil
}

// recordRegistration sets the registration of the account whose SIP user
// name (or auth name) the report carries; a phone with one account may
// leave the user out. A user the phone has no account for changes nothing.
// The timeline step goes to version, the one the phone fetched (what it
// registers with).
func (tx *Tx) recordRegistration(id int64, version string, r appliance.Report) error {
	cfg, err := phoneConfig(tx.ctx, tx, tx.db.Catalog, id, tx.db.Settings())
	if err != nil {
		return err
	}
	account := 0
	for _, a := range cfg.Accounts {
		if r.User != "" && (r.User == a.Extension.Number || r.User == a.Extension.AuthUser) {
			account = a.Index
			break
		}
	}
	if account == 0 && r.User == "" && len(cfg.Accounts) == 1 {
		account = 1
	}
	if account == 0 {
		return nil
	}
	state := appliance.RegUnknown
	switch r.Event {
	case appliance.ReportRegistered:
		state = appliance.RegRegistered
		if err := tx.changeStep(id, version, `registered_at = ?`, tx.now); err != nil {
			return err
		}
	case appliance.ReportRegisterFail:
		state = appliance.RegFailed
	}
	_, err = tx.exec(`INSERT INTO phone_registrations (phone_id, account, state, at) VALUES (?, ?, ?, ?)
		ON CONFLICT (phone_id, account) DO UPDATE SET state = excluded.state, at = excluded.at`, id, account, state, tx.now)
	return err
}

// MarkStuck makes overdue phones stuck.
func (s *SyncService) MarkStuck(ctx context.Context) ([]string, error) {
	var macs []string
	err := s.db.update(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(tx.ctx, `UPDATE phones SET state = 'stuck', report_due = NULL
			WHERE report_due IS NOT NULL AND report_due <= ? AND state IN ('notified', 'fetched') RETURNING id, mac, config_version`, tx.now)
		if err != nil {
			return err
		}
		type stuck struct {
			id      int64
			version string
		}
		var list []stuck
		for rows.Next() {
			var st stuck
			var mac string
			if err := rows.Scan(&st.id, &mac, &st.version); err != nil {
				rows.Close()
				return err
			}
			list = append(list, st)
			macs = append(macs, mac)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, st := range list {
			if err := tx.changeStep(st.id, st.version, `outcome = 'stuck'`); err != nil {
				return err
			}
		}
		// A deadline left on a phone that moved on (synced, changed
		// again, unreachable) is no longer awaited.
		_, err = tx.exec(`UPDATE phones SET report_due = NULL WHERE report_due IS NOT NULL AND report_due <= ?`, tx.now)
		return err
	})
	if err == nil && len(macs) > 0 && s.db.Events != nil {
		s.db.Events.Publish(appliance.Event{Type: appliance.EventStuck, MACs: macs})
	}
	return macs, err
}

// Timeline lists the phone's last changes, newest first.
func (s *SyncService) Timeline(ctx context.Context, macIn string) ([]appliance.Change, error) {
	out := []appliance.Change{}
	err := s.db.view(ctx, func(q querier) error {
		p, err := findPhone(ctx, q, macIn)
		if err != nil {
			return err
		}
		rows, err := q.QueryContext(ctx, `SELECT version, changed_at, triggered_at, trigger, fetched_at, applied_at, registered_at, outcome
			FROM phone_changes WHERE phone_id = ? ORDER BY id DESC LIMIT ?`, p.ID, keepChanges)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c appliance.Change
			var changed int64
			var triggered, fetched, applied, registered sql.NullInt64
			if err := rows.Scan(&c.Version, &changed, &triggered, &c.Trigger, &fetched, &applied, &registered, &c.Outcome); err != nil {
				return err
			}
			c.ChangedAt = time.UnixMilli(changed).UTC()
			c.TriggeredAt, c.FetchedAt, c.AppliedAt, c.RegisteredAt = msToTime(triggered), msToTime(fetched), msToTime(applied), msToTime(registered)
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// CountStates counts phones per sync state; every state is present.
func (s *SyncService) CountStates(ctx context.Context) (map[string]int, error) {
	out := make(map[string]int, len(appliance.SyncStates))
	for _, st := range appliance.SyncStates {
		out[st] = 0
	}
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT state, count(*) FROM phones GROUP BY state`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				return err
			}
			out[st] = n
		}
		return rows.Err()
	})
	return out, err
}

// Target reads what the sync loop needs of one phone: one indexed row and
// its first account key's extension.
func (s *SyncService) Target(ctx context.Context, macIn string) (*appliance.SyncTarget, error) {
	mac, err := appliance.ParseMAC(macIn)
	if err != nil {
		return nil, err
	}
	var t appliance.SyncTarget
	// One statement: no read transaction needed.
	err = s.db.r.QueryRowContext(ctx, `SELECT p.mac, p.config_version, p.fetched_version, p.sip_address, p.last_fetch_at IS NOT NULL,
			COALESCE((SELECT e.number FROM layout l JOIN keys k ON k.id = l.key_id JOIN extensions e ON e.id = k.extension_id
				WHERE l.phone_id = p.id AND k.type = 'account' ORDER BY l.module, l.position LIMIT 1), '')
			FROM phones p WHERE p.mac = ?`, mac).Scan(&t.MAC, &t.ConfigVersion, &t.FetchedVersion, &t.SIPAddress, &t.HasFetched, &t.User)
	if err == sql.ErrNoRows {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "mac", "no phone %s", appliance.FormatMAC(mac))
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// FetchedConfig returns the file the phone last fetched, nil if none.
func (s *SyncService) FetchedConfig(ctx context.Context, macIn string) (out *appliance.FetchedConfig, err error) {
	err = s.db.view(ctx, func(q querier) error {
		p, err := findPhone(ctx, q, macIn)
		if err != nil {
			return err
		}
		var fc appliance.FetchedConfig
		var at int64
		err = q.QueryRowContext(ctx, `SELECT version, body, at FROM fetched_configs WHERE phone_id = ?`, p.ID).Scan(&fc.Version, &fc.Body, &at)
		if err == sql.ErrNoRows {
			return nil
		} else if err != nil {
			return err
		}
		fc.At = time.UnixMilli(at).UTC()
		out = &fc
		return nil
	})
	return out, err
}
