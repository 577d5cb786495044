package main

import (
	"net"
	"strings"
	"testing"
)

// TestDigestResponse checks the request-digest against RFC 2617 §3.5's
// example (qop=auth) and the same inputs without qop (RFC 2069 form).
func TestDigestResponse(t *testing.T) {
	tests := []struct {
		name              string
		qop, nc, cnonce   string
		method, uri, want string
	}{
		{"RFC 2617 §3.5", "auth", "00000001", "0a4f113b", "GET", "/dir/index.html", "6629fae49393a05397450978507c4ef1"},
		{"no qop", "", "", "", "GET", "/dir/index.html", "670fd8c2df070c60b045671b8b24ff02"},
	}
	for _, tt := range tests {
		got := digestResponse("Mufasa", "testrealm@host.com", "Circle Of Life", tt.method, tt.uri,
			"dcd98b7102dd2f0e8b11d0f600bfb0c093", tt.nc, tt.cnonce, tt.qop)
		if got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestDigestAuthorization(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		want      []string // substrings of the Authorization value
		err       string
	}{
		{"RFC 2617 §3.5 challenge",
			`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			[]string{`username="Mufasa"`, `realm="testrealm@host.com"`, `uri="/dir/index.html"`, `qop=auth`, `nc=00000001`,
				`cnonce="0a4f113b"`, `response="6629fae49393a05397450978507c4ef1"`, `opaque="5ccc069c403ebaf9f0171e9517f40e41"`}, ""},
		{"no qop, algorithm MD5, unquoted", `digest realm=testrealm@host.com, nonce=dcd98b7102dd2f0e8b11d0f600bfb0c093, algorithm=MD5`,
			[]string{`response="670fd8c2df070c60b045671b8b24ff02"`}, ""},
		{"escaped quote in realm", `Digest realm="a\"b", nonce="n"`, []string{`realm="a\"b"`}, ""},
		{"SHA-256 only", `Digest realm="r", nonce="n", algorithm=SHA-256`, nil, "MD5 only"},
		{"auth-int only", `Digest realm="r", nonce="n", qop="auth-int"`, nil, "auth only"},
		{"Basic", `Basic realm="r"`, nil, "not a Digest challenge"},
		{"no nonce", `Digest realm="r"`, nil, "no nonce"},
		{"unterminated", `Digest nonce="n", realm="r`, nil, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseDigestChallenge(tt.challenge)
			var got string
			if err == nil {
				got, err = c.authorization("Mufasa", "Circle Of Life", "GET", "/dir/index.html", "0a4f113b")
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s\nlacks %s", got, w)
				}
			}
		})
	}
}

func TestRegisterRequest(t *testing.T) {
	tests := []struct {
		name       string
		acct       account
		authHeader string
		wantURI    string
		wantAOR    string
	}{
		{"port 5060 left out", account{enable: true, userName: "1001", address: "pbx.example.com"}, "",
			"sip:pbx.example.com", "sip:1001@pbx.example.com"},
		{"other port kept; Authorization", account{enable: true, userName: "1002", address: "127.0.0.1", port: 5070},
			"Authorization", "sip:127.0.0.1:5070", "sip:1002@127.0.0.1"},
		{"Proxy-Authorization", account{enable: true, userName: "1003", address: "10.0.0.1", port: 5060}, "Proxy-Authorization",
			"sip:10.0.0.1", "sip:1003@10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registerReq{acct: tt.acct, local: &net.UDPAddr{IP: net.IPv4(127, 1, 0, 7), Port: 5062}, callID: "c1@127.1.0.7",
				fromTag: "ft", branch: "z9hG4bK-1", cseq: 2, ua: "Yealink SIP-T46U 108.86.0.90",
				authHeader: tt.authHeader, auth: `Digest username="x"`}
			req := parseRequest(t, r.bytes())
			if req.Method != "REGISTER" || req.Recipient.String() != tt.wantURI {
				t.Errorf("request line %s", req.StartLine())
			}
			want := map[string]string{
				"From":       "<" + tt.wantAOR + ">;tag=ft",
				"To":         "<" + tt.wantAOR + ">",
				"Call-ID":    "c1@127.1.0.7",
				"CSeq":       "2 REGISTER",
				"Contact":    "<sip:" + tt.acct.userName + "@127.1.0.7:5062>",
				"Expires":    "3600",
				"User-Agent": "Yealink SIP-T46U 108.86.0.90",
			}
			if tt.authHeader != "" {
				want[tt.authHeader] = `Digest username="x"`
			}
			for name, v := range want {
				if h := req.GetHeader(name); h == nil || h.Value() != v {
					t.Errorf("%s: %v, want %s", name, h, v)
				}
			}
			if tt.authHeader == "" && (req.GetHeader("Authorization") != nil || req.GetHeader("Proxy-Authorization") != nil) {
				t.Error("credentials before a challenge")
			}
			if v := req.Via(); v.Host != "127.1.0.7" || v.Port != 5062 || v.Params.GetOr("branch", "") != "z9hG4bK-1" {
				t.Errorf("Via %s", v.Value())
			}
		})
	}
}
