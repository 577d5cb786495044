// Command syncload is the driver of bench/sync.sh (issue 4, SPEC §8): it
// edits through provbox's API and times the check-sync NOTIFYs and
// re-fetches that phonesim reports on its stdout (redirected to a file that
// syncload follows). Edit times and phonesim's times are both Unix
// nanoseconds of this machine's clock.
//
//	syncload -mode booted -events sim.jsonl -n 1000 -timeout 60s
//	syncload -mode edits  -api http://127.0.0.1:8080/api/v1 -events sim.jsonl -n 200 -gap 60ms
//	syncload -mode bulk   -api http://127.0.0.1:8080/api/v1 -events sim.jsonl -phones 1000
//
// booted waits for phonesim's "booted" line and fails unless every phone
// booted. edits PATCHes the password of extensions that are each the
// account of one phone, round-robin over those phones every -gap, and
// matches each edit with the first NOTIFY that phone received after it,
// the re-fetch that NOTIFY caused, and the phone's "registered" report
// after that re-fetch: the moment provbox marks it synced (an account
// change is what a Yealink confirms without a reboot). bulk makes one edit
// on every phone: -edit key PATCHes the label of the BLF key on all of them
// and waits until GET /phones shows them all fetched on their new version
// (a Yealink applies line keys without a report); -edit password PATCHes
// the password of the extension on all of them and waits until all are
// synced. bulk also gives the peak number of phones fetching at once and
// of phones told and not fetched yet, from the phones' events.
//
// Each mode prints human-readable lines on stderr and one result line on
// stdout, key=value pairs, milliseconds unless named otherwise:
//
//	syncload: mode=edits n=200 matched=200 ... notify_p50=1.2 notify_p99=3.4 ...
//
// The admin password comes from $SYNCLOAD_PASSWORD (not a flag: it would
// show in ps).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "syncload:", err)
		os.Exit(1)
	}
}

type options struct {
	api, user, pass string
	events          string
	timeout         time.Duration
	// booted
	boots int
	// edits
	edits   int
	gap     time.Duration
	phones  int
	settle  time.Duration
	minGap  time.Duration
	keyID   int64
	poll    time.Duration
	label   string
	verbose bool
	edit    string // bulk: key or password
}

func run() error {
	var o options
	mode := flag.String("mode", "", "booted | edits | bulk")
	flag.StringVar(&o.api, "api", "", "API base, e.g. http://127.0.0.1:8080/api/v1 (loopback only)")
	flag.StringVar(&o.user, "user", "admin", "admin user ($SYNCLOAD_PASSWORD holds the password)")
	flag.StringVar(&o.events, "events", "", "phonesim's stdout (JSON lines), followed as it grows")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long")
	flag.IntVar(&o.boots, "n", 0, "booted: phones that must boot; edits: number of edits")
	flag.DurationVar(&o.gap, "gap", 60*time.Millisecond, "edits: time between edit starts (all phones together)")
	flag.DurationVar(&o.minGap, "min-phone-gap", 550*time.Millisecond, "edits: refuse a gap × phones below this (the 500 ms coalescing window would delay NOTIFYs by design)")
	flag.IntVar(&o.phones, "phones", 0, "edits: use this many single-phone BLF keys (0: all); bulk: phones expected")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "edits: after the last edit, wait this long at most for its NOTIFY and re-fetch")
	flag.Int64Var(&o.keyID, "key", 0, "bulk: the key to edit (0: the BLF key attached to the most phones)")
	flag.DurationVar(&o.poll, "poll", 250*time.Millisecond, "bulk: GET /phones interval")
	flag.StringVar(&o.label, "label", "", "printed with the result")
	flag.StringVar(&o.edit, "edit", "key", "bulk: key (a BLF label: all fetched) or password (the shared extension's: all synced)")
	flag.BoolVar(&o.verbose, "v", false, "edits: print every edit")
	flag.Parse()
	o.pass = os.Getenv("SYNCLOAD_PASSWORD")
	o.edits = o.boots
	if o.events == "" {
		return errors.New("-events is required")
	}
	switch *mode {
	case "booted":
		return booted(&o)
	case "edits", "bulk":
	default:
		return fmt.Errorf("-mode %q: want booted, edits or bulk", *mode)
	}
	if o.api == "" {
		return errors.New("-api is required")
	}
	u, err := url.Parse(o.api)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing %s: only loopback addresses are benchmarked", o.api)
	}
	o.api = strings.TrimSuffix(o.api, "/")
	c := newClient(&o)
	if *mode == "edits" {
		return edits(&o, c)
	}
	return bulk(&o, c)
}

// --- API -----------------------------------------------------------------------

type client struct {
	o  *options
	hc *http.Client
}

func newClient(o *options) *client {
	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
	return &client{o: o, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends a request and decodes a 2xx JSON answer into out (if not nil).
func (c *client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.o.api+path, rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.o.user, c.o.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

type key struct {
	ID         int64    `json:"id"`
	Type       string   `json:"type"`
	Value      string   `json:"value"`
	Label      string   `json:"label"`
	AttachedTo []string `json:"attached_to"`
}

type phone struct {
	MAC  string `json:"mac"`
	Sync struct {
		State          string `json:"state"`
		ConfigVersion  string `json:"config_version"`
		FetchedVersion string `json:"fetched_version"`
	} `json:"sync"`
}

type extension struct {
	ID     int64  `json:"id"`
	Number string `json:"number"`
}

// extensionsOn maps each extension whose account key is on exactly one
// phone to that phone, and lists the extension on the most phones.
func (c *client) extensionsOn() (single map[int64]string, widest extension, on []string, err error) {
	var exts []extension
	if err = c.do(http.MethodGet, "/extensions", nil, &exts); err != nil {
		return
	}
	var keys []key
	if err = c.do(http.MethodGet, "/keys?type=account", nil, &keys); err != nil {
		return
	}
	byNumber := map[string]key{}
	for _, k := range keys {
		byNumber[k.Value] = k
	}
	single = map[int64]string{}
	for _, e := range exts {
		k := byNumber[e.Number]
		if len(k.AttachedTo) == 1 {
			single[e.ID] = k.AttachedTo[0]
		}
		if len(k.AttachedTo) > len(on) {
			widest, on = e, k.AttachedTo
		}
	}
	return
}

func (c *client) setPassword(id int64, pw string) error {
	return c.do(http.MethodPatch, fmt.Sprintf("/extensions/%d", id), map[string]string{"password": pw}, nil)
}

func (c *client) phones() ([]phone, error) {
	var ps []phone
	err := c.do(http.MethodGet, "/phones", nil, &ps)
	return ps, err
}

func (c *client) setLabel(id int64, label string) error {
	return c.do(http.MethodPatch, fmt.Sprintf("/keys/%d", id), map[string]string{"label": label}, nil)
}

// --- booted ------------------------------------------------------------------------

func booted(o *options) error {
	t, err := openTail(o.events)
	if err != nil {
		return err
	}
	defer t.close()
	deadline := time.Now().Add(o.timeout)
	for time.Now().Before(deadline) {
		for _, e := range t.snapshot() {
			if e.Event != "booted" {
				continue
			}
			var errs []string
			for _, x := range t.snapshot() {
				if x.Event == "error" && len(errs) < 5 {
					errs = append(errs, x.Stage+" "+x.MAC+": "+x.Error)
				}
			}
			fmt.Printf("syncload: mode=booted phones=%d ok=%d failed=%d\n", e.Phones, e.OK, e.Failed)
			if e.Failed > 0 || e.OK != e.Phones || (o.boots > 0 && e.OK != o.boots) {
				return fmt.Errorf("phonesim booted %d of %d phones (want %d); first errors: %s", e.OK, e.Phones, o.boots, strings.Join(errs, "; "))
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no booted line from phonesim in %s within %v", o.events, o.timeout)
}

// --- edits ---------------------------------------------------------------------------

type edit struct {
	i      int
	mac    string
	ext    int64   // the extension whose password the edit changes
	at     int64   // just before the PATCH
	apiMs  float64 // PATCH round trip
	next   int64   // the next edit of the same phone (0: none)
	notify int64   // the NOTIFY the phone got for it (0: none yet)
	callID string
	fetch  int64 // the re-fetch that NOTIFY caused
	etag   string
	synced int64 // the phone's "registered" report after that re-fetch: synced
}

type target struct {
	ext int64
	mac string
}

func edits(o *options, c *client) error {
	if o.edits < 1 {
		return errors.New("-n: want at least 1 edit")
	}
	single, _, _, err := c.extensionsOn()
	if err != nil {
		return err
	}
	var mine []target
	for id, mac := range single {
		mine = append(mine, target{id, mac})
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].mac < mine[j].mac })
	if o.phones > 0 && len(mine) > o.phones {
		mine = mine[:o.phones]
	}
	if len(mine) == 0 {
		return errors.New("no extension is the account of exactly one phone")
	}
	if perPhone := o.gap * time.Duration(len(mine)); perPhone < o.minGap {
		return fmt.Errorf("-gap %v × %d phones = %v between edits of one phone, below -min-phone-gap %v", o.gap, len(mine), perPhone, o.minGap)
	}
	t, err := openTail(o.events)
	if err != nil {
		return err
	}
	defer t.close()

	// The ETag each phone holds: a re-fetch must bring a new one.
	last := map[string]string{}
	for _, e := range t.snapshot() {
		if (e.Event == "boot" || e.Event == "fetch") && e.Status == 200 {
			last[e.MAC] = e.ETag
		}
	}
	for _, k := range mine {
		if last[k.mac] == "" {
			return fmt.Errorf("phone %s (extension %d) has not booted in %s", k.mac, k.ext, o.events)
		}
	}

	fmt.Fprintf(os.Stderr, "syncload: %d edits, one every %v, round-robin over %d phones (each phone every %v)\n",
		o.edits, o.gap, len(mine), o.gap*time.Duration(len(mine)))
	// One warm-up request, so the first edit does not pay for the TCP
	// connection.
	if err := c.do(http.MethodGet, fmt.Sprintf("/extensions/%d", mine[0].ext), nil, nil); err != nil {
		return err
	}
	list := make([]*edit, o.edits)
	lastOf := map[string]*edit{}
	stamp := time.Now().Unix()
	start := time.Now()
	for i := range list {
		if d := time.Until(start.Add(time.Duration(i) * o.gap)); d > 0 {
			time.Sleep(d)
		}
		k := mine[i%len(mine)]
		e := &edit{i: i, mac: k.mac, ext: k.ext}
		t0 := time.Now()
		e.at = t0.UnixNano()
		if err := c.setPassword(k.ext, fmt.Sprintf("edit-%d-%d", stamp, i)); err != nil {
			return fmt.Errorf("edit %d: %w", i, err)
		}
		e.apiMs = float64(time.Since(t0)) / 1e6
		if p := lastOf[e.mac]; p != nil {
			p.next = e.at
		}
		lastOf[e.mac] = e
		list[i] = e
		if time.Since(start) > o.timeout {
			return fmt.Errorf("edits took longer than -timeout %v", o.timeout)
		}
	}
	end := time.Now()

	// Match each edit with the first check-sync its phone got after it,
	// before the phone's next edit, and the re-fetch with that Call-ID.
	match := func(evs []event) (missing int) {
		byMAC := map[string][]event{}
		reports := map[string][]event{}
		fetchByCall := map[string]event{}
		for _, ev := range evs {
			switch ev.Event {
			case "notify":
				byMAC[ev.MAC] = append(byMAC[ev.MAC], ev)
			case "fetch":
				fetchByCall[ev.CallID] = ev
			case "report":
				if ev.Name == "registered" && !ev.Lost && ev.Status/100 == 2 {
					reports[ev.MAC] = append(reports[ev.MAC], ev)
				}
			}
		}
		for _, e := range list {
			if e.notify == 0 {
				for _, n := range byMAC[e.mac] {
					if n.At >= e.at && (e.next == 0 || n.At < e.next) {
						e.notify, e.callID = n.At, n.CallID
						break
					}
				}
			}
			if e.notify != 0 && e.fetch == 0 {
				if f, ok := fetchByCall[e.callID]; ok {
					e.fetch, e.etag = f.At, f.ETag
				}
			}
			if e.fetch != 0 && e.synced == 0 {
				for _, r := range reports[e.mac] {
					if r.At >= e.fetch && (e.next == 0 || r.At < e.next) {
						e.synced = r.At
						break
					}
				}
			}
			if e.synced == 0 {
				missing++
			}
		}
		return missing
	}
	for match(t.snapshot()) > 0 && time.Since(end) < o.settle {
		time.Sleep(20 * time.Millisecond)
	}
	evs := t.snapshot()
	match(evs)

	var toNotify, toFetch, toSynced, api []float64
	noNotify, noFetch, noSynced, staleETag := 0, 0, 0, 0
	held := map[string]string{}
	for k, v := range last {
		held[k] = v
	}
	for _, e := range list {
		api = append(api, e.apiMs)
		if e.notify == 0 {
			noNotify++
			continue
		}
		toNotify = append(toNotify, msBetween(e.at, e.notify))
		if e.fetch == 0 {
			noFetch++
			continue
		}
		toFetch = append(toFetch, msBetween(e.at, e.fetch))
		if e.synced == 0 {
			noSynced++
		} else {
			toSynced = append(toSynced, msBetween(e.at, e.synced))
		}
		stale := ""
		if e.etag == held[e.mac] {
			staleETag++
			stale = " STALE: the ETag the phone already had"
		}
		held[e.mac] = e.etag
		if o.verbose || stale != "" {
			fmt.Fprintf(os.Stderr, "  edit %3d %s extension %d: notify %+.3f ms, re-fetch %+.3f ms (ETag %s, call %s), synced %+.3f ms, api %.3f ms%s\n",
				e.i, e.mac, e.ext, msBetween(e.at, e.notify), msBetween(e.at, e.fetch), e.etag, e.callID, msBetween(e.at, e.synced), e.apiMs, stale)
		}
	}
	// Every NOTIFY and retransmission the phones got during the edits: one
	// per edit is expected.
	notifies, retrans, errs := 0, 0, 0
	first := list[0].at
	for _, ev := range evs {
		if ev.At < first {
			continue
		}
		switch ev.Event {
		case "notify":
			notifies++
		case "retransmit":
			retrans++
		case "error":
			errs++
		}
	}
	// The API's view at the end: every phone edited is synced.
	synced, total := 0, 0
	if ps, err := c.phones(); err == nil {
		for _, p := range ps {
			if lastOf[p.MAC] == nil {
				continue
			}
			total++
			if p.Sync.State == "synced" && p.Sync.FetchedVersion == p.Sync.ConfigVersion {
				synced++
			}
		}
	} else {
		fmt.Fprintln(os.Stderr, "syncload: GET /phones:", err)
	}

	n, f, sy, a := distOf(toNotify), distOf(toFetch), distOf(toSynced), distOf(api)
	fmt.Fprintf(os.Stderr, "syncload: edit -> NOTIFY received:   p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d of %d)\n", n.p50, n.p99, n.max, n.n, len(list))
	fmt.Fprintf(os.Stderr, "syncload: edit -> re-fetch done:     p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d of %d)\n", f.p50, f.p99, f.max, f.n, len(list))
	fmt.Fprintf(os.Stderr, "syncload: edit -> synced (report):   p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d of %d)\n", sy.p50, sy.p99, sy.max, sy.n, len(list))
	fmt.Fprintf(os.Stderr, "syncload: PATCH round trip:          p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", a.p50, a.p99, a.max)
	fmt.Printf("syncload: mode=edits label=%s n=%d phones=%d gap_ms=%.0f matched=%d no_notify=%d no_refetch=%d no_synced=%d stale_etag=%d notifies=%d retransmits=%d errors=%d synced_end=%d/%d "+
		"notify_p50=%.3f notify_p99=%.3f notify_max=%.3f notify_min=%.3f refetch_p50=%.3f refetch_p99=%.3f refetch_max=%.3f synced_p50=%.3f synced_p99=%.3f synced_max=%.3f api_p50=%.3f api_p99=%.3f api_max=%.3f\n",
		o.label, len(list), len(mine), float64(o.gap)/1e6, sy.n, noNotify, noFetch, noSynced, staleETag, notifies, retrans, errs, synced, total,
		n.p50, n.p99, n.max, n.min, f.p50, f.p99, f.max, sy.p50, sy.p99, sy.max, a.p50, a.p99, a.max)
	if noNotify > 0 || noFetch > 0 || noSynced > 0 {
		return fmt.Errorf("%d edits without a NOTIFY, %d without a re-fetch, %d without a report", noNotify, noFetch, noSynced)
	}
	return nil
}

// --- bulk ----------------------------------------------------------------------------

func bulk(o *options, c *client) error {
	if o.edit != "key" && o.edit != "password" {
		return fmt.Errorf("-edit %q: want key or password", o.edit)
	}
	ps, err := c.phones()
	if err != nil {
		return err
	}
	if o.phones > 0 && len(ps) != o.phones {
		return fmt.Errorf("GET /phones lists %d phones, want %d", len(ps), o.phones)
	}
	// Every phone holds its current config before the edit (they have all
	// booted, and any earlier edit has settled).
	deadline := time.Now().Add(10 * time.Second)
	for {
		notSettled := 0
		for _, p := range ps {
			if p.Sync.FetchedVersion != p.Sync.ConfigVersion || (p.Sync.State != "synced" && p.Sync.State != "fetched") {
				notSettled++
			}
		}
		if notSettled == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d phones not settled before the edit", notSettled, len(ps))
		}
		time.Sleep(200 * time.Millisecond)
		if ps, err = c.phones(); err != nil {
			return err
		}
	}
	old := map[string]string{}
	for _, p := range ps {
		old[p.MAC] = p.Sync.ConfigVersion
	}

	// What to edit: the BLF key, or the extension, on the most phones.
	var what string
	var on []string
	var apply func(stamp int64) error
	if o.edit == "key" {
		var k key
		var keys []key
		if err := c.do(http.MethodGet, "/keys?type=blf", nil, &keys); err != nil {
			return err
		}
		for _, x := range keys {
			if len(x.AttachedTo) > len(k.AttachedTo) {
				k = x
			}
		}
		if k.ID == 0 {
			return errors.New("no BLF key attached to any phone")
		}
		what, on = fmt.Sprintf("the label of BLF key %d (%s)", k.ID, k.Value), k.AttachedTo
		apply = func(stamp int64) error { return c.setLabel(k.ID, fmt.Sprintf("bulk %d", stamp)) }
	} else {
		_, ext, phones, err := c.extensionsOn()
		if err != nil {
			return err
		}
		if ext.ID == 0 {
			return errors.New("no extension on any phone")
		}
		what, on = fmt.Sprintf("the password of extension %s", ext.Number), phones
		apply = func(stamp int64) error { return c.setPassword(ext.ID, fmt.Sprintf("bulk-%d", stamp)) }
	}
	affected := map[string]bool{}
	for _, m := range on {
		affected[m] = true
	}
	if len(affected) != len(ps) {
		fmt.Fprintf(os.Stderr, "syncload: %s is on %d of %d phones\n", what, len(affected), len(ps))
	}
	done := func(state string) bool {
		if o.edit == "key" {
			return state == "fetched" || state == "synced"
		}
		return state == "synced"
	}

	t, err := openTail(o.events)
	if err != nil {
		return err
	}
	defer t.close()

	fmt.Fprintf(os.Stderr, "syncload: one edit, %s, on %d phones\n", what, len(affected))
	t0 := time.Now()
	at := t0.UnixNano()
	if err := apply(t0.UnixNano()); err != nil {
		return err
	}
	apiMs := float64(time.Since(t0)) / 1e6

	// Poll the API until every affected phone is done on a new version.
	var allDone, lastNotAll time.Duration
	polls := 0
	var pollMs []float64
	lastPrint := time.Duration(0)
	for {
		p0 := time.Now()
		ps, err := c.phones()
		if err != nil {
			return err
		}
		polls++
		pollMs = append(pollMs, float64(time.Since(p0))/1e6)
		// The snapshot was read between p0 and the answer: a poll that
		// still shows a phone not done bounds the time from below (p0), one
		// showing all done from above (its answer).
		since := p0.Sub(t0)
		states := map[string]int{}
		n := 0
		for _, p := range ps {
			if !affected[p.MAC] {
				continue
			}
			states[p.Sync.State]++
			if done(p.Sync.State) && p.Sync.ConfigVersion != old[p.MAC] && p.Sync.FetchedVersion == p.Sync.ConfigVersion {
				n++
			}
		}
		end := time.Since(t0)
		if n == len(affected) {
			allDone = end
			break
		}
		lastNotAll = since
		if end-lastPrint >= time.Second {
			lastPrint = end
			fmt.Fprintf(os.Stderr, "syncload:   t=%5.1fs done=%d states=%v\n", end.Seconds(), n, states)
		}
		if end > o.timeout {
			return fmt.Errorf("after %v only %d of %d phones done on the new version (states %v)", o.timeout, n, len(affected), states)
		}
		time.Sleep(o.poll)
	}
	// The phones' side: the first NOTIFY each got after the edit, its first
	// re-fetch bringing a new ETag, and (password) the registered report
	// after it.
	time.Sleep(100 * time.Millisecond)
	evs := t.snapshot()
	notifyAt := map[string]int64{}
	fetchAt := map[string]int64{}
	reportAt := map[string]int64{}
	var fetching []interval
	notifies, retrans, errs, staleFetches := 0, 0, 0, 0
	for _, ev := range evs {
		if ev.At < at || !affected[ev.MAC] && ev.Event != "error" {
			continue
		}
		switch ev.Event {
		case "notify":
			notifies++
			if notifyAt[ev.MAC] == 0 {
				notifyAt[ev.MAC] = ev.At
			}
		case "retransmit":
			retrans++
		case "fetch":
			fetching = append(fetching, interval{ev.At - int64(ev.FetchMs*1e6), ev.At})
			if ev.Status == 200 && ev.ETag != `"`+old[ev.MAC]+`"` {
				if fetchAt[ev.MAC] == 0 {
					fetchAt[ev.MAC] = ev.At
				}
			} else {
				staleFetches++
			}
		case "report":
			if ev.Name == "registered" && fetchAt[ev.MAC] != 0 && reportAt[ev.MAC] == 0 && !ev.Lost {
				reportAt[ev.MAC] = ev.At
			}
		case "error":
			errs++
		}
	}
	var nt, ft, rt []float64
	var told []interval
	for m := range affected {
		if v := notifyAt[m]; v != 0 {
			nt = append(nt, msBetween(at, v))
			if f := fetchAt[m]; f != 0 {
				told = append(told, interval{v, f})
			}
		}
		if v := fetchAt[m]; v != 0 {
			ft = append(ft, msBetween(at, v))
		}
		if v := reportAt[m]; v != 0 {
			rt = append(rt, msBetween(at, v))
		}
	}
	n, f, r, pd := distOf(nt), distOf(ft), distOf(rt), distOf(pollMs)
	rate := math.NaN()
	if n.n > 1 && n.max > n.min {
		rate = float64(n.n-1) / ((n.max - n.min) / 1e3)
	}
	// Done on the phones' clock: the last re-fetch (key) or the last
	// report (password) — provbox has recorded it before answering it.
	doneMs := f.max
	if o.edit == "password" {
		doneMs = r.max
		if r.n < len(affected) {
			doneMs = math.NaN()
		}
	}
	peakFetching, peakTold := peak(fetching), peak(told)
	fmt.Fprintf(os.Stderr, "syncload: PATCH %.0f ms; NOTIFYs %d (first %.0f ms, last %.0f ms after the edit, %.1f/s); re-fetches %d (last %.0f ms); reports %d (last %.0f ms); all done in the API at %.2f s (poll every %v; not yet at %.2f s); peak fetching %d, peak told and not fetched %d\n",
		apiMs, n.n, n.min, n.max, rate, f.n, f.max, r.n, r.max, allDone.Seconds(), o.poll, lastNotAll.Seconds(), peakFetching, peakTold)
	fmt.Printf("syncload: mode=bulk label=%s edit=%s phones=%d api_ms=%.1f notified=%d notifies=%d retransmits=%d errors=%d refetched=%d stale_fetches=%d reported=%d "+
		"first_notify_ms=%.1f last_notify_ms=%.1f notify_rate=%.1f notify_p50_ms=%.1f last_refetch_ms=%.1f refetch_p50_ms=%.1f refetch_p99_ms=%.1f "+
		"last_report_ms=%.1f report_p50_ms=%.1f report_p99_ms=%.1f done_ms=%.1f all_done_s=%.3f not_all_at_s=%.3f polls=%d poll_p50_ms=%.1f poll_max_ms=%.1f peak_fetching=%d peak_told=%d\n",
		o.label, o.edit, len(affected), apiMs, n.n, notifies, retrans, errs, f.n, staleFetches, r.n,
		n.min, n.max, rate, n.p50, f.max, f.p50, f.p99,
		r.max, r.p50, r.p99, doneMs, allDone.Seconds(), lastNotAll.Seconds(), polls, pd.p50, pd.max, peakFetching, peakTold)
	return nil
}

// interval is a span of Unix ns [from, to].
type interval struct{ from, to int64 }

// peak is the most intervals open at one moment.
func peak(list []interval) int {
	type edge struct {
		at int64
		d  int
	}
	edges := make([]edge, 0, 2*len(list))
	for _, iv := range list {
		edges = append(edges, edge{iv.from, 1}, edge{iv.to, -1})
	}
	// At one instant, ends before starts: touching spans do not overlap.
	sort.Slice(edges, func(i, j int) bool {
		return edges[i].at < edges[j].at || edges[i].at == edges[j].at && edges[i].d < edges[j].d
	})
	cur, most := 0, 0
	for _, e := range edges {
		cur += e.d
		most = max(most, cur)
	}
	return most
}
