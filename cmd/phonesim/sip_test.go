package main

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
)

// sipRequest writes a SIP request the way provbox (or any PBX) sends it.
type sipRequest struct {
	method, uri, callID, event, via, toTag, body string
	cseq                                         int
	cseqMethod                                   string
	compactEvent                                 bool
	omit                                         string // a header left out
}

func (r sipRequest) bytes() []byte {
	if r.method == "" {
		r.method = "NOTIFY"
	}
	if r.uri == "" {
		r.uri = "sip:1001@127.1.0.5:5060"
	}
	if r.callID == "" {
		r.callID = "c1@127.0.0.1"
	}
	if r.cseq == 0 {
		r.cseq = 1
	}
	if r.cseqMethod == "" {
		r.cseqMethod = r.method
	}
	if r.via == "" {
		r.via = "127.0.0.1:5070"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.method, r.uri)
	hdr := func(name, format string, args ...any) {
		if r.omit != name {
			fmt.Fprintf(&b, name+": "+format+"\r\n", args...)
		}
	}
	hdr("Via", "SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d;rport", r.via, r.callID, r.cseq)
	hdr("From", "<sip:provbox@127.0.0.1>;tag=srv1")
	to := "<" + r.uri + ">"
	if r.toTag != "" {
		to += ";tag=" + r.toTag
	}
	hdr("To", "%s", to)
	hdr("Call-ID", "%s", r.callID)
	hdr("CSeq", "%d %s", r.cseq, r.cseqMethod)
	hdr("Max-Forwards", "70")
	if r.event != "" {
		if r.compactEvent {
			hdr("o", "%s", r.event)
		} else {
			hdr("Event", "%s", r.event)
		}
	}
	hdr("Content-Length", "%d", len(r.body))
	b.WriteString("\r\n")
	b.WriteString(r.body)
	return []byte(b.String())
}

func TestHandleSIP(t *testing.T) {
	cs := sipRequest{event: "check-sync;reboot=false"}
	type step struct {
		name       string
		pkt        []byte
		wantKind   sipKind
		wantStatus int // 0: no reply
		wantFetch  bool
	}
	steps := []step{
		{"check-sync", cs.bytes(), kindCheckSync, 200, true},
		{"its retransmission", cs.bytes(), kindRetransmit, 200, false},
		{"retransmitted again", cs.bytes(), kindRetransmit, 200, false},
		{"next CSeq, same Call-ID", sipRequest{event: "check-sync;reboot=false", cseq: 2}.bytes(), kindCheckSync, 200, true},
		{"new Call-ID", sipRequest{event: "check-sync;reboot=false", callID: "c2"}.bytes(), kindCheckSync, 200, true},
		{"bare check-sync", sipRequest{event: "check-sync", callID: "c3"}.bytes(), kindCheckSync, 200, true},
		{"reboot=true", sipRequest{event: "check-sync;reboot=true", callID: "c4"}.bytes(), kindCheckSync, 200, true},
		{"case and spaces", sipRequest{event: " Check-Sync ; reboot=false", callID: "c5"}.bytes(), kindCheckSync, 200, true},
		{"compact Event (o:)", sipRequest{event: "check-sync", callID: "c6", compactEvent: true}.bytes(), kindCheckSync, 200, true},
		{"in-dialog (To tag)", sipRequest{event: "check-sync", callID: "c7", toTag: "phone1"}.bytes(), kindCheckSync, 200, true},
		{"other event", sipRequest{event: "message-summary", callID: "c8", body: "Messages-Waiting: no\r\n"}.bytes(), kindNotify, 200, false},
		{"NOTIFY without Event", sipRequest{callID: "c9"}.bytes(), kindNotify, 200, false},
		{"check-syncx is not check-sync", sipRequest{event: "check-syncx", callID: "c10"}.bytes(), kindNotify, 200, false},
		{"OPTIONS", sipRequest{method: "OPTIONS", callID: "c11"}.bytes(), kindOther, 405, false},
		{"INVITE", sipRequest{method: "INVITE", callID: "c12"}.bytes(), kindOther, 405, false},
		{"ACK is never answered", sipRequest{method: "ACK", callID: "c13"}.bytes(), kindIgnore, 0, false},
		{"no Call-ID", sipRequest{event: "check-sync", omit: "Call-ID"}.bytes(), kindIgnore, 0, false},
		{"no Via", sipRequest{event: "check-sync", callID: "c14", omit: "Via"}.bytes(), kindIgnore, 0, false},
		{"CSeq method mismatch", sipRequest{event: "check-sync", callID: "c15", cseqMethod: "INVITE"}.bytes(), kindIgnore, 0, false},
		{"a response", []byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 SUBSCRIBE\r\nContent-Length: 0\r\n\r\n"), kindResponse, 0, false},
		{"keep-alive CRLF", []byte("\r\n\r\n"), kindIgnore, 0, false},
		{"garbage", []byte("hello there\x00\xff"), kindIgnore, 0, false},
		{"empty", nil, kindIgnore, 0, false},
		{"truncated", cs.bytes()[:40], kindIgnore, 0, false},
	}
	st := newSIPState("001565aabbcc", "T46G", "28.83.0.35")
	var firstReply []byte
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			a := st.handle(s.pkt, "127.0.0.1:5070", true)
			if a.kind != s.wantKind || a.fetch() != s.wantFetch {
				t.Fatalf("kind %v fetch %v; want %v fetch %v", a.kind, a.fetch(), s.wantKind, s.wantFetch)
			}
			if s.wantStatus == 0 {
				if a.reply != nil {
					t.Fatalf("replied:\n%s", a.reply)
				}
				return
			}
			res := parseResponse(t, a.reply)
			if res.StatusCode != s.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, s.wantStatus)
			}
			req := parseRequest(t, s.pkt)
			checkCopied(t, req, res)
			if s.wantStatus == 405 && res.GetHeader("Allow") == nil {
				t.Error("405 without Allow")
			}
			if s.name == "check-sync" {
				firstReply = a.reply
			}
			if s.wantKind == kindRetransmit && !bytes.Equal(a.reply, firstReply) {
				t.Errorf("retransmission answered differently:\n%s\nvs\n%s", a.reply, firstReply)
			}
			if s.name == "in-dialog (To tag)" {
				if tag, _ := res.To().Params.Get("tag"); tag != "phone1" {
					t.Errorf("To tag %q, want the request's phone1", tag)
				}
			}
		})
	}
}

func TestHandleSIPRememberWindow(t *testing.T) {
	// A phone remembers the last recentKeys check-syncs; older ones count
	// as new again (a real retransmission comes within 32 s, long before).
	st := newSIPState("001565aabbcc", "T46G", "28.83.0.35")
	for i := range recentKeys {
		if a := st.handle(sipRequest{event: "check-sync", cseq: i + 1}.bytes(), "", true); !a.fetch() {
			t.Fatalf("cseq %d: no fetch", i+1)
		}
	}
	for i := range recentKeys {
		if a := st.handle(sipRequest{event: "check-sync", cseq: i + 1}.bytes(), "", true); a.fetch() {
			t.Fatalf("cseq %d again: fetched", i+1)
		}
	}
}

func TestReplyRport(t *testing.T) {
	st := newSIPState("001565aabbcc", "T46G", "28.83.0.35")
	a := st.handle(sipRequest{event: "check-sync"}.bytes(), "127.0.0.9:40000", true)
	res := parseResponse(t, a.reply)
	via := res.Via()
	if got, _ := via.Params.Get("rport"); got != "40000" {
		t.Errorf("rport %q, want 40000", got)
	}
	if got, _ := via.Params.Get("received"); got != "127.0.0.9" {
		t.Errorf("received %q, want 127.0.0.9", got)
	}
	if ua := res.GetHeader("User-Agent"); ua == nil || ua.Value() != "Yealink SIP-T46G 28.83.0.35" {
		t.Errorf("User-Agent %v", ua)
	}
}

func TestBuildSubscribe(t *testing.T) {
	sub := buildSubscribe("001565aabbcc", "T46G", "28.83.0.35", &net.UDPAddr{IP: net.IPv4(127, 1, 0, 7), Port: 5060})
	req := parseRequest(t, sub.bytes)
	if req.Method != sipmsg.SUBSCRIBE || req.Recipient.String() != "sip:MAC001565aabbcc@224.0.1.75" {
		t.Errorf("request line %s", req.StartLine())
	}
	want := map[string]string{
		"Event":   `ua-profile;profile-type="device";vendor="Yealink";model="T46G";version="28.83.0.35"`,
		"Accept":  "application/url",
		"Expires": "0",
		"Contact": "<sip:MAC001565aabbcc@127.1.0.7:5060>",
		"CSeq":    "1 SUBSCRIBE",
		"Call-ID": sub.callID,
	}
	for name, v := range want {
		if h := req.GetHeader(name); h == nil || h.Value() != v {
			t.Errorf("%s: %v, want %s", name, h, v)
		}
	}
	if tag, _ := req.From().Params.Get("tag"); tag == "" {
		t.Error("From without tag")
	}
	if req.Via().Host != "127.1.0.7" || req.Via().Port != 5060 {
		t.Errorf("Via %s", req.Via().Value())
	}
}

func TestPnPURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://10.0.0.1:8080/prov/", "http://10.0.0.1:8080/prov/"},
		{"http://10.0.0.1:8080/prov\r\n", "http://10.0.0.1:8080/prov/"},
		{"ftp://x/", ""},
		{"", ""},
		{"not a url", ""},
	} {
		got, err := pnpURL([]byte(tt.in))
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("pnpURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func parseRequest(t *testing.T, b []byte) *sipmsg.Request {
	t.Helper()
	m, err := sipmsg.ParseMessage(b)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	req, ok := m.(*sipmsg.Request)
	if !ok {
		t.Fatalf("not a request:\n%s", b)
	}
	return req
}

func parseResponse(t *testing.T, b []byte) *sipmsg.Response {
	t.Helper()
	m, err := sipmsg.ParseMessage(b)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	res, ok := m.(*sipmsg.Response)
	if !ok {
		t.Fatalf("not a response:\n%s", b)
	}
	return res
}

// checkCopied checks RFC 3261 §8.2.6.2: Via, From, Call-ID, CSeq copied,
// To copied with a tag.
func checkCopied(t *testing.T, req *sipmsg.Request, res *sipmsg.Response) {
	t.Helper()
	if res.Via() == nil || res.Via().Host != req.Via().Host {
		t.Errorf("Via %v, request %v", res.Via(), req.Via())
	}
	if b1, _ := res.Via().Params.Get("branch"); b1 != req.Via().Params.GetOr("branch", "?") {
		t.Errorf("branch %q", b1)
	}
	if res.From().Value() != req.From().Value() {
		t.Errorf("From %q, want %q", res.From().Value(), req.From().Value())
	}
	if res.To().Address.String() != req.To().Address.String() {
		t.Errorf("To %q, want %q", res.To().Value(), req.To().Value())
	}
	if tag, _ := res.To().Params.Get("tag"); tag == "" {
		t.Error("To without tag")
	}
	if res.CallID().Value() != req.CallID().Value() {
		t.Errorf("Call-ID %q", res.CallID().Value())
	}
	if res.CSeq().Value() != req.CSeq().Value() {
		t.Errorf("CSeq %q, want %q", res.CSeq().Value(), req.CSeq().Value())
	}
	if cl := res.ContentLength(); cl == nil || *cl != 0 {
		t.Errorf("Content-Length %v", cl)
	}
}
