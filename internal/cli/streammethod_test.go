package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
