package dhcpopt

import (
	"context"
	"github.com/provbox/provbox/configs"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
)

func openStore(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	db.Events = appliance.NewEventBus(nil)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	return db
}

func storeServer(t *testing.T, db *sqlite.DB) *testServer {
	t.Helper()
	svc := db.Services()
	return newTestServer(t, func(s *Server, _ *fakeLeases) {
		s.Services = svc
		s.Now = time.Now
	})
}

// TestStore: leases go to SQLite, survive a restart, and teach the sync
// loop (known phones) and Discovered (unknown phones).
func TestStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "provbox.db")
	db := openStore(t, path)
	if err := db.SetSettings(ctx, appliance.Settings{ProvisioningURL: provURL, PhoneSIPPort: 5062}); err != nil {
		t.Fatal(err)
	}
	svc := db.Services()
	if _, err := svc.Extensions.CreateExtension(ctx, &appliance.Extension{Number: "1001", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Phones.CreatePhone(ctx, &appliance.Phone{MAC: yealinkMAC, Model: "T46G"}, "1001"); err != nil {
		t.Fatal(err)
	}
	ts := storeServer(t, db)
	go ts.learn.run(ts.ctx)
	known := ts.dora(t, yealinkMAC, withPRL(prlPhone...))
	if known.TFTPServerName() != provURL {
		t.Fatalf("option 66 %q", known.TFTPServerName())
	}
	unknown := ts.dora(t, "80:5e:c0:00:00:09", withClass("yealink"))
	ts.dora(t, otherMAC)

	deadline := time.Now().Add(5 * time.Second)
	for {
		p, _ := svc.Phones.FindPhone(ctx, yealinkMAC)
		disc, _ := svc.Discovery.FindDiscovered(ctx)
		if p.Sync.SIPAddress == known.YourIPAddr.String()+":5062" && len(disc) == 1 && disc[0].Source == "dhcp" &&
			disc[0].IP == unknown.YourIPAddr.String() && disc[0].Vendor == "Yealink" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not learned: phone %q, discovered %+v", p.Sync.SIPAddress, disc)
		}
		time.Sleep(20 * time.Millisecond)
	}
	list, err := svc.Leases.FindLeases(ctx)
	if err != nil || len(list) != 3 || list[0].Phone != "001565000001" || list[0].State != appliance.LeaseBound {
		t.Fatalf("%v %+v", err, list)
	}
	ts.cancel()
	db.Close()

	// Restart: the leases are back; the known client keeps its address
	// (INIT-REBOOT), a new one does not get it.
	db = openStore(t, path)
	defer db.Close()
	ts = storeServer(t, db)
	ack := ts.reply(t, msg(t, dhcpv4.MessageTypeRequest, yealinkMAC, withRequested(known.YourIPAddr.String())))
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("after restart: %s", ack.Summary())
	}
	if again := ts.reply(t, msg(t, dhcpv4.MessageTypeDiscover, "00:15:65:00:00:77")); again.YourIPAddr.Equal(known.YourIPAddr) ||
		again.YourIPAddr.Equal(unknown.YourIPAddr) || again.YourIPAddr.String() != "10.0.0.103" {
		t.Fatalf("new client offered %s", again.YourIPAddr)
	}
	// Reservations set through the store reach a running server.
	sub := db.Events.Subscribe(1)
	defer sub.Close()
	ts.Services.Events = db.Events
	go ts.watchReservations(db.Events.Subscribe(8))
	if _, err := db.Services().Leases.SetReservation(ctx, "00:15:65:00:00:55", "10.0.0.42"); err != nil {
		t.Fatal(err)
	}
	<-sub.C
	for i := 0; ; i++ {
		resp := ts.reply(t, msg(t, dhcpv4.MessageTypeDiscover, "00:15:65:00:00:55"))
		if resp.YourIPAddr.Equal(net.IPv4(10, 0, 0, 42)) {
			break
		}
		if i > 100 {
			t.Fatalf("reservation not applied: %s", resp.YourIPAddr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
