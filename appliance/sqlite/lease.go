package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/provbox/provbox/appliance"
)

// LeaseService implements appliance.LeaseService.
type LeaseService struct{ db *DB }

var _ appliance.LeaseService = (*LeaseService)(nil)

// PhoneLeased reports whether ip is bound, unexpired, to a provisioned
// phone's MAC.
func (s *LeaseService) PhoneLeased(ctx context.Context, ip string) (bool, error) {
	var n int
	err := s.db.view(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT count(*) FROM leases l JOIN phones p ON p.mac = l.mac
			WHERE l.ip = ? AND l.state = 'bound' AND l.expires_at > ?`, ip, s.db.Now().UnixMilli()).Scan(&n)
	})
	return n > 0, err
}

// FindLeases lists every stored lease by address.
func (s *LeaseService) FindLeases(ctx context.Context) ([]*appliance.Lease, error) {
	out := []*appliance.Lease{}
	now := s.db.Now()
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT l.ip, l.mac, l.hostname, l.vendor, l.state, l.expires_at, l.updated_at, coalesce(p.name, '')
			FROM leases l LEFT JOIN phones p ON p.mac = l.mac AND l.mac != ''`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l appliance.Lease
			var exp, upd int64
			if err := rows.Scan(&l.IP, &l.MAC, &l.Hostname, &l.Vendor, &l.State, &exp, &upd, &l.Phone); err != nil {
				return err
			}
			l.ExpiresAt, l.UpdatedAt = time.UnixMilli(exp).UTC(), time.UnixMilli(upd).UTC()
			if l.State == appliance.LeaseBound && !l.ExpiresAt.After(now) {
				l.State = appliance.LeaseExpired
			}
			out = append(out, &l)
		}
		return rows.Err()
	})
	sortByIP(out, func(l *appliance.Lease) string { return l.IP })
	return out, err
}

// sortByIP orders by numeric IPv4 address.
func sortByIP[T any](list []T, ip func(T) string) {
	sort.SliceStable(list, func(i, j int) bool {
		return bytes.Compare(net.ParseIP(ip(list[i])).To4(), net.ParseIP(ip(list[j])).To4()) < 0
	})
}

// SaveLeases stores leases durably; concurrent calls share a transaction.
func (s *LeaseService) SaveLeases(ctx context.Context, leases ...*appliance.Lease) error {
	for _, l := range leases {
		if err := appliance.ValidateLease(l); err != nil {
			return err
		}
	}
	if len(leases) == 0 {
		return nil
	}
	// Group-committed with the other small writes (see batcher): a burst
	// of DHCPACKs costs one fsync per batch, and each caller returns only
	// once its leases are committed.
	return s.db.batch.do(ctx, func(tx *Tx) error { return tx.saveLeases(leases) })
}

// saveLeases upserts each lease and reads the name of the phone with its
// MAC in the same statement (one statement per lease: a DHCP burst's
// commit is on the path of every ACK).
func (tx *Tx) saveLeases(leases []*appliance.Lease) error {
	for _, l := range leases {
		err := tx.QueryRowContext(tx.ctx, `INSERT INTO leases (ip, mac, hostname, vendor, state, expires_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, hostname = excluded.hostname, vendor = excluded.vendor,
				state = excluded.state, expires_at = excluded.expires_at, updated_at = excluded.updated_at
			RETURNING coalesce((SELECT name FROM phones WHERE mac = leases.mac AND leases.mac != ''), '')`,
			l.IP, l.MAC, clip(l.Hostname, 64), clip(l.Vendor, 64), l.State, l.ExpiresAt.UnixMilli(), tx.now).Scan(&l.Phone)
		if err != nil {
			return fmt.Errorf("save lease %s: %w", l.IP, err)
		}
		l.UpdatedAt = time.UnixMilli(tx.now).UTC()
	}
	return nil
}

// FindReservations lists reservations by address.
func (s *LeaseService) FindReservations(ctx context.Context) ([]*appliance.Reservation, error) {
	out := []*appliance.Reservation{}
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, `SELECT r.mac, r.ip, coalesce(p.name, '') FROM reservations r LEFT JOIN phones p ON p.mac = r.mac`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r appliance.Reservation
			if err := rows.Scan(&r.MAC, &r.IP, &r.Phone); err != nil {
				return err
			}
			out = append(out, &r)
		}
		return rows.Err()
	})
	sortByIP(out, func(r *appliance.Reservation) string { return r.IP })
	return out, err
}

// SetReservation reserves ip for mac.
func (s *LeaseService) SetReservation(ctx context.Context, mac, ip string) (*appliance.Reservation, error) {
	r, err := appliance.ParseReservation(mac, ip)
	if err != nil {
		return nil, err
	}
	err = s.db.update(ctx, func(tx *Tx) error {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT mac FROM reservations WHERE ip = ? AND mac != ?`, r.IP, r.MAC).Scan(&other)
		if err == nil {
			return appliance.Errorf(appliance.ECONFLICT, "ip", "%s is already reserved for %s", r.IP, appliance.FormatMAC(other))
		} else if err != sql.ErrNoRows {
			return err
		}
		_, err = tx.exec(`INSERT INTO reservations (mac, ip, created_at) VALUES (?, ?, ?) ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip`,
			r.MAC, r.IP, tx.now)
		if err != nil {
			return fmt.Errorf("set reservation: %w", err)
		}
		tx.auditChanges("reservation.set", "reservation for "+appliance.FormatMAC(r.MAC), []appliance.AuditChange{{Field: "ip", After: r.IP}})
		return tx.QueryRowContext(ctx, `SELECT coalesce((SELECT name FROM phones WHERE mac = ?), '')`, r.MAC).Scan(&r.Phone)
	})
	if err != nil {
		return nil, err
	}
	s.db.Events.Publish(appliance.Event{Type: appliance.EventReservationsChanged})
	return r, nil
}

// DeleteReservation drops mac's reservation.
func (s *LeaseService) DeleteReservation(ctx context.Context, macIn string) error {
	mac, err := appliance.ParseMAC(macIn)
	if err != nil {
		return err
	}
	err = s.db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM reservations WHERE mac = ?`, mac)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return appliance.Errorf(appliance.ENOTFOUND, "mac", "no reservation for %s", appliance.FormatMAC(mac))
		}
		tx.auditChanges("reservation.delete", "reservation for "+appliance.FormatMAC(mac), nil)
		return nil
	})
	if err != nil {
		return err
	}
	s.db.Events.Publish(appliance.Event{Type: appliance.EventReservationsChanged})
	return nil
}
