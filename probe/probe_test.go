package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// metricsServer serves Prometheus text whose goroutine count follows g.
func metricsServer(t *testing.T, g *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines %d
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2345678e+07
# TYPE sse_open_streams gauge
sse_open_streams{topic="a"} 3
sse_open_streams{topic="b"} 4
# TYPE sse_events_total counter
sse_events_total 99
# TYPE sse_write_seconds histogram
sse_write_seconds_bucket{le="0.1"} 5
sse_write_seconds_bucket{le="+Inf"} 7
sse_write_seconds_sum 0.5
sse_write_seconds_count 7
`, g.Load())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProbeScrape(t *testing.T) {
	var g atomic.Int64
	g.Store(42)
	srv := metricsServer(t, &g)
	p := &Probe{URL: srv.URL + "/metrics", Names: []string{"sse_open_streams", "sse_events_total", "sse_write_seconds", "not_exposed", "go_goroutines"}}
	s := p.Scrape(context.Background())
	if !s.Available() {
		t.Fatalf("scrape failed: %s", s.Err)
	}
	want := map[string]float64{"go_goroutines": 42, "process_resident_memory_bytes": 12345678, "sse_open_streams": 7,
		"sse_events_total": 99, "sse_write_seconds": 7}
	for name, v := range want {
		if got, ok := s.Value(name); !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if _, ok := s.Value("not_exposed"); ok {
		t.Error("a metric the server does not expose has a value")
	}
	if len(p.Wanted()) != 6 {
		t.Errorf("wanted %v: defaults once, then the extra names", p.Wanted())
	}
}

func TestProbeWithoutMetrics(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/metrics"
	ln.Close()
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>{not metrics}</html>")
	}))
	t.Cleanup(html.Close)
	for name, url := range map[string]string{"404": srv.URL + "/metrics", "refused": refused, "not prometheus": html.URL, "no url": ""} {
		s := (&Probe{URL: url, Timeout: 5 * time.Second}).Scrape(context.Background())
		if s.Available() || len(s.Values) != 0 {
			t.Errorf("%s: available=%v values=%v, want unavailable and no values", name, s.Available(), s.Values)
		}
		if _, ok := s.Value(MetricGoroutines); ok {
			t.Errorf("%s: goroutines present", name)
		}
		t.Logf("%s: %s", name, s.Err)
	}
}

func TestProbeSamplerAndPeak(t *testing.T) {
	var g atomic.Int64
	g.Store(10)
	srv := metricsServer(t, &g)
	p := &Probe{URL: srv.URL + "/metrics"}
	baseline := p.Scrape(context.Background())
	sm := p.Sample(context.Background(), 10*time.Millisecond)
	waitFor(t, 10*time.Second, "a sample", func() bool { return len(sm.Samples()) >= 1 })
	g.Store(500)
	waitFor(t, 10*time.Second, "the peak sampled", func() bool {
		v, _ := Peak(sm.Samples(), MetricGoroutines)
		return v == 500
	})
	g.Store(12)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	after, ok := p.Until(ctx, 10*time.Millisecond, func(s Sample) bool {
		v, ok := s.Value(MetricGoroutines)
		return ok && v <= 12
	})
	timeline := sm.Stop()
	if !ok {
		t.Fatal("Until never saw the drop")
	}
	res := Result{Baseline: baseline, Timeline: timeline, After: after}
	if v, ok := res.Peak(MetricGoroutines); !ok || v != 500 {
		t.Errorf("peak %v %v, want 500", v, ok)
	}
	if _, ok := Peak(timeline, "absent"); ok {
		t.Error("peak of an absent metric")
	}
	n := len(timeline)
	time.Sleep(30 * time.Millisecond)
	if len(sm.Samples()) != n {
		t.Error("sampler kept sampling after Stop")
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
