package main

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	httpTimeout = 5 * time.Second // every provisioning fetch, end to end
	maxBody     = 16 << 20        // a config larger than this is cut off
	udpBuffer   = 4096            // per phone; a larger datagram is garbage to us
)

var (
	errDuration  = errors.New("duration elapsed")
	errExitAfter = errors.New("exit-after-notifies reached")
)

// phone is one emulated phone. Its fields are set while it boots; after
// that its reader goroutine owns st, and roundMu serialises its
// auto-provisioning rounds (and guards what they change: etag and flash).
// Its other goroutines read live, the flash as of the last round.
type phone struct {
	mac  string // 12 lower-case hex digits
	ip   net.IP
	st   *sipState
	conn *net.UDPConn
	base string // boot base URL (-prov or PnP), ends in '/'

	roundMu sync.Mutex
	etag    string
	flash   flash

	live atomic.Pointer[live]
	regs registrations

	// down is set while the phone reboots: it hears nothing. Each reboot
	// bumps epoch, so the reader forgets the SIP state it held in RAM.
	down  atomic.Bool
	epoch atomic.Uint64

	reportsSent atomic.Int64 // action-URL reports so far, for -max-reports
}

// provBase is the base URL the phone fetches from: the one its configs
// set, else the boot base.
func (p *phone) provBase() string {
	if p.flash.serverURL != "" {
		return p.flash.serverURL
	}
	return p.base
}

type sim struct {
	cfg     *config
	out     *emitter
	clients clients
	phones  []*phone
	start   time.Time

	ctx    context.Context
	cancel context.CancelCauseFunc

	webTLS *tls.Config // the phones' web server certificate, with -web-port

	connMu  sync.Mutex
	closers []io.Closer // SIP sockets and web servers
	closed  bool

	wg sync.WaitGroup // every goroutine a phone starts (spawn)

	statMu          sync.Mutex
	fetchMs         []float64
	notifyToFetchMs []float64

	notifies, retransmits, others, refetches, refetchFailed, authRetries atomic.Int64
	reports, reportsLost, reportsFailed, registrations, registerFailed   atomic.Int64
	reboots, applied, skipped, refused, actionURI                        atomic.Int64
}

// localIPKey carries a phone's address to the shared transports' dialer.
type localIPKey struct{}

func newSim(cfg *config, out *emitter) (*sim, error) {
	ips, err := ipRange(cfg.ipBase, cfg.n)
	if err != nil {
		return nil, err
	}
	s := &sim{cfg: cfg, out: out, phones: make([]*phone, cfg.n), ctx: context.Background()}
	if cfg.webPort > 0 {
		if s.webTLS, err = selfSignedTLS(); err != nil {
			return nil, fmt.Errorf("web server certificate: %w", err)
		}
	}
	for i := range s.phones {
		mac, err := macAt(cfg.firstMAC, i)
		if err != nil {
			return nil, err
		}
		p := &phone{mac: mac, ip: ipBytes(ips[i]), st: newSIPState(mac, cfg.model, cfg.firmware), flash: factoryFlash()}
		s.publish(p)
		s.phones[i] = p
	}
	return s, nil
}

func (s *sim) run(parent context.Context) int {
	s.start = time.Now()
	s.ctx, s.cancel = context.WithCancelCause(parent)
	defer s.cancel(nil)
	stopClosing := context.AfterFunc(s.ctx, s.closeConns)
	defer stopClosing()

	ok, failed := s.bootAll()
	bootTime := time.Since(s.start)
	s.out.emit(bootedEvent{Event: "booted", At: now(), Phones: len(s.phones), OK: ok, Failed: failed, Ms: ms(bootTime)}, true)

	if s.ctx.Err() == nil {
		var timeout <-chan time.Time
		if s.cfg.duration > 0 {
			t := time.NewTimer(s.cfg.duration)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-s.ctx.Done():
		case <-timeout:
			s.cancel(errDuration)
		}
	}
	reason := "signal"
	switch cause := context.Cause(s.ctx); {
	case errors.Is(cause, errDuration):
		reason = "duration"
	case errors.Is(cause, errExitAfter):
		reason = "exit-after-notifies"
	}
	s.cancel(nil)
	s.closeConns()
	s.wg.Wait()
	s.summary(reason, ok, failed, bootTime)
	if failed > 0 {
		return 1
	}
	return 0
}

type bootResult int

const (
	bootOK bootResult = iota
	bootFailed
	bootAborted // shut down while booting: neither success nor failure
)

// bootAll boots the phones, -boot-concurrency at a time, in MAC order.
func (s *sim) bootAll() (ok, failed int) {
	workers := min(s.cfg.bootConc, len(s.phones))
	jobs := make(chan *phone)
	var nOK, nFailed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				switch s.boot(p) {
				case bootOK:
					nOK.Add(1)
				case bootFailed:
					nFailed.Add(1)
				}
			}
		}()
	}
feed:
	for _, p := range s.phones {
		select {
		case jobs <- p:
		case <-s.ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return int(nOK.Load()), int(nFailed.Load())
}

// boot binds the phone's SIP socket (and web server), finds its base URL
// (-prov, or PnP), starts its reader and runs its first auto-provisioning
// round. A phone whose fetch failed still listens: a NOTIFY makes it try
// again.
func (s *sim) boot(p *phone) bootResult {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: p.ip, Port: s.cfg.sipPort})
	if err != nil {
		s.fail(p, "bind", err)
		return bootFailed
	}
	if !s.track(conn) {
		conn.Close()
		return bootAborted
	}
	p.conn = conn
	p.base = s.cfg.prov
	if s.cfg.webPort > 0 {
		if err := s.startWeb(p); err != nil {
			if s.ctx.Err() != nil {
				return bootAborted
			}
			s.fail(p, "web", err)
			return bootFailed
		}
	}
	if s.cfg.pnp != nil {
		base, err := s.pnp(p)
		if err != nil {
			if s.ctx.Err() != nil {
				return bootAborted
			}
			s.fail(p, "pnp", err)
			s.startReader(p)
			return bootFailed
		}
		p.base = base
	}
	// The reader runs before the first fetch: the REGISTERs that follow it
	// get their answers through it, and a NOTIFY that arrives meanwhile
	// waits for the round's lock.
	s.startReader(p)
	p.roundMu.Lock()
	defer p.roundMu.Unlock()
	switch s.round(p, roundCause{trigger: triggerBoot}) {
	case roundOK:
		return bootOK
	case roundAborted:
		return bootAborted
	}
	return bootFailed
}

// spawn runs f in a goroutine that run waits for, unless shutdown has
// begun (then it returns false and f does not run).
func (s *sim) spawn(f func()) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *sim) startReader(p *phone) {
	s.spawn(func() { s.reader(p) })
}

// reader answers the phone's SIP datagrams until its socket is closed.
// While the phone reboots it hears nothing; after a reboot it has
// forgotten which check-syncs it answered (that memory is RAM).
func (s *sim) reader(p *phone) {
	buf := make([]byte, udpBuffer)
	epoch := p.epoch.Load()
	for {
		n, src, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if p.down.Load() {
			continue
		}
		if e := p.epoch.Load(); e != epoch {
			p.st.forget()
			epoch = e
		}
		s.dispatch(p, buf[:n], src, time.Now(), true)
	}
}

// dispatch answers one datagram and acts on it. canFetch is false while the
// phone is still booting (PnP): a check-sync is answered but the boot fetch
// that follows stands for the re-fetch.
func (s *sim) dispatch(p *phone, pkt []byte, src *net.UDPAddr, got time.Time, canFetch bool) sipAction {
	l := p.live.Load()
	from, _ := netip.AddrFromSlice(src.IP)
	a := p.st.handle(pkt, src.String(), l.allows(from))
	if a.reply != nil {
		if _, err := p.conn.WriteToUDP(a.reply, src); err != nil && s.ctx.Err() == nil {
			s.fail(p, "sip", fmt.Errorf("answering %s from %s: %w", a.method, src, err))
		}
	}
	switch a.kind {
	case kindRefused:
		s.refused.Add(1)
		s.out.emit(refusedEvent{Event: "refused", MAC: p.mac, At: got.UnixNano(), From: src.String(), Method: a.method,
			Reason: "trust_ctrl"}, false)
	case kindCheckSync, kindRetransmit:
		name := "notify"
		if a.kind == kindRetransmit {
			name = "retransmit"
			s.retransmits.Add(1)
		} else {
			s.notifies.Add(1)
		}
		act := checkSyncAction(l.notifyReboot, a.event)
		ev := notifyEvent{Event: name, MAC: p.mac, At: got.UnixNano(), CallID: a.callID, CSeq: a.cseq,
			EventHeader: a.event, RequestURI: a.requestURI, From: src.String()}
		if a.fetch() && canFetch {
			ev.Action = act.String()
		}
		s.out.emit(ev, false)
		if !a.fetch() || !canFetch {
			break
		}
		switch act {
		case syncRefetch:
			s.spawn(func() { s.refetch(p, roundCause{trigger: triggerCheckSync, at: got, callID: a.callID}) })
		case syncReboot:
			s.reboot(p, roundCause{trigger: triggerCheckSync, at: got, callID: a.callID})
		}
	case kindResponse:
		p.regs.route(a)
	case kindNotify, kindOther:
		s.others.Add(1)
		s.out.emit(requestEvent{Event: "request", MAC: p.mac, At: got.UnixNano(), Method: a.method, CallID: a.callID,
			EventHeader: a.event, Status: a.status, From: src.String()}, false)
	}
	return a
}

type fetchResult struct {
	url    string
	status int
	etag   string
	bytes  int64
	dur    time.Duration
	tls    bool     // https with the server's certificate verified
	auth   string   // what the last request carried: "none" or "basic"
	cfg    cfgFile  // the config's settings, when status is 200
	md5    [16]byte // of the whole body
	err    error
}

// fetch GETs <base><mac>.cfg from the phone's own address, with the
// Yealink User-Agent, within httpTimeout, over the transport of what the
// phone trusts. The first request carries no credentials; a 401 with a
// Basic challenge is answered once with the stored username and password.
// That challenge-response order is our assumption (what a browser or curl
// --anyauth does), UNVERIFIED on a handset: no Yealink source we read says
// whether a phone sends them preemptively.
func (s *sim) fetch(p *phone) fetchResult {
	r := fetchResult{url: p.provBase() + p.mac + ".cfg", auth: "none"}
	client, verifies := s.clients.get(&p.flash)
	ctx, cancel := context.WithTimeout(s.ctx, httpTimeout)
	defer cancel()
	start := time.Now()
	req, err := s.newRequest(ctx, p, r.url)
	if err != nil {
		r.err = err
		return r
	}
	resp, err := client.Do(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && p.flash.hasCredentials() && basicChallenge(resp.Header) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		s.authRetries.Add(1)
		r.auth = "basic"
		if req, err = s.newRequest(ctx, p, r.url); err != nil {
			r.err = err
			return r
		}
		req.SetBasicAuth(p.flash.username, p.flash.password)
		resp, err = client.Do(req)
	}
	if err != nil {
		r.err = err
		return r
	}
	sum := md5.New()
	body := &countingReader{r: io.TeeReader(io.LimitReader(resp.Body, maxBody), sum)}
	if resp.StatusCode == http.StatusOK {
		r.cfg, err = readConfig(body)
	}
	if err == nil {
		_, err = io.Copy(io.Discard, body)
	}
	resp.Body.Close()
	r.bytes = body.n
	sum.Sum(r.md5[:0])
	r.dur = time.Since(start)
	if err != nil {
		r.err = fmt.Errorf("GET %s: reading body: %w", r.url, err)
		return r
	}
	r.status = resp.StatusCode
	r.etag = resp.Header.Get("ETag")
	r.tls = resp.TLS != nil && verifies
	return r
}

// newRequest is a GET from the phone: its address, its User-Agent.
func (s *sim) newRequest(ctx context.Context, p *phone, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(context.WithValue(ctx, localIPKey{}, p.ip), http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", httpUserAgent(s.cfg.model, s.cfg.firmware, p.mac))
	return req, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// pnp asks for the provisioning URL the SIP PnP way: SUBSCRIBE (Event
// ua-profile) to -pnp, retransmitted 0.5 s, 1 s, 2 s, 4 s apart until
// answered; the URL is the body of the NOTIFY in that dialog.
func (s *sim) pnp(p *phone) (string, error) {
	sub := buildSubscribe(p.mac, s.cfg.model, s.cfg.firmware, p.conn.LocalAddr().(*net.UDPAddr))
	start := time.Now()
	deadline := start.Add(s.cfg.pnpTimeout)
	interval := 500 * time.Millisecond
	nextSend := start
	answered := false // a response to the SUBSCRIBE stops its retransmission
	status := 0
	buf := make([]byte, udpBuffer)
	defer p.conn.SetReadDeadline(time.Time{})
	for {
		if err := s.ctx.Err(); err != nil {
			return "", err
		}
		t := time.Now()
		if !answered && !t.Before(nextSend) {
			if _, err := p.conn.WriteToUDP(sub.bytes, s.cfg.pnp); err != nil {
				return "", fmt.Errorf("sending SUBSCRIBE to %s: %w", s.cfg.pnp, err)
			}
			nextSend = t.Add(interval)
			interval = min(2*interval, 4*time.Second)
		}
		if !t.Before(deadline) {
			if status == 0 {
				return "", fmt.Errorf("no answer to SUBSCRIBE from %s within %v", s.cfg.pnp, s.cfg.pnpTimeout)
			}
			return "", fmt.Errorf("SUBSCRIBE answered %d but no NOTIFY with a URL within %v", status, s.cfg.pnpTimeout)
		}
		wait := deadline
		if !answered && nextSend.Before(wait) {
			wait = nextSend
		}
		p.conn.SetReadDeadline(wait)
		n, src, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return "", err
		}
		a := s.dispatch(p, buf[:n], src, time.Now(), false)
		switch {
		case a.kind == kindResponse && a.callID == sub.callID && a.cseqMethod == "SUBSCRIBE":
			answered, status = true, a.status
			if a.status >= 300 {
				return "", fmt.Errorf("SUBSCRIBE answered %d by %s", a.status, src)
			}
		case a.kind == kindNotify && a.callID == sub.callID && eventType(a.event) == "ua-profile":
			base, err := pnpURL(a.body)
			if err != nil {
				return "", err
			}
			s.out.emit(pnpEvent{Event: "pnp", MAC: p.mac, At: now(), URL: base, Ms: ms(time.Since(start))}, false)
			return base, nil
		}
	}
}

// pnpURL checks the body of a PnP NOTIFY and makes it a base URL ending in '/'.
func pnpURL(body []byte) (string, error) {
	raw := strings.TrimSpace(string(body))
	base, err := baseURL(raw)
	if err != nil {
		return "", fmt.Errorf("PnP NOTIFY body %q is not an http(s) URL", raw)
	}
	return base, nil
}

func (s *sim) fail(p *phone, stage string, err error) {
	e := errorEvent{Event: "error", At: now(), Stage: stage, Error: err.Error()}
	if p != nil {
		e.MAC = p.mac
	}
	s.out.emit(e, true)
}

func (s *sim) addFetch(d time.Duration) {
	s.statMu.Lock()
	s.fetchMs = append(s.fetchMs, ms(d))
	s.statMu.Unlock()
}

// track registers a phone's socket or server for closing at shutdown;
// false if shutdown has begun.
func (s *sim) track(c io.Closer) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		return false
	}
	s.closers = append(s.closers, c)
	return true
}

func (s *sim) closeConns() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, c := range s.closers {
		c.Close()
	}
}

func (s *sim) summary(reason string, ok, failed int, bootTime time.Duration) {
	s.statMu.Lock()
	f := sortedCopy(s.fetchMs)
	nf := sortedCopy(s.notifyToFetchMs)
	s.statMu.Unlock()
	ev := summaryEvent{
		Event: "summary", At: now(), Reason: reason,
		Phones: len(s.phones), BootOK: ok, BootFailed: failed, BootMs: ms(bootTime),
		Notifies: s.notifies.Load(), Retransmits: s.retransmits.Load(), OtherRequests: s.others.Load(),
		Refetches: s.refetches.Load(), RefetchFailed: s.refetchFailed.Load(), AuthRetries: s.authRetries.Load(),
		Fetches:    len(f),
		FetchMsP50: percentile(f, 50), FetchMsP99: percentile(f, 99), FetchMsMax: percentile(f, 100),
		NotifyToFetchMsP50: percentile(nf, 50), NotifyToFetchMsP99: percentile(nf, 99), NotifyToFetchMsMax: percentile(nf, 100),
		Reports: s.reports.Load(), ReportsLost: s.reportsLost.Load(), ReportsFailed: s.reportsFailed.Load(),
		Registrations: s.registrations.Load(), RegisterFailed: s.registerFailed.Load(),
		Reboots: s.reboots.Load(), Applied: s.applied.Load(), Skipped: s.skipped.Load(),
		Refused: s.refused.Load(), ActionURI: s.actionURI.Load(),
		PeakRSSKB:           peakRSSKB(),
		UptimeMs:            ms(time.Since(s.start)),
		GoroutinesAtSummary: runtime.NumGoroutine(),
	}
	s.out.emit(ev, true)
}
