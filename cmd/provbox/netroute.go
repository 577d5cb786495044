package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// defaultRouteInterface returns the interface of the IPv4 default route with
// the lowest metric, read from /proc/net/route text. It reads a table; it
// never sends a packet (the usual trick of "connecting" a UDP socket to a
// public address would still look outward, which an appliance must not).
func defaultRouteInterface(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	best, bestMetric := "", -1
	first := true
	for sc.Scan() {
		if first { // header: Iface Destination Gateway Flags RefCnt Use Metric Mask ...
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&0x1 == 0 { // RTF_UP
			continue
		}
		if f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		metric, err := strconv.Atoi(f[6])
		if err != nil {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if best == "" {
		return "", fmt.Errorf("no IPv4 default route")
	}
	return best, nil
}

// interfaceIPv4 returns the first global-unicast IPv4 address of iface.
func interfaceIPv4(iface string) (net.IP, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip := n.IP.To4(); ip != nil && ip.IsGlobalUnicast() {
				return ip, nil
			}
		}
	}
	return nil, fmt.Errorf("%s has no IPv4 address", iface)
}

// defaultIPv4 returns the IPv4 address of the default-route interface, or
// 127.0.0.1 and the reason when there is none.
func defaultIPv4() (net.IP, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return net.IPv4(127, 0, 0, 1), err
	}
	defer f.Close()
	iface, err := defaultRouteInterface(f)
	if err != nil {
		return net.IPv4(127, 0, 0, 1), err
	}
	ip, err := interfaceIPv4(iface)
	if err != nil {
		return net.IPv4(127, 0, 0, 1), err
	}
	return ip, nil
}

// derivePublicURL returns the base URL phones are told when http.public_url
// is empty: the listen host when it is a specific address, else the address
// of the default-route interface; the port the HTTP server is bound to; and
// /prov/. The second result says why the fallback 127.0.0.1 was used.
func derivePublicURL(listen string, port int) (string, error) {
	host, _, _ := net.SplitHostPort(listen)
	var ip net.IP
	var why error
	if h := net.ParseIP(host); h != nil && !h.IsUnspecified() {
		ip = h
	} else if host != "" && h == nil {
		// A host name: phones resolve it as we did.
		return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/prov/", nil
	} else {
		ip, why = defaultIPv4()
	}
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(port)) + "/prov/", why
}
