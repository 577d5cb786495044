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
package tftpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/provbox/provbox/appliance"
)

// Server is the TFTP server.
type Server struct {
	Addr      string // listen address, e.g. ":69" or "127.0.0.1:0"
	Files     appliance.FileResolver
	Logger    *slog.Logger
	BlockSize int           // largest blksize granted; default 1468 (Ethernet MTU)
	Timeout   time.Duration // per-packet retransmission timeout; default 2 s

	conn   net.PacketConn
	srv    *tftp.Server
	done   chan struct{}
	served atomic.Int64
	failed atomic.Int64
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
	s.conn = conn
	s.srv = tftp.NewServer(s.read, nil)
	bs := s.BlockSize
	if bs == 0 {
		bs = 1468
	}
	s.srv.SetBlockSize(bs)
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	s.srv.SetTimeout(timeout)
	s.srv.SetHook(hook{s})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.srv.Serve(conn)
	}()
	return nil
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

// Served and Failed count finished transfers.
func (s *Server) Served() int64 { return s.served.Load() }
func (s *Server) Failed() int64 { return s.failed.Load() }

// read answers one read request.
func (s *Server) read(filename string, rf io.ReaderFrom) error {
	ip := ""
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		addr := ot.RemoteAddr()
		ip = addr.IP.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := s.Files.ResolveFile(ctx, appliance.FileRequest{Name: filename, IP: ip, Source: "tftp"})
	if err != nil {
		if appliance.ErrorCode(err) == appliance.EUNAUTHORIZED {
			s.accessViolation(rf)
		}
		return errorFor(err)
	}
	defer f.Close()
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(f.Size)
	}
	_, err = rf.ReadFrom(f.Content)
	return err
}

// accessViolationText is the message of the refusal of a file that needs
// a secret (TFTP carries none): the same for a known and an unknown MAC.
const accessViolationText = "access violation: this file needs the phone's secret; fetch it over HTTP(S)"

// accessViolation sends TFTP error 2 (access violation, RFC 1350) to the
// requester from the server's port. pin/tftp answers a refused read with
// error 1 from the transfer's own port afterwards; clients take the first
// error they get (tftp-hpa and curl accept the server's first reply from
// any port), so they see code 2.
func (s *Server) accessViolation(rf io.ReaderFrom) {
	ot, ok := rf.(tftp.OutgoingTransfer)
	if !ok {
		return
	}
	addr := ot.RemoteAddr()
	pkt := make([]byte, 0, 5+len(accessViolationText))
	pkt = append(pkt, 0, 5, 0, 2) // ERROR, code 2
	pkt = append(pkt, accessViolationText...)
	pkt = append(pkt, 0)
	if _, err := s.conn.WriteTo(pkt, &addr); err != nil {
		s.Logger.Debug("tftp access violation not sent", "ip", addr.IP.String(), "err", err)
	}
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
	h.s.Logger.Debug("tftp transfer done", "file", st.Filename, "ip", st.RemoteAddr.String(), "duration", st.Duration, "blocks", st.DatagramsSent)
}

func (h hook) OnFailure(st tftp.TransferStats, err error) {
	if st.Filename == "" {
		// A malformed or unsupported packet on the listening socket.
		h.s.Logger.Debug("tftp request refused", "err", err)
		return
	}
	h.s.failed.Add(1)
	h.s.Logger.Info("tftp transfer failed", "file", fmt.Sprintf("%.128q", st.Filename), "ip", st.RemoteAddr.String(), "err", err)
}
