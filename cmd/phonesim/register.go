package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// RFC 3261 §17.1.2.2 timers of a non-INVITE client transaction: timer E
// starts at T1 and doubles up to T2; after a provisional response it is T2.
// Timer F (64·T1 = 32 s) is -register-timeout.
const (
	sipT1 = 500 * time.Millisecond
	sipT2 = 4 * time.Second

	registerExpires = 3600
)

var errRegisterTimeout = errors.New("no final response")

// registrations is a phone's SIP registration state, RAM only: a reboot
// forgets it. A slot holds the settings an account was last registered
// (or tried) with; a newly applied config registers an account again only
// when they changed. There is no refresh timer: a run is shorter than the
// 3600 s a binding lasts, and provbox does not watch refreshes.
type registrations struct {
	mu      sync.Mutex
	slots   [maxAccounts]regSlot
	waiting map[string]chan sipAction // Call-ID → the REGISTER transaction waiting for its responses
}

type regSlot struct {
	acct       account            // zero: not registered, nothing under way
	registered bool               // the last REGISTER with acct got a 2xx
	cancel     context.CancelFunc // stops the REGISTER under way
}

// wait makes the responses with callID go to the returned channel.
func (r *registrations) wait(callID string) chan sipAction {
	ch := make(chan sipAction, 8)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting == nil {
		r.waiting = map[string]chan sipAction{}
	}
	r.waiting[callID] = ch
	return ch
}

func (r *registrations) unwait(callID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, callID)
}

// route hands a response to the REGISTER waiting for its Call-ID; any
// other response (a late one, a stray) is dropped, as a UA drops a
// response that matches no client transaction (RFC 3261 §18.1.2).
func (r *registrations) route(a sipAction) {
	r.mu.Lock()
	ch := r.waiting[a.callID]
	r.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- a:
	default: // a burst of retransmitted responses: the first ones suffice
	}
}

// forget is the reboot: every REGISTER under way stops, every binding is
// forgotten (the registrar is not told; it learns from the next REGISTER).
func (r *registrations) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.slots {
		if c := r.slots[i].cancel; c != nil {
			c()
		}
		r.slots[i] = regSlot{}
	}
}

// reconcile brings the registrations in line with the flash: each active
// account (enabled, with sip_server.1.address) whose settings differ from
// its slot's is registered; a registered account the flash no longer
// enables is reported unregistered. phonesim does not send the
// un-REGISTER (Expires: 0) a real phone would. The caller holds roundMu.
func (s *sim) reconcile(p *phone) {
	type job struct {
		n      int
		acct   account
		ctx    context.Context
		cancel context.CancelFunc
	}
	var starts, gone []job
	p.regs.mu.Lock()
	for i, want := range p.flash.accounts {
		if !want.active() {
			want = account{}
		}
		slot := &p.regs.slots[i]
		if want == slot.acct {
			continue
		}
		if slot.cancel != nil {
			slot.cancel()
		}
		if slot.registered && !want.active() {
			gone = append(gone, job{n: i + 1, acct: slot.acct})
		}
		*slot = regSlot{acct: want}
		if want.active() {
			ctx, cancel := context.WithCancel(s.ctx)
			slot.cancel = cancel
			starts = append(starts, job{n: i + 1, acct: want, ctx: ctx, cancel: cancel})
		}
	}
	p.regs.mu.Unlock()
	for _, j := range starts {
		if !s.spawn(func() { s.registerAccount(j.ctx, j.cancel, p, j.n, j.acct) }) {
			j.cancel()
		}
	}
	for _, j := range gone {
		s.report(p, reportUnregistered, j.n, j.acct.userName)
	}
}

// registerAccount registers account n and reports the outcome, unless a
// newer config, a reboot or shutdown cancelled it meanwhile.
func (s *sim) registerAccount(ctx context.Context, cancel context.CancelFunc, p *phone, n int, a account) {
	defer cancel()
	start := time.Now()
	status, err := s.register(ctx, p, a)
	p.regs.mu.Lock()
	if ctx.Err() != nil { // cancelled under regs.mu: checked under it, this is final
		p.regs.mu.Unlock()
		return
	}
	ok := status >= 200 && status < 300
	p.regs.slots[n-1].registered = ok
	p.regs.mu.Unlock()

	ev := registerEvent{Event: "register", MAC: p.mac, At: now(), Account: n, User: a.userName, Status: status,
		Ms: ms(time.Since(start))}
	if err != nil {
		ev.Error = err.Error()
	}
	s.out.emit(ev, false)
	name := reportRegistered
	if ok {
		s.registrations.Add(1)
	} else {
		s.registerFailed.Add(1)
		name = reportRegisterFailed
	}
	s.report(p, name, n, a.userName)
}

// register sends a REGISTER for a from the phone's SIP socket and returns
// the final status. A 401 or 407 is answered once with Digest
// credentials (auth_name, else user_name, and password); the next final
// response is the outcome.
func (s *sim) register(ctx context.Context, p *phone, a account) (int, error) {
	ip, err := s.resolveRegistrar(p, a.address)
	if err != nil {
		return 0, fmt.Errorf("registrar %s: %w", a.address, err)
	}
	dst := &net.UDPAddr{IP: ip.AsSlice(), Port: a.registrarPort()}
	req := registerReq{
		acct:    a,
		local:   &net.UDPAddr{IP: p.ip, Port: s.cfg.sipPort},
		callID:  randomToken(16) + "@" + p.ip.String(),
		fromTag: randomToken(8),
		cseq:    1,
		ua:      sipUserAgent(s.cfg.model, s.cfg.firmware),
	}
	responses := p.regs.wait(req.callID)
	defer p.regs.unwait(req.callID)
	for challenged := false; ; challenged = true {
		req.branch = sipmsg.GenerateBranch()
		res, err := s.transact(ctx, p, dst, req.bytes(), req.cseq, responses)
		if err != nil {
			return 0, err
		}
		if (res.status != 401 && res.status != 407) || challenged {
			return res.status, nil
		}
		ch, err := parseDigestChallenge(res.challenge)
		if err != nil {
			return res.status, fmt.Errorf("%d challenge: %w", res.status, err)
		}
		req.authHeader = "Authorization"
		if res.status == 407 {
			req.authHeader = "Proxy-Authorization"
		}
		uri := req.requestURI()
		if req.auth, err = ch.authorization(a.authUser(), a.password, "REGISTER", uri.String(), randomToken(8)); err != nil {
			return res.status, fmt.Errorf("%d challenge: %w", res.status, err)
		}
		req.cseq++
	}
}

// transact sends one non-INVITE request and retransmits it on timer E until
// a final response with its CSeq arrives or -register-timeout (timer F)
// passes.
func (s *sim) transact(ctx context.Context, p *phone, dst *net.UDPAddr, pkt []byte, cseq uint32, responses <-chan sipAction) (sipAction, error) {
	send := func() error {
		_, err := p.conn.WriteToUDP(pkt, dst)
		return err
	}
	if err := send(); err != nil {
		return sipAction{}, err
	}
	deadline := time.NewTimer(s.cfg.registerTimeout)
	defer deadline.Stop()
	interval := sipT1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	for {
		select {
		case <-ctx.Done():
			return sipAction{}, ctx.Err()
		case <-deadline.C:
			return sipAction{}, fmt.Errorf("%w from %s within %v", errRegisterTimeout, dst, s.cfg.registerTimeout)
		case <-retransmit.C:
			if err := send(); err != nil {
				return sipAction{}, err
			}
			interval = min(2*interval, sipT2)
			retransmit.Reset(interval)
		case a := <-responses:
			switch {
			case a.cseq != cseq || a.cseqMethod != string(sipmsg.REGISTER):
				// a late answer to the request before the challenge
			case a.status < 200:
				interval = sipT2 // Proceeding: retransmit every T2
			default:
				return a, nil
			}
		}
	}
}

// registerReq is one REGISTER of an account; its retransmissions reuse
// its bytes, the answer to a challenge gets the next CSeq and a new branch.
type registerReq struct {
	acct            account
	local           *net.UDPAddr // the phone's SIP address: Via and Contact
	callID, fromTag string
	branch          string
	cseq            uint32
	ua              string
	authHeader      string // "Authorization" or "Proxy-Authorization"; empty before a challenge
	auth            string
}

// requestURI is the registrar's domain (RFC 3261 §10.2), with its port
// when not 5060; the digest "uri" is the same string.
func (r registerReq) requestURI() sipmsg.Uri {
	u := sipmsg.Uri{Scheme: "sip", Host: r.acct.address}
	if port := r.acct.registrarPort(); port != defaultSIPPort {
		u.Port = port
	}
	return u
}

func (r registerReq) bytes() []byte {
	aor := sipmsg.Uri{Scheme: "sip", User: r.acct.userName, Host: r.acct.address}
	req := sipmsg.NewRequest(sipmsg.REGISTER, r.requestURI())
	via := &sipmsg.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: r.local.IP.String(), Port: r.local.Port, Params: sipmsg.NewParams()}
	via.Params.Add("branch", r.branch)
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	maxFwd := sipmsg.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	from := &sipmsg.FromHeader{Address: aor, Params: sipmsg.NewParams()}
	from.Params.Add("tag", r.fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: aor})
	callID := sipmsg.CallIDHeader(r.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: r.cseq, MethodName: sipmsg.REGISTER})
	req.AppendHeader(&sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: r.acct.userName,
		Host: r.local.IP.String(), Port: r.local.Port}})
	if r.authHeader != "" {
		req.AppendHeader(sipmsg.NewHeader(r.authHeader, r.auth))
	}
	req.AppendHeader(sipmsg.NewHeader("Expires", fmt.Sprint(registerExpires)))
	req.AppendHeader(sipmsg.NewHeader("User-Agent", r.ua))
	req.SetBody(nil)
	return []byte(req.String())
}

// digestChallenge is a Digest challenge's parameters (RFC 2617 §3.2.1,
// RFC 7616 §3.3).
type digestChallenge struct {
	realm, nonce, opaque, algorithm string
	qop                             []string
}

func parseDigestChallenge(v string) (digestChallenge, error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return digestChallenge{}, fmt.Errorf("%q is not a Digest challenge", v)
	}
	params, err := parseAuthParams(rest)
	if err != nil {
		return digestChallenge{}, err
	}
	c := digestChallenge{realm: params["realm"], nonce: params["nonce"], opaque: params["opaque"],
		algorithm: params["algorithm"]}
	if c.nonce == "" {
		return digestChallenge{}, fmt.Errorf("%q has no nonce", v)
	}
	for _, q := range strings.Split(params["qop"], ",") {
		if q = strings.TrimSpace(q); q != "" {
			c.qop = append(c.qop, q)
		}
	}
	return c, nil
}

// parseAuthParams reads comma-separated name=value pairs, each value a
// token or a quoted string (with backslash escapes). Names are lower-cased.
func parseAuthParams(s string) (map[string]string, error) {
	params := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return params, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, fmt.Errorf("parameter %q has no value", s)
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var value strings.Builder
		if strings.HasPrefix(s, `"`) {
			i, closed := 1, false
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				} else if s[i] == '"' {
					closed = true
					break
				}
				value.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("parameter %s: unterminated quoted string", name)
			}
			s = s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			value.WriteString(strings.TrimSpace(s[:end]))
			s = s[end:]
		}
		params[name] = value.String()
	}
}

// authorization answers the challenge for method and uri. phonesim knows
// MD5 (also when the algorithm is left out) and qop "auth" or none; it
// takes "auth" from a list that offers it.
func (c digestChallenge) authorization(user, password, method, uri, cnonce string) (string, error) {
	if c.algorithm != "" && !strings.EqualFold(c.algorithm, "MD5") {
		return "", fmt.Errorf("algorithm %s: phonesim answers MD5 only", c.algorithm)
	}
	qop := ""
	for _, q := range c.qop {
		if strings.EqualFold(q, "auth") {
			qop = "auth"
		}
	}
	if len(c.qop) > 0 && qop == "" {
		return "", fmt.Errorf("qop %q: phonesim answers auth only", strings.Join(c.qop, ","))
	}
	const nc = "00000001" // one request per nonce
	resp := digestResponse(user, c.realm, password, method, uri, c.nonce, nc, cnonce, qop)
	var b strings.Builder
	fmt.Fprintf(&b, "Digest username=%s, realm=%s, nonce=%s, uri=%s, response=%s, algorithm=MD5",
		quote(user), quote(c.realm), quote(c.nonce), quote(uri), quote(resp))
	if qop != "" {
		fmt.Fprintf(&b, ", cnonce=%s, qop=auth, nc=%s", quote(cnonce), nc)
	}
	if c.opaque != "" {
		fmt.Fprintf(&b, ", opaque=%s", quote(c.opaque))
	}
	return b.String(), nil
}

// digestResponse is the request-digest of RFC 2617 §3.2.2.1 with MD5:
// with qop, KD(H(A1), nonce:nc:cnonce:qop:H(A2)); without, the RFC 2069
// form KD(H(A1), nonce:H(A2)).
func digestResponse(user, realm, password, method, uri, nonce, nc, cnonce, qop string) string {
	ha1 := md5Hex(user + ":" + realm + ":" + password)
	ha2 := md5Hex(method + ":" + uri)
	if qop == "" {
		return md5Hex(ha1 + ":" + nonce + ":" + ha2)
	}
	return md5Hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// quote writes a quoted-string, escaping '"' and '\'.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
