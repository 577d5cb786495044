// Package tftpd serves phones their files over TFTP (read-only) with
// github.com/pin/tftp/v3, through the same appliance.FileResolver as the
// HTTP /prov/ handler, so both protocols serve identical bytes and a fetch
// over either confirms a phone's sync.
//
// Write requests are refused. The blksize (up to BlockSize) and tsize
// options are honoured. Unknown files get TFTP error 1 ("file not found");
// an address refused for guessing MACs gets an error saying so. Completed
// and failed transfers are logged through pin's Hook. For example:
//
//	s := &tftpd.Server{Addr: ":69", Files: resolver, Logger: logger}
//	if err := s.Open(); err != nil { … } // binds synchronously
//	defer s.Close()
//
// # Limits under a flood
//
// Every transfer holds a UDP socket (pin/tftp answers from a new port per
// transfer, as RFC 1350 says) and a goroutine until it ends, so a flood of
// read requests that are never acknowledged would otherwise exhaust the
// process's file descriptors, and HTTP with them. Hence:
//
//   - At most MaxTransfers (200) transfers at once, and at most MaxPerClient
//     (8) per client address. A request over either limit is answered at
//     once with TFTP error 0 "server busy …" from the server's port (pin
//     then sends its own error 1 from the transfer's port; clients act on
//     the first) and counted by Refused. The file is not resolved. The
//     server-port copy goes at most 3 times a second per address, so a
//     flood with a forged source gets about one small packet back per
//     request, not two.
//   - The limits are counted in the read handler, which pin calls after it
//     has opened the transfer's socket: a refused request holds that socket
//     only until the handler returns, at once. Refusing earlier, in a
//     wrapper around the listening net.PacketConn, was rejected: pin reads
//     the destination address and interface of each request from IP_PKTINFO
//     control messages only when the connection is a *net.UDPConn; behind a
//     wrapper it would bind transfers to the wildcard address (on a
//     multi-homed host replies could leave from another address than the
//     one the phone asked, and phones drop them) and cap blksize at 512.
//   - An unacknowledged packet is sent again after Timeout (1 s) with no
//     extra back-off, at most Retries (4) times, so a transfer whose client
//     went silent gives its slot back after 5 s (before: 2 s, pin's 5
//     retries and a random back-off of up to 1 s each, 12-17 s). On a LAN
//     a phone answers each block within milliseconds, so a lost packet
//     costs it 1 s, tftpd-hpa's default retransmission timeout; five lost
//     in a row mean the phone is gone or rebooting, and it starts over
//     with a new request. A client cannot lengthen this: pin ignores the
//     RFC 2349 timeout option.
//   - Lines logged because of a request (transfer failed, request refused,
//     malformed packet) are rate-limited to 5 per kind per minute (the
//     debug line of a completed transfer to 60); the next line of a kind
//     written carries the number dropped ("suppressed"). Served, Failed
//     and Refused count every transfer regardless, Active those in flight.
package tftpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/provbox/provbox/appliance"
)

// Defaults of the Server's limits; see the package documentation.
const (
	DefaultMaxTransfers = 200
	DefaultMaxPerClient = 8
	DefaultTimeout      = time.Second
	DefaultRetries      = 4
)

// Log lines per kind per minute.
const (
	logBurst        = 5
	logBurstSuccess = 60 // debug level: one line per completed transfer
)

// Server is the TFTP server.
type Server struct {
	Addr         string // listen address, e.g. ":69" or "127.0.0.1:0"
	Files        appliance.FileResolver
	Logger       *slog.Logger
	BlockSize    int           // largest blksize granted; default 1468 (Ethernet MTU)
	Timeout      time.Duration // per-packet retransmission timeout; default 1 s
	Retries      int           // retransmissions of an unacknowledged packet before a transfer fails; default 4
	MaxTransfers int           // transfers at once; default 200
	MaxPerClient int           // transfers at once per client IP address; default 8

	conn    net.PacketConn
	srv     *tftp.Server
	done    chan struct{}
	limit   *appliance.Slots
	logs    *logLimiter
	copies  copyLimiter
	served  atomic.Int64
	failed  atomic.Int64
	refused atomic.Int64
}

// Open binds the UDP socket and starts serving.
func (s *Server) Open() error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	conn, err := net.ListenPacket("udp4", s.Addr)
	if err != nil {
		return fmt.Errorf("tftp: listen %s: %w", s.Addr, err)
	}
	// conn stays a *net.UDPConn: pin needs one for IP_PKTINFO (see the
	// package documentation).
	s.conn = conn
	s.limit = appliance.NewSlots(orDefault(s.MaxTransfers, DefaultMaxTransfers), orDefault(s.MaxPerClient, DefaultMaxPerClient))
	s.logs = newLogLimiter(time.Minute)
	s.srv = tftp.NewServer(s.read, nil)
	s.srv.SetBlockSize(orDefault(s.BlockSize, 1468))
	s.srv.SetTimeout(orDefault(s.Timeout, DefaultTimeout))
	s.srv.SetRetries(orDefault(s.Retries, DefaultRetries))
	s.srv.SetBackoff(func(int) time.Duration { return 0 }) // the timeout is the wait
	s.srv.SetHook(hook{s})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.srv.Serve(conn)
	}()
	return nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Port returns the bound UDP port.
func (s *Server) Port() int {
	if s.conn == nil {
		return 0
	}
	return s.conn.LocalAddr().(*net.UDPAddr).Port
}

// Close stops accepting requests and waits for transfers in flight.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	s.srv.Shutdown() // closes the socket, waits for transfers
	<-s.done
	return nil
}

// Served and Failed count finished transfers; Refused counts requests
// refused over MaxTransfers or MaxPerClient.
func (s *Server) Served() int64  { return s.served.Load() }
func (s *Server) Failed() int64  { return s.failed.Load() }
func (s *Server) Refused() int64 { return s.refused.Load() }

// Active returns the transfers in flight.
func (s *Server) Active() int {
	if s.limit == nil {
		return 0
	}
	n, _ := s.limit.InFlight("")
	return n
}

// busyError is the refusal of a request over a limit.
type busyError struct{ text string }

func (e *busyError) Error() string { return e.text }

var (
	errBusyClient = &busyError{"server busy: too many transfers to this address, try again later"}
	errBusyTotal  = &busyError{"server busy: too many transfers, try again later"}
)

// read answers one read request.
func (s *Server) read(filename string, rf io.ReaderFrom) error {
	var addr net.UDPAddr
	ip := ""
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		addr = ot.RemoteAddr()
		ip = addr.IP.String()
	}
	// pin opened this transfer's socket already; a refusal returns at once
	// and pin closes it.
	release, by := s.limit.Take(ip)
	if release == nil {
		s.refused.Add(1)
		busy := errBusyTotal
		if by == appliance.SlotsClient {
			busy = errBusyClient
		}
		s.sendError(addr, 0, busy.text)
		s.logf(slog.LevelWarn, "tftp request refused: too many transfers", logBurst,
			"limit", by, "file", fmt.Sprintf("%.128q", filename), "ip", ip)
		return busy
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := s.Files.ResolveFile(ctx, appliance.FileRequest{Name: filename, IP: ip, Source: "tftp"})
	if err != nil {
		if appliance.ErrorCode(err) == appliance.EUNAUTHORIZED {
			s.sendError(addr, 2, accessViolationText)
		}
		return errorFor(err)
	}
	defer f.Close()
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(f.Size)
	}
	_, err = rf.ReadFrom(f.Reader()) // returns when the transfer has ended
	return err
}

// copyLimiter allows the server-port copy of an error packet 3 times a
// second per address (bounded: past 4096 addresses it starts afresh).
type copyLimiter struct {
	mu     sync.Mutex
	window time.Time
	n      map[string]int
}

func (c *copyLimiter) allow(ip string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.window) >= time.Second || len(c.n) > 4096 {
		c.window, c.n = now, map[string]int{}
	}
	c.n[ip]++
	return c.n[ip] <= 3
}

// accessViolationText is the message of the refusal of a file that needs
// a secret (TFTP carries none): the same for a known and an unknown MAC.
const accessViolationText = "access violation: this file needs the phone's secret; fetch it over HTTP(S)"

// sendError sends a TFTP error (code 2, access violation, RFC 1350, for a
// file that needs a secret; code 0 for a refusal over a limit) to the
// requester from the server's port. pin/tftp answers a refused read with
// error 1 from the transfer's own port afterwards; clients take the first
// error they get (tftp-hpa and curl accept the server's first reply from
// any port), so they see this one.
//
// The copy is sent at most 3 times a second per address: a flood with a
// forged source would otherwise get two error packets per request back at
// its victim (pin's alone is one).
func (s *Server) sendError(addr net.UDPAddr, code byte, text string) {
	if addr.IP == nil || !s.copies.allow(addr.IP.String(), time.Now()) {
		return
	}
	pkt := make([]byte, 0, 5+len(text))
	pkt = append(pkt, 0, 5, 0, code) // ERROR, code
	pkt = append(pkt, text...)
	pkt = append(pkt, 0)
	if _, err := s.conn.WriteTo(pkt, &addr); err != nil {
		s.logf(slog.LevelDebug, "tftp error packet not sent", logBurst, "ip", addr.IP.String(), "err", err)
	}
}

// logf writes a line of a kind (its message) unless burst lines of that
// kind were written in the last minute.
func (s *Server) logf(level slog.Level, msg string, burst int, args ...any) {
	if !s.Logger.Enabled(context.Background(), level) {
		return
	}
	ok, last, suppressed := s.logs.allow(msg, burst)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	if last {
		args = append(args, "note", "more lines like this one are dropped for a minute")
	}
	s.Logger.Log(context.Background(), level, msg, args...)
}

// errorFor maps a domain error to the text of the TFTP error packet (pin
// always sends code 1, "file not found", which is what phones expect).
func errorFor(err error) error {
	switch appliance.ErrorCode(err) {
	case appliance.ENOTFOUND:
		return errors.New("file not found")
	case appliance.EUNAUTHORIZED:
		return errors.New(accessViolationText)
	case appliance.ETOOMANY:
		return errors.New("access refused: too many requests for unknown files")
	default:
		return errors.New("server error")
	}
}

// hook logs finished transfers.
type hook struct{ s *Server }

func (h hook) OnSuccess(st tftp.TransferStats) {
	h.s.served.Add(1)
	h.s.logf(slog.LevelDebug, "tftp transfer done", logBurstSuccess, "file", st.Filename, "ip", st.RemoteAddr.String(), "duration", st.Duration, "blocks", st.DatagramsSent)
}

func (h hook) OnFailure(st tftp.TransferStats, err error) {
	if st.RemoteAddr == nil {
		// An error of the listening loop (pin gives no address): no
		// transfer socket could be opened, or a malformed or unsupported
		// packet.
		var op *net.OpError
		if errors.As(err, &op) {
			h.s.logf(slog.LevelWarn, "tftp cannot open a transfer socket", logBurst, "err", err)
			return
		}
		h.s.logf(slog.LevelDebug, "tftp request refused", logBurst, "err", err)
		return
	}
	var busy *busyError
	if errors.As(err, &busy) {
		return // counted and logged by read
	}
	h.s.failed.Add(1)
	h.s.logf(slog.LevelInfo, "tftp transfer failed", logBurst, "file", fmt.Sprintf("%.128q", st.Filename), "ip", st.RemoteAddr.String(), "err", err)
}
