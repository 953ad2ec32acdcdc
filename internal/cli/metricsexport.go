package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sseharness/sseharness/report"
)

// latencyBuckets are the upper bounds, in seconds, of the exported latency histograms:
// from half a millisecond (loopback delivery) to half a minute (a stalled stream).
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// liveMetrics is the Prometheus collector behind `run --metrics-addr`: on every scrape it
// reads the aggregates the scenarios fold their records into (the figures of the result
// file, not a second count kept in the load loop). A finished scenario keeps its final
// figures, so that its counters never go back.
type liveMetrics struct {
	mu   sync.Mutex
	runs []liveScenario // in run order

	open, opened, attempts, closed, events, errs, reconnects, latency, firstEvent *prometheus.Desc
}

type liveScenario struct {
	name string
	agg  *report.Aggregate
}

var _ prometheus.Collector = (*liveMetrics)(nil)

func newLiveMetrics() *liveMetrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("sseharness_"+name, help, append([]string{"scenario"}, labels...), nil)
	}
	return &liveMetrics{
		open:       d("streams_open", "Connections of simulated EventSources open now."),
		opened:     d("streams_opened_total", "Streams opened (a 200 text/event-stream head), once per stream."),
		attempts:   d("stream_attempts_total", "Connection attempts begun, reconnects included."),
		closed:     d("stream_attempts_closed_total", "Connection attempts ended, by close reason.", "reason"),
		events:     d("events_total", "Events dispatched to the simulated EventSources."),
		errs:       d("errors_total", "Errors of the simulated EventSources, by class.", "class"),
		reconnects: d("reconnects_total", "Reconnections the simulated EventSources made."),
		latency:    d("delivery_latency_seconds", "Delivery latency of events (receive time minus the sent time in the data)."),
		firstEvent: d("time_to_first_event_seconds", "Time from an attempt's start to its first event."),
	}
}

// track is scenarios.Options.Live: it adds a scenario's aggregate to what is exported.
func (l *liveMetrics) track(scenario string, agg *report.Aggregate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.runs {
		if l.runs[i].name == scenario { // the same scenario again: its newest run
			l.runs[i].agg = agg
			return
		}
	}
	l.runs = append(l.runs, liveScenario{name: scenario, agg: agg})
}

// Describe sends every descriptor.
func (l *liveMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{l.open, l.opened, l.attempts, l.closed, l.events, l.errs, l.reconnects, l.latency, l.firstEvent} {
		ch <- d
	}
}

// Collect sends the figures of every scenario run so far.
func (l *liveMetrics) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	runs := append([]liveScenario(nil), l.runs...)
	l.mu.Unlock()
	now := time.Now()
	for _, r := range runs {
		snap := r.agg.Snapshot(now)
		m := r.agg.Metrics()
		counter := func(d *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{r.name}, labels...)...)
		}
		ch <- prometheus.MustNewConstMetric(l.open, prometheus.GaugeValue, float64(snap.Open), r.name)
		counter(l.opened, m.Streams)
		counter(l.attempts, m.Attempts)
		counter(l.events, m.Events)
		counter(l.reconnects, m.Reconnects)
		for reason, n := range m.CloseReasons {
			counter(l.closed, n, reason)
		}
		for class, n := range m.Errors {
			counter(l.errs, n, class)
		}
		ch <- promHistogram(l.latency, m.Latency, r.name)
		ch <- promHistogram(l.firstEvent, m.TimeToFirstEvent, r.name)
	}
}

// promHistogram turns a distribution's log-bucketed histogram (nanoseconds, 1% buckets)
// into Prometheus buckets: a bucket counts under the first bound at or above its upper
// edge, so a cumulative count is never above the true one by more than one bucket's 1%.
func promHistogram(d *prometheus.Desc, s report.DurationStats, scenario string) prometheus.Metric {
	cum := make(map[float64]uint64, len(latencyBuckets))
	var sum float64
	if h := s.Histogram; h != nil {
		sum = h.Sum() / 1e9
		for _, b := range h.Buckets() {
			for _, ub := range latencyBuckets {
				if b.Upper/1e9 <= ub {
					cum[ub] += b.Count
					break
				}
			}
		}
	}
	var run uint64
	for _, ub := range latencyBuckets {
		run += cum[ub]
		cum[ub] = run
	}
	return prometheus.MustNewConstHistogram(d, s.Count, sum, cum, scenario)
}

// metricsServer serves the live metrics on a loopback address until stop is called.
type metricsServer struct {
	srv  *http.Server
	done chan error
	Addr string
}

// startMetricsServer listens on addr (loopback only: the exporter shows what the run
// does, not for the world) and serves /metrics from l.
func startMetricsServer(addr string, l *liveMetrics) (*metricsServer, error) {
	if err := checkMetricsAddr(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(l); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		done: make(chan error, 1),
		Addr: ln.Addr().String(),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// checkMetricsAddr checks --metrics-addr without binding it: HOST:PORT on loopback.
func checkMetricsAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %q: want HOST:PORT, e.g. 127.0.0.1:9464", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--metrics-addr %q: want a loopback address (127.0.0.0/8, ::1, localhost)", addr)
	}
	return nil
}

// stop shuts the server down, waiting at most a few seconds for a scrape in flight.
func (s *metricsServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
