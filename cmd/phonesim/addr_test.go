package main

import (
	"strings"
	"testing"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"0015650a0000", 0x0015650a0000, false},
		{"00:15:65:AA:BB:CC", 0x001565aabbcc, false},
		{"00-15-65-aa-bb-cc", 0x001565aabbcc, false},
		{"0015.65aa.bbcc", 0x001565aabbcc, false},
		{"ffffffffffff", maxMAC, false},
		{"", 0, true},
		{"0015650a000", 0, true},
		{"0015650a00000", 0, true},
		{"0015650a000g", 0, true},
		{"+015650a0000", 0, true},
	}
	for _, tt := range tests {
		got, err := parseMAC(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseMAC(%q) = %x, %v; want %x, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMACAt(t *testing.T) {
	tests := []struct {
		first   uint64
		i       int
		want    string
		wantErr bool
	}{
		{0x0015650a0000, 0, "0015650a0000", false},
		{0x0015650a0000, 1, "0015650a0001", false},
		{0x0015650a0000, 999, "0015650a03e7", false},
		{0x0015650affff, 1, "0015650b0000", false}, // carries into the next byte
		{0xfffffffffffe, 1, "ffffffffffff", false},
		{0xffffffffffff, 1, "", true},
		{0x0015650a0000, -1, "", true},
	}
	for _, tt := range tests {
		got, err := macAt(tt.first, tt.i)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("macAt(%x, %d) = %q, %v; want %q, err %v", tt.first, tt.i, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMACColonAndUserAgent(t *testing.T) {
	if got := macColon("001565aabbcc"); got != "00:15:65:aa:bb:cc" {
		t.Errorf("macColon = %q", got)
	}
	if got, want := httpUserAgent("T46G", "28.83.0.35", "001565aabbcc"), "Yealink SIP-T46G 28.83.0.35 00:15:65:aa:bb:cc"; got != want {
		t.Errorf("httpUserAgent = %q, want %q", got, want)
	}
	if got, want := sipUserAgent("T46G", "28.83.0.35"), "Yealink SIP-T46G 28.83.0.35"; got != want {
		t.Errorf("sipUserAgent = %q, want %q", got, want)
	}
}

func TestIPRange(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		n       int
		want    []string // first few, then the last
		last    string
		wantErr string
	}{
		{name: "simple", base: "127.1.0.1", n: 3, want: []string{"127.1.0.1", "127.1.0.2", "127.1.0.3"}, last: "127.1.0.3"},
		{name: "skips .255 and .0", base: "127.1.0.253", n: 4, want: []string{"127.1.0.253", "127.1.0.254", "127.1.1.1", "127.1.1.2"}, last: "127.1.1.2"},
		{name: "base .0 moves on", base: "127.1.2.0", n: 1, want: []string{"127.1.2.1"}, last: "127.1.2.1"},
		{name: "base .255 moves on", base: "127.1.2.255", n: 1, want: []string{"127.1.3.1"}, last: "127.1.3.1"},
		// 1,000 phones from 127.1.0.1: 254 usable per /24, so the last is
		// in the fourth /24: 3*254 = 762, 1000-762 = 238 → 127.1.3.238.
		{name: "thousand", base: "127.1.0.1", n: 1000, want: []string{"127.1.0.1"}, last: "127.1.3.238"},
		{name: "leaves loopback", base: "127.255.255.250", n: 10, wantErr: "leave 127.0.0.0/8"},
		{name: "runs past the end", base: "255.255.255.253", n: 3, wantErr: "past 255.255.255.255"},
		{name: "not loopback is allowed", base: "10.0.0.254", n: 2, want: []string{"10.0.0.254", "10.0.1.1"}, last: "10.0.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, err := parseIPv4(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ipRange(base, tt.n)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.n {
				t.Fatalf("%d addresses, want %d", len(got), tt.n)
			}
			for i, w := range tt.want {
				if ipString(got[i]) != w {
					t.Errorf("[%d] = %s, want %s", i, ipString(got[i]), w)
				}
			}
			if ipString(got[len(got)-1]) != tt.last {
				t.Errorf("last = %s, want %s", ipString(got[len(got)-1]), tt.last)
			}
			seen := map[uint32]bool{}
			for _, v := range got {
				if !usableHost(v) || seen[v] {
					t.Fatalf("%s unusable or repeated", ipString(v))
				}
				seen[v] = true
			}
		})
	}
	if _, err := parseIPv4("::1"); err == nil {
		t.Error("parseIPv4(::1) accepted")
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(i + 1)
	}
	for _, tt := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := percentile(xs, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if percentile(nil, 50) != 0 || percentile([]float64{7}, 99) != 7 {
		t.Error("percentile of empty/one")
	}
}
