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
	"testing/synctest"
	"time"
)

// metricsServer serves Prometheus text whose goroutine count follows g.
func metricsServer(t *testing.T, g *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(metricsHandler(g))
	t.Cleanup(srv.Close)
	return srv
}

// metricsHandler writes Prometheus text whose goroutine count follows g.
func metricsHandler(g *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})
}

// inProcess serves requests with a handler in the calling goroutine: no sockets, so a
// probe using it runs inside a synctest bubble.
type inProcess struct{ h http.Handler }

func (tr inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	return rec.Result(), nil
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

// The sampler on a fake clock (synctest): one scrape at once and one per interval, the
// peak it saw, Until returning at the first sample that meets its condition, and no
// scrape after Stop however long one waits.
func TestProbeSamplerAndPeak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g atomic.Int64
		g.Store(10)
		p := &Probe{URL: "http://metrics.test/metrics", Client: &http.Client{Transport: inProcess{metricsHandler(&g)}}}
		ctx := t.Context()
		baseline := p.Scrape(ctx)
		sm := p.Sample(ctx, 10*time.Millisecond)
		time.Sleep(25 * time.Millisecond) // scrapes at 0, 10 and 20 ms
		synctest.Wait()
		if n := len(sm.Samples()); n != 3 {
			t.Fatalf("%d samples after 25 ms at one per 10 ms, want 3", n)
		}
		g.Store(500)
		time.Sleep(10 * time.Millisecond) // the scrape at 30 ms sees 500
		synctest.Wait()
		if v, _ := Peak(sm.Samples(), MetricGoroutines); v != 500 {
			t.Fatalf("peak %v after the scrape at 30 ms, want 500", v)
		}
		g.Store(12)
		start := time.Now()
		calls := 0
		after, ok := p.Until(ctx, 10*time.Millisecond, func(s Sample) bool {
			calls++
			v, ok := s.Value(MetricGoroutines)
			return ok && v <= 12 && calls == 3 // met on the third scrape only
		})
		if !ok || calls != 3 || time.Since(start) != 20*time.Millisecond {
			t.Fatalf("Until: ok %v after %d scrapes in %v, want true after 3 in 20ms", ok, calls, time.Since(start))
		}
		timeline := sm.Stop()
		res := Result{Baseline: baseline, Timeline: timeline, After: after}
		if v, ok := res.Peak(MetricGoroutines); !ok || v != 500 {
			t.Errorf("peak %v %v, want 500", v, ok)
		}
		if _, ok := Peak(timeline, "absent"); ok {
			t.Error("peak of an absent metric")
		}
		n := len(timeline)
		time.Sleep(time.Second)
		synctest.Wait()
		if len(sm.Samples()) != n {
			t.Errorf("sampler kept sampling after Stop: %d samples, then %d", n, len(sm.Samples()))
		}
	})
}
