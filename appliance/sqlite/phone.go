package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// PhoneService implements appliance.PhoneService.
type PhoneService struct{ db *DB }

var _ appliance.PhoneService = (*PhoneService)(nil)

const phoneCols = `id, mac, name, description, location_id, manufacturer, model, expansion_modules, state, config_version, fetched_version,
	last_fetch_at, last_fetch_ip, last_fetch_ua, last_notify_at, last_notify_result, sip_address, problems, secret, prev_secret, claim_until,
	token, prev_token, confirms, applied_at, last_report_at, (SELECT count(*) FROM layout l WHERE l.phone_id = phones.id)`

func findPhones(ctx context.Context, q querier, where string, args ...any) ([]*appliance.Phone, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+phoneCols+` FROM phones `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*appliance.Phone{}
	for rows.Next() {
		var p appliance.Phone
		var loc, fetchAt, notifyAt, claimUntil, appliedAt, reportAt sql.NullInt64
		var problems string
		s := &p.Sync
		if err := rows.Scan(&p.ID, &p.MAC, &p.Name, &p.Description, &loc, &p.Manufacturer, &p.Model, &p.ExpansionModules, &s.State, &s.ConfigVersion,
			&s.FetchedVersion, &fetchAt, &s.LastFetchIP, &s.LastFetchUA, &notifyAt, &s.LastNotifyResult, &s.SIPAddress, &problems,
			&p.Secret, &p.PrevSecret, &claimUntil, &p.Token, &p.PrevToken, &s.Confirms, &appliedAt, &reportAt, &p.LineKeys); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(problems), &s.Problems); err != nil || s.Problems == nil {
			s.Problems = []string{}
		}
		if loc.Valid {
			p.LocationID = &loc.Int64
		}
		s.LastFetchAt, s.LastNotifyAt, s.ClaimOpenUntil = msToTime(fetchAt), msToTime(notifyAt), msToTime(claimUntil)
		s.AppliedAt, s.LastReportAt = msToTime(appliedAt), msToTime(reportAt)
		s.Registration = map[string]appliance.Registration{}
		out = append(out, &p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, loadRegistrations(ctx, q, out)
}

// loadRegistrations fills in the phones' reported registrations: by phone
// for one phone, in one pass over the table for a list.
func loadRegistrations(ctx context.Context, q querier, phones []*appliance.Phone) error {
	if len(phones) == 0 {
		return nil
	}
	byID := make(map[int64]*appliance.Phone, len(phones))
	for _, p := range phones {
		byID[p.ID] = p
	}
	query, args := `SELECT phone_id, account, state, at FROM phone_registrations`, []any{}
	if len(phones) == 1 {
		query, args = query+` WHERE phone_id = ?`, []any{phones[0].ID}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, at int64
		var account int
		var state string
		if err := rows.Scan(&id, &account, &state, &at); err != nil {
			return err
		}
		if p := byID[id]; p != nil {
			t := time.UnixMilli(at).UTC()
			p.Sync.Registration[strconv.Itoa(account)] = appliance.Registration{State: state, At: &t}
		}
	}
	return rows.Err()
}

// findPhone takes a MAC in any accepted notation.
func findPhone(ctx context.Context, q querier, mac string) (*appliance.Phone, error) {
	m, err := appliance.ParseMAC(mac)
	if err != nil {
		return nil, err
	}
	list, err := findPhones(ctx, q, `WHERE mac = ?`, m)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "mac", "no phone %s", appliance.FormatMAC(m))
	}
	return list[0], nil
}

// FindPhones lists phones by name.
func (s *PhoneService) FindPhones(ctx context.Context, f appliance.PhoneFilter) (out []*appliance.Phone, err error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	where, args := "", []any{}
	if q := strings.TrimSpace(f.Q); q != "" {
		like := containing(q)
		where = `WHERE name LIKE ? ESCAPE '\' OR description LIKE ? ESCAPE '\' OR mac LIKE ? ESCAPE '\' OR model LIKE ? ESCAPE '\'`
		args = append(args, like, like, like, like)
		if m, err := appliance.ParseMAC(q); err == nil {
			where += ` OR mac = ?`
			args = append(args, m)
		}
	}
	err = s.db.view(ctx, func(q querier) error {
		out, err = findPhones(ctx, q, where+` ORDER BY name, mac`, args...)
		return err
	})
	return out, err
}

// FindPhone returns one phone.
func (s *PhoneService) FindPhone(ctx context.Context, mac string) (out *appliance.Phone, err error) {
	err = s.db.view(ctx, func(q querier) error {
		out, err = findPhone(ctx, q, mac)
		return err
	})
	return out, err
}

// CreatePhone creates a phone, with extension's account key at positions 1
// and 2 when extension is set (position 1 only on a model without line
// keys: there positions are accounts).
func (s *PhoneService) CreatePhone(ctx context.Context, in *appliance.Phone, extension string) (out *appliance.Phone, err error) {
	err = s.db.update(ctx, func(tx *Tx) error {
		out, err = s.createInTx(tx, in, extension)
		if err == nil {
			err = tx.auditPhone("phone.create", nil, out)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.FindPhone(ctx, out.MAC)
}

func (s *PhoneService) createInTx(tx *Tx, in *appliance.Phone, extension string) (*appliance.Phone, error) {
	p, m, err := tx.createPhone(in)
	if err != nil {
		return nil, err
	}
	if extension = strings.TrimSpace(extension); extension != "" {
		e, err := findExtension(tx.ctx, tx, `WHERE e.number = ?`, extension)
		if appliance.ErrorCode(err) == appliance.ENOTFOUND {
			return nil, appliance.Errorf(appliance.EINVALID, "extension", "no extension %q; create it first", extension)
		} else if err != nil {
			return nil, err
		}
		layout := []appliance.LayoutEntry{{Position: 1, KeyID: e.AccountKey}, {Position: 2, KeyID: e.AccountKey}}
		if m.LineKeys < 2 {
			// A phone without line keys takes its extension as account 1 (a
			// DECT base); one with one key, once.
			layout = layout[:1]
		}
		if _, err := tx.replaceLayout(p, layout); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (tx *Tx) createPhone(in *appliance.Phone) (*appliance.Phone, appliance.Model, error) {
	p := *in
	p.Sync = appliance.SyncStatus{State: appliance.SyncNew}
	m, err := p.Normalize(tx.db.Catalog)
	if err != nil {
		return nil, m, err
	}
	if err := tx.checkLocation(p.LocationID); err != nil {
		return nil, m, err
	}
	p.Secret, p.Token = newSecret(), newToken()
	claim := tx.claimUntil()
	res, err := tx.exec(`INSERT INTO phones (mac, name, description, location_id, manufacturer, model, expansion_modules, state, created_at, updated_at, secret, claim_until, token)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?)`, p.MAC, p.Name, p.Description, p.LocationID, p.Manufacturer, p.Model, p.ExpansionModules, tx.now, tx.now, p.Secret, claim, p.Token)
	if isUnique(err) {
		return nil, m, appliance.Errorf(appliance.ECONFLICT, "mac", "phone %s already exists", appliance.FormatMAC(p.MAC))
	} else if err != nil {
		return nil, m, fmt.Errorf("insert phone: %w", err)
	}
	p.ID, _ = res.LastInsertId()
	tx.touch(p.ID)
	// A phone provisioned now is no longer merely discovered.
	if _, err := tx.exec(`DELETE FROM discovered WHERE mac = ?`, p.MAC); err != nil {
		return nil, m, err
	}
	return &p, m, nil
}

func (tx *Tx) checkLocation(id *int64) error {
	if id == nil {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(tx.ctx, `SELECT count(*) FROM locations WHERE id = ?`, *id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return appliance.Errorf(appliance.EINVALID, "location_id", "no location with id %d", *id)
	}
	return nil
}

// UpdatePhone changes a phone. A model change must still fit its layout.
func (s *PhoneService) UpdatePhone(ctx context.Context, mac string, upd appliance.PhoneUpdate) (out *appliance.Phone, err error) {
	err = s.db.update(ctx, func(tx *Tx) error {
		before, err := tx.phoneSnapshot(mac)
		if err != nil {
			return err
		}
		out, err = tx.updatePhone(mac, upd)
		if err == nil {
			err = tx.auditPhone("phone.update", before, out)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.FindPhone(ctx, out.MAC)
}

func (tx *Tx) updatePhone(mac string, upd appliance.PhoneUpdate) (*appliance.Phone, error) {
	p, err := findPhone(tx.ctx, tx, mac)
	if err != nil {
		return nil, err
	}
	if upd.Name != nil && strings.TrimSpace(*upd.Name) == "" {
		p.Name = "" // a blank name becomes the (possibly new) MAC
	}
	upd.Apply(p)
	m, err := p.Normalize(tx.db.Catalog)
	if err != nil {
		return nil, err
	}
	if err := tx.checkLocation(p.LocationID); err != nil {
		return nil, err
	}
	layout, err := loadLayout(tx.ctx, tx, p.ID)
	if err != nil {
		return nil, err
	}
	if upd.Layout != nil {
		layout = nil // replaced below, once the phone row says the new model
	}
	if err := tx.validateLayout(m, p.ExpansionModules, layout); err != nil {
		field := "model"
		if upd.ExpansionModules != nil && (upd.Model == nil || *upd.Model == m.Name) {
			field = "expansion_modules"
		}
		with := ""
		switch p.ExpansionModules {
		case 0:
		case 1:
			with = " with 1 expansion module"
		default:
			with = fmt.Sprintf(" with %d expansion modules", p.ExpansionModules)
		}
		return nil, appliance.Errorf(appliance.EINVALID, field, "the %s%s does not fit this phone's keys (%s); change the layout first", m.Name, with, appliance.ErrorMessage(err))
	}
	_, err = tx.exec(`UPDATE phones SET mac = ?, name = ?, description = ?, location_id = ?, manufacturer = ?, model = ?, expansion_modules = ?, updated_at = ? WHERE id = ?`,
		p.MAC, p.Name, p.Description, p.LocationID, p.Manufacturer, p.Model, p.ExpansionModules, tx.now, p.ID)
	if isUnique(err) {
		return nil, appliance.Errorf(appliance.ECONFLICT, "mac", "phone %s already exists", appliance.FormatMAC(p.MAC))
	} else if err != nil {
		return nil, fmt.Errorf("update phone: %w", err)
	}
	tx.touch(p.ID)
	if upd.Layout != nil {
		if _, err := tx.replaceLayout(p, *upd.Layout); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// DeletePhone deletes a phone and its layout.
func (s *PhoneService) DeletePhone(ctx context.Context, mac string) error {
	return s.db.update(ctx, func(tx *Tx) error {
		before, err := tx.phoneSnapshot(mac)
		if err != nil {
			return err
		}
		tx.audit("phone.delete", phoneObject(&before.phone), before, nil)
		return tx.deletePhone(mac)
	})
}

func (tx *Tx) deletePhone(mac string) error {
	p, err := findPhone(tx.ctx, tx, mac)
	if err != nil {
		return err
	}
	if _, err = tx.exec(`DELETE FROM phones WHERE id = ?`, p.ID); err != nil {
		return err
	}
	tx.changed = append(tx.changed, p.MAC) // caches of its file must go
	return nil
}

// loadLayout returns a phone's layout with key details, by position.
func loadLayout(ctx context.Context, q querier, phoneID int64) ([]appliance.LayoutEntry, error) {
	layouts, err := loadLayouts(ctx, q, `WHERE l.phone_id = ?`, phoneID)
	if err != nil {
		return nil, err
	}
	if layouts[phoneID] == nil {
		return []appliance.LayoutEntry{}, nil
	}
	return layouts[phoneID], nil
}

// loadLayouts returns the layouts of the phones where selects (on layout
// l), by phone id, each by position.
func loadLayouts(ctx context.Context, q querier, where string, args ...any) (map[int64][]appliance.LayoutEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT l.phone_id, l.module, l.position, k.id, k.type, k.value, k.label FROM layout l JOIN keys k ON k.id = l.key_id
		`+where+` ORDER BY l.phone_id, l.module, l.position`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64][]appliance.LayoutEntry{}
	for rows.Next() {
		var id int64
		var e appliance.LayoutEntry
		if err := rows.Scan(&id, &e.Module, &e.Position, &e.KeyID, &e.Type, &e.Value, &e.Label); err != nil {
			return nil, err
		}
		out[id] = append(out[id], e)
	}
	return out, rows.Err()
}

// FindLayout returns a phone's line keys.
func (s *PhoneService) FindLayout(ctx context.Context, mac string) (out []appliance.LayoutEntry, err error) {
	err = s.db.view(ctx, func(q querier) error {
		p, err := findPhone(ctx, q, mac)
		if err != nil {
			return err
		}
		out, err = loadLayout(ctx, q, p.ID)
		return err
	})
	return out, err
}

// ReplaceLayout replaces a phone's whole layout.
func (s *PhoneService) ReplaceLayout(ctx context.Context, mac string, layout []appliance.LayoutEntry) (out []appliance.LayoutEntry, err error) {
	err = s.db.update(ctx, func(tx *Tx) error {
		p, err := findPhone(ctx, tx, mac)
		if err != nil {
			return err
		}
		before, err := loadLayout(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		out, err = tx.replaceLayout(p, layout)
		if err == nil {
			tx.audit("layout.replace", phoneObject(p), before, out)
		}
		return err
	})
	return out, err
}

func (tx *Tx) validateLayout(m appliance.Model, modules int, layout []appliance.LayoutEntry) error {
	types := map[int64]string{}
	for _, e := range layout {
		if _, ok := types[e.KeyID]; ok {
			continue
		}
		var t string
		err := tx.QueryRowContext(tx.ctx, `SELECT type FROM keys WHERE id = ?`, e.KeyID).Scan(&t)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		types[e.KeyID] = t
	}
	return appliance.ValidateLayout(tx.db.Catalog, m, modules, layout, func(id int64) (string, bool) {
		t := types[id]
		return t, t != ""
	})
}

func (tx *Tx) replaceLayout(p *appliance.Phone, in []appliance.LayoutEntry) ([]appliance.LayoutEntry, error) {
	m, ok := tx.db.Catalog.Lookup(p.Manufacturer, p.Model)
	if !ok {
		return nil, appliance.Errorf(appliance.EINVALID, "model", "%s %s is not supported", p.Manufacturer, p.Model)
	}
	layout := make([]appliance.LayoutEntry, len(in))
	cache := map[string]int64{}
	for i, e := range in {
		layout[i] = appliance.LayoutEntry{Module: e.Module, Position: e.Position, KeyID: e.KeyID}
		if e.KeyID == 0 && e.Type != "" {
			// A key given by type, value and label (typed in the editor, or
			// sent so by the API): the existing one, else created here, in
			// the same transaction as the layout.
			id, err := tx.layoutKey(e, cache)
			var de *appliance.Error
			if errors.As(err, &de) {
				c := *de
				c.Field = fmt.Sprintf("keys[%d].%s", i, strings.TrimPrefix(de.Field, "key_"))
				return nil, &c
			} else if err != nil {
				return nil, err
			}
			layout[i].KeyID = id
		}
	}
	if err := tx.validateLayout(m, p.ExpansionModules, layout); err != nil {
		return nil, err
	}
	if _, err := tx.exec(`DELETE FROM layout WHERE phone_id = ?`, p.ID); err != nil {
		return nil, fmt.Errorf("clear layout: %w", err)
	}
	for _, e := range layout {
		if _, err := tx.exec(`INSERT INTO layout (phone_id, module, position, key_id) VALUES (?, ?, ?, ?)`, p.ID, e.Module, e.Position, e.KeyID); err != nil {
			return nil, fmt.Errorf("insert layout: %w", err)
		}
	}
	if _, err := tx.exec(`UPDATE phones SET updated_at = ? WHERE id = ?`, tx.now, p.ID); err != nil {
		return nil, err
	}
	tx.touch(p.ID)
	return loadLayout(tx.ctx, tx, p.ID)
}

// layoutKey finds, or creates, the key a layout entry names by type,
// value and label (the label defaults to the value; an account key is its
// extension's, by number).
func (tx *Tx) layoutKey(e appliance.LayoutEntry, cache map[string]int64) (int64, error) {
	k := appliance.ImportKey{Type: strings.ToLower(strings.TrimSpace(e.Type)), Value: strings.TrimSpace(e.Value), Label: strings.TrimSpace(e.Label)}
	if k.Label == "" {
		k.Label = k.Value
	}
	if err := appliance.ValidateKeyValue(k.Type, k.Value); err != nil {
		return 0, err
	}
	return tx.importKey(k, cache, &appliance.ImportResult{})
}

// PhoneConfig gathers what a phone's files depend on.
func (s *PhoneService) PhoneConfig(ctx context.Context, mac string) (out *appliance.PhoneConfig, err error) {
	err = s.db.view(ctx, func(q querier) error {
		p, err := findPhone(ctx, q, mac)
		if err != nil {
			return err
		}
		out, err = phoneConfig(ctx, q, s.db.Catalog, p.ID, s.db.Settings())
		return err
	})
	return out, err
}

// phoneConfig builds the config inputs of phone id.
func phoneConfig(ctx context.Context, q querier, catalog *appliance.Catalog, id int64, settings appliance.Settings) (*appliance.PhoneConfig, error) {
	cfgs, err := phoneConfigs(ctx, q, catalog, []int64{id}, settings)
	if err != nil {
		return nil, err
	}
	if len(cfgs) == 0 {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "mac", "phone %d not found", id)
	}
	return cfgs[0], nil
}

// phoneConfigs builds the config inputs of the phones ids (those that
// exist, by id) in four queries whatever their number: a change to a key
// on 1,000 phones reads them at once, not phone by phone.
func phoneConfigs(ctx context.Context, q querier, catalog *appliance.Catalog, ids []int64, settings appliance.Settings) ([]*appliance.PhoneConfig, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	const in = `IN (SELECT value FROM json_each(?))`
	phones, err := findPhones(ctx, q, `WHERE id `+in+` ORDER BY id`, string(list))
	if err != nil {
		return nil, err
	}
	layouts, err := loadLayouts(ctx, q, `WHERE l.phone_id `+in, string(list))
	if err != nil {
		return nil, err
	}
	exts, err := findExtensions(ctx, q, `WHERE k.id IN (SELECT key_id FROM layout WHERE phone_id `+in+`)`, string(list))
	if err != nil {
		return nil, err
	}
	byKey := map[int64]*appliance.Extension{}
	for _, e := range exts {
		byKey[e.AccountKey] = e
	}
	ext := func(k int64) *appliance.Extension { return byKey[k] }
	locations := map[int64]*appliance.Location{}
	out := make([]*appliance.PhoneConfig, 0, len(phones))
	for _, ph := range phones {
		p := *ph
		stored := p.Sync.ConfigVersion
		p.Sync = appliance.SyncStatus{}
		cfg := &appliance.PhoneConfig{Phone: p, Settings: settings, Secret: p.Secret, StoredVersion: stored}
		cfg.Model, _ = catalog.Lookup(p.Manufacturer, p.Model)
		if p.ExpansionModules > 0 {
			cfg.Module, _ = catalog.ModuleOf(cfg.Model)
		}
		if id := p.LocationID; id != nil {
			if locations[*id] == nil {
				if locations[*id], err = findLocation(ctx, q, *id); err != nil {
					return nil, err
				}
			}
			cfg.Location = locations[*id]
		}
		layout := layouts[p.ID]
		if layout == nil {
			layout = []appliance.LayoutEntry{}
		}
		cfg.Accounts, cfg.LineKeys = appliance.BuildAccounts(layout, ext)
		out = append(out, cfg)
	}
	return out, nil
}

// newSecret returns a new provisioning secret: 24 characters without
// look-alikes (about 140 bits), so an admin can read it off the screen and
// type it into a phone's web page.
func newSecret() string { return appliance.GeneratePassword(24) }

// newToken returns a new report token: 128 random bits, URL-safe.
func newToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// claimUntil is when a claim window opened now closes (Unix ms).
func (tx *Tx) claimUntil() int64 {
	w := tx.db.Settings().ClaimWindow
	if w <= 0 {
		w = appliance.DefaultClaimWindow
	}
	return tx.now + w.Milliseconds()
}

// RotateSecret gives the phone a new secret and report token. The ones the
// phone holds stay valid (prev_secret, prev_token) until it fetches with
// the new secret: if it was rotated before and the phone never fetched with
// that one, the older ones stay.
func (s *PhoneService) RotateSecret(ctx context.Context, mac string) (*appliance.Phone, error) {
	var out *appliance.Phone
	err := s.db.update(ctx, func(tx *Tx) error {
		p, err := findPhone(tx.ctx, tx, mac)
		if err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE phones SET prev_secret = CASE WHEN prev_secret = '' THEN secret ELSE prev_secret END,
			prev_token = CASE WHEN prev_token = '' THEN token ELSE prev_token END,
			secret = ?, token = ?, updated_at = ? WHERE id = ?`, newSecret(), newToken(), tx.now, p.ID); err != nil {
			return err
		}
		tx.auditChanges("phone.rotate_secret", phoneObject(p), []appliance.AuditChange{secretChange("secret"), secretChange("report_token")})
		tx.touch(p.ID)
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.FindPhone(ctx, out.MAC)
}

// OpenClaim opens the phone's claim window for Settings.ClaimWindow from
// now, and tells the file servers (EventAccessChanged).
func (s *PhoneService) OpenClaim(ctx context.Context, mac string) (*appliance.Phone, error) {
	var out *appliance.Phone
	err := s.db.update(ctx, func(tx *Tx) error {
		p, err := findPhone(tx.ctx, tx, mac)
		if err != nil {
			return err
		}
		out = p
		tx.auditChanges("phone.open_claim", phoneObject(p), []appliance.AuditChange{tx.claimChange(p, tx.claimUntil())})
		_, err = tx.exec(`UPDATE phones SET claim_until = ? WHERE id = ?`, tx.claimUntil(), p.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s.db.Events != nil {
		s.db.Events.Publish(appliance.Event{Type: appliance.EventAccessChanged, MACs: []string{out.MAC}})
	}
	return s.FindPhone(ctx, out.MAC)
}
