package webui_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/webui"
)

func TestAPI_Leases(t *testing.T) {
	var dhcp atomic.Value // the interface DHCP is served on
	dhcp.Store("")
	ts := MustOpenServer(t, func(s *webui.Server) { s.DHCP = func() string { return dhcp.Load().(string) } })
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	if err := ts.svc.Leases.SaveLeases(t.Context(),
		&appliance.Lease{IP: "10.0.0.101", MAC: "02:00:00:00:00:01", Hostname: "laptop", State: appliance.LeaseBound, ExpiresAt: exp},
		&appliance.Lease{IP: "10.0.0.100", MAC: "00:15:65:aa:bb:cc", Hostname: "SIP-T46G", Vendor: "yealink", State: appliance.LeaseBound, ExpiresAt: exp},
	); err != nil {
		t.Fatal(err)
	}
	var list []appliance.Lease
	ts.call(t, "GET", "/api/v1/leases", nil, http.StatusOK, &list)
	if len(list) != 2 || list[0].IP != "10.0.0.100" || list[0].MAC != "001565aabbcc" || list[0].Phone != "001565aabbcc" ||
		list[0].Vendor != "yealink" || list[0].State != "bound" || !list[0].ExpiresAt.Equal(exp) || list[1].Phone != "" {
		t.Fatalf("%+v", list)
	}
	if r := ts.send(t, request{method: "GET", path: "/api/v1/leases", noAuth: true}); r.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", r.Status)
	}

	// Reservations.
	var res appliance.Reservation
	ts.call(t, "PUT", "/api/v1/reservations/00-15-65-AA-BB-CC", map[string]string{"ip": "10.0.0.50"}, http.StatusOK, &res)
	if res.MAC != "001565aabbcc" || res.IP != "10.0.0.50" || res.Phone != "001565aabbcc" {
		t.Fatalf("%+v", res)
	}
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"bad ip", "/api/v1/reservations/001565000001", map[string]string{"ip": "10.0.0"}, 400, "ip"},
		{"bad mac", "/api/v1/reservations/nope", map[string]string{"ip": "10.0.0.51"}, 400, "mac"},
		{"taken", "/api/v1/reservations/001565000001", map[string]string{"ip": "10.0.0.50"}, 409, "ip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.send(t, request{method: "PUT", path: tc.path, body: tc.body})
			if r.Status != tc.status || !strings.Contains(string(r.Body), `"field":"`+tc.field+`"`) {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})
	}
	var all []appliance.Reservation
	ts.call(t, "GET", "/api/v1/reservations", nil, http.StatusOK, &all)
	if len(all) != 1 {
		t.Fatalf("%+v", all)
	}
	ts.call(t, "DELETE", "/api/v1/reservations/001565aabbcc", nil, http.StatusNoContent, nil)
	ts.call(t, "DELETE", "/api/v1/reservations/001565aabbcc", nil, http.StatusNotFound, nil)

	// With DHCP served, the page lists them, the phone's MAC linked to the phone.
	ts.call(t, "PUT", "/api/v1/reservations/001565aabbcc", map[string]string{"ip": "10.0.0.50"}, http.StatusOK, nil)
	if body := string(newBrowser(t, ts).get("/leases").Body); !strings.Contains(body, "DHCP is off") {
		t.Error("DHCP not served, but the page does not say it is off")
	}
	dhcp.Store("eth0")
	body := string(newBrowser(t, ts).get("/leases").Body)
	for _, want := range []string{`<a href="/phones/001565aabbcc"><code>00:15:65:aa:bb:cc</code></a>`, "<code>10.0.0.100</code>", "SIP-T46G", "yealink",
		"<code>02:00:00:00:00:01</code>", "laptop", "always gets <code>10.0.0.50</code>", "DHCP server on <code>eth0</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "DHCP is off") {
		t.Error("says DHCP is off")
	}
}

func TestAPI_LeasesDHCPOff(t *testing.T) {
	ts := MustOpenServer(t, func(s *webui.Server) { s.Services.Leases = nil })
	r := ts.call(t, "GET", "/api/v1/leases", nil, http.StatusOK, nil)
	if strings.TrimSpace(string(r.Body)) != "[]" {
		t.Fatalf("%s", r.Body)
	}
	ts.call(t, "PUT", "/api/v1/reservations/001565aabbcc", map[string]string{"ip": "10.0.0.50"}, http.StatusNotFound, nil)
}
