//go:build linux

package webui

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The HTTP loop's connections wait for their next request in an epoll set
// of their own rather than each in a goroutine parked on Go's poller: one
// goroutine, on a thread of its own, waits for all of them, reads a
// request when it comes and answers it there from memory. Parking and
// waking a goroutine per request, and the Go scheduler's threads spinning
// around each wake, cost about a third of a fetch's CPU (bench/README.md).
//
// A connection leaves the set for a goroutine of its own (fastConn.run)
// whenever the loop would wait: an answer the socket cannot take at once,
// a file from disk, a request for net/http, an answer that needs the store
// (FileRequest.NoWait: a new version, a claim, a fetch to record now). The
// goroutine puts it back after the answer. Connections through TLS keep a
// goroutine each.
//
// With two CPUs or more the loop waits in epoll_wait without telling the
// Go scheduler first (a raw system call), for at most pollSpin: under load
// the next request comes within microseconds, and the scheduler neither
// hands the loop's P to another thread nor wakes one to spin. Past
// pollSpin with nothing to do it waits the ordinary way, which gives the
// P back, so an idle loop never holds a CPU the rest of the appliance
// needs.

const (
	// pollWait bounds one wait, so that deadlines are checked about this
	// often.
	pollWait = 250 * time.Millisecond
	// pollSpin bounds a wait that holds the loop's P: under load the
	// next request comes well within it (on a 2-CPU box 1 ms was too
	// short: the loop fell back to the scheduler's wait; 250 ms measured
	// no better than 10 ms).
	pollSpin = 10 * time.Millisecond
)

type poller struct {
	l     *fastListener
	epfd  int
	wake  int  // eventfd: Close wakes the loop
	raw   bool // waits hold the P first (more than one P)
	mu    sync.Mutex
	conns map[int]*fastConn // by descriptor
	dead  bool              // the loop ended: add refuses
	tid   atomic.Int32      // the loop's thread (tests signal it)
}

// newPoller starts the poll loop; nil where epoll is not available (each
// connection then keeps its goroutine).
func newPoller(l *fastListener) *poller {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil
	}
	p := &poller{l: l, epfd: epfd, wake: wake, raw: runtime.GOMAXPROCS(0) > 1, conns: map[int]*fastConn{}}
	l.wg.Add(1)
	go p.run()
	return p
}

// add gives the poll loop c, which its goroutine lets go; false if the
// loop cannot take it (then the goroutine goes on with it).
func (p *poller) add(c *fastConn) bool {
	if c.pc == nil || c.viaTLS && !c.drainedTLS() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead || !c.pc.takeFD() {
		return false
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.pc.fd)}
	if unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.pc.fd, &ev) != nil {
		c.pc.giveFD() // on an error the socket is closed: the goroutine's next read ends it
		return false
	}
	p.conns[c.pc.fd] = c
	c.inPoll.Store(true)
	return true
}

// drainedTLS reports whether crypto/tls holds nothing read of c that
// epoll cannot see (a record read along with the last one); what it held
// is now in c.buf. A read deadline in the past makes Go's read return at
// once, reading nothing from the socket.
func (c *fastConn) drainedTLS() bool {
	c.makeRoom()
	c.Conn.SetReadDeadline(time.Unix(1, 0))
	m, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)])
	c.Conn.SetReadDeadline(c.readDL)
	c.buf = c.buf[:len(c.buf)+m]
	return m == 0 && errors.Is(err, os.ErrDeadlineExceeded)
}

// forget takes c out of the set (from the loop).
func (p *poller) forget(c *fastConn) {
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, c.pc.fd, nil)
	p.mu.Lock()
	delete(p.conns, c.pc.fd)
	p.mu.Unlock()
	c.inPoll.Store(false)
}

// release hands c to a goroutine of its own: resume writes what an answer
// left first; otherwise the goroutine answers the request in c.buf.
func (p *poller) release(c *fastConn, resume bool) {
	p.forget(c)
	if err := c.pc.giveFD(); err != nil {
		p.l.p.s.logger().Warn("http: a connection could not leave the poll loop", "remote", c.remote, "err", err)
		c.end(false)
		return
	}
	go c.serveFrom(resume)
}

// closeConn ends a connection of the set.
func (p *poller) closeConn(c *fastConn) {
	p.forget(c)
	c.end(false)
}

func (p *poller) run() {
	l := p.l
	defer l.wg.Done()
	defer func() {
		unix.Close(p.epfd)
		unix.Close(p.wake)
	}()
	if p.raw {
		runtime.LockOSThread() // a raw wait blocks the thread, not a goroutine
		defer runtime.UnlockOSThread()
	}
	p.tid.Store(int32(unix.Gettid()))
	events := make([]unix.EpollEvent, 128)
	lastSweep := time.Now()
	for {
		n, err := p.wait(events)
		if err != nil { // n is -1
			n = 0
			if !errors.Is(err, unix.EINTR) {
				l.p.s.logger().Error("http poll failed", "err", err)
				time.Sleep(pollWait)
			}
		}
		if l.closed.Load() {
			p.closeAll()
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == p.wake {
				continue
			}
			p.mu.Lock()
			c := p.conns[fd]
			p.mu.Unlock()
			if c != nil {
				c.readable()
			}
		}
		if now := time.Now(); now.Sub(lastSweep) >= pollWait {
			lastSweep = now
			p.sweep(now)
		}
	}
}

// wait waits for connections with something to read: first for up to
// pollSpin holding the P (raw), then giving it back.
func (p *poller) wait(events []unix.EpollEvent) (int, error) {
	if p.raw {
		// epoll_pwait with no signal mask is epoll_wait, and exists on
		// every Linux architecture (arm64 has no epoll_wait).
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&events[0])),
			uintptr(len(events)), uintptr(pollSpin/time.Millisecond), 0, 0)
		if e != 0 {
			return 0, e
		}
		if r > 0 {
			return int(r), nil
		}
	}
	return unix.EpollWait(p.epfd, events, int(pollWait/time.Millisecond))
}

// sweep closes the connections whose read deadline passed.
func (p *poller) sweep(now time.Time) {
	var late []*fastConn
	p.mu.Lock()
	for _, c := range p.conns {
		if !c.readDL.IsZero() && now.After(c.readDL) {
			late = append(late, c)
		}
	}
	p.mu.Unlock()
	for _, c := range late {
		p.closeConn(c)
	}
}

// closeAll ends every connection of the set (the listener closes).
func (p *poller) closeAll() {
	p.mu.Lock()
	p.dead = true
	all := make([]*fastConn, 0, len(p.conns))
	for _, c := range p.conns {
		all = append(all, c)
	}
	p.mu.Unlock()
	for _, c := range all {
		p.closeConn(c)
	}
}

// wakeAll wakes the loop (Close).
func (p *poller) wakeAll() {
	one := [8]byte{1}
	unix.Write(p.wake, one[:])
}

// readable reads what came and answers the whole requests in it.
func (c *fastConn) readable() {
	p := c.l.poll
	for {
		req, n, st := c.nextRequest()
		switch st {
		case reqNotSimple:
			p.release(c, false)
			return
		case reqComplete:
			keep := c.answer(&req)
			if c.wait {
				c.wait = false
				p.release(c, false)
				return
			}
			c.off += n
			c.served++
			if c.pending() {
				c.pendClose = !keep
				p.release(c, true)
				return
			}
			if !keep {
				p.closeConn(c)
				return
			}
			continue
		}
		c.makeRoom()
		m, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)]) // the pollConn's read, or TLS over it
		c.buf = c.buf[:len(c.buf)+m]
		switch {
		case err == errWouldBlock && c.pending(): // TLS answered a message of its own
			p.release(c, true)
			return
		case err == errWouldBlock:
			c.setPollDeadline()
			return
		case err != nil:
			p.closeConn(c)
			return
		case m == 0: // crypto/tls reads on past records without data: never
			p.closeConn(c)
			return
		}
	}
}

// pending reports whether an answer left something to write.
func (c *fastConn) pending() bool {
	return c.pendFile != nil || len(c.pc.pend) > 0
}

// takeFD gives the poll loop a descriptor of its own of the socket and
// closes Go's, so that Go's poller stops watching it (the socket stays
// open through the loop's).
func (pc *pollConn) takeFD() bool {
	tcp, ok := pc.Conn.(*net.TCPConn)
	if !ok {
		return false
	}
	sc, err := tcp.SyscallConn()
	if err != nil {
		return false
	}
	fd, derr := -1, error(nil)
	if err := sc.Control(func(d uintptr) { fd, derr = unix.FcntlInt(d, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return false
	}
	tcp.Close()
	pc.Conn, pc.fd, pc.nonblock = nil, fd, true
	return true
}

// giveFD turns the loop's descriptor back into a connection of Go's.
// After an error the socket is closed.
func (pc *pollConn) giveFD() error {
	f := os.NewFile(uintptr(pc.fd), "")
	conn, err := net.FileConn(f) // its own descriptor, watched by Go's poller
	f.Close()
	pc.fd, pc.nonblock = -1, false
	pc.Conn = conn
	return err
}

// closeFD closes the loop's descriptor.
func (pc *pollConn) closeFD() error {
	if pc.fd < 0 {
		return nil
	}
	err := unix.Close(pc.fd)
	pc.fd = -1
	return err
}

// readNow reads what there is without waiting.
func (pc *pollConn) readNow(b []byte) (int, error) {
	for {
		n, err := unix.Read(pc.fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// setPollDeadline sets the deadline of a wait in the set: the idle timeout
// between requests, the header timeout within one.
func (c *fastConn) setPollDeadline() {
	now := time.Now()
	if len(c.buf)-c.off == 0 {
		if c.served > 0 {
			c.readDL = now.Add(c.l.idle)
		}
		return
	}
	if t := now.Add(c.l.headerTimeout); c.readDL.IsZero() || c.readDL.After(t) {
		c.readDL = t
	}
}

// writevNow writes hdr and body, after what waits in pend already,
// without waiting; what the socket does not take waits in pend.
func (pc *pollConn) writevNow(hdr, body []byte) (int64, error) {
	total := int64(len(hdr) + len(body))
	if len(pc.pend) > 0 { // in order
		pc.pend = append(append(pc.pend, hdr...), body...)
		return total, nil
	}
	var iov [2]unix.Iovec
	for {
		cnt := 0
		if len(hdr) > 0 {
			iov[cnt].Base = &hdr[0]
			iov[cnt].SetLen(len(hdr))
			cnt++
		}
		if len(body) > 0 {
			iov[cnt].Base = &body[0]
			iov[cnt].SetLen(len(body))
			cnt++
		}
		if cnt == 0 {
			return total, nil
		}
		w, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(pc.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
		runtime.KeepAlive(hdr)
		runtime.KeepAlive(body)
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			pc.pend = append(append(pc.pend, hdr...), body...)
			return total, nil
		default:
			return total - int64(len(hdr)+len(body)), e
		}
		if int(w) >= len(hdr) {
			body = body[int(w)-len(hdr):]
			hdr = nil
		} else {
			hdr = hdr[w:]
		}
	}
}
