// Command refusals measures whether a refusal tells a known phone from an
// unknown one by its timing (issue 11: "the same answer and timing for a
// known and an unknown MAC"). It asks for two <mac>.cfg files without
// credentials, alternating, over one keep-alive connection, checks every
// answer is the same 401, and prints the latency percentiles of each and
// the ratio of the medians:
//
//	refusals -known http://127.0.0.1:8080/prov/001565000001.cfg \
//	    -unknown http://127.0.0.1:8080/prov/001565ffffff.cfg -n 4000
//	refusals: n=4000 known p50=141.5µs p90=187.2µs p99=236.1µs unknown p50=142.3µs p90=188.3µs p99=241.1µs ratio_p50=1.005
//
// Loopback only, like every provbox benchmark.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "refusals:", err)
		os.Exit(1)
	}
}

func run() error {
	known := flag.String("known", "", "URL of a known phone's <mac>.cfg (its claim window closed)")
	unknown := flag.String("unknown", "", "URL of an unknown MAC's <mac>.cfg")
	n := flag.Int("n", 4000, "requests to each")
	flag.Parse()
	if *known == "" || *unknown == "" {
		return errors.New("-known and -unknown are required")
	}
	for _, s := range []string{*known, *unknown} {
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("refusing %s: only loopback addresses are benchmarked", s)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
	lat := [2][]time.Duration{}
	var first []byte
	for i := 0; i < *n; i++ {
		for k, u := range []string{*known, *unknown} {
			t0 := time.Now()
			resp, err := client.Get(u)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("%s: %s, want 401 (is the known phone's claim window closed?)", u, resp.Status)
			}
			if first == nil {
				first = body
			} else if !bytes.Equal(body, first) {
				return fmt.Errorf("%s: body %q differs from %q", u, body, first)
			}
			lat[k] = append(lat[k], d)
		}
	}
	p := func(d []time.Duration, q int) time.Duration { return d[(len(d)*q)/100] }
	for k := range lat {
		sort.Slice(lat[k], func(i, j int) bool { return lat[k][i] < lat[k][j] })
	}
	fmt.Printf("refusals: n=%d known p50=%v p90=%v p99=%v unknown p50=%v p90=%v p99=%v ratio_p50=%.3f\n", *n,
		p(lat[0], 50), p(lat[0], 90), p(lat[0], 99), p(lat[1], 50), p(lat[1], 90), p(lat[1], 99),
		float64(p(lat[1], 50))/float64(p(lat[0], 50)))
	return nil
}
