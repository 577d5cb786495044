// Command registrar is the SIP registrar of provbox's phone tests and
// benchmarks: emulated phones (cmd/phonesim) register their accounts with
// it, so that they report "registered" through their action URLs. It
// answers every REGISTER over UDP with 200 OK (the request's Contact and
// an Expires of 3600), except for users named in -refuse, which get 403,
// and OPTIONS with 200; other requests get 405. It keeps no bindings.
//
//	registrar -listen 127.0.0.2:5070 [-refuse 1003,1004]
//
// It prints "registrar: listening on ADDR" on stdout when bound and, at
// SIGTERM or SIGINT, one line with the counts: registrar: register=N
// refused=N other=N bad=N.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	sipmsg "github.com/emiago/sipgo/sip"
)

func main() {
	listen := flag.String("listen", "127.0.0.2:5070", "UDP address to serve (loopback only)")
	refuse := flag.String("refuse", "", "comma-separated users whose REGISTER gets 403")
	flag.Parse()
	addr, err := net.ResolveUDPAddr("udp4", *listen)
	if err != nil || !addr.IP.IsLoopback() {
		fmt.Fprintf(os.Stderr, "registrar: -listen %q: want a loopback ip:port\n", *listen)
		os.Exit(2)
	}
	refused := map[string]bool{}
	for _, u := range strings.Split(*refuse, ",") {
		if u = strings.TrimSpace(u); u != "" {
			refused[u] = true
		}
	}
	conn, err := net.ListenUDP("udp4", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "registrar: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("registrar: listening on %s\n", conn.LocalAddr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, func() { conn.Close() })
	var c counts
	buf := make([]byte, 65535)
	for {
		n, src, err := conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			continue
		}
		if res := answer(buf[:n], refused, &c); res != nil {
			conn.WriteToUDP(res, src)
		}
	}
	fmt.Printf("registrar: register=%d refused=%d other=%d bad=%d\n", c.register, c.refused, c.other, c.bad)
}

type counts struct{ register, refused, other, bad int }

// answer builds the response to one datagram (nil: none).
func answer(b []byte, refused map[string]bool, c *counts) []byte {
	msg, err := sipmsg.ParseMessage(b)
	req, ok := msg.(*sipmsg.Request)
	if err != nil || !ok || req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		c.bad++
		return nil
	}
	var res *sipmsg.Response
	switch req.Method {
	case sipmsg.REGISTER:
		if refused[req.To().Address.User] {
			c.refused++
			res = sipmsg.NewResponseFromRequest(req, 403, "Forbidden", nil)
			break
		}
		c.register++
		res = sipmsg.NewResponseFromRequest(req, 200, "OK", nil)
		if h := req.Contact(); h != nil {
			res.AppendHeader(sipmsg.NewHeader("Contact", h.Value()+";expires=3600"))
		}
		res.AppendHeader(sipmsg.NewHeader("Expires", "3600"))
	case sipmsg.OPTIONS:
		c.other++
		res = sipmsg.NewResponseFromRequest(req, 200, "OK", nil)
	case sipmsg.ACK:
		return nil
	default:
		c.other++
		res = sipmsg.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
	}
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		// The same tag for the same request (a retransmission gets the same answer).
		h := fnv.New32a()
		h.Write([]byte(req.CallID().Value()))
		to.Params.Add("tag", fmt.Sprintf("reg%08x", h.Sum32()))
	}
	return []byte(res.String())
}
