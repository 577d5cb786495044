// Command tftpload is the TFTP load generator of bench/prov.sh, on the
// own small RFC 1350/2347/2348/2349 client: it downloads N files, C at a
// time, each worker from its own loopback address (127.0.1.x, as C phones
// would: servers limit transfers per client address), checks every byte
// count (and, with -sha256, the content), and prints one line:
//
//	tftpload: label=provbox n=1000 c=50 blksize=512 ok=1000 errors=0 secs=0.61 fetches_per_s=1639.3 p50=28.1ms p99=47.9ms MB_per_s=8.4
//
// It only talks to loopback addresses. For example:
//
//	tftpload -addr 127.0.0.1:6969 -list names.txt -suffix .cfg -expect DIR -n 1000 -c 50
//	tftpload -addr 127.0.0.1:6969 -file fw-30m.rom -expect DIR -sha256 -n 1 -c 1 -blksize 1468
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tftpload:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	size int64
	sum  []byte // sha256 with -sha256
}

func run() error {
	addr := flag.String("addr", "", "server host:port (loopback only)")
	list := flag.String("list", "", "file with one name per line")
	file := flag.String("file", "", "a single file name (instead of -list)")
	suffix := flag.String("suffix", "", "appended to each name of -list, e.g. .cfg")
	expect := flag.String("expect", "", "directory holding the files as served: every transfer must have its size (required)")
	withSum := flag.Bool("sha256", false, "also compare each download's sha256 with the file in -expect")
	n := flag.Int("n", 1000, "number of fetches in all (round-robin over the names)")
	conc := flag.Int("c", 50, "concurrent transfers")
	blksize := flag.Int("blksize", 0, "blksize option to request (0: none, plain 512-byte blocks)")
	tsize := flag.Bool("tsize", false, "request the tsize option")
	pktTimeout := flag.Duration("pkt-timeout", 2*time.Second, "per-packet retransmission timeout")
	retries := flag.Int("retries", 3, "attempts per packet")
	limit := flag.Duration("limit", 60*time.Second, "give up (exit 1) when the run takes longer than this")
	label := flag.String("label", "", "label printed with the result")
	flag.Parse()

	if *addr == "" || *expect == "" || (*list == "") == (*file == "") {
		return errors.New("-addr, -expect and one of -list or -file are required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing %s: only loopback addresses are benchmarked", *addr)
	}
	var names []string
	if *file != "" {
		names = []string{*file}
	} else if names, err = readList(*list, *suffix); err != nil {
		return err
	}
	targets := make([]target, len(names))
	for i, name := range names {
		t := target{name: name}
		path := filepath.Join(*expect, name)
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		t.size = fi.Size()
		if *withSum {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			t.sum = s[:]
		}
		targets[i] = t
	}

	server, err := net.ResolveUDPAddr("udp4", *addr)
	if err != nil {
		return err
	}
	client := &client{server: server, timeout: *pktTimeout, retries: *retries, blksize: *blksize, tsize: *tsize}
	if *conc > 250 {
		return errors.New("-c: at most 250 (one loopback address each)")
	}

	var next atomic.Int64
	lat := make([][]time.Duration, *conc)
	var errCount, okCount, nbytes atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	done := make(chan struct{})
	start := time.Now()
	for w := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				t := targets[i%len(targets)]
				t0 := time.Now()
				got, err := fetch(client, net.IPv4(127, 0, 1, byte(w+1)), t)
				d := time.Since(t0)
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("%s: %w", t.name, err))
					continue
				}
				okCount.Add(1)
				nbytes.Add(got)
				lat[w] = append(lat[w], d)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(*limit):
		return fmt.Errorf("run exceeded -limit %s (%d ok, %d errors so far)", *limit, okCount.Load(), errCount.Load())
	}
	elapsed := time.Since(start)

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	bs := *blksize
	if bs == 0 {
		bs = 512
	}
	fmt.Printf("tftpload: label=%s n=%d c=%d blksize=%d ok=%d errors=%d secs=%.3f fetches_per_s=%.1f p50=%s p99=%s MB_per_s=%.1f\n",
		*label, *n, *conc, bs, okCount.Load(), errCount.Load(), elapsed.Seconds(),
		float64(okCount.Load())/elapsed.Seconds(), fmtDur(pct(all, 50)), fmtDur(pct(all, 99)),
		float64(nbytes.Load())/elapsed.Seconds()/1e6)
	if e, _ := firstErr.Load().(error); e != nil {
		fmt.Fprintln(os.Stderr, "tftpload: first error:", e)
	}
	if okCount.Load() == 0 {
		return errors.New("no successful transfer")
	}
	return nil
}

// fetch downloads one file from local and checks its size (and sha256
// when known).
func fetch(c *client, local net.IP, t target) (int64, error) {
	var h hash.Hash
	var w io.Writer = io.Discard
	if t.sum != nil {
		h = sha256.New()
		w = h
	}
	got, err := c.receive(local, t.name, w)
	if err != nil {
		return got, err
	}
	if got != t.size {
		return got, fmt.Errorf("got %d bytes, want %d", got, t.size)
	}
	if h != nil && !bytes.Equal(h.Sum(nil), t.sum) {
		return got, errors.New("content differs (sha256)")
	}
	return got, nil
}

// client is a TFTP read client (octet mode, optional blksize and tsize).
type client struct {
	server  *net.UDPAddr
	timeout time.Duration
	retries int
	blksize int
	tsize   bool
}

// receive reads name from the server into w, from a socket bound to local.
func (c *client) receive(local net.IP, name string, w io.Writer) (int64, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: local})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rrq := append([]byte{0, 1}, name+"\x00octet\x00"...)
	if c.blksize > 0 {
		rrq = append(rrq, fmt.Sprintf("blksize\x00%d\x00", c.blksize)...)
	}
	if c.tsize {
		rrq = append(rrq, "tsize\x000\x00"...)
	}
	last, to := rrq, c.server // what to send again on a timeout, and where
	bs := 512
	var want uint16 = 1
	var total int64
	buf := make([]byte, 65536)
	tries := 0
	if _, err := conn.WriteToUDP(last, to); err != nil {
		return 0, err
	}
	for {
		conn.SetReadDeadline(time.Now().Add(c.timeout))
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if tries++; tries >= c.retries {
				return total, fmt.Errorf("timeout waiting for block %d", want)
			}
			conn.WriteToUDP(last, to)
			continue
		}
		if n < 4 || !from.IP.Equal(c.server.IP) || (to != c.server && from.Port != to.Port) {
			continue
		}
		to = from // the server's transfer port (TID)
		switch op := binary.BigEndian.Uint16(buf); op {
		case 5:
			return total, fmt.Errorf("error %d: %s", binary.BigEndian.Uint16(buf[2:]), bytes.TrimRight(buf[4:n], "\x00"))
		case 6: // OACK
			opts := strings.Split(string(bytes.TrimRight(buf[2:n], "\x00")), "\x00")
			for i := 0; i+1 < len(opts); i += 2 {
				if strings.EqualFold(opts[i], "blksize") {
					fmt.Sscan(opts[i+1], &bs)
				}
			}
			last, tries = []byte{0, 4, 0, 0}, 0
			conn.WriteToUDP(last, to)
		case 3:
			block := binary.BigEndian.Uint16(buf[2:])
			if block != want {
				conn.WriteToUDP(last, to) // a duplicate: acknowledge again
				continue
			}
			if _, err := w.Write(buf[4:n]); err != nil {
				return total, err
			}
			total += int64(n - 4)
			last, tries = []byte{0, 4, byte(block >> 8), byte(block)}, 0
			conn.WriteToUDP(last, to)
			if n-4 < bs {
				return total, nil
			}
			want++
		}
	}
}

func readList(path, suffix string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s+suffix)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no names", path)
	}
	return names, nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i > 0 {
		i--
	}
	return sorted[min(i, len(sorted)-1)]
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}
