package webui_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/configs"
	"github.com/provbox/provbox/webui"
)

const yealinkUA = "Yealink SIP-T46G 28.83.0.35 00:15:65:aa:bb:cc"

// MustOpenProvServer is MustOpenServer with the real resolver wired in, as
// cmd/provbox does.
func MustOpenProvServer(tb testing.TB, settings appliance.Settings, missLimit int) *testServer {
	tb.Helper()
	var resolver *configs.Resolver
	fw := filepath.Join(tb.TempDir(), "firmware")
	os.MkdirAll(fw, 0o755)
	os.WriteFile(filepath.Join(fw, "T46-28.86.0.10.rom"), []byte("rom"), 0o644)
	ts := MustOpenServer(tb, func(s *webui.Server) {
		s.Guard = &appliance.Guard{Limit: missLimit}
		resolver = &configs.Resolver{Renderer: &configs.Renderer{}, FirmwareDir: fw, Guard: s.Guard, Logger: s.Logger}
		s.Files = resolver
	})
	resolver.Services = ts.svc
	ts.db.Version = resolver.Renderer.Version
	if err := ts.db.SetSettings(context.Background(), settings); err != nil {
		tb.Fatal(err)
	}
	return ts
}

func (ts *testServer) get(tb testing.TB, method, path, ua string, header map[string]string) response {
	tb.Helper()
	h := map[string]string{"User-Agent": ua}
	for k, v := range header {
		h[k] = v
	}
	return ts.send(tb, request{method: method, path: path, noAuth: true, header: h})
}

// getAs is get with phone mac's own provisioning secret.
func (ts *testServer) getAs(tb testing.TB, method, path, mac string) response {
	tb.Helper()
	var sec struct{ Username, Password string }
	ts.call(tb, "GET", "/api/v1/phones/"+mac+"/secret", nil, 200, &sec)
	return ts.send(tb, request{method: method, path: path, user: sec.Username, pass: sec.Password, header: map[string]string{"User-Agent": yealinkUA}})
}

func TestProv_KnownPhone(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}, 20)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	r := ts.get(t, "GET", "/prov/001565aabbcc.cfg", yealinkUA, nil)
	if r.Status != 200 || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.HasPrefix(string(r.Body), "#!version:1.0.0.1\n") {
		t.Fatalf("%d %v %s", r.Status, r.Header, r.Body)
	}
	if !strings.Contains(string(r.Body), "account.1.password = sip-1001") {
		t.Fatalf("config lacks the account:\n%s", r.Body)
	}
	var sync appliance.Phone
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc", nil, 200, &sync)
	if etag := r.Header.Get("ETag"); etag != `"`+sync.Sync.ConfigVersion+`"` || sync.Sync.State != "fetched" || sync.Sync.LastFetchUA != yealinkUA || sync.Sync.LastFetchIP != "127.0.0.1" {
		t.Fatalf("etag %s, sync %+v", etag, sync.Sync)
	}
	// HEAD: headers, no body (the claim window was used by the first
	// fetch: the phone's secret from now on).
	h := ts.getAs(t, "HEAD", "/prov/001565aabbcc.cfg", "001565aabbcc")
	if h.Status != 200 || len(h.Body) != 0 || h.Header.Get("Content-Length") != itoa(len(r.Body)) {
		t.Fatalf("HEAD %d %v", h.Status, h.Header)
	}
	// The admin preview is the same bytes.
	p := ts.call(t, "GET", "/api/v1/phones/00:15:65:AA:BB:CC/config", nil, 200, nil)
	if string(p.Body) != string(r.Body) {
		t.Fatal("preview differs from the served file")
	}
	for path, want := range map[string]int{
		"/prov/y000000000028.cfg":  200,
		"/prov/T46-28.86.0.10.rom": 200,
		"/prov/y000000000000.boot": 404,
		"/prov/001565aabbcc.boot":  404,
	} {
		if got := ts.get(t, "GET", path, yealinkUA, nil).Status; got != want {
			t.Errorf("%s: %d, want %d", path, got, want)
		}
	}
}

func TestProv_HostilePaths(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 0)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	for _, p := range []string{
		"/prov/..%2fprovbox.db", "/prov/%2e%2e/provbox.db", "/prov/firmware%2f..%2f..%2fprovbox.db", "/prov/a%5cb",
		"/prov/%00.cfg", "/prov/001565aabbcc.cfg%00", "/prov/.hidden", "/prov/", "/prov/x/001565aabbcc.cfg",
	} {
		r := ts.get(t, "GET", p, yealinkUA, nil)
		if r.Status != 404 && r.Status != 400 && r.Status != 301 {
			t.Errorf("%s: %d %s", p, r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "password") || strings.Contains(string(r.Body), "SQLite") {
			t.Errorf("%s leaked: %s", p, r.Body)
		}
	}
}

func TestProv_UnknownPhoneDiscoveredAndAdopted(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 3)
	ts.mustExtension(t, "1001", "Alice")
	if r := ts.get(t, "GET", "/prov/001565112233.cfg", "Yealink SIP-T54W 96.86.0.45 00:15:65:11:22:33", nil); r.Status != 401 {
		t.Fatalf("unknown phone: %d", r.Status)
	}
	var list []appliance.Discovered
	ts.call(t, "GET", "/api/v1/discovered", nil, 200, &list)
	if len(list) != 1 || list[0].Model != "T54W" || list[0].Vendor != "Yealink" || list[0].Source != "http" {
		t.Fatalf("discovered %+v", list)
	}
	var p appliance.Phone
	ts.call(t, "POST", "/api/v1/discovered/00:15:65:11:22:33/adopt", map[string]any{"name": "Lobby", "extension": "1001"}, 201, &p)
	if p.Model != "T54W" || p.Name != "Lobby" {
		t.Fatalf("adopted %+v", p)
	}
	if r := ts.get(t, "GET", "/prov/001565112233.cfg", "", nil); r.Status != 200 {
		t.Fatalf("adopted phone's file: %d", r.Status)
	}
	ts.call(t, "POST", "/api/v1/discovered/001565999999/adopt", nil, 404, nil)
	// Guessing secrets: past 3 wrong ones (the first refusal above was
	// one), 429 even for a real file with its secret, and for the API
	// from the same address: one guard for every secret.
	var sec struct{ Username, Password string }
	ts.call(t, "GET", "/api/v1/phones/001565112233/secret", nil, 200, &sec)
	for _, m := range []string{"001565000001", "001565000002", "001565000003"} {
		ts.send(t, request{method: "GET", path: "/prov/" + m + ".cfg", user: m, pass: "guess"})
	}
	r := ts.send(t, request{method: "GET", path: "/prov/001565112233.cfg", user: sec.Username, pass: sec.Password})
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after guessing: %d", r.Status)
	}
	ts.call(t, "GET", "/api/v1/phones", nil, http.StatusTooManyRequests, nil)
	if n := strings.Count(ts.logs.String(), "refusing address"); n != 1 {
		t.Fatalf("refusal logged %d times", n)
	}
}

// Per-phone secrets over HTTP: 401 with a Basic challenge, the same answer
// for a known and an unknown MAC; only the phone's own secret opens its
// file; the API shows, rotates and reopens.
func TestProv_Secrets(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}, 0)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	ts.mustPhone(t, "001565000b0b", "T46G", "1001")
	var a, b struct{ Username, Password string }
	ts.call(t, "GET", "/api/v1/phones/00:15:65:AA:BB:CC/secret", nil, 200, &a)
	ts.call(t, "GET", "/api/v1/phones/001565000b0b/secret", nil, 200, &b)
	if a.Username != "001565aabbcc" || len(a.Password) != 24 || a.Password == b.Password {
		t.Fatalf("secrets %+v %+v", a, b)
	}
	// Lists never show a secret.
	list := ts.call(t, "GET", "/api/v1/phones", nil, 200, nil)
	if strings.Contains(string(list.Body), a.Password) || strings.Contains(string(list.Body), "secret") {
		t.Fatalf("list shows a secret: %s", list.Body)
	}
	// Both phones use their claim (one fetch without a secret), then only
	// the secret works.
	for _, m := range []string{"001565aabbcc", "001565000b0b"} {
		if r := ts.get(t, "GET", "/prov/"+m+".cfg", yealinkUA, nil); r.Status != 200 {
			t.Fatalf("claim of %s: %d", m, r.Status)
		}
	}
	refusals := map[string]request{
		"known, no secret":   {method: "GET", path: "/prov/001565aabbcc.cfg", noAuth: true},
		"unknown, no secret": {method: "GET", path: "/prov/001565999999.cfg", noAuth: true},
		"known, wrong":       {method: "GET", path: "/prov/001565aabbcc.cfg", user: "001565aabbcc", pass: "wrong"},
		"unknown, wrong":     {method: "GET", path: "/prov/001565999999.cfg", user: "001565999999", pass: "wrong"},
		"A's secret on B":    {method: "GET", path: "/prov/001565000b0b.cfg", user: "001565000b0b", pass: a.Password},
		"B's secret as A":    {method: "GET", path: "/prov/001565000b0b.cfg", user: "001565aabbcc", pass: b.Password},
		"admin credentials":  {method: "GET", path: "/prov/001565aabbcc.cfg"},
	}
	var first *response
	for name, req := range refusals {
		r := ts.send(t, req)
		if r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Basic realm="provbox provisioning"` {
			t.Errorf("%s: %d %v", name, r.Status, r.Header)
		}
		if first == nil {
			first = &r
		} else if string(r.Body) != string(first.Body) || r.Header.Get("Content-Length") != first.Header.Get("Content-Length") {
			t.Errorf("%s: answer differs: %q vs %q", name, r.Body, first.Body)
		}
	}
	if r := ts.send(t, request{method: "GET", path: "/prov/001565aabbcc.cfg", user: a.Username, pass: a.Password}); r.Status != 200 ||
		!strings.Contains(string(r.Body), "static.auto_provision.server.username = 001565aabbcc") ||
		!strings.Contains(string(r.Body), "static.auto_provision.server.password = "+a.Password) || strings.Contains(string(r.Body), b.Password) {
		t.Fatalf("own secret: %d\n%s", r.Status, r.Body)
	}
	// Rotation through the API answers the new secret; the old one still
	// opens the file until the phone fetched with the new one.
	var a2 struct{ Username, Password string }
	ts.call(t, "POST", "/api/v1/phones/001565aabbcc/secret", nil, 200, &a2)
	if a2.Password == a.Password || a2.Username != a.Username {
		t.Fatalf("rotated %+v", a2)
	}
	for _, pw := range []string{a.Password, a2.Password} {
		if r := ts.send(t, request{method: "GET", path: "/prov/001565aabbcc.cfg", user: a.Username, pass: pw}); r.Status != 200 {
			t.Fatalf("after rotation, %s: %d", pw, r.Status)
		}
	}
	if r := ts.send(t, request{method: "GET", path: "/prov/001565aabbcc.cfg", user: a.Username, pass: a.Password}); r.Status != 401 {
		t.Fatalf("old secret after the new one was used: %d", r.Status)
	}
	// Reopening the claim answers the sync object with claim_open_until.
	var st map[string]any
	ts.call(t, "POST", "/api/v1/phones/001565aabbcc/claim", nil, 200, &st)
	if st["claim_open_until"] == nil {
		t.Fatalf("claim: %v", st)
	}
	if r := ts.get(t, "GET", "/prov/001565aabbcc.cfg", yealinkUA, nil); r.Status != 200 {
		t.Fatalf("reopened claim: %d", r.Status)
	}
	ts.call(t, "POST", "/api/v1/phones/001565999999/claim", nil, 404, nil)
	ts.send(t, request{method: "GET", path: "/api/v1/phones/001565aabbcc/secret", noAuth: true}) // 401, checked by the auth tests
}

func TestProv_NoSecretsInLogs(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 0)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	ts.get(t, "GET", "/prov/001565aabbcc.cfg", yealinkUA, nil)
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/config", nil, 200, nil)
	if strings.Contains(ts.logs.String(), "sip-1001") {
		t.Fatal("SIP password in the log")
	}
	if !strings.Contains(ts.logs.String(), "config fetched") {
		t.Fatal("fetch not logged")
	}
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Replace(string(rune(0)), "\x00", "", 1)) + func() string {
		s := ""
		for n > 0 || s == "" {
			s = string(rune('0'+n%10)) + s
			n /= 10
		}
		return s
	}()
}

func TestSyncAndResync(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}, 0)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	sub := ts.svc.Events.Subscribe(10)
	defer sub.Close()
	var st map[string]any
	ts.call(t, "GET", "/api/v1/phones/00:15:65:aa:bb:cc/sync", nil, 200, &st)
	for _, k := range []string{"state", "config_version", "fetched_version", "last_fetch_at", "last_fetch_ip", "last_fetch_ua", "last_notify_at", "last_notify_result", "sip_address", "problems", "claim_open_until"} {
		if _, ok := st[k]; !ok {
			t.Errorf("sync lacks %q: %v", k, st)
		}
	}
	if st["state"] != "new" {
		t.Fatalf("state %v", st["state"])
	}
	// A phone that never fetched is never sent check-sync (it would
	// reboot): an explicit resync is refused, saying why, and sends nothing.
	r := ts.call(t, "POST", "/api/v1/phones/001565aabbcc/resync", nil, 409, nil)
	if !strings.Contains(string(r.Body), "never fetched its config") || !strings.Contains(string(r.Body), `"field":"mac"`) {
		t.Fatalf("resync of a new phone: %s", r.Body)
	}
	select {
	case e := <-sub.C:
		t.Fatalf("a refused resync published %+v", e)
	default:
	}
	ts.get(t, "GET", "/prov/001565aabbcc.cfg", yealinkUA, nil)
	ts.call(t, "POST", "/api/v1/phones/001565aabbcc/resync", nil, 202, nil)
	e := <-sub.C
	for e.Type == appliance.EventAccessChanged || e.Type == appliance.EventFetched { // the fetch (it used the claim window)
		e = <-sub.C
	}
	if e.Type != appliance.EventResync || len(e.MACs) != 1 || e.MACs[0] != "001565aabbcc" {
		t.Fatalf("event %+v", e)
	}
	ts.call(t, "POST", "/api/v1/phones/001565000000/resync", nil, 404, nil)
	ts.call(t, "GET", "/api/v1/phones/zz/sync", nil, 400, nil)
}

// TestProv_Reports: the phone's action URLs, as its config writes them,
// make it synced after a fetch and set its registration; a wrong token,
// event or MAC gets 404 and changes nothing.
func TestProv_Reports(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}, 20)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	cfg := string(ts.get(t, "GET", "/prov/001565aabbcc.cfg", yealinkUA, nil).Body)
	urls := map[string]string{}
	for _, line := range strings.Split(cfg, "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok && strings.HasPrefix(k, "action_url.") {
			// As the phone does: variables replaced as plain text.
			v = strings.NewReplacer("$mac", "001565aabbcc", "$ip", "127.0.0.1", "$model", "SIP-T46G", "$firmware", "28.83.0.35", "$active_user", "1001").Replace(v)
			urls[strings.TrimPrefix(k, "action_url.")] = strings.TrimPrefix(v, "http://10.0.0.2:8080")
		}
	}
	if len(urls) != 5 {
		t.Fatalf("action URLs %v", urls)
	}
	token := strings.Split(urls["registered"], "/")[3]
	for _, bad := range []string{
		"/prov/ev/wrongtoken/provisioned",
		"/prov/ev/" + token + "/rebooted",
		"/prov/ev/" + token + "/provisioned?mac=001565000001",
	} {
		if r := ts.get(t, "GET", bad, yealinkUA, nil); r.Status != 404 {
			t.Fatalf("%s: %d", bad, r.Status)
		}
	}
	var p appliance.Phone
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc", nil, 200, &p)
	if p.Sync.Confirms || p.Sync.State != appliance.SyncFetched {
		t.Fatalf("a refused report changed the phone: %+v", p.Sync)
	}
	for _, ev := range []string{"setup_autop_finish", "registered"} {
		if r := ts.get(t, "GET", urls[ev], yealinkUA, nil); r.Status != 204 {
			t.Fatalf("%s: %d %s", ev, r.Status, r.Body)
		}
	}
	var st appliance.SyncStatus
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/sync", nil, 200, &st)
	if st.State != appliance.SyncSynced || st.AppliedAt == nil || st.Registration["1"].State != "registered" || !st.Confirms {
		t.Fatalf("sync %+v", st)
	}
	var tl []appliance.Change
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/timeline", nil, 200, &tl)
	if len(tl) == 0 || tl[0].FetchedAt == nil || tl[0].AppliedAt == nil || tl[0].RegisteredAt == nil {
		t.Fatalf("timeline %+v", tl)
	}
	m := ts.get(t, "GET", "/metrics", "", nil)
	if !strings.Contains(string(m.Body), `provbox_phones{state="synced"} 1`) || !strings.Contains(string(m.Body), `provbox_phones{state="stuck"} 0`) {
		t.Fatalf("metrics lack phone states:\n%s", m.Body)
	}
}

// TestProv_ClaimForgives: reopening a phone's claim forgets the failures
// of the address it last fetched from (a factory-reset phone tried its
// stale secret and was refused meanwhile).
func TestProv_ClaimForgives(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{}, 1)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	ctx := context.Background()
	p, err := ts.svc.Phones.FindPhone(ctx, "001565aabbcc")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: p.Sync.ConfigVersion, IP: "10.9.9.9", Auth: appliance.AuthSecret}); err != nil {
		t.Fatal(err)
	}
	ts.Server.Guard.Fail(appliance.ProtoHTTP, "10.9.9.9")
	ts.Server.Guard.Fail(appliance.ProtoHTTP, "10.9.9.9")
	if ts.Server.Guard.Wait(appliance.ProtoHTTP, "10.9.9.9") == 0 {
		t.Fatal("not refused")
	}
	ts.call(t, "POST", "/api/v1/phones/001565aabbcc/claim", nil, 200, nil)
	if ts.Server.Guard.Wait(appliance.ProtoHTTP, "10.9.9.9") != 0 {
		t.Fatal("still refused after the claim was reopened")
	}
}

// TestProv_Answers: a phone's file answered ahead of the router keeps
// every header and answer of the standard library's treatment (HEAD,
// conditional and range requests), the routes around it, and the request
// metrics.
func TestProv_Answers(t *testing.T) {
	ts := MustOpenProvServer(t, appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/"}, 0)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	var sec struct{ Username, Password string }
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc/secret", nil, 200, &sec)
	full := ts.send(t, request{method: "GET", path: "/prov/001565aabbcc.cfg", user: sec.Username, pass: sec.Password})
	var p appliance.Phone
	ts.call(t, "GET", "/api/v1/phones/001565aabbcc", nil, 200, &p)
	etag := `"` + p.Sync.ConfigVersion + `"`
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		body               string // "full": the whole file
	}{
		{"GET", "GET", "/prov/001565aabbcc.cfg", nil, 200, "full"},
		{"HEAD", "HEAD", "/prov/001565aabbcc.cfg", nil, 200, ""},
		{"upper-case name", "GET", "/prov/001565AABBCC.cfg", nil, 200, "full"},
		{"If-None-Match the ETag", "GET", "/prov/001565aabbcc.cfg", map[string]string{"If-None-Match": etag}, 304, ""},
		{"If-None-Match another", "GET", "/prov/001565aabbcc.cfg", map[string]string{"If-None-Match": `"0123"`}, 200, "full"},
		{"Range", "GET", "/prov/001565aabbcc.cfg", map[string]string{"Range": "bytes=0-15"}, 206, "#!version:1.0.0."},
		{"POST", "POST", "/prov/001565aabbcc.cfg", nil, 405, "*"},
		{"report of an unknown token", "GET", "/prov/ev/nosuchtoken/started", nil, 404, "*"},
		{"two segments", "GET", "/prov/x/001565aabbcc.cfg", nil, 404, "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.send(t, request{method: tc.method, path: tc.path, user: sec.Username, pass: sec.Password, header: tc.header})
			want := tc.body
			if want == "full" {
				want = string(full.Body)
			}
			if r.Status != tc.status || want != "*" && string(r.Body) != want {
				t.Fatalf("%d %q, want %d %q", r.Status, r.Body, tc.status, want)
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v lack nosniff", r.Header)
			}
			if tc.status != 200 && tc.status != 304 && tc.status != 206 {
				return
			}
			if r.Header.Get("ETag") != etag || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Last-Modified") != "" {
				t.Errorf("headers %v: want ETag %s, no-store, no Last-Modified", r.Header, etag)
			}
			if tc.status == 200 && (r.Header.Get("Content-Length") != itoa(len(full.Body)) || r.Header.Get("Content-Type") != "text/plain; charset=utf-8") {
				t.Errorf("headers %v: want Content-Length %d, text/plain", r.Header, len(full.Body))
			}
		})
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `msg="http request" method=GET path=/prov/001565aabbcc.cfg status=304`) {
		t.Errorf("no debug access log line for the 304:\n%s", logs)
	}
	m := string(ts.send(t, request{method: "GET", path: "/metrics", noAuth: true}).Body)
	for _, want := range []string{
		`provbox_http_requests_total{code="200",route="GET /prov/"} 5`,
		`provbox_http_requests_total{code="304",route="GET /prov/"} 1`,
		`provbox_http_requests_total{code="206",route="GET /prov/"} 1`,
		`provbox_http_request_duration_seconds_count{route="GET /prov/"} 8`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
