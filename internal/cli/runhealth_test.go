package cli

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sseharness/sseharness/report"
)

// tickingServer is a correct SSE double: an event every 100 ms with its send time.
func tickingServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(sseHandler(func(w http.ResponseWriter, f http.Flusher, r *http.Request) {
		tickEvents(w, f, r, sentNow)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// loadedBoxDelay is the scheduling-delay limit of the healthy run: the CI box is shared,
// and stalls of a busy machine (tens, at times hundreds of ms) would fail it at the
// default 10 ms, truthfully. The starved run keeps the defaults.
var loadedBoxDelay = []string{"--runner-max-delay", "1s"}

func runnerHealthy(t *testing.T, res *report.Result) report.Check {
	t.Helper()
	_, checks := holdChecks(t, res)
	c, ok := checks[report.CheckRunnerHealthy]
	if !ok {
		t.Fatalf("no %s check in %+v", report.CheckRunnerHealthy, res.Scenarios[0].Checks)
	}
	if len(res.Runner) != 1 || !res.Runner[0].Evidence {
		t.Errorf("result records the runner's watch %+v, want one summary with evidence", res.Runner)
	}
	return c
}

// TestRunnerHealthyFailsWhenStarved: with one core and busy loops in the runner's own
// process, the runner is saturated: the check fails, the result and stderr say so in
// words beside the latency figures. The check is a SHOULD: a harness that was its own
// bottleneck fails it without failing the target's scenario.
func TestRunnerHealthyFailsWhenStarved(t *testing.T) {
	// Not parallel: it sets GOMAXPROCS for the whole process.
	srv := tickingServer(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 1e6; i++ {
					_ = i * i
				}
			}
		})
	}
	code, stderr, res := holdRun(t, srv.URL)
	close(stop)
	wg.Wait()
	c := runnerHealthy(t, res)
	if c.Verdict != report.VerdictFail || !strings.Contains(c.Detail, "the runner was saturated") ||
		!strings.Contains(c.Detail, "ms of the runner's own delay") {
		t.Errorf("runner-healthy %s (%s; %s), want fail saying the runner was saturated", c.Verdict, c.Measured, c.Detail)
	}
	if !res.Runner[0].Saturated || res.Runner[0].Cores != 1 || res.Runner[0].RunQueueDelay.P99MS <= 10 {
		t.Errorf("runner summary %+v, want saturated on 1 core, goroutines waiting for it", res.Runner[0].Summary)
	}
	if c.Level != report.LevelShould || c.Fails() || !strings.Contains(stderr, "latency includes up to") {
		t.Errorf("exit %d; runner-healthy level %q; want a SHOULD and the saturation said on stderr:\n%s", code, c.Level, stderr)
	}
	var text strings.Builder
	if err := report.Table(&text, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "runner: SATURATED") {
		t.Errorf("the table does not say the runner was saturated:\n%s", text.String())
	}
}

// TestRunnerHealthyPassesOtherwise: the same run without the starvation passes it.
func TestRunnerHealthyPassesOtherwise(t *testing.T) {
	t.Parallel()
	srv := tickingServer(t)
	code, stderr, res := holdRun(t, srv.URL, loadedBoxDelay...)
	c := runnerHealthy(t, res)
	if c.Verdict != report.VerdictPass || res.Runner[0].Saturated {
		t.Errorf("runner-healthy %s (%s; %s), want pass\nstderr: %s", c.Verdict, c.Measured, c.Detail, stderr)
	}
	if code != ExitOK {
		t.Errorf("exit %d, want 0\nstderr: %s", code, stderr)
	}
	var text strings.Builder
	if err := report.Table(&text, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "runner: healthy; latency includes up to") {
		t.Errorf("the table does not say the runner's own delay:\n%s", text.String())
	}
}
