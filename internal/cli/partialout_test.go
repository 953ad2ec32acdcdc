package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// runArgsEnv carries the arguments of a `run` for TestPartialOutHelperProcess.
const runArgsEnv = "SSEHARNESS_TEST_RUN_ARGS"

// TestPartialOutHelperProcess is not a test: TestOutSurvivesSIGKILL runs the test binary
// with it to have a `run` in a process of its own that can be killed.
func TestPartialOutHelperProcess(t *testing.T) {
	args := os.Getenv(runArgsEnv)
	if args == "" {
		t.Skip("helper process for TestOutSurvivesSIGKILL")
	}
	os.Exit(Main(context.Background(), strings.Split(args, "\x1f"), StdEnv()))
}

// TestOutSurvivesSIGKILL: a run killed with SIGKILL in the middle of a long hold leaves
// a valid result file marked incomplete, holding the figures measured until then; and
// `report` and `compare` say it is incomplete.
func TestOutSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(timedEvents())
	defer srv.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	args := []string{"run", "--target", srv.URL, "--stream-url", "{target}/x?s={session}",
		"--progress-url", "none", "--metrics-url", "none", "--streams", "4", "--hold", "5m",
		"--out", out, "--out-interval", "200ms", "hold"}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPartialOutHelperProcess$")
	cmd.Env = append(os.Environ(), runArgsEnv+"="+strings.Join(args, "\x1f"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	// Wait for a partial result that has events of all four streams, twice (so that
	// the file is rewritten while the hold goes on), then kill.
	var events []int64
	await(t, 30*time.Second, func() bool {
		r, err := report.Load(out)
		if err != nil || len(r.Scenarios) != 1 {
			return false
		}
		if m := r.Scenarios[0].Metrics; m.Streams == 4 && (len(events) == 0 || m.Events > events[len(events)-1]) {
			events = append(events, m.Events)
		}
		return len(events) >= 2
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	res, err := report.Load(out)
	if err != nil {
		t.Fatalf("result after SIGKILL: %v\n%s", err, stderr.String())
	}
	s := res.Scenarios[0]
	if !res.Incomplete || !s.Incomplete || s.Name != "hold" || s.Metrics.Events < events[1] || s.Metrics.Latency.Count == 0 {
		t.Errorf("incomplete %v/%v scenario %s events %d (saw %v) latency samples %d", res.Incomplete, s.Incomplete, s.Name, s.Metrics.Events, events, s.Metrics.Latency.Count)
	}
	if res.Verdict == report.VerdictPass {
		t.Error("a partial result passed")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".result.json.*")); len(left) > 1 {
		t.Errorf("temporary files left: %v", left)
	}

	var stdout bytes.Buffer
	env, _ := serveTestEnv(&stdout)
	Main(context.Background(), []string{"report", out}, env)
	if !strings.Contains(stdout.String(), "incomplete") {
		t.Errorf("report does not say incomplete:\n%s", stdout.String())
	}
	stdout.Reset()
	Main(context.Background(), []string{"compare", out, out}, env)
	if !strings.Contains(stdout.String(), "incomplete") {
		t.Errorf("compare does not say incomplete:\n%s", stdout.String())
	}
}

// TestPartialResultIsComplete: with a run that ends normally the file is the complete
// result, not marked incomplete, whatever partial rewrites happened before.
func TestPartialResultIsComplete(t *testing.T) {
	t.Parallel()
	_, _, res := holdRun(t, timedURL(t), "--out-interval", "100ms")
	if res.Incomplete || res.Scenarios[0].Incomplete || res.Verdict != report.VerdictPass {
		t.Errorf("final result: incomplete %v verdict %s", res.Incomplete, res.Verdict)
	}
}

func timedURL(t *testing.T) string {
	srv := httptest.NewServer(timedEvents())
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPartialOutEveryInterval: on a fake clock (testing/synctest), the file appears only
// once an interval has passed, holds the running scenario's figures so far, then the
// finished scenario; nothing is written after close.
func TestPartialOutEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.json")
		start := time.Now()
		var errs []error
		p := startPartialOut(path, defaultOutInterval, report.Result{HarnessVersion: "test", Target: "t", Start: start}, func(err error) { errs = append(errs, err) })
		agg, err := report.NewAggregate(report.AggregateConfig{Start: start})
		if err != nil {
			t.Fatal(err)
		}
		p.track("hold", agg)
		for range 7 {
			agg.Add(&runner.Record{Kind: runner.RecordEvent, Time: time.Now(), Latency: time.Millisecond, Gap: -1})
		}
		time.Sleep(defaultOutInterval - time.Second)
		synctest.Wait()
		if _, err := os.Stat(path); err == nil {
			t.Fatal("written before the first interval")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		r, err := report.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Incomplete || len(r.Scenarios) != 1 || !r.Scenarios[0].Incomplete || r.Scenarios[0].Metrics.Events != 7 || !r.End.Equal(start.Add(defaultOutInterval)) {
			t.Fatalf("first rewrite: incomplete %v scenarios %+v end %v", r.Incomplete, r.Scenarios, r.End.Sub(start))
		}
		p.done(report.BuildScenario(report.ScenarioInput{Name: "hold", Start: start, End: time.Now(), Aggregate: agg}))
		time.Sleep(defaultOutInterval)
		synctest.Wait()
		if r, err = report.Load(path); err != nil || len(r.Scenarios) != 1 || r.Scenarios[0].Incomplete || !r.Incomplete {
			t.Fatalf("second rewrite: %v %+v", err, r)
		}
		p.close()
		before, _ := os.Stat(path)
		time.Sleep(3 * defaultOutInterval)
		synctest.Wait()
		if after, _ := os.Stat(path); !after.ModTime().Equal(before.ModTime()) {
			t.Error("rewritten after close")
		}
		if len(errs) > 0 {
			t.Errorf("rewrite errors: %v", errs)
		}
	})
}
