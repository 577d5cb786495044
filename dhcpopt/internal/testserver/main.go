// Command testserver runs dhcpopt.Server on a SQLite store, alone, for the
// network-namespace tests of dhcpopt and for bench/dhcp.sh while
// `provbox serve` does not wire DHCP. It logs JSON on stderr, prints
// {"msg":"ready"} once serving, and stops cleanly on SIGTERM or SIGINT.
//
//	ip netns exec srv testserver -iface veth-srv -db /tmp/p.db \
//	    -start 10.99.0.100 -end 10.99.0.200 -mask 255.255.255.0 -url http://10.99.0.1:8080/prov/
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
	"github.com/provbox/provbox/configs"
	"github.com/provbox/provbox/dhcpopt"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

func ips(s string) []net.IP {
	var out []net.IP
	for _, f := range strings.Split(s, ",") {
		if ip := net.ParseIP(strings.TrimSpace(f)); ip != nil {
			out = append(out, ip)
		}
	}
	return out
}

func run() error {
	var (
		iface      = flag.String("iface", "", "interface")
		dbPath     = flag.String("db", "", "SQLite file")
		start      = flag.String("start", "", "range start")
		end        = flag.String("end", "", "range end")
		mask       = flag.String("mask", "255.255.255.0", "netmask")
		router     = flag.String("router", "", "router")
		dns        = flag.String("dns", "", "DNS servers, comma-separated")
		ntp        = flag.String("ntp", "", "NTP servers, comma-separated")
		url        = flag.String("url", "", "provisioning URL (option 66/160)")
		lease      = flag.Duration("lease", time.Hour, "lease time")
		phonesOnly = flag.Bool("phones-only", false, "answer phones only")
		allowOther = flag.Bool("allow-other", false, "skip the other-server probe")
		noConflict = flag.Bool("no-conflict-check", false, "no ARP probe before offers")
		tftp       = flag.Bool("tftp", false, "TFTP is served (option 150)")
		opt66      = flag.String("option66", "http", "http or tftp")
		level      = flag.String("log-level", "info", "debug, info, warn")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile here until stopped")
		pprofAddr  = flag.String("pprof", "", "serve net/http/pprof (with block and mutex profiles) on this address")
	)
	flag.Parse()
	if *pprofAddr != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		runtime.SetMutexProfileFraction(10)
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return err
		}
		go http.Serve(ln, nil)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	db := sqlite.NewDB(*dbPath, configs.MustCatalog(), appliance.HashConfig)
	db.Logger = logger
	db.Events = appliance.NewEventBus(logger)
	if err := db.Open(); err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.SetSettings(ctx, appliance.Settings{ProvisioningURL: *url, PhoneSIPPort: 5060, NotifyRate: 50}); err != nil {
		return err
	}
	srv := &dhcpopt.Server{
		Catalog:           db.Catalog,
		Interface:         *iface,
		RangeStart:        net.ParseIP(*start),
		RangeEnd:          net.ParseIP(*end),
		Netmask:           net.IPMask(net.ParseIP(*mask).To4()),
		DNS:               ips(*dns),
		NTP:               ips(*ntp),
		LeaseTime:         *lease,
		PhonesOnly:        *phonesOnly,
		AllowOtherServers: *allowOther,
		SkipConflictCheck: *noConflict,
		TFTP:              *tftp,
		Option66:          *opt66,
		Services:          db.Services(),
		Logger:            logger,
	}
	if *router != "" {
		srv.Router = net.ParseIP(*router)
	}
	if err := srv.Open(); err != nil {
		return err
	}
	logger.Info("ready")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	return srv.Close()
}
