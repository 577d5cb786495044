package dhcpopt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// htons puts v in network byte order, as AF_PACKET protocol numbers are.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// packetSocket opens an AF_PACKET datagram socket on ifi, non-blocking so
// reads go through the runtime poller and Close unblocks them. proto 0
// receives nothing.
func packetSocket(ifi *net.Interface, proto uint16) (*os.File, syscall.RawConn, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(proto)))
	if err != nil {
		return nil, nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("bind packet socket to %s: %w", ifi.Name, err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+ifi.Name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, rc, nil
}

func sendTo(rc syscall.RawConn, b []byte, sa unix.Sockaddr) error {
	var serr error
	err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, sa)
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// l2Sender unicasts a reply to a client that has no address yet: to its
// hardware address and the address offered (RFC 2131 §4.1), which an
// ordinary UDP socket cannot do without an ARP entry.
type l2Sender struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int
}

func newL2Sender(ifi *net.Interface) (*l2Sender, error) {
	f, rc, err := packetSocket(ifi, 0)
	if err != nil {
		return nil, err
	}
	return &l2Sender{f: f, rc: rc, ifindex: ifi.Index}, nil
}

func (l *l2Sender) close() error { return l.f.Close() }

func (l *l2Sender) send(payload []byte, mac net.HardwareAddr, src, dst net.IP) error {
	if len(mac) != 6 || src.To4() == nil || dst.To4() == nil {
		return errors.New("bad addresses")
	}
	pkt := udpPacket(payload, src.To4(), dst.To4(), 67, 68)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: l.ifindex, Halen: 6}
	copy(sa.Addr[:], mac)
	return sendTo(l.rc, pkt, sa)
}

// udpPacket wraps payload in IPv4 and UDP headers with checksums.
func udpPacket(payload []byte, src, dst net.IP, sport, dport uint16) []byte {
	ulen := 8 + len(payload)
	pkt := make([]byte, 20+ulen)
	ip := pkt[:20]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_UDP
	copy(ip[12:16], src)
	copy(ip[16:20], dst)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	udp := pkt[20:]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(ulen))
	copy(udp[8:], payload)
	var pseudo uint32
	for i := 0; i < 4; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(src[i:])) + uint32(binary.BigEndian.Uint16(dst[i:]))
	}
	pseudo += unix.IPPROTO_UDP + uint32(ulen)
	sum := checksum(udp, pseudo)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return pkt
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// arpProber is the conflict check: before an address nobody holds is
// offered, an ARP request asks who has it; an answer within the wait
// means a device uses it without a lease (a static address in the pool).
// ARP, unlike ICMP echo, is answered by hosts whose firewall drops ping.
type arpProber struct {
	f    *os.File
	rc   syscall.RawConn
	ifi  *net.Interface
	src  net.IP
	wait time.Duration

	mu      sync.Mutex
	waiters map[ip4][]chan struct{}
}

func newARPProber(ifi *net.Interface, src net.IP, wait time.Duration) (*arpProber, error) {
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address", ifi.Name)
	}
	f, rc, err := packetSocket(ifi, unix.ETH_P_ARP)
	if err != nil {
		return nil, err
	}
	p := &arpProber{f: f, rc: rc, ifi: ifi, src: src.To4(), wait: wait, waiters: map[ip4][]chan struct{}{}}
	go p.read()
	return p, nil
}

func (p *arpProber) close() error { return p.f.Close() }

// read wakes the waiters of every address some host claims, by a reply
// or by a request of its own.
func (p *arpProber) read() {
	buf := make([]byte, 1500)
	for {
		n, err := p.f.Read(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		if len(b) < 28 || binary.BigEndian.Uint16(b[0:]) != 1 || binary.BigEndian.Uint16(b[2:]) != unix.ETH_P_IP || b[4] != 6 || b[5] != 4 {
			continue
		}
		sender, _ := toIP4(net.IP(b[14:18]))
		if sender == 0 || net.HardwareAddr(b[8:14]).String() == p.ifi.HardwareAddr.String() {
			continue
		}
		p.mu.Lock()
		for _, c := range p.waiters[sender] {
			select {
			case c <- struct{}{}:
			default:
			}
		}
		p.mu.Unlock()
	}
}

func (p *arpProber) inUse(ctx context.Context, a ip4) bool {
	c := make(chan struct{}, 1)
	p.mu.Lock()
	p.waiters[a] = append(p.waiters[a], c)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		list := p.waiters[a]
		for i, x := range list {
			if x == c {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(p.waiters, a)
		} else {
			p.waiters[a] = list
		}
		p.mu.Unlock()
	}()
	req := make([]byte, 28)
	binary.BigEndian.PutUint16(req[0:], 1) // Ethernet
	binary.BigEndian.PutUint16(req[2:], unix.ETH_P_IP)
	req[4], req[5] = 6, 4
	binary.BigEndian.PutUint16(req[6:], 1) // request
	copy(req[8:14], p.ifi.HardwareAddr)
	copy(req[14:18], p.src)
	copy(req[24:28], a.IP())
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: p.ifi.Index, Halen: 6}
	copy(sa.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := sendTo(p.rc, req, sa); err != nil {
		return false // cannot tell: offer it, the client's own check (DECLINE) remains
	}
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case <-c:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}
