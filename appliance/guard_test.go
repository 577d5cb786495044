package appliance_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

func TestGuard(t *testing.T) {
	type step struct {
		proto, ip string
		fail      bool          // Fail, else Wait
		succeed   bool          // Succeed
		advance   time.Duration // before the step
		refused   bool          // Fail: became refused; Wait: > 0
	}
	const H, T = appliance.ProtoHTTP, appliance.ProtoTFTP
	tests := []struct {
		name   string
		limit  int
		global int
		exempt string
		steps  []step
	}{
		{"past the limit, refused for the block", 2, 0, "", []step{
			{proto: H, ip: "10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1", fail: true},
			{proto: H, ip: "10.0.0.1"},
			{proto: H, ip: "10.0.0.1", fail: true, refused: true},
			{proto: H, ip: "10.0.0.1", refused: true},
			{proto: H, ip: "10.0.0.1", fail: true}, // refused once: logged once
			{proto: H, ip: "10.0.0.1", advance: 9 * time.Minute, refused: true},
			{proto: H, ip: "10.0.0.1", advance: 61 * time.Second},
		}},
		{"a new minute starts the count again", 2, 0, "", []step{
			{proto: H, ip: "10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1", fail: true},
			{proto: H, ip: "10.0.0.1", advance: time.Minute, fail: true},
			{proto: H, ip: "10.0.0.1"},
		}},
		{"a spoofable TFTP miss never refuses HTTP", 1, 0, "", []step{
			{proto: T, ip: "10.0.0.50", fail: true}, {proto: T, ip: "10.0.0.50", fail: true, refused: true},
			{proto: T, ip: "10.0.0.50", refused: true},
			{proto: H, ip: "10.0.0.50"},
		}},
		{"other addresses go on", 1, 0, "", []step{
			{proto: H, ip: "10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1", fail: true, refused: true},
			{proto: H, ip: "10.0.0.2"},
		}},
		{"IPv6 counts per /64", 2, 0, "", []step{
			{proto: H, ip: "2001:db8:1:2::1", fail: true}, {proto: H, ip: "2001:db8:1:2::2", fail: true},
			{proto: H, ip: "2001:db8:1:2:ffff::3", fail: true, refused: true},
			{proto: H, ip: "2001:db8:1:2::99", refused: true},
			{proto: H, ip: "2001:db8:1:3::1"},
		}},
		{"IPv4-mapped counts as IPv4", 1, 0, "", []step{
			{proto: H, ip: "::ffff:10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1", fail: true, refused: true},
		}},
		{"a known phone's leased address is never refused", 1, 0, "10.0.0.7", []step{
			{proto: H, ip: "10.0.0.7", fail: true}, {proto: H, ip: "10.0.0.7", fail: true}, {proto: H, ip: "10.0.0.7", fail: true},
			{proto: H, ip: "10.0.0.7"},
		}},
		{"a proven secret takes a challenge back", 1, 0, "", []step{
			{proto: H, ip: "10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1", succeed: true},
			{proto: H, ip: "10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1", succeed: true},
			{proto: H, ip: "10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1"},
		}},
		{"past the global budget the second failure refuses", 5, 3, "", []step{
			{proto: H, ip: "10.0.1.1", fail: true}, {proto: H, ip: "10.0.1.2", fail: true}, {proto: H, ip: "10.0.1.3", fail: true},
			{proto: H, ip: "10.0.1.4", fail: true},
			{proto: H, ip: "10.0.1.4", fail: true, refused: true},
			{proto: H, ip: "10.0.1.5"}, // made no mistake: untouched
		}},
		{"forged TFTP misses spend only TFTP's global budget", 5, 3, "", []step{
			{proto: T, ip: "10.0.2.1", fail: true}, {proto: T, ip: "10.0.2.2", fail: true}, {proto: T, ip: "10.0.2.3", fail: true},
			{proto: T, ip: "10.0.2.4", fail: true},
			{proto: H, ip: "10.0.2.9", fail: true}, {proto: H, ip: "10.0.2.9", fail: true}, // a typo twice
			{proto: H, ip: "10.0.2.9"},
		}},
		{"limit 0 is off", 0, 0, "", []step{
			{proto: H, ip: "10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1", fail: true}, {proto: H, ip: "10.0.0.1"},
		}},
		{"not an address counts nothing", 1, 0, "", []step{
			{proto: H, ip: "pipe", fail: true}, {proto: H, ip: "pipe", fail: true}, {proto: H, ip: "pipe"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1_000_000, 0)
			g := &appliance.Guard{Limit: tt.limit, Global: tt.global, Now: func() time.Time { return now },
				Exempt: func(ip string) bool { return ip == tt.exempt }}
			for i, s := range tt.steps {
				now = now.Add(s.advance)
				switch {
				case s.succeed:
					g.Succeed(s.proto, s.ip)
				case s.fail:
					if got := g.Fail(s.proto, s.ip); got != s.refused {
						t.Fatalf("step %d: Fail(%s, %s) = %v, want %v", i, s.proto, s.ip, got, s.refused)
					}
				default:
					if got := g.Wait(s.proto, s.ip); (got > 0) != s.refused {
						t.Fatalf("step %d: Wait(%s, %s) = %v, want refused %v", i, s.proto, s.ip, got, s.refused)
					}
				}
			}
		})
	}
}

// TestGuardBounded: a flood from many addresses keeps the memory bounded
// and keeps the refused addresses refused.
func TestGuardBounded(t *testing.T) {
	g := &appliance.Guard{Limit: 1, Global: 1 << 30, MaxTracked: 100}
	g.Fail(appliance.ProtoHTTP, "192.0.2.1")
	g.Fail(appliance.ProtoHTTP, "192.0.2.1")
	for i := range 5000 {
		g.Fail(appliance.ProtoTFTP, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
	}
	if n := g.Tracked(); n > 100 {
		t.Errorf("tracks %d addresses, bound 100", n)
	}
	if g.Wait(appliance.ProtoHTTP, "192.0.2.1") == 0 {
		t.Error("the refused address was forgotten in the flood")
	}
}

// TestGuardConcurrent: the limit changes while requests count failures
// (run with -race).
func TestGuardConcurrent(t *testing.T) {
	g := &appliance.Guard{Limit: 1000}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				addr := fmt.Sprintf("10.0.%d.%d", i, j%7)
				g.Fail(appliance.ProtoHTTP, addr)
				g.Wait(appliance.ProtoHTTP, addr)
				g.Succeed(appliance.ProtoHTTP, addr)
			}
		}()
	}
	for n := range 50 {
		g.SetLimit(n)
	}
	wg.Wait()
	g.SetLimit(1)
	g.Fail(appliance.ProtoHTTP, "192.0.2.1")
	g.Fail(appliance.ProtoHTTP, "192.0.2.1")
	if g.Wait(appliance.ProtoHTTP, "192.0.2.1") == 0 {
		t.Error("limit 1: a second failure within the minute is still served")
	}
}
