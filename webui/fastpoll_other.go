//go:build !linux

package webui

// Without epoll every connection of the HTTP loop keeps a goroutine of its
// own (fastpoll_linux.go).

type poller struct{}

func newPoller(*fastListener) *poller { return nil }

func (p *poller) add(*fastConn) bool { return false }

func (p *poller) wakeAll() {}

func (pc *pollConn) readNow([]byte) (int, error) { panic("webui: no poll loop") }

func (pc *pollConn) writevNow([]byte, []byte) (int64, error) { panic("webui: no poll loop") }

func (pc *pollConn) closeFD() error { return nil }
