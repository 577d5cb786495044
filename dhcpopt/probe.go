package dhcpopt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// ProbeOtherServers broadcasts a DHCPDISCOVER and a DHCPINFORM on iface
// (from port 68, with the broadcast flag) and listens for wait; it returns the server
// identifier (else the source address) of every DHCP server that offers,
// so serve can refuse to start beside one and `provbox doctor` can name
// it. It sends them twice in case one is lost, never requests
// the offered address, and needs root or CAP_NET_BIND_SERVICE and
// CAP_NET_RAW. A provbox already serving on iface answers too.
func ProbeOtherServers(ctx context.Context, iface string, wait time.Duration) ([]net.IP, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	conn, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ClientPort})
	if err != nil {
		return nil, fmt.Errorf("listen on port 68: %w", err)
	}
	defer conn.Close()
	hw := ifi.HardwareAddr
	if len(hw) != 6 {
		hw = make(net.HardwareAddr, 6)
		rand.Read(hw)
		hw[0] = hw[0]&^1 | 2 // unicast, locally administered
	}
	disc, err := dhcpv4.NewDiscovery(hw, dhcpv4.WithBroadcast(true))
	if err != nil {
		return nil, err
	}
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	msgs := [][]byte{disc.ToBytes()}
	xids := map[dhcpv4.TransactionID]bool{disc.TransactionID: true}
	// A DHCPINFORM from the interface's own address is answered at once by
	// servers that delay their OFFERs behind a ping check (dnsmasq waits
	// 3 s), and by most others too.
	if addrs, _ := dhcpv4.IPv4AddrsForInterface(ifi); len(addrs) > 0 {
		inf, err := dhcpv4.NewInform(hw, addrs[0], dhcpv4.WithBroadcast(true))
		if err == nil {
			msgs = append([][]byte{inf.ToBytes()}, msgs...) // first: dnsmasq answers one at a time
			xids[inf.TransactionID] = true
		}
	}
	send := func() error {
		for _, b := range msgs {
			if _, err := conn.WriteTo(b, bcast); err != nil {
				return err
			}
		}
		return nil
	}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	resend := time.Now().Add(wait / 3)
	if err := send(); err != nil {
		return nil, fmt.Errorf("send DISCOVER: %w", err)
	}
	var found []net.IP
	buf := make([]byte, 4096)
	for {
		next := deadline
		if !resend.IsZero() && resend.Before(next) {
			next = resend
		}
		conn.SetReadDeadline(next)
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return found, err
			}
			if ctx.Err() != nil || !time.Now().Before(deadline) {
				return found, nil
			}
			if !resend.IsZero() && !time.Now().Before(resend) {
				resend = time.Time{}
				send()
			}
			continue
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply || !xids[m.TransactionID] {
			continue
		}
		id := m.ServerIdentifier()
		if id == nil {
			if u, ok := peer.(*net.UDPAddr); ok {
				id = u.IP
			}
		}
		if id == nil {
			continue
		}
		seen := false
		for _, f := range found {
			seen = seen || f.Equal(id)
		}
		if !seen {
			found = append(found, id.To4())
		}
	}
}
