package sip

import (
	"strings"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
)

func subscribe(uri, event string) string {
	return "SUBSCRIBE " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.1.3.239:5059;branch=z9hG4bK1234\r\n" +
		"From: <sip:MAC001565f4f9e1@224.0.1.75>;tag=abc\r\n" +
		"To: <sip:MAC001565f4f9e1@224.0.1.75>\r\n" +
		"Call-ID: pnp-1@10.1.3.239\r\n" +
		"CSeq: 1 SUBSCRIBE\r\n" +
		"Contact: <sip:MAC001565f4f9e1@10.1.3.239:5059>\r\n" +
		"User-Agent: Yealink W52P 25.81.0.10\r\n" +
		"Expires: 0\r\n" +
		event +
		"Accept: application/url\r\n" +
		"Content-Length: 0\r\n\r\n"
}

func parseReq(t *testing.T, raw string) *sipmsg.Request {
	t.Helper()
	m, err := sipmsg.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sipmsg.Request)
}

const yealinkEvent = "Event: ua-profile;profile-type=\"device\";vendor=\"yealink\";model=\"W52P\";version=\"25.81.0.10\"\r\n"

func TestParsePnP(t *testing.T) {
	for _, tc := range []struct {
		name, uri, event string
		mac, err         string
	}{
		{"W52P capture", "sip:MAC001565f4f9e1@224.0.1.75", yealinkEvent, "001565f4f9e1", ""},
		{"escaped colon", "sip:MAC%3a001565F4F9E1@224.0.1.75", yealinkEvent, "001565f4f9e1", ""},
		{"escaped upper", "sip:MAC%3A001565f4f9e1@224.0.1.75", yealinkEvent, "001565f4f9e1", ""},
		{"colon", "sip:MAC:001565f4f9e1@224.0.1.75", yealinkEvent, "001565f4f9e1", ""},
		{"lower mac prefix", "sip:mac001565f4f9e1@provision.yealink.com", yealinkEvent, "001565f4f9e1", ""},
		{"vendor Yealink", "sip:MAC001565f4f9e1@224.0.1.75", "Event: UA-Profile;vendor=\"Yealink\";model=\"T53W\"\r\n", "001565f4f9e1", ""},
		{"no mac", "sip:phone@224.0.1.75", yealinkEvent, "", "carries no MAC"},
		{"bad mac", "sip:MACzz1565f4f9e1@224.0.1.75", yealinkEvent, "", "not a MAC"},
		{"other event", "sip:MAC001565f4f9e1@224.0.1.75", "Event: presence\r\n", "", "not a plug-and-play"},
		{"no event", "sip:MAC001565f4f9e1@224.0.1.75", "", "", "not a plug-and-play"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePnP(parseReq(t, subscribe(tc.uri, tc.event)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.MAC != tc.mac || p.Contact != "10.1.3.239:5059" {
				t.Fatalf("%+v", p)
			}
		})
	}
}

func TestPnPAnswer(t *testing.T) {
	req := parseReq(t, subscribe("sip:MAC001565f4f9e1@224.0.1.75", yealinkEvent))
	p, err := parsePnP(req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Vendor != "Yealink" || p.Model != "W52P" || p.Version != "25.81.0.10" {
		t.Fatalf("%+v", p)
	}
	ok := pnpOK(req, "10.1.3.1:5060")
	totag, _ := ok.To().Params.Get("tag")
	if ok.StatusCode != 200 || totag == "" || ok.GetHeader("Expires").Value() != "0" || ok.CallID().Value() != "pnp-1@10.1.3.239" {
		t.Fatalf("200 OK:\n%s", ok)
	}
	if c := ok.Contact(); c == nil || c.Address.String() != "sip:provbox@10.1.3.1:5060" {
		t.Errorf("200 OK Contact = %v, want <sip:provbox@10.1.3.1:5060> (audit §3)", ok.Contact())
	}
	if noAddr := pnpOK(req, ""); noAddr.Contact() != nil {
		t.Errorf("200 OK without a local address carries Contact %v", noAddr.Contact())
	}
	n, err := pnpNotify(req, ok, p, "http://10.1.3.1:8080/prov/", "10.1.3.1:5060")
	if err != nil {
		t.Fatal(err)
	}
	fromtag, _ := n.From().Params.Get("tag")
	ntotag, _ := n.To().Params.Get("tag")
	for _, c := range []struct{ what, got, want string }{
		{"request-uri", n.Recipient.String(), "sip:MAC001565f4f9e1@10.1.3.239:5059"},
		{"call-id", n.CallID().Value(), "pnp-1@10.1.3.239"},
		{"from tag (ours)", fromtag, totag},
		{"to tag (theirs)", ntotag, "abc"},
		{"content-type", n.ContentType().Value(), "application/url"},
		{"body", string(n.Body()), "http://10.1.3.1:8080/prov/"},
		{"event", n.GetHeader("Event").Value(), `ua-profile;profile-type="device";vendor="yealink";model="W52P";version="25.81.0.10"`},
		{"subscription-state", n.GetHeader("Subscription-State").Value(), "terminated;reason=timeout"},
		{"via", n.Via().Host, "10.1.3.1"},
		{"contact", n.Contact().Address.String(), "sip:provbox@10.1.3.1:5060"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !strings.Contains(n.String(), "Content-Length: 26\r\n") {
		t.Errorf("content-length:\n%s", n)
	}
}

func TestBuildCheckSync(t *testing.T) {
	req, err := buildCheckSync("1001", "10.0.0.50:5060", "10.0.0.2:5060")
	if err != nil {
		t.Fatal(err)
	}
	s := req.String()
	for _, want := range []string{"NOTIFY sip:1001@10.0.0.50:5060 SIP/2.0\r\n", "Event: check-sync;reboot=false\r\n", "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	if len(req.Body()) != 0 {
		t.Error("NOTIFY has a body")
	}
	for _, bad := range []string{"10.0.0.50", "10.0.0.50:0", "x"} {
		if _, err := buildCheckSync("1001", bad, "10.0.0.2:5060"); err == nil {
			t.Errorf("built a NOTIFY to %q", bad)
		}
	}
}
