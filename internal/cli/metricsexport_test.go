package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// timedEvents is a correct SSE double: an event with its sent time every 20ms.
func timedEvents() http.Handler {
	return sseHandler(func(w http.ResponseWriter, f http.Flusher, r *http.Request) {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for id := 1; ; id++ {
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
				fmt.Fprintf(w, "id: %d\ndata: {\"sent_unix_ns\": %d}\n\n", id, time.Now().UnixNano())
				f.Flush()
			}
		}
	})
}

// scrape reads the exporter's families with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("exporter output does not parse: %v", err)
	}
	return fams
}

func value(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	f := fams[name]
	if f == nil || len(f.Metric) == 0 {
		return 0, false
	}
	m := f.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount()), true
	}
	return 0, false
}

// TestMetricsAddrServesLiveFigures scrapes `run --metrics-addr` while a hold runs: the
// text parses, streams are open, and events and the latency histogram grow between
// two scrapes.
func TestMetricsAddrServesLiveFigures(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(timedEvents())
	defer srv.Close()
	env, stderr := serveTestEnv(&serveTestBuffer{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"run", "--target", srv.URL, "--stream-url", "{target}/x?s={session}",
			"--progress-url", "none", "--metrics-url", "none", "--streams", "3", "--hold", "4s",
			"--out", filepath.Join(t.TempDir(), "r.json"), "--metrics-addr", "127.0.0.1:0", "hold"}, env)
	}()
	addrRE := regexp.MustCompile(`live metrics on (http://\S+/metrics)`)
	var url string
	await(t, 10*time.Second, func() bool {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	var first map[string]*dto.MetricFamily
	await(t, 20*time.Second, func() bool {
		first = scrape(t, url)
		open, _ := value(first, "sseharness_streams_open")
		ev, _ := value(first, "sseharness_events_total")
		return open == 3 && ev > 0
	})
	ev1, _ := value(first, "sseharness_events_total")
	lat1, _ := value(first, "sseharness_delivery_latency_seconds")
	await(t, 20*time.Second, func() bool {
		fams := scrape(t, url)
		ev2, _ := value(fams, "sseharness_events_total")
		lat2, _ := value(fams, "sseharness_delivery_latency_seconds")
		return ev2 > ev1 && lat2 > lat1
	})
	fams := scrape(t, url)
	if f := fams["sseharness_time_to_first_event_seconds"]; f == nil || f.Metric[0].Histogram.GetSampleCount() < 3 {
		t.Errorf("time to first event: %v", f)
	}
	if f := fams["sseharness_events_total"]; f.Metric[0].Label[0].GetValue() != "hold" {
		t.Errorf("scenario label %v", f.Metric[0].Label)
	}
	if code := <-done; code != ExitOK {
		t.Fatalf("run exit %d\n%s", code, stderr)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("the exporter still answers after the run")
	}
}

func TestMetricsAddrRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	var out serveTestBuffer
	env, stderr := serveTestEnv(&out)
	code := Main(context.Background(), []string{"run", "--target", "http://127.0.0.1:1", "--metrics-addr", "0.0.0.0:9464", "hold"}, env)
	if code != ExitUsage || !regexp.MustCompile(`loopback`).MatchString(stderr.String()) {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// await polls cond until it holds or the deadline passes.
func await(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
