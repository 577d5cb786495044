package actionuri_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provbox/provbox/actionuri"
	"github.com/provbox/provbox/appliance"
)

func TestTrigger(t *testing.T) {
	var mu sync.Mutex
	var got *http.Request
	status := 200
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Clone(r.Context())
		status := status
		mu.Unlock()
		if status == 0 {
			time.Sleep(300 * time.Millisecond) // no answer in time
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	// A port nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()

	phone := &appliance.SyncTarget{MAC: "001565aabbcc", ConfigVersion: "v1", SIPAddress: "127.0.0.1:5060", HasFetched: true}
	for _, tc := range []struct {
		name   string
		port   int
		status int
		addr   string
		want   int
		reason string // a part of it
	}{
		{"done", port, 200, "", 200, "OK"},
		{"wrong password", port, 401, "", 401, "admin password"},
		{"address not allowed", port, 403, "", 403, "action_uri_limit_ip"},
		{"no answer", port, 0, "", 0, ""},
		{"no web server", closed, 200, "", 0, "cannot connect"},
		{"no address", port, 200, "-", 0, "no address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got, status = nil, tc.status
			mu.Unlock()
			c := &actionuri.Client{Port: tc.port, Password: func() string { return "s3cret" }, Timeout: 150 * time.Millisecond}
			p := *phone
			if tc.addr == "-" {
				p.SIPAddress = ""
			}
			res := c.Trigger(context.Background(), &p)
			if res.Status != tc.want || !strings.Contains(res.Reason, tc.reason) || (tc.reason == "" && res.Reason != "") ||
				res.Via != appliance.TriggerActionURI || res.MAC != p.MAC || res.Version != "v1" {
				t.Fatalf("%+v", res)
			}
			if tc.want == 200 {
				mu.Lock()
				got := got
				mu.Unlock()
				user, pw, ok := got.BasicAuth()
				if got.URL.Path != "/servlet" || got.URL.Query().Get("key") != "AutoP" || !ok || user != "admin" || pw != "s3cret" {
					t.Fatalf("request %s %v", got.URL, got.Header)
				}
			}
		})
	}
	if u := (&actionuri.Client{}).URL("10.0.0.9"); u != "https://10.0.0.9:443/servlet?key=AutoP" {
		t.Fatal(u)
	}

}
