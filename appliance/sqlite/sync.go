package sqlite

import (
	"context"
	"database/sql"
	"net"
	"strconv"
	"time"

	"github.com/provbox/provbox/appliance"
)

// SyncService implements appliance.SyncService on the store: it checks the
// phones exist and publishes EventResync for the sync loop.
type SyncService struct{ db *DB }

var _ appliance.SyncService = (*SyncService)(nil)

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
	err := s.db.batch.do(ctx, func(tx *Tx) (err error) {
		mac, learned, err = tx.recordReport(r, notFound)
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

// recordReport applies r to the phone holding its token: it returns its
// MAC, and whether the report taught the address of a phone waiting for a
// trigger. notFound is the answer for a token or MAC that does not match.
func (tx *Tx) recordReport(r appliance.Report, notFound error) (mac string, learned bool, err error) {
	var id int64
	var config, fetched, state, addr string
	var fetchedAt sql.NullInt64
	err = tx.QueryRowContext(tx.ctx, `SELECT id, mac, config_version, fetched_version, last_fetch_at, state, sip_address FROM phones
		WHERE token = ? OR prev_token = ? AND prev_token != ''`, r.Token, r.Token).Scan(&id, &mac, &config, &fetched, &fetchedAt, &state, &addr)
	if err == sql.ErrNoRows {
		return "", false, notFound
	} else if err != nil {
		return "", false, err
	}
	if r.MAC != "" {
		if m, err := appliance.ParseMAC(r.MAC); err != nil || m != mac {
			return "", false, notFound // the same answer as a wrong token: a report tells nothing
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
		if a := addressAt(ip.String(), "", addr, tx.db.Settings()); a != addr {
			set += `, sip_address = ?`
			args = append(args, a)
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
			return "", false, err
		}
		if err := tx.auditConfirmed(id, config); err != nil {
			return "", false, err
		}
	}
	switch r.Event {
	case appliance.ReportRegistered, appliance.ReportRegisterFail, appliance.ReportUnregistered:
		if err := tx.recordRegistration(id, fetched, r); err != nil {
			return "", false, err
		}
	}
	_, err = tx.exec(`UPDATE phones SET `+set+` WHERE id = ?`, append(args, id)...)
	return mac, learned, err
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
	err = s.db.r.QueryRowContext(ctx, `SELECT p.mac, p.config_version, p.fetched_version, p.sip_address, p.last_fetch_at IS NOT NULL, p.state,
			COALESCE((SELECT e.number FROM layout l JOIN keys k ON k.id = l.key_id JOIN extensions e ON e.id = k.extension_id
				WHERE l.phone_id = p.id AND k.type = 'account' ORDER BY l.module, l.position LIMIT 1), '')
			FROM phones p WHERE p.mac = ?`, mac).Scan(&t.MAC, &t.ConfigVersion, &t.FetchedVersion, &t.SIPAddress, &t.HasFetched, &t.State, &t.User)
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

// ConsumeClaim closes an open claim window; true when it was open.
func (s *SyncService) ConsumeClaim(ctx context.Context, macIn string) (bool, error) {
	mac, err := appliance.ParseMAC(macIn)
	if err != nil {
		return false, err
	}
	var ok bool
	// Group-committed with the fetch records (a burst of first boots costs
	// one fsync per batch); it returns once committed.
	err = s.db.batch.do(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE phones SET claim_until = NULL WHERE mac = ? AND claim_until > ?`, mac, tx.now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	if err != nil {
		return false, err
	}
	if ok && s.db.Events != nil {
		s.db.Events.Publish(appliance.Event{Type: appliance.EventAccessChanged, MACs: []string{mac}})
	}
	return ok, nil
}

// Resync asks the sync loop to notify the phones now (all when macs is
// empty: every phone that has fetched its config before). A named phone
// that never fetched is refused (ECONFLICT) and nothing is sent: a factory
// phone reboots on check-sync.
func (s *SyncService) Resync(ctx context.Context, macs []string) error {
	var list []string
	err := s.db.view(ctx, func(q querier) error {
		if len(macs) == 0 {
			phones, err := findPhones(ctx, q, `WHERE last_fetch_at IS NOT NULL ORDER BY mac`)
			for _, p := range phones {
				list = append(list, p.MAC)
			}
			return err
		}
		for _, m := range macs {
			p, err := findPhone(ctx, q, m)
			if err != nil {
				return err
			}
			if !p.Sync.HasFetched() {
				return appliance.Errorf(appliance.ECONFLICT, "mac", "%s has never fetched its config, so no check-sync is sent: "+
					"a phone that was never provisioned reboots on check-sync. It fetches its config by itself when it boots and "+
					"finds provbox (DHCP option 66, plug-and-play, or the URL typed into the phone)", p.Title())
			}
			list = append(list, p.MAC)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(list) > 0 {
		// The audit trail must not stand between an admin and a resync
		// (it is the way out of many troubles, a full disk among them).
		if err := s.db.auditResync(ctx, list, len(macs) == 0); err != nil {
			s.db.Logger.Error("audit resync", "err", err)
		}
	}
	if s.db.Events != nil && len(list) > 0 {
		s.db.Events.Publish(appliance.Event{Type: appliance.EventResync, MACs: list})
	}
	return nil
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
		addr, prefix = tx.db.Settings().PhoneSIPAddress(f.IP), net.JoinHostPort(f.IP, "")
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

// Sighted takes a phone seen on the network. One statement reads what
// the decision needs (the phone, or for an unknown MAC its Discovered row
// and its source's recent new rows), on the readers first: a known phone
// that teaches nothing new (most sightings: leases renewed, boot files
// fetched) costs that one read and no writer. Otherwise the decision is
// made again inside a group-committed write (a burst of leases or
// SUBSCRIBEs costs one fsync per batch).
func (s *SyncService) Sighted(ctx context.Context, g appliance.Sighting) error {
	if err := validSighting(&g); err != nil {
		return err
	}
	var seen sighting
	if err := seen.read(ctx, s.db.r, g, s.db.Now()); err != nil {
		return err
	}
	if seen.known() && seen.teaches(g, s.db.Settings()) == "" {
		return nil
	}
	var learned string
	var waiting bool
	err := s.db.batch.do(ctx, func(tx *Tx) error {
		if err := seen.read(tx.ctx, tx, g, time.UnixMilli(tx.now)); err != nil {
			return err
		}
		if !seen.known() {
			return tx.recordDiscovered(g, seen.listed > 0, seen.recent)
		}
		if learned = seen.teaches(g, tx.db.Settings()); learned == "" {
			return nil
		}
		waiting = seen.state == appliance.SyncPending || seen.state == appliance.SyncUnreachable
		_, err := tx.exec(`UPDATE phones SET sip_address = ? WHERE id = ?`, learned, seen.id.Int64)
		return err
	})
	if err != nil {
		return err
	}
	if learned != "" {
		s.db.Logger.Debug("sip address learned", "mac", g.MAC, "addr", learned, "source", g.Source)
	}
	if waiting && s.db.Events != nil {
		s.db.Events.Publish(appliance.Event{Type: appliance.EventAddressLearned, MACs: []string{g.MAC}})
	}
	return nil
}

// validSighting checks g and canonicalises its MAC and IP.
func validSighting(g *appliance.Sighting) error {
	mac, err := appliance.ParseMAC(g.MAC)
	if err != nil {
		return err
	}
	g.MAC = mac
	switch g.Source {
	case appliance.SourceHTTP, appliance.SourceTFTP, appliance.SourceDHCP, appliance.SourcePnP:
	default:
		return appliance.Errorf(appliance.EINVALID, "source", "%q is not http, tftp, dhcp or pnp", g.Source)
	}
	ip := net.ParseIP(g.IP)
	if ip == nil {
		return appliance.Errorf(appliance.EINVALID, "ip", "%q is not an IP address", g.IP)
	}
	g.IP = ip.String()
	if g.SIPAddr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(g.SIPAddr)
	n, perr := strconv.Atoi(port)
	if err != nil || net.ParseIP(host) == nil || perr != nil || n < 1 || n > 65535 {
		return appliance.Errorf(appliance.EINVALID, "sip_addr", "%q is not ip:port", g.SIPAddr)
	}
	// Anyone can put any Contact in a SUBSCRIBE: only one naming its own
	// source may teach an address (SPEC §6).
	if g.Source == appliance.SourcePnP && !net.ParseIP(host).Equal(ip) {
		return appliance.Errorf(appliance.EINVALID, "sip_addr", "%s is not at the SUBSCRIBE's source address %s", g.SIPAddr, g.IP)
	}
	return nil
}

// sighting is what Sighted decides on: a known phone's row, or for an
// unknown MAC what the Discovered limits need (SPEC §9).
type sighting struct {
	id      sql.NullInt64 // the phone's; NULL: unknown
	old     string        // its SIP address
	state   string
	fetched bool
	listed  int // Discovered rows of the MAC (unknown only)
	recent  int // Discovered rows the source IP brought within a minute (unknown only)
}

func (v *sighting) read(ctx context.Context, q querier, g appliance.Sighting, now time.Time) error {
	return q.QueryRowContext(ctx, `SELECT p.id, COALESCE(p.sip_address, ''), COALESCE(p.state, ''), p.last_fetch_at IS NOT NULL,
			CASE WHEN p.id IS NULL THEN (SELECT count(*) FROM discovered WHERE mac = ?1) ELSE 0 END,
			CASE WHEN p.id IS NULL THEN (SELECT count(*) FROM discovered WHERE ip = ?2 AND first_seen > ?3) ELSE 0 END
		FROM (SELECT 1) LEFT JOIN phones p ON p.mac = ?1`, g.MAC, clip(g.IP, 64), now.Add(-time.Minute).UnixMilli()).
		Scan(&v.id, &v.old, &v.state, &v.fetched, &v.listed, &v.recent)
}

func (v *sighting) known() bool { return v.id.Valid }

// teaches is the new SIP address g teaches the known phone, or "" (none,
// or the one it has).
func (v *sighting) teaches(g appliance.Sighting, set appliance.Settings) string {
	if addr := learnedAddress(g, v.old, v.fetched, set); addr != v.old {
		return addr
	}
	return ""
}

// learnedAddress is the SIP address a sighting teaches a known phone
// whose address is old, or "" when it teaches none (SPEC §6). A file
// request that got no file proves nothing; PnP is unauthenticated UDP: it
// may tell a phone that never fetched where it is, never move one that
// has.
func learnedAddress(g appliance.Sighting, old string, fetched bool, set appliance.Settings) string {
	switch {
	case g.Source == appliance.SourceDHCP:
	case g.Source == appliance.SourcePnP && !fetched:
	default:
		return ""
	}
	return addressAt(g.IP, g.SIPAddr, old, set)
}

// addressAt is where a phone seen at ip takes SIP: sipAddr when the
// sighting told it; else, when its address old is at the same IP, old (a
// port told before stays: a lease, a report or a fetch does not know the
// port); else ip and sip.phone_port. recordFetch does the same in SQL.
func addressAt(ip, sipAddr, old string, set appliance.Settings) string {
	if sipAddr != "" {
		return sipAddr
	}
	if host, _, err := net.SplitHostPort(old); err == nil && host == ip {
		return old
	}
	return set.PhoneSIPAddress(ip)
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
