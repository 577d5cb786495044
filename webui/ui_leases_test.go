package webui_test

import (
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/webui"
)

// Tests of the Leases page (ui_leases.go).

func TestUIAdmin_Leases(t *testing.T) {
	ts := MustOpenServer(t, func(s *webui.Server) { s.Services.Leases = nil }) // DHCP off
	if err := ts.db.SetSettings(t.Context(), appliance.Settings{ProvisioningURL: "http://10.0.0.2:8080/prov/", NotifyRate: 50}); err != nil {
		t.Fatal(err)
	}
	body := string(newBrowser(t, ts).get("/leases").Body)
	for _, want := range []string{"DHCP is off", "option 66", "plug-and-play", "<code>http://10.0.0.2:8080/prov/</code>", `href="/#find"`} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	if strings.Contains(body, "cannot reach") {
		t.Error("warns about a LAN address")
	}
	ts.db.SetSettings(t.Context(), appliance.Settings{ProvisioningURL: "http://127.0.0.1:8080/prov/", NotifyRate: 50})
	if body := string(newBrowser(t, ts).get("/leases").Body); !strings.Contains(body, "Phones cannot reach this URL") {
		t.Error("no warning about a loopback URL")
	}
}
