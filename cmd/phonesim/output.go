package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Events, one JSON object per stdout line. "at" is Unix nanoseconds, so a
// test or benchmark on the same machine can compare it with the time it made
// an edit. Durations are milliseconds with microsecond precision.

type bootEvent struct {
	Event   string  `json:"event"` // "boot"
	MAC     string  `json:"mac"`
	IP      string  `json:"ip"`
	At      int64   `json:"at"`
	FetchMs float64 `json:"fetch_ms"`
	Status  int     `json:"status"`
	ETag    string  `json:"etag"`
	Bytes   int64   `json:"bytes"`
	URL     string  `json:"url"`
	TLS     bool    `json:"tls"`     // https, the server's certificate verified
	Auth    string  `json:"auth"`    // what the request that got status carried: "none" or "basic"
	Applied bool    `json:"applied"` // status 200 and a body unlike the last one applied (MD5)
}

type notifyEvent struct {
	Event       string `json:"event"` // "notify" (new check-sync) or "retransmit"
	MAC         string `json:"mac"`
	At          int64  `json:"at"`
	CallID      string `json:"call_id"`
	CSeq        uint32 `json:"cseq"`
	EventHeader string `json:"event_header"`
	RequestURI  string `json:"request_uri"`
	From        string `json:"from"` // source host:port of the datagram
	// Action is what the phone does about a new check-sync (refetch,
	// reboot, ignore: sip.notify_reboot_enable); empty on a retransmission
	// and while the phone is still booting.
	Action string `json:"action,omitempty"`
}

type requestEvent struct {
	Event       string `json:"event"` // "request": a NOTIFY of another event, or another method
	MAC         string `json:"mac"`
	At          int64  `json:"at"`
	Method      string `json:"method"`
	CallID      string `json:"call_id"`
	EventHeader string `json:"event_header,omitempty"`
	Status      int    `json:"status"`
	From        string `json:"from"`
}

type fetchEvent struct {
	Event         string  `json:"event"` // "fetch"
	MAC           string  `json:"mac"`
	At            int64   `json:"at"`
	FetchMs       float64 `json:"fetch_ms"`
	Status        int     `json:"status"`
	ETag          string  `json:"etag"`
	Bytes         int64   `json:"bytes"`
	AfterNotifyMs float64 `json:"after_notify_ms"` // since the NOTIFY (or Action URI request) that caused it
	CallID        string  `json:"call_id"`         // the check-sync's; empty after an Action URI request
	URL           string  `json:"url"`
	TLS           bool    `json:"tls"`
	Auth          string  `json:"auth"`
	Trigger       string  `json:"trigger"` // check-sync, action_uri or reboot
	Applied       bool    `json:"applied"`
}

type rebootEvent struct {
	Event  string `json:"event"` // "reboot"
	MAC    string `json:"mac"`
	At     int64  `json:"at"`
	Reason string `json:"reason"`            // check-sync or action_uri
	CallID string `json:"call_id,omitempty"` // the check-sync's
}

type reportEvent struct {
	Event   string  `json:"event"` // "report": an action URL GET
	MAC     string  `json:"mac"`
	At      int64   `json:"at"`
	Name    string  `json:"name"` // setup_autop_finish, registered, register_failed, unregistered
	Account int     `json:"account,omitempty"`
	URL     string  `json:"url"`
	Status  int     `json:"status"` // 0: not sent, or no answer
	Ms      float64 `json:"ms"`
	Lost    bool    `json:"lost,omitempty"` // dropped by -max-reports, not sent
	Error   string  `json:"error,omitempty"`
}

type registerEvent struct {
	Event   string  `json:"event"` // "register": the outcome of one REGISTER (with its digest retry)
	MAC     string  `json:"mac"`
	At      int64   `json:"at"`
	Account int     `json:"account"`
	User    string  `json:"user"`
	Status  int     `json:"status"` // the final response; 0: no answer within -register-timeout
	Ms      float64 `json:"ms"`
	Error   string  `json:"error,omitempty"`
}

type refusedEvent struct {
	Event  string `json:"event"` // "refused": a SIP request dropped unanswered
	MAC    string `json:"mac"`
	At     int64  `json:"at"`
	From   string `json:"from"`
	Method string `json:"method"`
	Reason string `json:"reason"` // trust_ctrl
}

type actionURIEvent struct {
	Event  string `json:"event"` // "action_uri"
	MAC    string `json:"mac"`
	At     int64  `json:"at"`
	Key    string `json:"key"`
	From   string `json:"from"`
	Status int    `json:"status"`
}

type pnpEvent struct {
	Event string  `json:"event"` // "pnp"
	MAC   string  `json:"mac"`
	At    int64   `json:"at"`
	URL   string  `json:"url"`
	Ms    float64 `json:"ms"`
}

type errorEvent struct {
	Event string `json:"event"` // "error"
	MAC   string `json:"mac,omitempty"`
	At    int64  `json:"at"`
	Stage string `json:"stage"` // bind, web, pnp, boot, fetch, config, ca, sip
	Error string `json:"error"`
}

type bootedEvent struct {
	Event  string  `json:"event"` // "booted"
	At     int64   `json:"at"`
	Phones int     `json:"phones"`
	OK     int     `json:"ok"`
	Failed int     `json:"failed"`
	Ms     float64 `json:"ms"`
}

type summaryEvent struct {
	Event               string  `json:"event"` // "summary"
	At                  int64   `json:"at"`
	Reason              string  `json:"reason"` // signal, duration, exit-after-notifies, boot-failed
	Phones              int     `json:"phones"`
	BootOK              int     `json:"boot_ok"`
	BootFailed          int     `json:"boot_failed"`
	BootMs              float64 `json:"boot_ms"`
	Notifies            int64   `json:"notifies"`
	Retransmits         int64   `json:"retransmits"`
	OtherRequests       int64   `json:"other_requests"`
	Refetches           int64   `json:"refetches"`
	RefetchFailed       int64   `json:"refetch_failed"`
	AuthRetries         int64   `json:"auth_retries"` // requests repeated with credentials after a 401
	Fetches             int     `json:"fetches"`
	FetchMsP50          float64 `json:"fetch_ms_p50"`
	FetchMsP99          float64 `json:"fetch_ms_p99"`
	FetchMsMax          float64 `json:"fetch_ms_max"`
	NotifyToFetchMsP50  float64 `json:"notify_to_fetch_ms_p50"`
	NotifyToFetchMsP99  float64 `json:"notify_to_fetch_ms_p99"`
	NotifyToFetchMsMax  float64 `json:"notify_to_fetch_ms_max"`
	Reports             int64   `json:"reports"`        // action URL GETs sent
	ReportsLost         int64   `json:"reports_lost"`   // dropped by -max-reports
	ReportsFailed       int64   `json:"reports_failed"` // sent, but no answer or not 2xx
	Registrations       int64   `json:"registrations"`  // REGISTERs answered 2xx
	RegisterFailed      int64   `json:"register_failed"`
	Reboots             int64   `json:"reboots"`
	Applied             int64   `json:"applied"` // fetched files applied (new MD5)
	Skipped             int64   `json:"skipped"` // fetched files equal to the last applied (MD5)
	Refused             int64   `json:"refused"` // SIP requests dropped by trust_ctrl
	ActionURI           int64   `json:"action_uri"`
	PeakRSSKB           int64   `json:"peak_rss_kb"`
	UptimeMs            float64 `json:"uptime_ms"`
	GoroutinesAtSummary int     `json:"goroutines"`
}

// emitter writes events as JSON lines; one Write per line, under a lock.
type emitter struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool // only booted, summary and error lines
	buf   bytes.Buffer
}

// emit writes v. Per-phone events (important == false) are dropped when
// quiet.
func (e *emitter) emit(v any, important bool) {
	if e.quiet && !important {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buf.Reset()
	enc := json.NewEncoder(&e.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return
	}
	e.w.Write(e.buf.Bytes())
}

func now() int64 { return time.Now().UnixNano() }

// ms converts a duration to milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}

// percentile is the nearest-rank percentile p (0 < p <= 100) of sorted xs.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

func sortedCopy(xs []float64) []float64 {
	c := append([]float64(nil), xs...)
	sort.Float64s(c)
	return c
}

// peakRSSKB reads VmHWM (peak resident set size, kB) from /proc/self/status.
func peakRSSKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("VmHWM:")) {
			continue
		}
		fields := bytes.Fields(line[len("VmHWM:"):])
		if len(fields) == 0 {
			return 0
		}
		v, _ := strconv.ParseInt(string(fields[0]), 10, 64)
		return v
	}
	return 0
}

// randomToken is n random bytes in hex (tags, Call-IDs).
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
