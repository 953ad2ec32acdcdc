package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

func TestPinTargetIsStableAndSpreads(t *testing.T) {
	targets := []string{"http://a", "http://b", "http://c"}
	count := map[string]int{}
	// Session ids differ in their last characters only: a weak hash would put them on
	// few targets.
	for i := range 30 {
		s := fmt.Sprintf("r1a2b3-hold-%d", i)
		got := runner.PinTarget(targets, s)
		if again := runner.PinTarget(targets, s); again != got {
			t.Fatalf("session %s pinned to %s, then %s", s, got, again)
		}
		count[got]++
	}
	for _, tg := range targets {
		if count[tg] < 5 {
			t.Errorf("target %s got %d of 30 sessions: %v", tg, count[tg], count)
		}
	}
}

// counter reads a counter from a server's /metrics, summed over its labels.
func counter(t *testing.T, base, name string) float64 {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sum, found := 0.0, false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", base, line, err)
		}
		sum, found = sum+f, true
	}
	if !found {
		t.Fatalf("%s has no metric %s", base, name)
	}
	return sum
}

// TestRunSeveralTargetsAgainstServeProcs: run --target A --target B spreads the
// sessions over the two servers of 'serve --procs 2', each session pinned to one:
// resume (a client leaves, its callbacks go on, it comes back with Last-Event-ID)
// passes only when the stream, the callbacks and the reconnection reach one server.
func TestRunSeveralTargetsAgainstServeProcs(t *testing.T) {
	bin := binaryTest(t)
	base := freePorts(t, 2)
	p := startProcs(t, bin, 2, "--addr", fmt.Sprintf("127.0.0.1:%d", base), "--tick", "200ms")
	out := filepath.Join(t.TempDir(), "result.json")
	var stdout bytes.Buffer
	env, stderr := serveTestEnv(&stdout)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	code := Main(ctx, []string{"run", "--target", p.urls[0], "--target", p.urls[1], "--streams", "10", "--hold", "1s",
		"--runner-max-delay", "500ms", "--out", out, "completion", "resume", "hold"}, env)
	res, err := report.Load(out)
	if err != nil {
		t.Fatalf("exit %d, no result: %v\nstderr: %s", code, err, stderr)
	}
	if code != ExitOK || res.Verdict != report.VerdictPass {
		t.Fatalf("exit %d, verdict %s; want 0, pass\nstderr: %s\n%s", code, res.Verdict, stderr, stdout.String())
	}
	for _, s := range res.Scenarios {
		if s.Metrics.Streams != 10 {
			t.Errorf("%s: %d streams opened, want 10", s.Name, s.Metrics.Streams)
		}
	}
	for i, u := range p.urls {
		if n := counter(t, u, "sseref_streams_closed_total"); n < 6 {
			t.Errorf("server %d (%s) served %v streams, want a share of the 30 sessions' streams", i+1, u, n)
		}
	}
	if !strings.Contains(stderr.String(), "2 targets, each session pinned to one by its id") {
		t.Errorf("run does not say how it spreads the sessions:\n%s", stderr)
	}
}
