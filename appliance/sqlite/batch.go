package sqlite

import (
	"context"
	"sync"

	"github.com/provbox/provbox/appliance"
)

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
