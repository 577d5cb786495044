// Command httpload is the HTTP load generator of bench/prov.sh: N workers,
// each with its own keep-alive connection, fetch a list of paths round-robin
// for a fixed duration and count the answers.
//
// It only talks to loopback addresses (the benchmark never sends traffic
// anywhere else). For example:
//
//	httpload -base http://127.0.0.1:8080/prov/ -list macs.txt -suffix .cfg \
//	    -ua 'Yealink SIP-T46G 28.83.0.35 {mac}' -expect DIR -c 32 -d 10s
//	httpload -base http://127.0.0.1:8080/prov/ -list macs.txt -suffix .cfg -export DIR
//
// The list holds one name per line (here 12-hex-digit MACs); {mac} in -ua
// becomes the name's MAC with colons. With -export it fetches each file once
// and writes it to DIR/<name><suffix>; otherwise it prints one line:
//
//	httpload: label=provbox c=32 dur=10.00s ok=123456 errors=0 rps=12345.6 p50=1.234ms p99=4.567ms mean=1.5ms
//
// -secrets FILE holds "<name> <password>" lines: every request then carries
// HTTP Basic credentials <name>:<password> (a phone proving its secret; a
// static server ignores them). -cacert FILE trusts that CA for https:// (and
// nothing else).
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(1)
	}
}

type target struct {
	url        string
	ua         string
	user, pass string // Basic credentials; "" none
	size       int64  // expected body size; -1: unchecked
}

func run() error {
	base := flag.String("base", "", "base URL, e.g. http://127.0.0.1:8080/prov/ (loopback only)")
	list := flag.String("list", "", "file with one name per line")
	suffix := flag.String("suffix", "", "appended to each name, e.g. .cfg")
	uaTmpl := flag.String("ua", "", "User-Agent; {mac} becomes the name as a colon MAC")
	conc := flag.Int("c", 32, "concurrent workers (one keep-alive connection each)")
	dur := flag.Duration("d", 10*time.Second, "duration of the run")
	maxReq := flag.Int("n", 0, "stop after this many requests in all (0: only -d bounds the run)")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request timeout")
	expect := flag.String("expect", "", "directory holding <name><suffix>: every body must have its size")
	export := flag.String("export", "", "fetch each file once and write it to this directory, then exit")
	label := flag.String("label", "", "label printed with the result")
	secrets := flag.String("secrets", "", "file of \"<name> <password>\" lines: Basic credentials per name")
	cacert := flag.String("cacert", "", "PEM CA certificate to trust for https:// (nothing else is trusted)")
	flag.Parse()

	if *base == "" || *list == "" {
		return errors.New("-base and -list are required")
	}
	u, err := url.Parse(*base)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing %s: only loopback addresses are benchmarked", *base)
	}
	names, err := readList(*list)
	if err != nil {
		return err
	}
	var creds map[string]string
	if *secrets != "" {
		if creds, err = readSecrets(*secrets); err != nil {
			return err
		}
	}
	targets := make([]target, len(names))
	for i, n := range names {
		t := target{url: *base + n + *suffix, size: -1}
		if creds != nil {
			pw, ok := creds[n]
			if !ok {
				return fmt.Errorf("%s: no secret for %s", *secrets, n)
			}
			t.user, t.pass = n, pw
		}
		if *uaTmpl != "" {
			t.ua = strings.ReplaceAll(*uaTmpl, "{mac}", colonMAC(n))
		}
		if *expect != "" {
			fi, err := os.Stat(filepath.Join(*expect, n+*suffix))
			if err != nil {
				return err
			}
			t.size = fi.Size()
		}
		targets[i] = t
	}

	var tlsConf *tls.Config
	if *cacert != "" {
		pem, err := os.ReadFile(*cacert)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no PEM certificate", *cacert)
		}
		tlsConf = &tls.Config{RootCAs: pool}
	}
	tr := &http.Transport{
		TLSClientConfig:     tlsConf,
		Proxy:               nil,
		DisableCompression:  true,
		MaxIdleConns:        *conc,
		MaxIdleConnsPerHost: *conc,
		MaxConnsPerHost:     *conc,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: *timeout}

	if *export != "" {
		return exportAll(client, targets, names, *suffix, *export)
	}
	return load(client, targets, *conc, *dur, *maxReq, *label)
}

func readList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no names", path)
	}
	return names, nil
}

// readSecrets reads "<name> <password>" lines.
func readSecrets(path string) (map[string]string, error) {
	lines, err := readList(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(lines))
	for _, l := range lines {
		name, pw, ok := strings.Cut(l, " ")
		if !ok || pw == "" {
			return nil, fmt.Errorf("%s: %q is not \"<name> <password>\"", path, l)
		}
		out[name] = strings.TrimSpace(pw)
	}
	return out, nil
}

// colonMAC turns 001565000001 into 00:15:65:00:00:01 (other names unchanged).
func colonMAC(s string) string {
	if len(s) != 12 {
		return s
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(s[i : i+2])
	}
	return b.String()
}

func get(client *http.Client, t target, buf []byte) (int64, int, error) {
	req, err := http.NewRequest(http.MethodGet, t.url, nil)
	if err != nil {
		return 0, 0, err
	}
	if t.ua != "" {
		req.Header.Set("User-Agent", t.ua)
	}
	if t.user != "" {
		req.SetBasicAuth(t.user, t.pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
	return n, resp.StatusCode, err
}

func exportAll(client *http.Client, targets []target, names []string, suffix, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, t := range targets {
		req, err := http.NewRequest(http.MethodGet, t.url, nil)
		if err != nil {
			return err
		}
		if t.ua != "" {
			req.Header.Set("User-Agent", t.ua)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", t.url, resp.Status)
		}
		if err := os.WriteFile(filepath.Join(dir, names[i]+suffix), body, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("httpload: exported %d files to %s\n", len(targets), dir)
	return nil
}

type workerResult struct {
	ok, errs int
	firstErr error
	lat      []time.Duration
}

func load(client *http.Client, targets []target, conc int, dur time.Duration, maxReq int, label string) error {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	results := make([]workerResult, conc)
	var budget chan struct{}
	if maxReq > 0 {
		budget = make(chan struct{}, maxReq)
		for range maxReq {
			budget <- struct{}{}
		}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[w]
			res.lat = make([]time.Duration, 0, 1<<14)
			buf := make([]byte, 32<<10)
			for i := w; ctx.Err() == nil; i += conc {
				if budget != nil {
					select {
					case <-budget:
					default:
						return
					}
				}
				t := targets[i%len(targets)]
				t0 := time.Now()
				n, code, err := get(client, t, buf)
				d := time.Since(t0)
				switch {
				case err == nil && code == http.StatusOK && (t.size < 0 || n == t.size):
					res.ok++
					res.lat = append(res.lat, d)
				case ctx.Err() != nil && err != nil:
					// cut off by the end of the run: not an error
				default:
					res.errs++
					if res.firstErr == nil {
						if err == nil {
							err = fmt.Errorf("%s: status %d, %d bytes (want %d)", t.url, code, n, t.size)
						}
						res.firstErr = err
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	var ok, errs int
	var firstErr error
	var lat []time.Duration
	for _, r := range results {
		ok += r.ok
		errs += r.errs
		lat = append(lat, r.lat...)
		if firstErr == nil {
			firstErr = r.firstErr
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	mean := time.Duration(0)
	if len(lat) > 0 {
		mean = sum / time.Duration(len(lat))
	}
	fmt.Printf("httpload: label=%s c=%d dur=%.2fs ok=%d errors=%d rps=%.1f p50=%s p99=%s mean=%s\n",
		label, conc, elapsed.Seconds(), ok, errs, float64(ok)/elapsed.Seconds(),
		fmtDur(pct(lat, 50)), fmtDur(pct(lat, 99)), fmtDur(mean))
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "httpload: first error:", firstErr)
	}
	if ok == 0 {
		return errors.New("no successful request")
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i > 0 {
		i--
	}
	return sorted[min(i, len(sorted)-1)]
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}
