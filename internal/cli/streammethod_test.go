package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// postFeed is a broadcast feed whose streams are asked for with POST and a JSON body,
// as fetch-based SSE clients do: anything else gets 405. Each stream ends after
// lifetime, so every client reconnects (with Last-Event-ID) during the hold; the
// double keeps each request's method and body.
type postFeed struct {
	mu   sync.Mutex
	reqs []string // "METHOD BODY"
}

func newPostFeed(t *testing.T, tick, lifetime time.Duration) (*httptest.Server, *postFeed) {
	t.Helper()
	f := &feed{o: feedOpts{tick: tick}, subs: map[chan feedEvent]struct{}{}}
	pf := &postFeed{}
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for seq := int64(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tk.C:
				f.broadcast(tsData(seq))
			}
		}
	}()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		pf.mu.Lock()
		pf.reqs = append(pf.reqs, r.Method+" "+string(b))
		pf.mu.Unlock()
		if r.URL.Path != "/events" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "streams are asked for with POST", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), lifetime)
		defer cancel()
		f.serve(w, r.WithContext(ctx))
	}))
	t.Cleanup(func() { close(stop); srv.CloseClientConnections(); srv.Close() })
	return srv, pf
}

func (pf *postFeed) requests() []string {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return append([]string(nil), pf.reqs...)
}

// TestWorldStreamsAskedForWithPOST: hold passes on a POST-only feed with --method POST
// --body, and the double saw the body on every attempt, reconnects included; without
// --method the streams are not opened (405) and hold does not pass.
func TestWorldStreamsAskedForWithPOST(t *testing.T) {
	t.Parallel()
	t.Run("post", func(t *testing.T) {
		t.Parallel()
		srv, pf := newPostFeed(t, 100*time.Millisecond, 1500*time.Millisecond)
		code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "--method", "POST", "--body", `{"topic":"x"}`, "--hold", "3s", "hold")
		s, _ := worldScenario(t, res, "hold")
		allPass(t, s)
		if code != ExitOK {
			t.Errorf("exit %d, want 0\nstderr: %s", code, stderr)
		}
		reqs := pf.requests()
		for i, r := range reqs {
			if r != `POST {"topic":"x"}` {
				t.Errorf("request %d: %q, want the POST with its body", i, r)
			}
		}
		if s.Metrics.Reconnects == 0 || len(reqs) <= 4 {
			t.Errorf("%d reconnects, %d requests for 4 streams: want reconnects, each with the body", s.Metrics.Reconnects, len(reqs))
		}
	})
	t.Run("get", func(t *testing.T) {
		t.Parallel()
		srv, _ := newPostFeed(t, 100*time.Millisecond, 1500*time.Millisecond)
		code, _, res := worldRun(t, 2*time.Minute, srv.URL, "--hold", "2s", "hold")
		s, _ := worldScenario(t, res, "hold")
		if s.Verdict == report.VerdictPass || code == ExitOK {
			t.Errorf("GET on a POST-only feed: verdict %s, exit %d; want no pass", s.Verdict, code)
		}
		if s.Metrics.Opens != 0 || s.Metrics.NotOpened["status-405"] == 0 {
			t.Errorf("opens %d, not opened %v: want every attempt refused with 405", s.Metrics.Opens, s.Metrics.NotOpened)
		}
	})
}

// TestRunStreamBodyWithGETIsAUsageError: --body without --method for event streams is
// a one-line usage error (exit 2); for the request-stream scenarios alone it is not
// about the streams.
func TestRunStreamBodyWithGETIsAUsageError(t *testing.T) {
	t.Parallel()
	var stdout strings.Builder
	env, stderr := serveTestEnv(&stdout)
	code := Main(context.Background(), []string{"run", "--target", "http://127.0.0.1:1", "--body", `{"topic":"x"}`, "hold"}, env)
	if code != ExitUsage || !strings.Contains(stderr.String(), "--method POST") || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 1 {
		t.Errorf("exit %d, stderr %q: want exit 2 with one line naming --method", code, stderr.String())
	}
}

// TestWorldHubCapacityAndSlowConsumerFromMarks: on a hub that only relays what is
// published (opaque ids, no send-time field), capacity and slow-consumer judge
// delivery latency from the harness's marks: the rules read mark_latency_p99, and a
// hub that adds 400 ms to every delivery fails capacity's 250 ms SLO.
func TestWorldHubCapacityAndSlowConsumerFromMarks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		delay time.Duration
		want  report.Verdict
	}{{"prompt", 0, report.VerdictPass}, {"slow relay", 400 * time.Millisecond, report.VerdictFail}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFeed(t, feedOpts{opaque: true})
			target := srv.URL
			if tc.delay > 0 {
				target = delayedPublish(t, srv.URL, tc.delay)
			}
			code, stderr, res := worldRun(t, 2*time.Minute, target, "--publish-url", "{target}/publish", "--publish-rate", "20/s",
				"--streams", "6", "--hold", "3s", "capacity", "slow-consumer")
			capRes, capChecks := worldScenario(t, res, "capacity")
			c := capChecks["sustained-steps"]
			t.Logf("capacity/sustained-steps: %s; %s", c.Measured, c.Detail)
			if c.Verdict != tc.want {
				t.Errorf("capacity/sustained-steps: %s, want %s (%s; %s)", c.Verdict, tc.want, c.Measured, c.Detail)
			}
			if c.Rule == nil || c.Rule.Metric != "mark_latency_p99" {
				t.Errorf("capacity/sustained-steps rule %+v: want it on mark_latency_p99", c.Rule)
			}
			if capRes.Metrics.MarkLatency.Count == 0 || capRes.Metrics.Latency.Count != 0 {
				t.Errorf("capacity: %d mark latencies, %d send-time latencies: want marks only", capRes.Metrics.MarkLatency.Count, capRes.Metrics.Latency.Count)
			}
			slowRes, slowChecks := worldScenario(t, res, "slow-consumer")
			f := slowChecks["fast-p99"]
			if f.Rule == nil || f.Rule.Metric != "mark_latency_p99" || slowRes.Metrics.MarkLatency.Count == 0 {
				t.Errorf("slow-consumer/fast-p99 rule %+v, %d mark latencies: want it judged on marks", f.Rule, slowRes.Metrics.MarkLatency.Count)
			}
			if tc.want == report.VerdictPass && f.Verdict != report.VerdictPass {
				t.Errorf("slow-consumer/fast-p99: %s (%s; %s)", f.Verdict, f.Measured, f.Detail)
			}
			if tc.want == report.VerdictFail && code != ExitFailed {
				t.Errorf("exit %d, want 1\nstderr: %s", code, stderr)
			}
		})
	}
}

// delayedPublish fronts a feed with a proxy that holds each publish for d before
// passing it on: every mark reaches the subscribers d late.
func delayedPublish(t *testing.T, upstream string, d time.Duration) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			w.WriteHeader(http.StatusNoContent)
			go func() {
				time.Sleep(d) // the hub's own slowness, not a test wait
				resp, err := http.Post(upstream+r.URL.Path, r.Header.Get("Content-Type"), strings.NewReader(string(b)))
				if err == nil {
					resp.Body.Close()
				}
			}()
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv.URL
}

// TestWorldScenariosDeclareTheirNeeds: on a broadcast feed without a progress callback
// or metrics, completion, mid-stream-disconnect and half-open are n/a from what they
// declare, each check with the reason in words, and no stream is opened for them;
// resume, which needs none of these, still runs and passes.
func TestWorldScenariosDeclareTheirNeeds(t *testing.T) {
	t.Parallel()
	srv := newFeed(t, feedOpts{tick: 100 * time.Millisecond})
	code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "completion", "mid-stream-disconnect", "half-open", "resume")
	for name, why := range map[string][]string{
		"completion":            {"broadcast feed", "no progress callback"},
		"mid-stream-disconnect": {"metrics are not read"},
		"half-open":             {"metrics are not read"},
	} {
		s, checks := worldScenario(t, res, name)
		if s.Verdict != report.VerdictNotApplicable || s.Metrics.Attempts != 0 {
			t.Errorf("%s: %s with %d attempts, want n/a before any stream", name, s.Verdict, s.Metrics.Attempts)
		}
		for _, c := range checks {
			for _, w := range why {
				if c.Verdict != report.VerdictNotApplicable || !strings.Contains(c.Detail, w) {
					t.Errorf("%s/%s: %s (%q), want n/a saying %q", name, c.Name, c.Verdict, c.Detail, w)
				}
			}
		}
	}
	resume, _ := worldScenario(t, res, "resume")
	allPass(t, resume)
	if code != ExitOK {
		t.Errorf("exit %d, want 0\nstderr: %s", code, stderr)
	}
}
