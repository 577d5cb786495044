package sqlite_test

import (
	"context"
	"fmt"
	"github.com/provbox/provbox/configs"
	"sync"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
)

func TestLeases_SaveFindReopen(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	mustPhone(t, svc, "001565aabbcc", "T46G", "1001")

	bound := &appliance.Lease{IP: "10.0.0.20", MAC: "00:15:65:AA:BB:CC", Hostname: "SIP-T46G", Vendor: "yealink", State: appliance.LeaseBound, ExpiresAt: now.Add(time.Hour)}
	old := &appliance.Lease{IP: "10.0.0.3", MAC: "02:00:00:00:00:01", State: appliance.LeaseBound, ExpiresAt: now.Add(-time.Minute)}
	conflict := &appliance.Lease{IP: "10.0.0.100", State: appliance.LeaseDeclined, ExpiresAt: now.Add(10 * time.Minute)}
	if err := svc.Leases.SaveLeases(ctx, bound, old, conflict); err != nil {
		t.Fatal(err)
	}
	// The failure guard never refuses a provisioned phone's leased address.
	for ip, want := range map[string]bool{"10.0.0.20": true, "10.0.0.3": false, "10.0.0.100": false, "10.0.0.99": false} {
		if got, err := svc.Leases.PhoneLeased(ctx, ip); err != nil || got != want {
			t.Errorf("PhoneLeased(%s) = %v, %v; want %v", ip, got, err, want)
		}
	}
	if bound.MAC != "001565aabbcc" || bound.Phone != "001565aabbcc" || !bound.UpdatedAt.Equal(now) {
		t.Fatalf("saved: %+v", bound)
	}
	check := func(svc appliance.Services) {
		t.Helper()
		list, err := svc.Leases.FindLeases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range list {
			got = append(got, fmt.Sprintf("%s %s %s %s", l.IP, l.MAC, l.State, l.Phone))
		}
		want := []string{"10.0.0.3 020000000001 expired ", "10.0.0.20 001565aabbcc bound 001565aabbcc", "10.0.0.100  declined "}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %q\nwant %q", got, want)
		}
	}
	check(svc)

	// Released: the same row, a new state.
	bound.State, bound.ExpiresAt = appliance.LeaseReleased, now
	if err := svc.Leases.SaveLeases(ctx, bound); err != nil {
		t.Fatal(err)
	}
	bound.State, bound.ExpiresAt = appliance.LeaseBound, now.Add(time.Hour)
	if err := svc.Leases.SaveLeases(ctx, bound); err != nil {
		t.Fatal(err)
	}

	// Leases survive a restart.
	path := db.Path
	db.Close()
	db2 := sqlite.NewDB(path, configs.MustCatalog(), appliance.HashConfig)
	db2.Now = func() time.Time { return now }
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	check(db2.Services())
}

func TestLeases_Invalid(t *testing.T) {
	svc := MustOpenDB(t).Services()
	for _, tc := range []struct {
		name  string
		l     appliance.Lease
		field string
	}{
		{"ipv6", appliance.Lease{IP: "fe80::1", MAC: "001565aabbcc", State: appliance.LeaseBound}, "ip"},
		{"no ip", appliance.Lease{MAC: "001565aabbcc", State: appliance.LeaseBound}, "ip"},
		{"offered is not stored", appliance.Lease{IP: "10.0.0.9", MAC: "001565aabbcc", State: appliance.LeaseOffered}, "state"},
		{"bound needs a MAC", appliance.Lease{IP: "10.0.0.9", State: appliance.LeaseBound}, "mac"},
		{"multicast MAC", appliance.Lease{IP: "10.0.0.9", MAC: "01:00:5e:00:00:01", State: appliance.LeaseBound}, "mac"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, svc.Leases.SaveLeases(context.Background(), &tc.l), appliance.EINVALID, tc.field)
		})
	}
}

// TestLeases_GroupCommit: many concurrent savers all return committed.
func TestLeases_GroupCommit(t *testing.T) {
	ctx := context.Background()
	svc := MustOpenDB(t).Services()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- svc.Leases.SaveLeases(ctx, &appliance.Lease{IP: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1),
				MAC: fmt.Sprintf("0200000000%02x", i), State: appliance.LeaseBound, ExpiresAt: time.Now().Add(time.Hour)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if list, _ := svc.Leases.FindLeases(ctx); len(list) != 200 {
		t.Fatalf("%d leases", len(list))
	}
}

func TestReservations(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	sub := db.Events.Subscribe(4)
	mustExt(t, svc, "1001", "Alice")
	mustPhone(t, svc, "001565aabbcc", "T46G", "1001")
	for len(sub.C) > 0 {
		<-sub.C
	}
	r, err := svc.Leases.SetReservation(ctx, "00-15-65-AA-BB-CC", "10.0.0.50")
	if err != nil || r.MAC != "001565aabbcc" || r.IP != "10.0.0.50" || r.Phone != "001565aabbcc" {
		t.Fatalf("%+v %v", r, err)
	}
	if e := <-sub.C; e.Type != appliance.EventReservationsChanged {
		t.Fatalf("event %+v", e)
	}
	_, err = svc.Leases.SetReservation(ctx, "001565000001", "10.0.0.50")
	wantErr(t, err, appliance.ECONFLICT, "ip")
	_, err = svc.Leases.SetReservation(ctx, "001565000001", "224.0.0.1")
	wantErr(t, err, appliance.EINVALID, "ip")
	_, err = svc.Leases.SetReservation(ctx, "nope", "10.0.0.51")
	wantErr(t, err, appliance.EINVALID, "mac")
	// Moving a MAC's reservation replaces it.
	if _, err := svc.Leases.SetReservation(ctx, "001565aabbcc", "10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Leases.SetReservation(ctx, "001565000001", "10.0.0.50"); err != nil {
		t.Fatal(err)
	}
	list, _ := svc.Leases.FindReservations(ctx)
	if len(list) != 2 || list[0].IP != "10.0.0.9" || list[1].MAC != "001565000001" {
		t.Fatalf("%+v %+v", list[0], list[1])
	}
	if err := svc.Leases.DeleteReservation(ctx, "001565000001"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, svc.Leases.DeleteReservation(ctx, "001565000001"), appliance.ENOTFOUND, "mac")
}
