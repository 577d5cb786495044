package webui

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
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

// connLimits is shared by the HTTP and HTTPS listeners.
type connLimits struct {
	max, perIP int

	mu     sync.Mutex
	n      int
	byIP   map[string]int
	logged map[string]time.Time // refusals logged, once a minute per address
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

func newConnLimits(max, perIP int) *connLimits {
	if max <= 0 {
		max = defaultMaxConns()
	}
	if perIP <= 0 {
		perIP = DefaultMaxConnsPerIP
	}
	return &connLimits{max: max, perIP: perIP, byIP: map[string]int{}}
}

func (c *connLimits) take(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= c.max || c.byIP[ip] >= c.perIP {
		return false
	}
	c.n++
	c.byIP[ip]++
	return true
}

func (c *connLimits) give(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.byIP[ip]--; c.byIP[ip] <= 0 {
		delete(c.byIP, ip)
	}
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
		if !l.limits.take(ip) {
			c.Close()
			if l.refused != nil {
				l.refused(ip)
			}
			continue
		}
		return &limitConn{Conn: c, release: func() { l.limits.give(ip) }}, nil
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
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
