package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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

// recordDiscovered upserts an unknown phone seen on the network. listed
// tells whether its MAC is on the list already; recent is how many new
// rows its source address brought within the last minute: a new MAC past
// DiscoveredPerMinute of them is dropped. Past MaxDiscovered rows, the
// least recently seen go.
func (tx *Tx) recordDiscovered(g appliance.Sighting, listed bool, recent int) error {
	if !listed && recent >= appliance.DiscoveredPerMinute {
		return nil
	}
	if g.Vendor == "" {
		g.Vendor = tx.db.Catalog.VendorByMAC(g.MAC)
	}
	_, err := tx.exec(`INSERT INTO discovered (mac, vendor, model, firmware, ip, source, user_agent, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (mac) DO UPDATE SET
			vendor = CASE WHEN excluded.vendor != '' THEN excluded.vendor ELSE vendor END,
			model = CASE WHEN excluded.model != '' THEN excluded.model ELSE model END,
			firmware = CASE WHEN excluded.firmware != '' THEN excluded.firmware ELSE firmware END,
			user_agent = CASE WHEN excluded.user_agent != '' THEN excluded.user_agent ELSE user_agent END,
			ip = excluded.ip, source = excluded.source, last_seen = excluded.last_seen, seen = seen + 1`,
		g.MAC, clip(g.Vendor, 32), clip(g.Model, 32), clip(g.Firmware, 64), clip(g.IP, 64), clip(g.Source, 8), clip(g.UA, 256), tx.now, tx.now)
	if err != nil {
		return fmt.Errorf("record discovered: %w", err)
	}
	if !listed {
		_, err = tx.exec(`DELETE FROM discovered WHERE mac IN (SELECT mac FROM discovered ORDER BY last_seen, mac
			LIMIT max(0, (SELECT count(*) FROM discovered) - ?))`, tx.db.maxDiscovered())
	}
	return err
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
			if _, err := tx.exec(`UPDATE phones SET sip_address = ? WHERE id = ?`, s.db.Settings().PhoneSIPAddress(d.IP), created.ID); err != nil {
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
