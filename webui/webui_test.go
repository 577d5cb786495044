package webui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/provbox/provbox/configs"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
	"github.com/provbox/provbox/webui"
)

const (
	adminName     = "admin"
	adminPassword = "correct horse battery"
)

// testServer is a webui.Server on an ephemeral port over a real store.
type testServer struct {
	*webui.Server
	db    *sqlite.DB
	svc   appliance.Services
	auths *atomic.Int64 // calls that reached UserService.Authenticate
	logs  *syncBuffer
}

// MustOpenServer opens a store in a temporary directory with one admin, and
// a server on 127.0.0.1:0 over it that logs at debug level into logs. The
// options adjust the server before Open.
func MustOpenServer(tb testing.TB, options ...func(*webui.Server)) *testServer {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "provbox.db")
	if err := copyFile(path, templateDB(tb)); err != nil {
		tb.Fatal(err)
	}
	db := sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	db.Events = appliance.NewEventBus(nil)
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	svc := db.Services()
	ts := &testServer{db: db, auths: &atomic.Int64{}, logs: &syncBuffer{}}
	svc.Users = countingUsers{svc.Users, ts.auths}
	ts.svc = svc

	s := webui.NewServer()
	s.Catalog = configs.MustCatalog()
	s.Addr = "127.0.0.1:0"
	s.Services = svc
	s.Logger = slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, o := range options {
		o(s)
	}
	ts.Server = s
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return ts
}

var (
	templateDir  string
	templateOnce sync.Once
	templateErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if templateDir != "" {
		os.RemoveAll(templateDir)
	}
	os.Exit(code)
}

// templateDB returns a database file holding the admin user. Every test
// starts from a copy, so that the bcrypt of CreateUser (about a second
// under -race) runs once per package, not once per test.
func templateDB(tb testing.TB) string {
	tb.Helper()
	templateOnce.Do(func() {
		if templateDir, templateErr = os.MkdirTemp("", "webui-test-"); templateErr != nil {
			return
		}
		db := sqlite.NewDB(filepath.Join(templateDir, "work.db"), configs.MustCatalog(), appliance.HashConfig)
		if templateErr = db.Open(); templateErr != nil {
			return
		}
		defer db.Close()
		if _, templateErr = db.Services().Users.CreateUser(context.Background(), adminName, adminPassword); templateErr != nil {
			return
		}
		templateErr = db.Backup(context.Background(), filepath.Join(templateDir, "template.db"))
	})
	if templateErr != nil {
		tb.Fatalf("template database: %v", templateErr)
	}
	return filepath.Join(templateDir, "template.db")
}

func copyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}

type countingUsers struct {
	appliance.UserService
	n *atomic.Int64
}

func (u countingUsers) Authenticate(ctx context.Context, name, password string) (*appliance.User, error) {
	u.n.Add(1)
	return u.UserService.Authenticate(ctx, name, password)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// response is an answer read in full.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field"`
	Line  int    `json:"line"`
}

func (r response) err(tb testing.TB) errorBody {
	tb.Helper()
	var e errorBody
	if err := json.Unmarshal(r.Body, &e); err != nil {
		tb.Fatalf("error answer is not JSON: %v: %s", err, r.Body)
	}
	if e.Error == "" {
		tb.Fatalf("error answer without a message: %s", r.Body)
	}
	return e
}

// request describes one call; body is sent as is when a string or []byte,
// else as JSON.
type request struct {
	method, path string
	body         any
	header       map[string]string
	noAuth       bool
	user, pass   string
}

func (ts *testServer) send(tb testing.TB, req request) response {
	tb.Helper()
	var body io.Reader
	switch b := req.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		body = bytes.NewReader(buf)
	}
	hr, err := http.NewRequest(req.method, ts.URL()+req.path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if !req.noAuth {
		user, pass := adminName, adminPassword
		if req.user != "" || req.pass != "" {
			user, pass = req.user, req.pass
		}
		hr.SetBasicAuth(user, pass)
	}
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// call sends a request as the admin and decodes a JSON answer into out
// (when not nil), failing unless the status is want.
func (ts *testServer) call(tb testing.TB, method, path string, body any, want int, out any) response {
	tb.Helper()
	r := ts.send(tb, request{method: method, path: path, body: body})
	if r.Status != want {
		tb.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			tb.Fatalf("%s %s: %v: %s", method, path, err, r.Body)
		}
	}
	return r
}

func (ts *testServer) mustExtension(tb testing.TB, number, name string) *appliance.Extension {
	tb.Helper()
	var e appliance.Extension
	ts.call(tb, "POST", "/api/v1/extensions", map[string]any{"number": number, "name": name, "password": "sip-" + number}, 201, &e)
	return &e
}

func (ts *testServer) mustPhone(tb testing.TB, mac, model, ext string) *appliance.Phone {
	tb.Helper()
	var p appliance.Phone
	ts.call(tb, "POST", "/api/v1/phones", map[string]any{"mac": mac, "model": model, "extension": ext}, 201, &p)
	return &p
}

func (ts *testServer) mustKey(tb testing.TB, typ, value, label string) *appliance.Key {
	tb.Helper()
	var k appliance.Key
	ts.call(tb, "POST", "/api/v1/keys", map[string]any{"type": typ, "value": value, "label": label}, 201, &k)
	return &k
}

func (ts *testServer) mustLocation(tb testing.TB, name string) *appliance.Location {
	tb.Helper()
	var l appliance.Location
	ts.call(tb, "POST", "/api/v1/locations", map[string]any{"name": name, "city": "Springfield"}, 201, &l)
	return &l
}

func mustUnmarshal(tb testing.TB, data []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		tb.Fatalf("%v: %s", err, data)
	}
}
