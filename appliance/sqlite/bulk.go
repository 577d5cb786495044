package sqlite

import (
	"context"
	"errors"

	"github.com/provbox/provbox/appliance"
)

// maxBulk bounds how many phones one bulk action names.
const maxBulk = 5000

func checkBulk(macs []string) error {
	switch {
	case len(macs) == 0:
		return appliance.Errorf(appliance.EINVALID, "macs", "no phone selected")
	case len(macs) > maxBulk:
		return appliance.Errorf(appliance.EINVALID, "macs", "%d phones selected; at most %d at once", len(macs), maxBulk)
	}
	return nil
}

// aboutPhone prefixes a domain error with the phone it concerns, so that a
// bulk action that stops at one phone says which.
func aboutPhone(p *appliance.Phone, mac string, err error) error {
	var de *appliance.Error
	if !errors.As(err, &de) {
		return err
	}
	c := *de
	name := mac
	if p != nil {
		name = p.Title()
	}
	c.Message = name + ": " + de.Message
	return &c
}

// UpdatePhones applies upd to every phone of macs in one transaction.
func (s *PhoneService) UpdatePhones(ctx context.Context, macs []string, upd appliance.PhoneUpdate) ([]*appliance.Phone, error) {
	if err := checkBulk(macs); err != nil {
		return nil, err
	}
	if upd.MAC != nil {
		return nil, appliance.Errorf(appliance.EINVALID, "mac", "a MAC cannot be set on several phones")
	}
	var done []string
	err := s.db.update(ctx, func(tx *Tx) error {
		bulk := tx.bulkAudit("phones.bulk_update")
		for _, mac := range macs {
			u := upd
			if upd.Layout != nil {
				l := append([]appliance.LayoutEntry(nil), (*upd.Layout)...)
				u.Layout = &l
			}
			snap, err := tx.phoneSnapshot(mac)
			if err != nil {
				return aboutPhone(nil, mac, err)
			}
			p, err := tx.updatePhone(mac, u)
			if err != nil {
				before, _ := findPhone(tx.ctx, tx, mac)
				return aboutPhone(before, mac, err)
			}
			if err := bulk.add(snap, p); err != nil {
				return err
			}
			done = append(done, p.MAC)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*appliance.Phone, 0, len(done))
	for _, mac := range done {
		p, err := s.FindPhone(ctx, mac)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// DeletePhones deletes every phone of macs in one transaction.
func (s *PhoneService) DeletePhones(ctx context.Context, macs []string) error {
	if err := checkBulk(macs); err != nil {
		return err
	}
	return s.db.update(ctx, func(tx *Tx) error {
		bulk := tx.bulkAudit("phones.bulk_delete")
		for _, mac := range macs {
			if snap, err := tx.phoneSnapshot(mac); err == nil {
				if err := bulk.add(snap, nil); err != nil {
					return err
				}
			}
			if err := tx.deletePhone(mac); err != nil {
				return aboutPhone(nil, mac, err)
			}
		}
		return nil
	})
}
