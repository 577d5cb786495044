package webui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names, exported through /metrics.
const (
	metricRequests      = "provbox_http_requests_total"
	metricDuration      = "provbox_http_request_duration_seconds"
	metricDroppedEvents = "provbox_event_bus_dropped_total"
	metricPhones        = "provbox_phones"
)

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the server's metrics on reg. A registry shared with
// an earlier Server keeps the collectors it already has.
func newMetrics(reg *prometheus.Registry, dropped func() float64, states func() (map[string]int, error), logger *slog.Logger) *metrics {
	m := &metrics{registry: reg}
	m.requests = register(reg, logger, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricRequests,
		Help: "HTTP requests answered, by route pattern and status code.",
	}, []string{"route", "code"}))
	m.duration = register(reg, logger, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricDuration,
		Help:    "Time to answer an HTTP request, by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route"}))
	// Dropped() only grows, so this is a counter read at scrape time.
	register(reg, logger, prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: metricDroppedEvents,
		Help: "Events the event bus dropped because a subscriber was slow.",
	}, dropped))
	if states != nil {
		register(reg, logger, &phoneStates{desc: prometheus.NewDesc(metricPhones,
			"Phones by sync state (stuck: told to sync, or fetched an account change, and no fetch or report within sip.report_timeout).",
			[]string{"state"}, nil), count: states, logger: logger})
	}
	return m
}

// phoneStates counts the phones per sync state at scrape time.
type phoneStates struct {
	desc   *prometheus.Desc
	count  func() (map[string]int, error)
	logger *slog.Logger
}

func (c *phoneStates) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *phoneStates) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.count()
	if err != nil {
		c.logger.Warn("metrics: phone states", "err", err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}

func register[C prometheus.Collector](reg *prometheus.Registry, logger *slog.Logger, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		logger.Warn("metric not registered", "err", err)
	}
	return c
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// requestInfo travels in the request context so that inner handlers can
// tell the access log who asked.
type requestInfo struct {
	user string
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// instrument wraps every request: security headers, panic recovery, the
// access log at debug level and the request metrics. It never reads or logs
// bodies: SIP passwords travel in them.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
		rec := &statusRecorder{ResponseWriter: w}

		h := rec.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				err := fmt.Errorf("handler panicked: %v", v)
				if rec.wroteHeader {
					s.logger().Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				} else {
					s.fail(rec, r, err) // logs it
				}
			}
			status := rec.status
			if !rec.wroteHeader {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			route := r.Pattern // set by the mux on this very request
			if route == "" {
				route = "unmatched"
			}
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
			s.logRequest(r.Context(), r.Method, r.URL.Path, r.RemoteAddr, status, elapsed, info.user)
		}()
		next.ServeHTTP(rec, r)
	})
}

// logRequest writes a request's access-log line, at debug level (user:
// the admin signed in, if any). The phones' answers outside the request
// wrapper (provFirst, the listener's loop) log through it too.
func (s *Server) logRequest(ctx context.Context, method, path, remote string, status int, elapsed time.Duration, user string) {
	log := s.logger()
	if !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.String("remote", remote),
	}
	if user != "" {
		attrs = append(attrs, slog.String("user", user))
	}
	log.LogAttrs(ctx, slog.LevelDebug, "http request", attrs...)
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush,
// deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
