package main

import (
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// pnpGroup is the SIP PnP multicast address; the SUBSCRIBE's Request-URI
// names it even when phonesim sends it unicast to -pnp.
const pnpGroup = "224.0.1.75"

// sipKind is what a received datagram turned out to be.
type sipKind int

const (
	kindIgnore     sipKind = iota // garbage, or a request never answered (ACK)
	kindResponse                  // a SIP response (to our SUBSCRIBE or REGISTER)
	kindCheckSync                 // a new NOTIFY check-sync: answer 200 and re-fetch
	kindRetransmit                // a repeated NOTIFY check-sync: answer 200 again, no fetch
	kindNotify                    // a NOTIFY of another event: answer 200
	kindOther                     // any other request: answer 405
	kindRefused                   // a request trust_ctrl drops: no answer, no action
)

func (k sipKind) String() string {
	switch k {
	case kindIgnore:
		return "ignore"
	case kindResponse:
		return "response"
	case kindCheckSync:
		return "check-sync"
	case kindRetransmit:
		return "retransmit"
	case kindNotify:
		return "notify"
	case kindOther:
		return "other"
	case kindRefused:
		return "refused"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// sipAction is the phone's decision about one datagram: what to send back
// (reply, nil for nothing) and what the datagram was.
type sipAction struct {
	kind       sipKind
	reply      []byte
	status     int    // the status of the reply, or of a received response
	method     string // request method
	callID     string
	cseq       uint32
	cseqMethod string
	event      string // the Event header as received
	requestURI string
	body       []byte
	challenge  string // a 401's WWW-Authenticate or a 407's Proxy-Authenticate
}

// fetch reports whether the datagram asks the phone to re-fetch its config.
func (a sipAction) fetch() bool { return a.kind == kindCheckSync }

// recentKeys is how many check-sync NOTIFYs (Call-ID+CSeq) a phone
// remembers to recognise retransmissions.
const recentKeys = 8

// sipState is one phone's SIP memory. It is used by one goroutine at a time
// (the phone's reader), so it has no lock.
type sipState struct {
	mac  string // 12 hex digits, for To tags
	ua   string // SIP User-Agent
	seen [recentKeys]string
	next int
}

func newSIPState(mac, model, firmware string) *sipState {
	return &sipState{mac: mac, ua: sipUserAgent(model, firmware)}
}

// sipUserAgent is the User-Agent a Yealink phone puts in SIP messages (no MAC).
func sipUserAgent(model, firmware string) string {
	return "Yealink SIP-" + model + " " + firmware
}

// httpUserAgent is the User-Agent of a Yealink phone's provisioning fetch.
func httpUserAgent(model, firmware, mac string) string {
	return "Yealink SIP-" + model + " " + firmware + " " + macColon(mac)
}

// forget drops what the phone remembered of check-syncs: after a reboot
// its RAM is empty.
func (s *sipState) forget() {
	s.seen = [recentKeys]string{}
	s.next = 0
}

// handle decides what the phone does with one datagram from src (host:port,
// may be empty). allowed is false when sip.trust_ctrl refuses requests
// from src (live.allows); responses are let in all the same, their
// Call-ID routes them. It needs no socket: the caller sends a.reply to src.
func (s *sipState) handle(pkt []byte, src string, allowed bool) sipAction {
	msg, err := sipmsg.ParseMessage(pkt)
	if err != nil || msg == nil {
		return sipAction{kind: kindIgnore}
	}
	switch m := msg.(type) {
	case *sipmsg.Response:
		a := sipAction{kind: kindResponse, status: m.StatusCode, body: m.Body()}
		if h := m.CallID(); h != nil {
			a.callID = h.Value()
		}
		if h := m.CSeq(); h != nil {
			a.cseq, a.cseqMethod = h.SeqNo, string(h.MethodName)
		}
		name := "WWW-Authenticate"
		if m.StatusCode == 407 {
			name = "Proxy-Authenticate"
		}
		if h := m.GetHeader(name); h != nil {
			a.challenge = h.Value()
		}
		return a
	case *sipmsg.Request:
		return s.handleRequest(m, src, allowed)
	}
	return sipAction{kind: kindIgnore}
}

func (s *sipState) handleRequest(req *sipmsg.Request, src string, allowed bool) sipAction {
	callID, cseq := req.CallID(), req.CSeq()
	if callID == nil || cseq == nil || req.Via() == nil || req.From() == nil || req.To() == nil ||
		callID.Value() == "" || cseq.MethodName != req.Method {
		// Not a request we can answer (RFC 3261 §8.1.1 headers missing).
		return sipAction{kind: kindIgnore}
	}
	if src != "" {
		req.SetSource(src)
	}
	a := sipAction{
		method:     string(req.Method),
		callID:     callID.Value(),
		cseq:       cseq.SeqNo,
		cseqMethod: string(cseq.MethodName),
		requestURI: req.Recipient.String(),
		body:       req.Body(),
	}
	if !allowed {
		// trust_ctrl: dropped before anything else, as if never received.
		a.kind = kindRefused
		return a
	}
	switch req.Method {
	case sipmsg.ACK:
		a.kind = kindIgnore
		return a
	case sipmsg.NOTIFY:
		a.event = eventHeader(req)
		a.status = 200
		a.reply = s.reply(req, 200, "OK")
		if eventType(a.event) != "check-sync" {
			a.kind = kindNotify
			return a
		}
		key := a.callID + "\x00" + strconv.FormatUint(uint64(a.cseq), 10)
		if s.remember(key) {
			a.kind = kindCheckSync
		} else {
			a.kind = kindRetransmit
		}
		return a
	default:
		a.kind = kindOther
		a.status = 405
		a.reply = s.reply(req, 405, "Method Not Allowed", sipmsg.NewHeader("Allow", "NOTIFY"))
		return a
	}
}

// remember adds a check-sync key and reports whether it was new.
func (s *sipState) remember(key string) bool {
	for _, k := range s.seen {
		if k == key {
			return false
		}
	}
	s.seen[s.next] = key
	s.next = (s.next + 1) % recentKeys
	return true
}

// reply builds a response to req: Via/From/To/Call-ID/CSeq copied, a To
// tag added when the request had none. The tag is derived from the phone's
// MAC, the Call-ID and the CSeq, so a retransmitted request gets a
// byte-identical answer (RFC 3261 §8.2.6.2: same tag for all responses).
func (s *sipState) reply(req *sipmsg.Request, code int, reason string, extra ...sipmsg.Header) []byte {
	res := sipmsg.NewResponseFromRequest(req, code, reason, nil)
	if to := req.To(); to != nil && !to.Params.Has("tag") {
		if rto := res.To(); rto != nil {
			rto.Params.Add("tag", s.tag(req))
		}
	}
	for _, h := range extra {
		res.AppendHeader(h)
	}
	res.AppendHeader(sipmsg.NewHeader("User-Agent", s.ua))
	// Content-Length last, as phones write it.
	res.RemoveHeader("Content-Length")
	res.SetBody(nil)
	return []byte(res.String())
}

func (s *sipState) tag(req *sipmsg.Request) string {
	h := fnv.New64a()
	h.Write([]byte(s.mac))
	h.Write([]byte{0})
	h.Write([]byte(req.CallID().Value()))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatUint(uint64(req.CSeq().SeqNo), 10)))
	return fmt.Sprintf("%016x", h.Sum64())
}

// eventHeader returns the Event header's value ("o" is its compact form).
func eventHeader(req *sipmsg.Request) string {
	for _, name := range []string{"event", "o"} {
		if h := req.GetHeader(name); h != nil {
			return h.Value()
		}
	}
	return ""
}

// eventType is the event package of an Event header value, lower case and
// without parameters: "check-sync;reboot=false" → "check-sync".
func eventType(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}

// subscribeReq is one PnP SUBSCRIBE; its retransmissions reuse it.
type subscribeReq struct {
	callID string
	bytes  []byte
}

// buildSubscribe builds the SIP PnP SUBSCRIBE a Yealink phone multicasts at
// boot (reference §6), from the phone's own SIP address local.
func buildSubscribe(mac, model, firmware string, local *net.UDPAddr) subscribeReq {
	user := "MAC" + mac
	host := local.IP.String()
	group := sipmsg.Uri{Scheme: "sip", User: user, Host: pnpGroup}
	req := sipmsg.NewRequest(sipmsg.SUBSCRIBE, group)

	branch := sipmsg.GenerateBranch()
	via := &sipmsg.ViaHeader{
		ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: host, Port: local.Port, Params: sipmsg.NewParams(),
	}
	via.Params.Add("branch", branch)
	via.Params.Add("rport", "")
	req.AppendHeader(via)

	from := &sipmsg.FromHeader{Address: group, Params: sipmsg.NewParams()}
	from.Params.Add("tag", randomToken(8))
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: group})

	callID := sipmsg.CallIDHeader(randomToken(16) + "@" + host)
	req.AppendHeader(&callID)
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: 1, MethodName: sipmsg.SUBSCRIBE})
	req.AppendHeader(&sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: user, Host: host, Port: local.Port}})
	maxFwd := sipmsg.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(sipmsg.NewHeader("User-Agent", sipUserAgent(model, firmware)))
	req.AppendHeader(sipmsg.NewHeader("Expires", "0"))
	req.AppendHeader(sipmsg.NewHeader("Event",
		`ua-profile;profile-type="device";vendor="Yealink";model="`+model+`";version="`+firmware+`"`))
	req.AppendHeader(sipmsg.NewHeader("Accept", "application/url"))
	req.SetBody(nil)
	return subscribeReq{callID: string(callID), bytes: []byte(req.String())}
}
