package sqlite_test

import (
	"context"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// TestSighted walks SPEC §6's address rules through one phone that never
// fetched (new) and one that did (pending, its address unknown): which
// sightings teach an address, which port, and when the sync loop hears.
func TestSighted(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	if err := db.SetSettings(ctx, appliance.Settings{PhoneSIPPort: 5070}); err != nil {
		t.Fatal(err)
	}
	sub := db.Events.Subscribe(10, appliance.EventAddressLearned)
	defer sub.Close()
	const fresh, fetched = "001565000002", "001565000001"
	mustPhone(t, svc, fetched, "T46G", "")
	mustPhone(t, svc, fresh, "T46G", "")
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: fetched, Version: "stale"}) // pending, no address
	addr := func(mac string) string {
		p, _ := svc.Phones.FindPhone(ctx, mac)
		return p.Sync.SIPAddress
	}
	for _, tc := range []struct {
		name      string
		s         appliance.Sighting
		want      string // the phone's address after
		published bool   // EventAddressLearned: the phone waits for a trigger
	}{
		{"a refused file request teaches nothing", appliance.Sighting{MAC: fetched, IP: "10.0.0.4", Source: "http"}, "", false},
		{"pnp never moves a phone that fetched", appliance.Sighting{MAC: fetched, IP: "10.0.0.99", SIPAddr: "10.0.0.99:5060", Source: "pnp"}, "", false},
		{"a lease does, at sip.phone_port", appliance.Sighting{MAC: fetched, IP: "10.0.0.5", Source: "dhcp"}, "10.0.0.5:5070", true},
		{"the same lease again changes nothing", appliance.Sighting{MAC: fetched, IP: "10.0.0.5", Source: "dhcp"}, "10.0.0.5:5070", false},
		{"pnp teaches a phone that never fetched", appliance.Sighting{MAC: fresh, IP: "10.0.0.7", SIPAddr: "10.0.0.7:5062", Source: "pnp"}, "10.0.0.7:5062", false},
		{"a lease at the same IP keeps the port told", appliance.Sighting{MAC: fresh, IP: "10.0.0.7", Source: "dhcp"}, "10.0.0.7:5062", false},
		{"a lease at a new IP takes sip.phone_port", appliance.Sighting{MAC: fresh, IP: "10.0.0.8", Source: "dhcp"}, "10.0.0.8:5070", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := svc.Sync.Sighted(ctx, tc.s); err != nil {
				t.Fatal(err)
			}
			if got := addr(tc.s.MAC); got != tc.want {
				t.Fatalf("address %q, want %q", got, tc.want)
			}
			if got := len(drain(sub)) == 1; got != tc.published {
				t.Fatalf("published %v, want %v", got, tc.published)
			}
			if list, _ := svc.Discovery.FindDiscovered(ctx); len(list) != 0 {
				t.Fatalf("a known phone was discovered: %+v", list)
			}
		})
	}
	// A fetch from the same IP keeps the learned port; from a new IP it
	// takes the phone port.
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: fetched, Version: "stale", IP: "10.0.0.5"})
	if got := addr(fetched); got != "10.0.0.5:5070" {
		t.Fatalf("a fetch from the same IP: %s", got)
	}
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: fetched, Version: "stale", IP: "10.0.0.6"})
	if got := addr(fetched); got != "10.0.0.6:5070" {
		t.Fatalf("a fetch from a new IP kept the old address: %s", got)
	}
	if pending, err := svc.Sync.PendingPhones(ctx); err != nil || len(pending) != 1 || pending[0] != fetched {
		t.Fatalf("pending %v %v", pending, err)
	}
}

func TestSighted_Invalid(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	mustPhone(t, svc, "001565000001", "T46G", "")
	for _, tc := range []struct {
		name  string
		s     appliance.Sighting
		field string
	}{
		{"mac", appliance.Sighting{MAC: "nope", IP: "10.0.0.5", Source: "dhcp"}, "mac"},
		{"ip", appliance.Sighting{MAC: "001565000001", IP: "10.0.0", Source: "dhcp"}, "ip"},
		{"source", appliance.Sighting{MAC: "001565000001", IP: "10.0.0.5", Source: "sip"}, "source"},
		{"no port", appliance.Sighting{MAC: "001565000001", IP: "10.0.0.5", SIPAddr: "10.0.0.5", Source: "pnp"}, "sip_addr"},
		{"a name", appliance.Sighting{MAC: "001565000001", IP: "10.0.0.5", SIPAddr: "host:5060", Source: "pnp"}, "sip_addr"},
		{"port 0", appliance.Sighting{MAC: "001565000001", IP: "10.0.0.5", SIPAddr: "10.0.0.5:0", Source: "pnp"}, "sip_addr"},
		{"pnp contact elsewhere", appliance.Sighting{MAC: "001565000001", IP: "10.0.0.5", SIPAddr: "10.0.0.6:5060", Source: "pnp"}, "sip_addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, svc.Sync.Sighted(ctx, tc.s), appliance.EINVALID, tc.field)
			if p, _ := svc.Phones.FindPhone(ctx, "001565000001"); p.Sync.SIPAddress != "" {
				t.Fatalf("learned %q from an invalid sighting", p.Sync.SIPAddress)
			}
		})
	}
}

// BenchmarkSighted: a known phone that teaches nothing new (a renewed
// lease, a boot file fetched) costs one read and no writer; an unknown
// one a group-committed upsert.
func BenchmarkSighted(b *testing.B) {
	ctx := context.Background()
	db := MustOpenDB(b)
	svc := db.Services()
	mustPhone(b, svc, "001565000001", "T46G", "")
	for _, s := range []struct {
		name string
		g    appliance.Sighting
	}{
		{"known-dhcp", appliance.Sighting{MAC: "001565000001", IP: "10.0.0.5", Source: "dhcp"}},
		{"known-http", appliance.Sighting{MAC: "001565000001", IP: "10.0.0.5", Source: "http"}},
		{"unknown-http", appliance.Sighting{MAC: "001565000002", IP: "10.0.0.6", Source: "http"}},
	} {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if err := svc.Sync.Sighted(ctx, s.g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
