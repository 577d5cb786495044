// Command phonesim emulates Yealink desk phones for tests, demos and load,
// including the behaviours that make a provisioning server's life harder.
// Sources are Yealink guide pages (URLs inline), mostly as cited by the
// reference notes /work/shared/reference/yealink.md (§1, §5) and
// yealink-audit.md (§2, "Confirmed after the audit"). "YFW <id>" is a
// public copy of Yealink phone-firmware source (about V82; repository not
// identified, cited by the id the search tool's find_string and read_file
// give it): evidence of behaviour, not of defaults. SOURCES.md, next to
// this file, holds the research with every source key. UNVERIFIED marks
// what no source confirmed.
//
// # Boot
//
// Each phone has its own loopback address (-ip-base + i, skipping .0 and
// .255) and MAC (-first-mac + i), and its own UDP socket for SIP
// (ip:-sip-port). With -pnp the phone first sends the SIP PnP SUBSCRIBE
// (Event ua-profile) unicast to -pnp and takes the base URL from the body
// of the NOTIFY in that dialog; else the base URL is -prov. Then it runs an
// auto-provisioning round (below): it GETs <base><mac>.cfg from its own
// address with the Yealink User-Agent ("Yealink SIP-T46G 28.83.0.35
// 00:15:65:0a:00:00").
//
// A phone boots like a factory Yealink: it knows no secret, so its boot
// fetch carries no credentials (provbox answers it while the phone's claim
// window is open, else 401), and every setting has its factory value.
//
// # Configs and flash
//
// A config fetched with status 200 starts with "#!version:1.0.0.1" (else
// its settings are ignored), then "key = value" lines; "#" starts a
// comment; "%NULL%" restores the factory value (for a URL or a name:
// empty); a blank value is ignored. Keys are read with or without the
// "static." prefix (V81+ firmware has it, older does not; provbox writes
// both; the later line wins). A phone keeps these, as a Yealink keeps them
// in flash across check-syncs and reboots:
//
//   - auto_provision.server.url, the base URL of later fetches (http:// or
//     https://), and auto_provision.server.username and .password, their
//     HTTP credentials. Source: FusionPBX template t46s/y000000000066.cfg
//     (yealink.md §4).
//   - trusted_certificates.url, a file of custom trusted certificates it
//     downloads (without credentials; PEM or DER, at most 10 kept) when the
//     URL is new to it, and security.trust_certificates: 1 verifies a
//     server's certificate against the trusted list, 0 does not verify.
//     Source: Yealink SIP-T48G Administrator's Guide p.217,
//     https://manualshive.com/en/manual/yealink/yealink-sip-t48g/908447?page=229.
//     Once it has custom certificates phonesim trusts only those
//     (security.ca_cert = 2 would add the built-in list; not emulated);
//     until then the system roots stand in for the built-in list.
//   - sip.notify_reboot_enable (factory 1), sip.trust_ctrl (factory 0),
//     action_url.{setup_autop_finish,registered,register_failed,
//     unregistered,ip_change}, features.action_uri.enable (factory 1),
//     features.action_uri_limit_ip (factory blank),
//     features.show_action_uri_option (factory 1), security.user_password
//     (admin:<password>; factory admin:admin) and, for N = 1..16,
//     account.N.enable, .user_name, .auth_name, .password,
//     .sip_server.1.address and .sip_server.1.port (default 5060). Each
//     is described below.
//
// Every fetch after the boot GETs <server url><mac>.cfg (else the boot
// base), first without credentials; a 401 with a Basic challenge is
// answered once with the stored username and password, and a 401 after
// that is a failed fetch. That challenge-response order is our
// assumption, UNVERIFIED on a handset. A rotated secret arrives in the
// config fetched with the old one. Phones that trust the same certificates
// share one HTTP transport.
//
// # Auto-provisioning rounds and the MD5 skip
//
// A round (at boot, after a check-sync, after an Action URI AutoP, after a
// reboot) fetches the file, applies it, reconciles the registrations and
// reports setup_autop_finish. The phone MD5-compares each downloaded file
// with the last one it applied and does not apply an unchanged one (T40G
// auto-provisioning guide p.49, https://easymanua.ls/yealink/sip-t40g/manual/11518?p=55:
// "The IP phone will complete the auto provisioning without repeated
// update"; T52S guide https://www.easymanua.ls/yealink/sip-t52s/manual/1035621?p=55;
// W52P guide https://mcgrp.ru/files/viewer/192029/43). An unchanged file
// changes nothing (no setting, no REGISTER): its fetch line says
// "applied": false. That such a round still reports setup_autop_finish is
// our reading.
//
// # check-sync and sip.notify_reboot_enable
//
// A NOTIFY with Event check-sync is answered 200 OK at once (to the
// datagram's source); a retransmission (same Call-ID and CSeq) is answered
// again and does nothing more. Then sip.notify_reboot_enable decides: 1
// (factory) reboots on every check-sync; 0 re-provisions without reboot
// unless the Event carries reboot=true; 2 ignores check-sync. Source: T5
// guide (CP969) p.757, https://manualshive.com/en/manual/yealink/cp969/909068?page=779,
// and the T2 user guide p.45 (yealink.md §5). A phone that has taken no
// config, or a config without the key, therefore reboots. A NOTIFY of
// another event gets 200, any other request 405, an ACK nothing, garbage
// is ignored.
//
// A reboot emits a reboot line; the phone forgets its registrations and
// what its SIP stack remembered, hears nothing (no answer, no action) for
// -reboot-time (a real phone takes about a minute), then boots again
// without re-binding its socket: a round from the server URL in its flash
// (else the boot base; no new PnP), registrations, reports.
//
// # sip.trust_ctrl
//
// With sip.trust_ctrl = 1 the phone accepts SIP requests only from its
// registrars: a request (check-sync included) whose source IP is not the
// IP of an enabled account's sip_server.1.address is dropped, unanswered
// and without action, and a refused line is written. Source: T5 guide
// p.494-497, https://manualshive.com/en/manual/yealink/sip-t5-series/sip-t5-series_administrators-manual_3909785-497.html
// ("only accept the SIP message from the SIP and outbound proxy server",
// default 0; yealink-audit.md §2) and Yealink FAQ 559,
// http://support.yealink.com/faq/faqInfo?id=559 (sip.trust_ctrl from V81).
// Assumptions: the comparison is by IP only (a registrar may send from
// another port than the one it listens on), UNVERIFIED; a real phone may
// answer (403) instead of dropping, UNVERIFIED; outbound proxies are not
// read.
//
// # Registration
//
// For each account.N (N = 1..16) with enable = 1 and sip_server.1.address
// set, the phone REGISTERs over UDP from its SIP socket to
// address:sip_server.1.port: To/From sip:<user_name>@<address>, Contact
// <sip:<user_name>@<phone ip>:<sip port>>, Expires 3600. A 401/407 Digest
// challenge (MD5, qop auth or none: RFC 2617, RFC 7616) is answered once
// with auth_name (else user_name) and password. Retransmissions follow
// RFC 3261 timer E (0.5 s doubling to 4 s) until a final response or
// -register-timeout (timer F, 32 s). A 2xx is registered; anything else,
// or no answer, is register_failed. An account is registered again only
// when its settings change in a newly applied config (and after a
// reboot); there is no refresh timer, and disabling an account sends no
// un-REGISTER. A phone on a loopback address contacts only loopback
// registrars and never resolves a name (other than localhost): phonesim's
// safety rule, so a test config naming pbx.example.com sends nothing
// off the machine.
//
// # Action URLs (reports)
//
// The phone GETs its action URLs, without credentials, from its own
// address with its User-Agent and through its provisioning transport
// (what it trusts): setup_autop_finish after each round that fetched its
// file with 200 and applied it (or found it unchanged); registered or
// register_failed after each REGISTER outcome; unregistered when a new
// config disables a registered account. ip_change is kept but never sent:
// an emulated phone keeps its address. The variables $mac, $ip, $model
// (-model), $firmware and $active_user (the account's user_name; empty for
// setup_autop_finish) are substituted as plain text; other $words stay.
// A URL without a scheme gets http://. Sources: the T2/T4/T5 guide, Action
// URL, https://www.easymanua.ls/yealink/t21pe2/manual?p=450, and YFW
// 35534784267 (CActionUrl). Yealink documents
// setup_autop_finish as "When the IP phone completes auto provisioning via
// power on" (T40G guide p.481, https://www.easymanua.ls/yealink/t40g/manual/289184?p=501)
// and the firmware sends it once per boot only (YFW 35458245315): phonesim
// reports it after boot and reboot rounds only, never after a check-sync or
// an Action URI round.
// -no-action-urls ignores action_url.* (firmware without them);
// -max-reports N loses each phone's reports (any action URL) after its Nth
// (a report line with "lost": true, nothing sent).
//
// # Action URI
//
// With -web-port, each phone serves HTTPS on ip:-web-port (one
// self-signed certificate for all; a real phone presents its own).
// GET /servlet?key=<KEY> (or /cgi-bin/ConfigManApp.com,
// /cgi-bin/cgiServer.exx) is checked in this order:
// features.action_uri.enable 0 → 403; source IP not in
// features.action_uri_limit_ip (IPs, '*' octets, "any"; blank lets
// nobody in) → 403; HTTP Basic credentials not the admin's → 401 with a
// Basic challenge; features.show_action_uri_option = 1 (the phone asks
// "Allow remote control?" and nobody presses OK) → 403. Then key=AutoP
// answers 200 and runs a round (trigger action_uri, no reboot),
// key=Reboot answers 200 and reboots, key presses and the firmware's
// other commands answer 200 and do nothing, anything else 400. Sources:
// T21P E2 guide p.459-465, https://easymanua.ls/yealink/t21pe2/manual?p=465;
// T40G guide p.523, https://www.easymanua.ls/yealink/t40g/manual/289184?p=523.
// AutoP and Reboot are in no Yealink guide page, only in a public copy of
// the firmware's command table (YFW 35226849602) and in public tools:
// UNVERIFIED in a Yealink document. The statuses of refusals are
// UNVERIFIED.
//
// # Output
//
// stdout carries one JSON object per line: boot, pnp, notify, retransmit,
// request, fetch, reboot, register, report, refused, action_uri, error,
// then booted once all phones have booted and summary at exit (counts,
// p50/p99 of fetch_ms and of NOTIFY→re-fetch ms, auth_retries, reports,
// reports_lost, reports_failed, registrations, register_failed, reboots,
// applied, skipped, refused, action_uri, peak RSS). boot and fetch lines
// carry the url fetched, "tls" (https with the certificate verified),
// "auth" ("none" or "basic": what the request that got the status
// carried) and "applied"; fetch lines carry "trigger" (check-sync,
// action_uri, reboot) and, for a check-sync's, its call_id and
// after_notify_ms. A new check-sync's notify line carries "action"
// (refetch, reboot, ignore). "at" is Unix nanoseconds, durations are
// milliseconds. Logs go to stderr. Exit status: 0 success, 1 a boot failed
// (its fetch, or the download of the trusted certificates its config
// named), 2 bad flags.
//
//	phonesim -n 1000 -prov http://127.0.0.1:8080/prov/ -quiet
//	phonesim -n 3 -pnp 127.0.0.1:5060 -exit-after-notifies 3
//	phonesim -n 10 -web-port 8443 -reboot-time 5s -register-timeout 4s
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

	rebootTime      time.Duration // how long a reboot keeps the phone silent
	registerTimeout time.Duration // timer F of a REGISTER transaction
	noActionURLs    bool          // firmware without action URLs: action_url.* ignored
	maxReports      int           // setup_autop_finish reports after this many are lost (0: none)
	webPort         int           // the phones' HTTPS port for Action URI (0: no web server)
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
	fs.DurationVar(&cfg.rebootTime, "reboot-time", 2*time.Second, "how long a reboot keeps a phone silent before it boots again (a real phone: about a minute)")
	fs.DurationVar(&cfg.registerTimeout, "register-timeout", 32*time.Second, "how long a REGISTER waits for a final response (RFC 3261 timer F)")
	fs.BoolVar(&cfg.noActionURLs, "no-action-urls", false, "ignore action_url.* (firmware without action URLs)")
	fs.IntVar(&cfg.maxReports, "max-reports", 0, "lose each phone's action-URL reports after this many (0: never)")
	fs.IntVar(&cfg.webPort, "web-port", 0, "TCP port of each phone's HTTPS server for Action URI (0: none)")
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
	if cfg.rebootTime < 0 {
		return nil, &flagError{"reboot-time", "want 0 or a positive duration"}
	}
	if cfg.registerTimeout <= 0 {
		return nil, &flagError{"register-timeout", "want a positive duration"}
	}
	if cfg.maxReports < 0 {
		return nil, &flagError{"max-reports", fmt.Sprintf("%d: want 0 or more", cfg.maxReports)}
	}
	if cfg.webPort < 0 || cfg.webPort > 65535 {
		return nil, &flagError{"web-port", fmt.Sprintf("%d: want 0 (none) or a port, 1 to 65535", cfg.webPort)}
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
	perPhone := 2 // a UDP socket and, while fetching, a TCP connection
	if cfg.webPort > 0 {
		perPhone++ // the web server's listener
	}
	raiseFileLimit(cfg.n*perPhone, stderr)
	s, err := newSim(cfg, &emitter{w: stdout, quiet: cfg.quiet})
	if err != nil {
		fmt.Fprintf(stderr, "phonesim: %v\n", err)
		return 2
	}
	return s.run(ctx)
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit, and warns
// when that is still short of the n descriptors the phones need.
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
	if need := uint64(n + 64); lim.Cur < need {
		fmt.Fprintf(stderr, "phonesim: open-file limit %d is low for the phones (about %d needed)\n", lim.Cur, need)
	}
}
