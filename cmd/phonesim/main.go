// Command phonesim emulates Yealink desk phones for tests, demos and load.
//
// Each phone has its own loopback address (-ip-base + i, skipping .0 and
// .255) and MAC (-first-mac + i). It fetches <base><mac>.cfg over HTTP from
// that address with the Yealink User-Agent ("Yealink SIP-T46G 28.83.0.35
// 00:15:65:0a:00:00") and remembers the ETag, then listens for SIP on its own
// UDP socket (ip:-sip-port). A NOTIFY with Event check-sync is answered
// 200 OK at once (to the datagram's source address) and the config is
// re-fetched; a retransmission (same Call-ID and CSeq) is answered again
// without a second fetch. A NOTIFY of another event gets 200, any other
// request 405, an ACK nothing, garbage is ignored. With -pnp the phone first
// sends the SIP PnP SUBSCRIBE (Event ua-profile) unicast to -pnp and takes
// the base URL from the body of the NOTIFY in that dialog.
//
// A phone boots like a factory Yealink: it knows no secret, so its boot
// fetch carries no credentials (provbox answers it while the phone's claim
// window is open, else 401). From each config it fetches with status 200
// (first line "#!version:1.0.0.1", then "key = value" lines; "#" starts a
// comment; "%NULL%" clears a value, a blank value is ignored) it keeps, as
// a Yealink keeps them in flash, for every later fetch:
//
//   - static.auto_provision.server.url, the base URL it fetches from
//     (http:// or https://), and static.auto_provision.server.username
//     and .password, its HTTP credentials. Source: FusionPBX template
//     t46s/y000000000066.cfg (the Yealink fact sheet, yealink.md §4).
//   - static.trusted_certificates.url, a file of custom trusted
//     certificates it downloads (without credentials; PEM or DER, at most
//     10 kept) when the URL is new to it, and
//     static.security.trust_certificates: 1 verifies a server's
//     certificate against the trusted list, 0 does not verify. Source:
//     Yealink SIP-T48G Administrator's Guide p.217,
//     https://manualshive.com/en/manual/yealink/yealink-sip-t48g/908447?page=229.
//     Once it has custom certificates phonesim trusts only those
//     (static.security.ca_cert = 2 would add the built-in list; we do
//     not emulate that); until then the system roots stand in for the
//     built-in list.
//
// Every later fetch (the re-fetch after a check-sync) GETs
// <server url><mac>.cfg, first without credentials; a 401 with a Basic
// challenge is answered once with the stored username and password, and a
// 401 after that is a failed fetch. That challenge-response order is our
// assumption, UNVERIFIED on a handset: no Yealink source we read says
// whether a phone sends its credentials preemptively. A rotated secret
// arrives in the config fetched with the old one. Phones that trust the
// same certificates share one HTTP transport.
//
// stdout carries one JSON object per line: boot, pnp, notify, retransmit,
// request, fetch, error, then booted once all phones have booted and
// summary at exit (counts, p50/p99 of fetch_ms and of NOTIFY→re-fetch ms,
// auth_retries, peak RSS). boot and fetch lines carry the url fetched,
// "tls" (https with the certificate verified) and "auth" ("none" or
// "basic": what the request that got the status carried). "at" is Unix
// nanoseconds, durations are milliseconds. Logs go to stderr. Exit status:
// 0 success, 1 a boot failed (its fetch, or the download of the trusted
// certificates its config named), 2 bad flags.
//
//	phonesim -n 1000 -prov http://127.0.0.1:8080/prov/ -quiet
//	phonesim -n 3 -pnp 127.0.0.1:5060 -exit-after-notifies 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

type config struct {
	n          int
	firstMAC   uint64
	model      string
	firmware   string
	ipBase     uint32
	sipPort    int
	prov       string
	pnp        *net.UDPAddr
	pnpTimeout time.Duration
	bootConc   int
	duration   time.Duration
	exitAfter  int
	quiet      bool
}

// flagError is a flag value phonesim rejects; it names the flag.
type flagError struct {
	flag string
	msg  string
}

func (e *flagError) Error() string { return "-" + e.flag + ": " + e.msg }

// printedError is an error the flag package has already printed, with the
// usage.
type printedError struct{ err error }

func (e *printedError) Error() string { return e.err.Error() }
func (e *printedError) Unwrap() error { return e.err }

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("phonesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      config
		firstMAC string
		ipBase   string
		pnp      string
	)
	fs.IntVar(&cfg.n, "n", 1, "number of phones")
	fs.StringVar(&firstMAC, "first-mac", "0015650a0000", "MAC of phone 0; phone i gets first-mac + i")
	fs.StringVar(&cfg.model, "model", "T46G", "Yealink model, for the User-Agent and the PnP Event")
	fs.StringVar(&cfg.firmware, "firmware", "28.83.0.35", "firmware version, for the User-Agent and the PnP Event")
	fs.StringVar(&ipBase, "ip-base", "127.1.0.1", "address of phone 0; phone i gets ip-base + i, skipping .0 and .255")
	fs.IntVar(&cfg.sipPort, "sip-port", 5060, "UDP port each phone listens on for SIP, on its own address")
	fs.StringVar(&cfg.prov, "prov", "http://127.0.0.1:8080/prov/", "provisioning base URL; a phone fetches <prov><mac>.cfg")
	fs.StringVar(&pnp, "pnp", "", "host:port: ask for the provisioning URL by SIP PnP SUBSCRIBE sent here (unicast) instead of using -prov")
	fs.DurationVar(&cfg.pnpTimeout, "pnp-timeout", 5*time.Second, "how long a phone waits for the PnP 200 OK and NOTIFY")
	fs.IntVar(&cfg.bootConc, "boot-concurrency", 50, "phones booting at the same time")
	fs.DurationVar(&cfg.duration, "duration", 0, "run this long after boot (0: until SIGINT/SIGTERM)")
	fs.IntVar(&cfg.exitAfter, "exit-after-notifies", 0, "exit once this many check-sync NOTIFYs have been answered and re-fetched (0: never)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "print only booted, error and summary lines")
	if err := fs.Parse(args); err != nil {
		return nil, &printedError{err}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}

	if cfg.n < 1 || cfg.n > 1<<20 {
		return nil, &flagError{"n", fmt.Sprintf("%d phones: want 1 to %d", cfg.n, 1<<20)}
	}
	var err error
	if cfg.firstMAC, err = parseMAC(firstMAC); err != nil {
		return nil, &flagError{"first-mac", err.Error()}
	}
	if _, err := macAt(cfg.firstMAC, cfg.n-1); err != nil {
		return nil, &flagError{"first-mac", fmt.Sprintf("%s with -n %d: %v", firstMAC, cfg.n, err)}
	}
	if !tokenRE.MatchString(cfg.model) {
		return nil, &flagError{"model", fmt.Sprintf("%q: want letters, digits, '.', '_' or '-'", cfg.model)}
	}
	if !tokenRE.MatchString(cfg.firmware) {
		return nil, &flagError{"firmware", fmt.Sprintf("%q: want letters, digits, '.', '_' or '-'", cfg.firmware)}
	}
	if cfg.ipBase, err = parseIPv4(ipBase); err != nil {
		return nil, &flagError{"ip-base", err.Error()}
	}
	if _, err := ipRange(cfg.ipBase, cfg.n); err != nil {
		return nil, &flagError{"ip-base", fmt.Sprintf("%s with -n %d: %v", ipBase, cfg.n, err)}
	}
	if cfg.sipPort < 1 || cfg.sipPort > 65535 {
		return nil, &flagError{"sip-port", fmt.Sprintf("%d: want 1 to 65535", cfg.sipPort)}
	}
	u, err := url.Parse(cfg.prov)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &flagError{"prov", fmt.Sprintf("%q: want an http:// or https:// base URL", cfg.prov)}
	}
	if !strings.HasSuffix(cfg.prov, "/") {
		cfg.prov += "/"
	}
	if pnp != "" {
		host, port, err := net.SplitHostPort(pnp)
		if err != nil || host == "" || port == "" {
			return nil, &flagError{"pnp", fmt.Sprintf("%q: want host:port", pnp)}
		}
		if cfg.pnp, err = net.ResolveUDPAddr("udp4", pnp); err != nil {
			return nil, &flagError{"pnp", fmt.Sprintf("%q: %v", pnp, err)}
		}
	}
	if cfg.pnpTimeout <= 0 {
		return nil, &flagError{"pnp-timeout", "want a positive duration"}
	}
	if cfg.bootConc < 1 {
		return nil, &flagError{"boot-concurrency", fmt.Sprintf("%d: want at least 1", cfg.bootConc)}
	}
	if cfg.duration < 0 {
		return nil, &flagError{"duration", "want 0 or a positive duration"}
	}
	if cfg.exitAfter < 0 {
		return nil, &flagError{"exit-after-notifies", fmt.Sprintf("%d: want 0 or more", cfg.exitAfter)}
	}
	return &cfg, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal a second one kills at once.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is phonesim without the process: ctx ends it like a signal would.
// It returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var pe *printedError
		if !errors.As(err, &pe) {
			fmt.Fprintf(stderr, "phonesim: %v\n", err)
		}
		return 2
	}
	raiseFileLimit(cfg.n, stderr)
	s, err := newSim(cfg, &emitter{w: stdout, quiet: cfg.quiet})
	if err != nil {
		fmt.Fprintf(stderr, "phonesim: %v\n", err)
		return 2
	}
	return s.run(ctx)
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit: each phone
// holds a UDP socket and, while fetching, a TCP connection.
func raiseFileLimit(n int, stderr io.Writer) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Fprintf(stderr, "phonesim: raising the open-file limit: %v\n", err)
		}
	}
	if need := uint64(2*n + 64); lim.Cur < need {
		fmt.Fprintf(stderr, "phonesim: open-file limit %d is low for %d phones (about %d needed)\n", lim.Cur, n, need)
	}
}
