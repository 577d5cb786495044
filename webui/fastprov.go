package webui

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provbox/provbox/appliance"
)

// The HTTP listener's own loop for phones' fetches (SPEC §8: /prov/ at
// least at nginx's rate). net/http costs about as much CPU per request
// as the rest of a fetch (a background read goroutine, deadline changes,
// a header map and its clone, a 4 KiB write buffer: bench/README.md), so
// each accepted connection is first read here, and only the simplest
// requests are answered here: GET or HEAD of /prov/<one plain segment>,
// HTTP/1.1 or 1.0, no body, no condition or range, a handful of plain
// header lines. They are answered through the same provServer.answer as
// provFirst (secret check, guard, fetch record, metrics, access log).
// At the first request that is anything else — another path, a body, a
// folded or odd header line, a header over fastMaxHeader, malformed
// input — the connection, with the bytes already read replayed first, is
// handed to net/http through the listener's Accept, and net/http answers
// it and every later request on it exactly as it would have.

// Limits of a request the loop answers; a larger one goes to net/http
// (whose own limit is 1 MiB).
const (
	fastMaxHeader = 8 << 10
	fastMaxLines  = 64
)

// fastWriteTimeout bounds the write of one answer from memory; a file
// from disk (firmware) gets it anew for each fastCopyChunk.
const (
	fastWriteTimeout = time.Minute
	fastCopyChunk    = 1 << 20
)

// fastCloseWait is how long Close waits for answers being written before
// it closes their connections.
const fastCloseWait = shutdownTimeout

// fastTLS readies srv to serve HTTPS on ln through the loop: the loop
// reads each connection after its TLS handshake, and net/http gets the
// connections it hands off as plain connections, so it neither does the
// handshake nor sets Request.TLS itself. The handler gets Request.TLS
// from the connection (the admin side's Secure cookies and its HTTPS
// check need it). The price: no HTTP/2 on HTTPS (ALPN offers only
// http/1.1), which net/http negotiates only on a *tls.Conn it handshakes
// itself.
func (s *Server) fastTLS(ln net.Listener, srv *http.Server) net.Listener {
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.TLSCert, NextProtos: []string{"http/1.1"}}
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if rc, ok := c.(*replayConn); ok {
			if tc, ok := rc.Conn.(*tls.Conn); ok {
				st := tc.ConnectionState()
				return context.WithValue(ctx, tlsStateKey{}, &st)
			}
		}
		return ctx
	}
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok && r.TLS == nil {
			r.TLS = st
		}
		next.ServeHTTP(w, r)
	})
	return newFastListener(tlsListener{ln, srv.TLSConfig}, s.prov, srv.ReadHeaderTimeout, srv.IdleTimeout)
}

// tlsListener is tls.NewListener's, over a pollConn, so that the poll loop
// can wait for a TLS connection's next request too.
type tlsListener struct {
	net.Listener
	config *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(newPollConn(c), l.config), nil
}

// pollConn is the connection under the loop's plain and TLS connections
// while a poll loop may take them (fastpoll_linux.go): an ordinary
// connection while a goroutine has it; while the loop has it (nonblock),
// the loop's own descriptor of the socket, which Go's poller does not
// watch (or each request would wake one of its threads for nothing).
// Then a read with nothing to read returns errWouldBlock, which crypto/tls
// passes on without failing the connection (a temporary net.Error: it
// keeps the part of a record it read), and what the socket does not take
// of a write at once waits in pend, for a goroutine to write (writevNow).
type pollConn struct {
	net.Conn      // while a goroutine has it; nil while the loop has it
	fd            int
	nonblock      bool
	pend          []byte
	release       func() // the listener's connection limit
	local, remote net.Addr
}

// newPollConn wraps an accepted connection (under the listener's limit
// wrapper, whose slot it keeps until Close).
func newPollConn(c net.Conn) *pollConn {
	pc := &pollConn{Conn: c, fd: -1, local: c.LocalAddr(), remote: c.RemoteAddr()}
	if lc, ok := c.(*limitConn); ok {
		pc.Conn, pc.release = lc.Conn, lc.release
	}
	return pc
}

func (pc *pollConn) Read(b []byte) (int, error) {
	switch {
	case pc.nonblock:
		return pc.readNow(b)
	case pc.Conn == nil:
		return 0, net.ErrClosed
	}
	return pc.Conn.Read(b)
}

func (pc *pollConn) Write(b []byte) (int, error) {
	switch {
	case !pc.nonblock && pc.Conn == nil:
		return 0, net.ErrClosed
	case !pc.nonblock:
		return pc.Conn.Write(b)
	}
	n, err := pc.writevNow(b, nil)
	return int(n), err
}

func (pc *pollConn) Close() error {
	var err error
	switch {
	case pc.nonblock:
		err = pc.closeFD()
	case pc.Conn != nil:
		err = pc.Conn.Close()
	}
	if pc.release != nil {
		pc.release()
	}
	return err
}

func (pc *pollConn) LocalAddr() net.Addr  { return pc.local }
func (pc *pollConn) RemoteAddr() net.Addr { return pc.remote }

// The deadlines are a goroutine's: the poll loop keeps its own.
func (pc *pollConn) SetDeadline(t time.Time) error {
	if pc.nonblock || pc.Conn == nil {
		return nil
	}
	return pc.Conn.SetDeadline(t)
}

func (pc *pollConn) SetReadDeadline(t time.Time) error {
	if pc.nonblock || pc.Conn == nil {
		return nil
	}
	return pc.Conn.SetReadDeadline(t)
}

func (pc *pollConn) SetWriteDeadline(t time.Time) error {
	if pc.nonblock || pc.Conn == nil {
		return nil
	}
	return pc.Conn.SetWriteDeadline(t)
}

// errWouldBlock is a pollConn's read with nothing to read.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "nothing to read yet" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// tlsStateKey keys the TLS state of a connection in its context.
type tlsStateKey struct{}

// fastListener is a listener whose connections are served by the loop
// until a request needs net/http: Accept returns those connections.
type fastListener struct {
	net.Listener
	p                   *provServer
	headerTimeout, idle time.Duration
	ctx                 context.Context // canceled by Close
	cancel              context.CancelFunc
	handoff             chan net.Conn
	acceptErr           chan error
	done                chan struct{}
	closed              atomic.Bool
	closeOnce           sync.Once
	wg                  sync.WaitGroup
	mu                  sync.Mutex
	conns               map[*fastConn]struct{}
	poll                *poller // nil: a goroutine per connection (fastpoll_linux.go)
}

// newFastListener serves ln's connections with the loop, answering
// through p, with net/http's header and idle timeouts.
func newFastListener(ln net.Listener, p *provServer, headerTimeout, idle time.Duration) *fastListener {
	l := &fastListener{
		Listener: ln, p: p, headerTimeout: headerTimeout, idle: idle,
		handoff: make(chan net.Conn), acceptErr: make(chan error, 1), done: make(chan struct{}),
		conns: map[*fastConn]struct{}{},
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.poll = newPoller(l)
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection for net/http.
func (l *fastListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case err := <-l.acceptErr:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes the connections waiting for a request,
// waits up to fastCloseWait for answers being written, then closes the
// rest and returns when every goroutine of the loop has ended.
func (l *fastListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		close(l.done)
		l.cancel()
		if l.poll != nil {
			l.poll.wakeAll()
		}
		err = l.Listener.Close()
		l.closeConns(false)
		ended := make(chan struct{})
		go func() { l.wg.Wait(); close(ended) }()
		select {
		case <-ended:
		case <-time.After(fastCloseWait):
			l.closeConns(true)
			<-ended
		}
	})
	return err
}

// closeConns closes the loop's connections that wait for a request, or
// all of them.
func (l *fastListener) closeConns(all bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.inPoll.Load() {
			continue // its loop closes it
		}
		if all || c.waiting.Load() {
			c.Close()
		}
	}
}

func (l *fastListener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.closed.Load() {
				return
			}
			if isTemporary(err) {
				// As net/http does: back off and retry (out of
				// descriptors, mostly).
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
					return
				}
			}
			l.acceptErr <- err
			return
		}
		delay = 0
		fc := newFastConn(c, l)
		l.mu.Lock()
		if l.closed.Load() {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[fc] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		fc.start()
		if fc.pc != nil && !fc.viaTLS { // a plain connection waits in the poll loop from the start
			fc.readDL = time.Now().Add(l.headerTimeout)
			if l.poll.add(fc) {
				continue
			}
		}
		go fc.serve()
	}
}

// isTemporary reports whether an accept error is worth a retry.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// fastConn is one connection in the loop.
type fastConn struct {
	net.Conn
	l       *fastListener
	waiting atomic.Bool // blocked reading for a request: Close may close it
	remote  string      // RemoteAddr, as net/http's Request.RemoteAddr
	ip      string
	buf     []byte // read, not yet answered: buf[off:]
	off     int
	served  int    // requests answered
	out     []byte // the header block being written
	readDL  time.Time
	writeDL time.Time
	iov     [2][]byte
	// The last request's strings, and the credentials of authFor: kept,
	// as the next request of a phone repeats them.
	prev           fastRequest
	authFor        string
	user, password string
	hasAuth        bool
	// The poll loop (fastpoll_linux.go): the pollConn it can take (nil:
	// none), whether it has it, and what an answer there left to a
	// goroutine (the rest of the bytes wait in pc.pend).
	pc        *pollConn
	viaTLS    bool
	inPoll    atomic.Bool
	pendFile  *appliance.ServedFile // a file from disk to copy
	pendClose bool
	wait      bool // the request's answer would wait: not answered
}

// serve answers requests until the connection ends or is handed off.
func (c *fastConn) serve() {
	if tc, ok := c.Conn.(*tls.Conn); ok && !c.handshake(tc) {
		c.end(false)
		return
	}
	c.setReadDeadline(time.Now().Add(c.l.headerTimeout))
	c.run()
}

// newFastConn is an accepted connection of l; the poll loop can take it
// when it is, or is TLS over, a pollConn.
func newFastConn(c net.Conn, l *fastListener) *fastConn {
	fc := &fastConn{Conn: c, l: l}
	if tc, ok := c.(*tls.Conn); ok {
		fc.pc, _ = tc.NetConn().(*pollConn)
		fc.viaTLS = true
	} else if l.poll != nil {
		fc.pc = newPollConn(c)
		fc.Conn = fc.pc
	}
	return fc
}

// start readies a new connection.
func (c *fastConn) start() {
	c.remote = c.RemoteAddr().String()
	c.ip = c.remote
	if host, _, err := net.SplitHostPort(c.remote); err == nil {
		c.ip = host
	}
	c.buf = make([]byte, 0, 4096)
}

// end closes the connection unless net/http has it, and forgets it.
func (c *fastConn) end(handedOff bool) {
	l := c.l
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	if !handedOff {
		c.Close()
	}
	l.wg.Done()
}

// serveFrom goes on in a goroutine with a connection a poll loop let go:
// it writes what the loop could not (resume), then gives the connection
// back to the loop, or answers it here.
func (c *fastConn) serveFrom(resume bool) {
	if resume {
		if !c.finishPending() || c.pendClose {
			c.end(false)
			return
		}
		if c.backToPoll() {
			return
		}
	}
	if c.readDL.IsZero() {
		c.readDL = time.Now().Add(c.l.idle)
	}
	c.setReadDeadline(c.readDL)
	c.run()
}

// finishPending writes what an answer in a poll loop left.
func (c *fastConn) finishPending() bool {
	c.setWriteDeadline(time.Now())
	f := c.pendFile
	c.pendFile = nil
	if pc := c.pc; len(pc.pend) > 0 { // as they were to go out (through TLS: records)
		_, err := pc.Conn.Write(pc.pend)
		pc.pend = pc.pend[:0]
		if err != nil {
			if f != nil {
				f.Close()
			}
			return false
		}
	}
	if f != nil {
		defer f.Close()
		return c.copyFile(f.Content, f.Size)
	}
	return true
}

// run answers requests until the connection ends or is handed off.
func (c *fastConn) run() {
	for {
		req, n, ok := c.readRequest()
		if !ok {
			c.end(false)
			return
		}
		if !req.simple {
			c.end(c.handOff())
			return
		}
		keep := c.answer(&req)
		c.off += n
		c.served++
		if !keep {
			c.end(false)
			return
		}
		if c.backToPoll() {
			return // the poll loop waits for the next request
		}
	}
}

// backToPoll gives the connection back to the poll loop when nothing of
// it is read and unanswered; false: the goroutine goes on with it.
func (c *fastConn) backToPoll() bool {
	return c.off == len(c.buf) && c.l.poll != nil && c.l.poll.add(c)
}

// handshake does the TLS handshake within the header timeout, and answers
// and logs a failed one as net/http does.
func (c *fastConn) handshake(tc *tls.Conn) bool {
	c.SetDeadline(time.Now().Add(c.l.headerTimeout))
	err := tc.HandshakeContext(c.l.ctx)
	if err == nil {
		c.SetDeadline(time.Time{})
		return true
	}
	reason := err.Error()
	if re, ok := err.(tls.RecordHeaderError); ok && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		reason = "client sent an HTTP request to an HTTPS server"
	}
	c.l.p.s.logger().Warn("http: TLS handshake error from " + c.remote + ": " + reason)
	return false
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// reqState is what nextRequest found in buf.
type reqState int

const (
	reqMore      reqState = iota // no whole request header yet
	reqComplete                  // a simple request: the loop answers it
	reqNotSimple                 // anything else: net/http decides
)

// nextRequest parses the request at the start of what was read and not
// answered; n is its length.
func (c *fastConn) nextRequest() (req fastRequest, n int, st reqState) {
	if end := bytes.Index(c.buf[c.off:], []byte("\r\n\r\n")); end >= 0 {
		n = end + 4
		if n > fastMaxHeader {
			return fastRequest{}, 0, reqNotSimple
		}
		req = parseFastRequest(c.buf[c.off:c.off+n], &c.prev)
		if !req.simple {
			return req, n, reqNotSimple
		}
		c.prev = req
		return req, n, reqComplete
	}
	if len(c.buf)-c.off >= fastMaxHeader || bareLF(c.buf[c.off:]) {
		return fastRequest{}, 0, reqNotSimple
	}
	return fastRequest{}, 0, reqMore
}

// makeRoom moves the unanswered bytes to the start of buf and makes room
// for a read.
func (c *fastConn) makeRoom() {
	if c.off > 0 {
		pending := len(c.buf) - c.off
		copy(c.buf, c.buf[c.off:])
		c.buf = c.buf[:pending]
		c.off = 0
	}
	if cap(c.buf)-len(c.buf) < 1024 {
		c.buf = append(c.buf, make([]byte, 4096)...)[:len(c.buf)]
	}
}

// readRequest reads until buf holds a whole request header and parses it;
// n is its length. false: the connection is done (closed, timed out, or
// the listener closes).
func (c *fastConn) readRequest() (req fastRequest, n int, ok bool) {
	l := c.l
	for {
		req, n, st := c.nextRequest()
		if st != reqMore {
			return req, n, true
		}
		c.makeRoom()
		now := time.Now()
		if len(c.buf) == 0 {
			if c.served > 0 {
				c.setIdleDeadline(now)
			}
		} else if t := now.Add(l.headerTimeout); c.readDL.After(t) {
			// The start of a request: the rest within the header
			// timeout.
			c.setReadDeadline(t)
		}
		c.waiting.Store(true)
		if l.closed.Load() {
			return fastRequest{}, 0, false
		}
		m, err := c.Read(c.buf[len(c.buf):cap(c.buf)])
		c.waiting.Store(false)
		c.buf = c.buf[:len(c.buf)+m]
		if err != nil {
			return fastRequest{}, 0, false
		}
	}
}

// bareLF reports whether b has a line feed without a carriage return
// before it (net/http reads such lines; the loop does not).
func bareLF(b []byte) bool {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// setIdleDeadline sets the read deadline for a wait between requests; a
// deadline set a 64th of the idle timeout ago is close enough (one change
// a second or two under load rather than one a request).
func (c *fastConn) setIdleDeadline(now time.Time) {
	t := now.Add(c.l.idle)
	if c.readDL.Before(t.Add(-c.l.idle / 64)) {
		c.setReadDeadline(t)
	}
}

func (c *fastConn) setReadDeadline(t time.Time) {
	c.readDL = t
	c.SetReadDeadline(t)
}

// setWriteDeadline gives a write at least fastWriteTimeout less a second.
func (c *fastConn) setWriteDeadline(now time.Time) {
	if c.inPoll.Load() {
		return // the poll loop never waits for a write
	}
	t := now.Add(fastWriteTimeout)
	if c.writeDL.Before(t.Add(-time.Second)) {
		c.writeDL = t
		c.SetWriteDeadline(t)
	}
}

// handOff gives the connection, with what was read of it and not
// answered, to net/http; false when the listener closed first.
func (c *fastConn) handOff() bool {
	c.SetDeadline(time.Time{}) // net/http sets its own
	rc := &replayConn{Conn: c.Conn, pending: bytes.Clone(c.buf[c.off:])}
	select {
	case c.l.handoff <- rc:
		return true
	case <-c.l.done:
		return false
	}
}

// answer answers one simple request; false: close the connection.
func (c *fastConn) answer(req *fastRequest) (keep bool) {
	p := c.l.p
	start := time.Now()
	code := http.StatusInternalServerError
	method, path := "GET", req.path
	counted := false // before the answer is written, as net/http's handler counts
	if req.head {
		method = "HEAD"
	}
	defer func() {
		if v := recover(); v != nil {
			p.s.logger().Error("http request failed", "method", method, "path", appliance.Clip(path), "err", fmt.Sprintf("handler panicked: %v", v))
			keep = false
		}
		if !counted && !c.wait {
			p.count(c.l.ctx, method, path, c.remote, code, start)
		}
	}()
	if req.auth != c.authFor { // a phone sends the same one each time
		c.authFor = req.auth
		c.user, c.password, c.hasAuth = parseBasicAuth(req.auth)
	}
	a := p.answer(c.l.ctx, appliance.FileRequest{Name: path[len("/prov/"):], IP: c.ip, UA: req.ua, User: c.user, Password: c.password, HasAuth: c.hasAuth, NoWait: c.inPoll.Load()})
	if a.wait { // the poll loop hands it to a goroutine, which asks again
		c.wait = true
		return true
	}
	code = a.code
	keep = req.keepAlive && !c.l.closed.Load()
	proto := "HTTP/1.1 "
	if !req.http11 {
		proto = "HTTP/1.0 " // as net/http answers
	}
	out := append(c.out[:0], proto...)
	out = strconv.AppendInt(out, int64(a.code), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(a.code)...)
	out = append(out, "\r\n"...)
	// The header lines in net/http's order: the handler's, sorted, then
	// Date, a Content-Length it counted, Connection.
	var body []byte
	f := a.file
	switch {
	case f == nil: // as http.Error answers
		body = append(make([]byte, 0, len(a.msg)+1), a.msg...)
		body = append(body, '\n')
		out = append(out, "Content-Type: text/plain; charset=utf-8\r\n"...)
		if a.header != "" {
			out = append(out, http.CanonicalHeaderKey(a.header)...)
			out = append(out, ": "...)
			out = append(out, a.hdrValue...)
			out = append(out, "\r\n"...)
		}
		out = append(out, "X-Content-Type-Options: nosniff\r\n"...)
		out = appendDate(out, start)
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(len(body)), 10)
		out = append(out, "\r\n"...)
	case f.Body == nil: // from disk, as http.ServeContent answers
		defer func() {
			if c.pendFile != f {
				f.Close()
			}
		}()
		out = append(out, "Accept-Ranges: bytes\r\n"...)
		out = appendFileHeaders(out, p.headersOf(f), f.ModTime)
		out = appendDate(out, start)
	default:
		defer f.Close()
		out = append(out, p.headersOf(f).block...)
		out = appendDate(out, start)
		body = f.Body
	}
	switch {
	case !keep && req.http11:
		out = append(out, "Connection: close\r\n"...)
	case keep && !req.http11:
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	out = append(out, "\r\n"...)
	c.out = out
	if req.head {
		body = nil
	}
	p.count(c.l.ctx, method, path, c.remote, code, start)
	counted = true
	c.setWriteDeadline(start)
	if f != nil && f.Body == nil && !req.head {
		if _, err := c.write(out, nil); err != nil {
			return false
		}
		if c.inPoll.Load() { // a goroutine of its own copies it
			c.pendFile = f
			return keep
		}
		return c.copyFile(f.Content, f.Size) && keep
	}
	if _, err := c.write(out, body); err != nil {
		return false
	}
	return keep
}

// write writes the header block (c.out) and body in one writev, or in
// one Write through TLS.
func (c *fastConn) write(hdr, body []byte) (int64, error) {
	if !c.viaTLS && c.inPoll.Load() {
		return c.pc.writevNow(hdr, body)
	}
	w := rawConn(c.Conn)
	if _, ok := w.(*net.TCPConn); !ok && len(body) <= 64<<10 {
		c.out = append(hdr, body...)
		n, err := w.Write(c.out)
		return int64(n), err
	}
	c.iov = [2][]byte{hdr, body}
	bufs := net.Buffers(c.iov[:])
	return bufs.WriteTo(w)
}

// copyFile writes size bytes of a file from disk, each fastCopyChunk
// within fastWriteTimeout (a phone may take long for a firmware).
func (c *fastConn) copyFile(r io.Reader, size int64) bool {
	w := rawConn(c.Conn)
	for size > 0 {
		c.setWriteDeadline(time.Now())
		n, err := io.Copy(w, io.LimitReader(r, min(size, fastCopyChunk)))
		size -= n
		if err != nil || n == 0 {
			return false
		}
	}
	return true
}

// rawConn is the connection under the listeners' limit wrapper or a
// pollConn, whose writev and sendfile the wrappers hide.
func rawConn(c net.Conn) net.Conn {
	switch w := c.(type) {
	case *limitConn:
		return w.Conn
	case *pollConn:
		if !w.nonblock && w.Conn != nil {
			return w.Conn
		}
	}
	return c
}

// dateLine is the Date header of the current second.
type dateLine struct {
	sec  int64
	line []byte
}

var fastDate atomic.Pointer[dateLine]

func appendDate(out []byte, now time.Time) []byte {
	d := fastDate.Load()
	if d == nil || d.sec != now.Unix() {
		line := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
		d = &dateLine{sec: now.Unix(), line: append(line, "\r\n"...)}
		fastDate.Store(d)
	}
	return append(out, d.line...)
}

// headerBlock is the header lines of a file version in memory as the
// loop writes them (net/http writes the same from the values).
func headerBlock(fh *fileHeaders) []byte {
	return appendFileHeaders(nil, fh, time.Time{})
}

// appendFileHeaders appends a file version's header lines in net/http's
// (sorted) order, with Last-Modified when mod is set (a file from disk,
// as http.ServeContent sends it).
func appendFileHeaders(b []byte, fh *fileHeaders, mod time.Time) []byte {
	b = append(b, "Cache-Control: no-store\r\nContent-Length: "...)
	b = append(b, fh.length[0]...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, fh.contentType[0]...)
	b = append(b, "\r\n"...)
	if fh.etag != nil {
		b = append(b, "Etag: "...)
		b = append(b, fh.etag[0]...)
		b = append(b, "\r\n"...)
	}
	if !mod.IsZero() {
		b = append(b, "Last-Modified: "...)
		b = mod.UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
	}
	return append(b, "X-Content-Type-Options: nosniff\r\n"...)
}

// replayConn reads the bytes the loop had read before the connection's
// own.
type replayConn struct {
	net.Conn
	pending []byte
}

// CloseWrite lets net/http half-close before it closes a connection whose
// request it did not read to the end (so that the client reads the answer
// rather than a reset).
func (c *replayConn) CloseWrite() error {
	if cw, ok := rawConn(c.Conn).(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// parseBasicAuth is Request.BasicAuth for an Authorization header value.
func parseBasicAuth(auth string) (user, password string, ok bool) {
	const prefix = "Basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", "", false
	}
	c, err := base64.StdEncoding.DecodeString(auth[len(prefix):])
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(c), ":")
	if !ok {
		return "", "", false
	}
	return user, password, true
}

// fastRequest is a parsed request header. simple: the loop answers it.
type fastRequest struct {
	simple    bool
	head      bool
	http11    bool
	keepAlive bool
	path      string // /prov/<name>
	auth, ua  string
}

// parseFastRequest parses a request header (up to and with its blank
// line) and reports whether the loop answers it; strings equal to prev's
// are prev's. Anything it does not
// know for certain to be a plain fetch is not simple; net/http then
// parses it again, and answers a malformed one with its 400.
func parseFastRequest(b []byte, prev *fastRequest) fastRequest {
	var req fastRequest
	line, rest, _ := bytes.Cut(b, []byte("\r\n"))
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || !ok2 {
		return fastRequest{}
	}
	switch string(method) {
	case "GET":
	case "HEAD":
		req.head = true
	default:
		return fastRequest{}
	}
	switch string(proto) {
	case "HTTP/1.1":
		req.http11 = true
	case "HTTP/1.0":
	default:
		return fastRequest{}
	}
	name, ok := bytes.CutPrefix(target, []byte("/prov/"))
	if !ok || !plainName(name) {
		return fastRequest{}
	}
	var hosts, auths, uas, lengths int
	var connClose, connKeep bool
	for lines := 0; len(rest) > 2; lines++ {
		if lines == fastMaxLines {
			return fastRequest{}
		}
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		key, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !plainToken(key) || !plainValue(value) {
			return fastRequest{} // folded, malformed or odd: net/http's
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiIs(key, "Host"):
			hosts++
			if !plainHost(value) {
				return fastRequest{}
			}
		case asciiIs(key, "Authorization"):
			auths++
			req.auth = reuse(value, prev.auth)
		case asciiIs(key, "User-Agent"):
			uas++
			req.ua = reuse(value, prev.ua)
		case asciiIs(key, "Connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case asciiIs(tok, "close"):
					connClose = true
				case asciiIs(tok, "keep-alive"):
					connKeep = true
				case len(tok) > 0:
					return fastRequest{} // upgrade and the like
				}
			}
		case asciiIs(key, "Content-Length"):
			lengths++
			if string(value) != "0" || lengths > 1 {
				return fastRequest{}
			}
		case len(key) > 3 && asciiIs(key[:3], "If-"),
			asciiIs(key, "Range"), asciiIs(key, "Transfer-Encoding"), asciiIs(key, "Expect"),
			asciiIs(key, "Upgrade"), asciiIs(key, "Trailer"), asciiIs(key, "Te"),
			asciiIs(key, "Http2-Settings"), asciiIs(key, "Proxy-Connection"), asciiIs(key, "Keep-Alive"):
			return fastRequest{}
		}
	}
	if hosts > 1 || auths > 1 || uas > 1 || req.http11 && hosts == 0 || connClose && connKeep {
		return fastRequest{}
	}
	req.path = reuse(target, prev.path)
	req.keepAlive = !connClose && (req.http11 || connKeep)
	req.simple = true
	return req
}

// reuse returns s when it is b, else b as a string.
func reuse(b []byte, s string) string {
	if string(b) == s {
		return s
	}
	return string(b)
}

// plainName reports whether a /prov/ name is one segment the loop
// answers as it is: letters, digits, '.', '-', '_', not "." or "..",
// nothing to unescape, no query.
func plainName(b []byte) bool {
	if len(b) == 0 || string(b) == "." || string(b) == ".." {
		return false
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// plainToken reports whether a header name is letters, digits and '-'.
func plainToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// plainValue reports whether a header value has no control bytes but
// tabs (net/http refuses them).
func plainValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// plainHost reports whether a Host value is a name or an address with an
// optional port, in the bytes net/http accepts for sure.
func plainHost(b []byte) bool {
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_') {
			return false
		}
	}
	return true
}

// asciiIs reports whether b is s, ignoring ASCII case.
func asciiIs(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
