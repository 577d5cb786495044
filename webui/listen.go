package webui

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/provbox/provbox/appliance"
)

// Descriptors (SPEC §9): the HTTP listeners hold at most MaxConns
// connections in all and MaxConnsPerIP per client address, so that a
// slowloris or a flood of connections can neither take every descriptor
// (the database, TFTP and SIP keep theirs) nor shut out the other
// clients. A connection over a limit is accepted and closed at once. One
// descriptor is held in reserve: when accept fails for lack of
// descriptors anyway, it is given up to accept and close the waiting
// connection (the client sees a close, not a hang), then taken back.

// fdReserve is how many descriptors the HTTP listeners leave to the rest
// of the process.
const fdReserve = 1024

// DefaultMaxConnsPerIP is MaxConnsPerIP when unset.
const DefaultMaxConnsPerIP = 256

// defaultMaxConns is the process's descriptor limit less fdReserve (at
// least 64).
func defaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<20 {
		return 1 << 16
	}
	return max(int(rl.Cur)-fdReserve, 64)
}

// connLimits is shared by the HTTP and HTTPS listeners: the slots, and
// which refused addresses were logged.
type connLimits struct {
	*appliance.Slots

	mu     sync.Mutex
	logged map[string]time.Time // refusals logged, once a minute per address
}

func newConnLimits(max, perIP int) *connLimits {
	if max <= 0 {
		max = defaultMaxConns()
	}
	if perIP <= 0 {
		perIP = DefaultMaxConnsPerIP
	}
	return &connLimits{Slots: appliance.NewSlots(max, perIP)}
}

// logRefusal reports whether a refusal of ip should be logged: once a
// minute per address.
func (c *connLimits) logRefusal(ip string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logged == nil || len(c.logged) > 4096 {
		c.logged = map[string]time.Time{}
	}
	if t, ok := c.logged[ip]; ok && now.Sub(t) < time.Minute {
		return false
	}
	c.logged[ip] = now
	return true
}

// limitListener applies connLimits to a listener.
type limitListener struct {
	net.Listener
	limits  *connLimits
	reserve *os.File // nil when none could be opened
	refused func(ip string)
}

func newLimitListener(ln net.Listener, limits *connLimits, refused func(string)) *limitListener {
	l := &limitListener{Listener: ln, limits: limits, refused: refused}
	l.reserve, _ = os.Open(os.DevNull)
	return l
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) && l.reserve != nil {
				l.reserve.Close()
				if c, err := l.Listener.Accept(); err == nil {
					c.Close()
				}
				l.reserve, _ = os.Open(os.DevNull)
			}
			return nil, err
		}
		ip, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		release, _ := l.limits.Take(ip)
		if release == nil {
			c.Close()
			if l.refused != nil {
				l.refused(ip)
			}
			continue
		}
		return &limitConn{Conn: c, release: release}, nil
	}
}

func (l *limitListener) Close() error {
	if l.reserve != nil {
		l.reserve.Close()
	}
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	release func() // safe to call more than once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
