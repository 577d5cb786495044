package dhcpopt

import (
	"context"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/provbox/provbox/appliance"
)

// change is the lease change an answer waits on: the records to store
// before its reply leaves (an ACK) or with no reply (RELEASE, DECLINE).
type change struct {
	recs   []*appliance.Lease
	bound  *lease // the binding an ACK makes; nil for RELEASE and DECLINE
	mac    string // the client, for the sync loop or Discovered once stored
	vendor string
}

// pending is an answer waiting for its change to be committed.
type pending struct {
	req, resp *dhcpv4.DHCPv4 // resp nil: nothing to send
	c         *change
}

// committer group-commits the changes of answers made while the previous
// commit ran: one SaveLeases for all of them (one transaction, one fsync),
// then their replies, from one goroutine. The packet loop never waits on
// the store, and a burst of ACKs wakes one goroutine, not one per client.
type committer struct {
	mu    sync.Mutex
	queue []pending
	wake  chan struct{}
	done  chan struct{}
}

// queue hands p to the committer.
func (s *Server) queue(p pending) {
	s.commits.mu.Lock()
	s.commits.queue = append(s.commits.queue, p)
	s.commits.mu.Unlock()
	select {
	case s.commits.wake <- struct{}{}:
	default:
	}
}

// commitLoop commits what is queued and sends the replies, until stop is
// closed and the queue is empty.
func (s *Server) commitLoop(stop <-chan struct{}) {
	defer close(s.commits.done)
	for {
		select {
		case <-s.commits.wake:
		case <-stop:
			s.commitQueued()
			return
		}
		s.commitQueued()
	}
}

func (s *Server) commitQueued() {
	for {
		s.commits.mu.Lock()
		batch := s.commits.queue
		s.commits.queue = nil
		s.commits.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		if !s.commit(batch) {
			continue
		}
		for _, p := range batch {
			if p.resp != nil {
				s.send(p.req, p.resp)
			}
		}
	}
}

// commit stores the changes of batch in one SaveLeases and reports whether
// they are durable. If not, the bindings are undone (the clients get no ACK
// and ask again) and nothing is sent.
func (s *Server) commit(batch []pending) bool {
	var recs []*appliance.Lease
	for _, p := range batch {
		recs = append(recs, p.c.recs...)
	}
	ctx, cancel := context.WithTimeout(s.ctx, commitTimeout)
	err := s.Services.Leases.SaveLeases(ctx, recs...)
	cancel()
	now := s.Now()
	s.mu.Lock()
	for _, p := range batch {
		l := p.c.bound
		if l == nil {
			continue
		}
		l.unsaved--
		if err != nil && l.mac == p.c.mac && l.state == appliance.LeaseBound {
			s.pool.set(l.ip, p.c.mac, "", "", appliance.LeaseOffered, now)
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.logs.warn(s.Logger, "save", "dhcp: cannot store leases; not acknowledging them", "leases", len(recs), "err", err)
		return false
	}
	for _, p := range batch {
		if p.c.bound != nil {
			rec := p.c.recs[len(p.c.recs)-1]
			s.learn.add(learnItem{mac: p.c.mac, ip: rec.IP, vendor: PhoneVendor(s.Catalog, p.c.mac, p.c.vendor), phone: rec.Phone})
		}
	}
	return true
}

// handle answers one request as the server does, committing its change
// before it returns: the handler tests' way in, without sockets.
func (s *Server) handle(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	resp, c := s.run(req)
	if c != nil && !s.commit([]pending{{req: req, resp: resp, c: c}}) {
		return nil
	}
	return resp
}
