package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
)

const maxMAC = 1<<48 - 1

// parseMAC reads a MAC written as 12 hex digits, with or without ':', '-'
// or '.' separators, and returns it as a 48-bit number.
func parseMAC(s string) (uint64, error) {
	clean := strings.NewReplacer(":", "", "-", "", ".", "").Replace(strings.TrimSpace(s))
	if len(clean) != 12 {
		return 0, fmt.Errorf("%q is not a MAC (12 hex digits)", s)
	}
	var v uint64
	for _, c := range []byte(clean) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("%q is not a MAC (12 hex digits)", s)
		}
		v = v<<4 | uint64(d)
	}
	return v, nil
}

// macAt is the MAC of phone i: first + i, as 12 lower-case hex digits.
func macAt(first uint64, i int) (string, error) {
	v := first + uint64(i)
	if i < 0 || v > maxMAC || v < first {
		return "", errors.New("MAC range runs past ff:ff:ff:ff:ff:ff")
	}
	return fmt.Sprintf("%012x", v), nil
}

// macColon writes a 12-digit MAC with colons: 001565aabbcc → 00:15:65:aa:bb:cc.
func macColon(mac string) string {
	if len(mac) != 12 {
		return mac
	}
	var b strings.Builder
	b.Grow(17)
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(mac[i : i+2])
	}
	return b.String()
}

// parseIPv4 returns an IPv4 address as a number.
func parseIPv4(s string) (uint32, error) {
	ip := net.ParseIP(strings.TrimSpace(s)).To4()
	if ip == nil {
		return 0, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return binary.BigEndian.Uint32(ip), nil
}

func ipString(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return net.IP(b[:]).String()
}

func ipBytes(v uint32) net.IP {
	b := make(net.IP, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}

// usableHost reports whether an address may be a phone's: its last octet is
// neither 0 nor 255.
func usableHost(v uint32) bool {
	last := v & 0xff
	return last != 0 && last != 255
}

// ipRange gives n phone addresses starting at base (base itself if usable),
// skipping addresses whose last octet is 0 or 255. A base inside 127.0.0.0/8
// must keep the whole range there: an address outside loopback would not be
// local.
func ipRange(base uint32, n int) ([]uint32, error) {
	if n < 0 {
		return nil, errors.New("negative count")
	}
	out := make([]uint32, 0, n)
	v := uint64(base)
	for len(out) < n {
		if v > 0xffffffff {
			return nil, errors.New("address range runs past 255.255.255.255")
		}
		if usableHost(uint32(v)) {
			out = append(out, uint32(v))
		}
		v++
	}
	if n > 0 && base>>24 == 127 && out[n-1]>>24 != 127 {
		return nil, fmt.Errorf("%d phones from %s leave 127.0.0.0/8 (last would be %s)",
			n, ipString(base), ipString(out[n-1]))
	}
	return out, nil
}
