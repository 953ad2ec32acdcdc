package selfwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const childEnv = "SSEHARNESS_SELFWATCH_CHILD"

// TestSelfwatchChild is the child process of the saturation tests: it does nothing
// unless started by runChild.
func TestSelfwatchChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("only run as a child process")
	}
	var cfg Config
	if mode == "idle" {
		// The machine running the tests is busy: an idle process still waits for the
		// OS to run it, for a few ms now and then. 100 ms is far above that.
		cfg.MaxDelay = 100 * time.Millisecond
	}
	w, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const hold = 1500 * time.Millisecond
	switch mode {
	case "starved":
		// Eight goroutines that never block on one P: each waits for the seven others'
		// time slices (about 10 ms each) whenever it is preempted.
		end := time.Now().Add(hold)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				x := 0
				for time.Now().Before(end) {
					for i := 0; i < 1000; i++ {
						x += i
					}
				}
				_ = x
			})
		}
		wg.Wait()
	case "idle":
		time.Sleep(hold) // the workload: doing nothing
	default:
		t.Fatalf("unknown child mode %q", mode)
	}
	s := w.Stop()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.Write(append(append([]byte("SUMMARY "), b...), '\n'))
}

// runChild runs this test binary as a child in mode with extra environment and
// returns the summary the child printed about itself.
func runChild(t *testing.T, mode string, env ...string) Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSelfwatchChild$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s: %v\n%s\n%s", mode, err, out, stderr.Bytes())
	}
	for _, line := range strings.Split(string(out), "\n") {
		if js, ok := strings.CutPrefix(line, "SUMMARY "); ok {
			var s Summary
			if err := json.Unmarshal([]byte(js), &s); err != nil {
				t.Fatalf("child %s summary %q: %v", mode, js, err)
			}
			return s
		}
	}
	t.Fatalf("child %s printed no summary:\n%s", mode, out)
	return Summary{}
}

var noteRE = regexp.MustCompile(`^latency includes up to [0-9]+(\.[0-9])? ms of the runner's own delay$`)

func TestSaturatedWhenStarved(t *testing.T) {
	s := runChild(t, "starved", "GOMAXPROCS=1")
	t.Logf("starved child: cpu %.2f of %d core(s), tick p99 %.1f ms max %.1f ms, run queue p99 %.1f ms (%d samples), reasons %q",
		s.CPUUse, s.Cores, s.TickLateness.P99MS, s.TickLateness.MaxMS, s.RunQueueDelay.P99MS, s.RunQueueDelay.Count, s.Reasons)
	if s.GOMAXPROCS != 1 || s.Cores != 1 {
		t.Fatalf("child ran with GOMAXPROCS %d, %d cores; want 1 and 1", s.GOMAXPROCS, s.Cores)
	}
	if !s.Evidence || s.TickLateness.Count == 0 || s.RunQueueDelay.Count == 0 {
		t.Fatalf("no evidence: %+v", s)
	}
	// Eight goroutines sharing one P wait about 70 ms each time they are preempted:
	// seven times the 10 ms threshold, whatever else the machine does (a busy machine
	// only makes the wait longer).
	if s.RunQueueDelay.P99MS <= s.MaxDelayMS || s.MaxDelayMS != 10 {
		t.Errorf("run-queue delay p99 %.1f ms, want above the default threshold 10 ms (got %.1f)", s.RunQueueDelay.P99MS, s.MaxDelayMS)
	}
	if !s.Saturated || !hasReason(s, "waited up to") {
		t.Errorf("not judged saturated by its run-queue delay: %+v", s)
	}
	// The CPU reason follows the child's own figure, whatever share of a core this
	// busy machine gave it.
	if (s.CPUUse > s.MaxCPU) != hasReason(s, "of its 1 core") {
		t.Errorf("CPU use %.2f (threshold %.2f) but reasons %q", s.CPUUse, s.MaxCPU, s.Reasons)
	}
	if s.OwnDelayMS < s.RunQueueDelay.P99MS || !noteRE.MatchString(s.Note) {
		t.Errorf("own delay %.1f ms, note %q", s.OwnDelayMS, s.Note)
	}
}

func TestNotSaturatedWhenIdle(t *testing.T) {
	s := runChild(t, "idle")
	t.Logf("idle child: cpu %.3f of %d core(s), tick p99 %.2f ms max %.2f ms, run queue p99 %.2f ms, gc pauses %d",
		s.CPUUse, s.Cores, s.TickLateness.P99MS, s.TickLateness.MaxMS, s.RunQueueDelay.P99MS, s.GCPauses.Count)
	if !s.Evidence || s.TickLateness.Count < 10 {
		t.Fatalf("too few ticks for a verdict: %+v", s)
	}
	if s.Saturated || len(s.Reasons) != 0 {
		t.Errorf("an idle process judged saturated: %q", s.Reasons)
	}
	if s.CPUUse > 0.3 || s.CPUUse < 0 {
		t.Errorf("idle CPU use %.3f", s.CPUUse)
	}
	if s.Cores < 1 || s.Cores > runtime.NumCPU() || s.DurationMS < 1400 {
		t.Errorf("cores %d, duration %.0f ms", s.Cores, s.DurationMS)
	}
	if !noteRE.MatchString(s.Note) {
		t.Errorf("note %q", s.Note)
	}
}

func hasReason(s Summary, sub string) bool {
	for _, r := range s.Reasons {
		if strings.Contains(r, sub) {
			return true
		}
	}
	return false
}

func TestJudge(t *testing.T) {
	cfg := Config{}.withDefaults()
	for _, tc := range []struct {
		name      string
		s         Summary
		saturated bool
		reasons   []string
		note      string
	}{
		{"no ticks: no evidence, no verdict", Summary{CPUUse: 1, Cores: 2}, false, nil, "latency includes up to 0.0 ms of the runner's own delay"},
		{"healthy", Summary{CPUUse: 0.5, Cores: 2, TickLateness: DelayStats{Count: 100, P99MS: 0.42}, RunQueueDelay: DelayStats{Count: 9, P99MS: 0.1}},
			false, nil, "latency includes up to 0.4 ms of the runner's own delay"},
		{"cpu", Summary{CPUUse: 0.95, Cores: 2, TickLateness: DelayStats{Count: 100, P99MS: 3}},
			true, []string{"the runner used 95% of its 2 cores, above 90%"}, "latency includes up to 3.0 ms of the runner's own delay"},
		{"tick", Summary{CPUUse: 0.2, Cores: 1, TickLateness: DelayStats{Count: 100, P99MS: 12.4, MaxMS: 40}},
			true, []string{"its ticker ran up to 12 ms late at p99 (max 40 ms), above 10 ms"}, "latency includes up to 12 ms of the runner's own delay"},
		{"run queue and cpu", Summary{CPUUse: 0.99, Cores: 1, TickLateness: DelayStats{Count: 100, P99MS: 2}, RunQueueDelay: DelayStats{Count: 5, P99MS: 67.1}},
			true, []string{"the runner used 99% of its 1 core, above 90%", "its goroutines waited up to 67 ms for a core at p99, above 10 ms"},
			"latency includes up to 67 ms of the runner's own delay"},
		{"at the threshold is not above it", Summary{CPUUse: 0.9, Cores: 1, TickLateness: DelayStats{Count: 100, P99MS: 10}}, false, nil,
			"latency includes up to 10 ms of the runner's own delay"},
	} {
		s := tc.s
		judge(&s, cfg)
		if s.Saturated != tc.saturated || strings.Join(s.Reasons, "|") != strings.Join(tc.reasons, "|") || s.Note != tc.note {
			t.Errorf("%s: saturated %v reasons %q note %q; want %v %q %q", tc.name, s.Saturated, s.Reasons, s.Note, tc.saturated, tc.reasons, tc.note)
		}
	}
}

func TestLateHistQuantilesWithinABucket(t *testing.T) {
	var h lateHist
	for v := time.Duration(1); v <= 1000; v++ {
		h.add(v * time.Millisecond)
	}
	st := h.stats()
	check := func(name string, got, want float64) {
		if got < want || got > want*1.125 {
			t.Errorf("%s = %.3f ms, want within 12.5%% above %.3f", name, got, want)
		}
	}
	check("p50", st.P50MS, 500)
	check("p99", st.P99MS, 990)
	if st.MaxMS != 1000 || st.Count != 1000 {
		t.Errorf("max %.3f count %d", st.MaxMS, st.Count)
	}
	var empty lateHist
	if empty.stats() != (DelayStats{}) {
		t.Errorf("empty histogram: %+v", empty.stats())
	}
	// Every value lies in a bucket whose upper bound is at most 12.5% above it.
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		v := time.Duration(r.Int64N(int64(100 * time.Second)))
		up := lateUpper(lateBucket(v))
		if up < v || float64(up) > float64(v)*1.125+1 {
			t.Fatalf("value %d in bucket %d with upper bound %d", v, lateBucket(v), up)
		}
	}
	if lateBucket(math.MaxInt64) >= len(h.counts) {
		t.Fatal("the largest duration has no bucket")
	}
}

func TestRuntimeHistStats(t *testing.T) {
	h := runtimeHist{
		buckets: []float64{math.Inf(-1), 0, 0.001, 0.002, 0.004, math.Inf(1)},
		counts:  []uint64{0, 90, 9, 0, 1},
	}
	st := h.stats(true)
	if st.Count != 100 || st.P50MS != 1 || st.P99MS != 2 || st.MaxMS != 4 {
		t.Errorf("stats %+v", st)
	}
	// Sum from midpoints: 90×0.5 + 9×1.5 + 1×4 (the open bucket counts at its lower bound).
	if math.Abs(st.TotalMS-(45+13.5+4)) > 1e-9 {
		t.Errorf("total %.3f ms", st.TotalMS)
	}
	if (runtimeHist{}).stats(true) != (DelayStats{}) {
		t.Error("an empty histogram has figures")
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	err := Config{Tick: time.Microsecond, Window: -1, MaxCPU: 1.5, MaxDelay: -time.Second}.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, w := range []string{"tick 1µs", "window -1ns", "max CPU 1.5", "max delay -1s"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	if err := (Config{Tick: time.Second, Window: 100 * time.Millisecond}).Validate(); err == nil {
		t.Error("a window shorter than the tick was accepted")
	}
	if _, err := Start(context.Background(), Config{MaxCPU: 2}); err == nil {
		t.Error("Start accepted a bad config")
	}
}

func TestWatcherLiveSummaryStopAndContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := Start(ctx, Config{Tick: time.Millisecond, Window: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for w.Summary().TickLateness.Count < 20 {
		if time.Now().After(deadline) {
			t.Fatal("no ticks within 20 s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel() // the context ends the probe; Stop still gives the final summary
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the probe did not end with its context")
	}
	ended := time.Now()
	time.Sleep(50 * time.Millisecond) // Stop comes late: the figures must not grow
	s1 := w.Stop()
	s2 := w.Stop()
	if end := s1.Start.Add(time.Duration(s1.DurationMS * float64(time.Millisecond))); end.After(ended) {
		t.Errorf("the watch ended at %v, its summary runs to %v", ended, end)
	}
	if s1.TickLateness.Count < 20 || s1.TickLateness != s2.TickLateness || s1.DurationMS != s2.DurationMS {
		t.Errorf("stop: %+v then %+v", s1.TickLateness, s2.TickLateness)
	}
	if s1.Cores < 1 || s1.CPUSeconds < 0 || s1.PeakCPUUse < s1.CPUUse {
		t.Errorf("cores %d cpu %.3f s peak %.3f use %.3f", s1.Cores, s1.CPUSeconds, s1.PeakCPUUse, s1.CPUUse)
	}
	b, err := json.Marshal(s1)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"cpu_use":`, `"tick_lateness":{"count":`, `"run_queue_delay":`, `"gc_pauses":`, `"saturated":`, `"note":"latency includes up to `} {
		if !bytes.Contains(b, []byte(field)) {
			t.Errorf("JSON lacks %s: %s", field, b)
		}
	}
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil || back.Note != s1.Note || back.TickLateness != s1.TickLateness {
		t.Errorf("JSON round trip: %v, %+v", err, back)
	}
}

func TestConcurrentSummaryAndStop(t *testing.T) {
	w, err := Start(context.Background(), Config{Tick: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]Summary, 4)
	for i := range got {
		wg.Go(func() {
			w.Summary()
			got[i] = w.Stop()
		})
	}
	wg.Wait()
	for _, s := range got[1:] {
		if s.DurationMS != got[0].DurationMS || s.TickLateness != got[0].TickLateness {
			t.Fatalf("Stop returned different summaries: %+v and %+v", got[0], s)
		}
	}
}
