package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"time"
)

// event is the part of a phonesim JSON line syncload uses (cmd/phonesim's
// output.go: boot, notify, retransmit, fetch, report, error, booted,
// summary).
type event struct {
	Event   string  `json:"event"`
	MAC     string  `json:"mac"`
	At      int64   `json:"at"` // Unix nanoseconds, the same clock as time.Now()
	CallID  string  `json:"call_id"`
	Name    string  `json:"name"`     // report: the action URL's event
	FetchMs float64 `json:"fetch_ms"` // fetch: how long it took (it ended at At)
	Lost    bool    `json:"lost"`     // report: not sent (-max-reports)
	ETag    string  `json:"etag"`
	Status  int     `json:"status"`
	Stage   string  `json:"stage"`
	Error   string  `json:"error"`
	Phones  int     `json:"phones"`
	OK      int     `json:"ok"`
	Failed  int     `json:"failed"`
}

// tail follows phonesim's stdout, redirected to a file, and keeps every
// event. It polls: phonesim's timestamps are taken when the datagram or
// the response arrives, so how late syncload reads a line does not change
// any figure.
type tail struct {
	mu     sync.Mutex
	events []event
	bad    int // lines that are not JSON

	f    *os.File
	part []byte
	stop chan struct{}
	done chan struct{}
}

func openTail(path string) (*tail, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	t := &tail{f: f, stop: make(chan struct{}), done: make(chan struct{})}
	t.read()
	go t.loop()
	return t, nil
}

func (t *tail) loop() {
	defer close(t.done)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			t.read()
			return
		case <-tick.C:
			t.read()
		}
	}
}

func (t *tail) close() {
	close(t.stop)
	<-t.done
	t.f.Close()
}

func (t *tail) read() {
	buf := make([]byte, 64<<10)
	for {
		n, err := t.f.Read(buf)
		if n > 0 {
			t.part = append(t.part, buf[:n]...)
		}
		if err == io.EOF || n == 0 || err != nil {
			break
		}
	}
	var got []event
	bad := 0
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		line := t.part[:i]
		t.part = t.part[i+1:]
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			bad++
			continue
		}
		got = append(got, e)
	}
	if len(t.part) == 0 {
		t.part = nil // let the backing array go
	}
	if len(got) > 0 || bad > 0 {
		t.mu.Lock()
		t.events = append(t.events, got...)
		t.bad += bad
		t.mu.Unlock()
	}
}

// snapshot returns the events read so far (shared backing array: read only).
func (t *tail) snapshot() []event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.events[:len(t.events):len(t.events)]
}

// percentile is the nearest-rank percentile p of sorted xs (as phonesim's).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

type dist struct {
	n                  int
	p50, p99, max, min float64
}

func distOf(xs []float64) dist {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	d := dist{n: len(s), p50: percentile(s, 50), p99: percentile(s, 99), max: percentile(s, 100)}
	if len(s) > 0 {
		d.min = s[0]
	} else {
		d.min = math.NaN()
	}
	return d
}

func msBetween(from, to int64) float64 { return float64(to-from) / 1e6 }
