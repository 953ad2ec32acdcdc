package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cost comparison runs each runner in a child process of its own (this test
// binary again), alternating the goroutine path and the event loops against one
// child server, so that both are measured in the same sitting on the same load and
// neither inherits the other's heap.
const (
	loopCostEnv       = "SSEHARNESS_LOOPCOST"        // stream counts, "2000,5000"; unset: skip
	loopCostRunnerEnv = "SSEHARNESS_LOOPCOST_RUNNER" // set in the child: "target streams loop"
	loopCostWindow    = 10 * time.Second
	// loopCostProfileEnv, a path prefix, makes each child write a CPU profile of its
	// window to PREFIX.STREAMS.loop-BOOL.
	loopCostProfileEnv = "SSEHARNESS_LOOPCOST_CPUPROFILE"
)

// loopCost is what one child runner measured.
type loopCost struct {
	Loop          bool    `json:"loop"`
	Streams       int     `json:"streams"`
	Events        int64   `json:"events"`
	CPUPerEventUS float64 `json:"cpu_per_event_us"`
	RSSPerStreamK float64 `json:"rss_per_stream_kb"`
	LatencyP99MS  float64 `json:"latency_p99_ms"`
	Short         int     `json:"short_streams"`
	Errors        int64   `json:"errors"`
}

// TestEventLoopCost compares CPU per received event and resident memory per stream
// of the goroutine path and the event loops, three runs of each, medians:
//
//	SSEHARNESS_LOOPCOST=2000,5000 go test -run TestEventLoopCost -v -timeout 30m ./runner
//
// The machine is shared while it runs: compare the two paths' ratio, not the
// absolute figures, unless the machine was quiet.
func TestEventLoopCost(t *testing.T) {
	spec := os.Getenv(loopCostEnv)
	if spec == "" {
		t.Skipf("set %s=N[,N...] to compare the goroutine path and the event loops at N streams", loopCostEnv)
	}
	if _, err := RaiseFDLimit(); err != nil {
		t.Fatal(err)
	}
	target := startHelperServer(t, time.Second)
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("%s: %q is not a stream count", loopCostEnv, f)
		}
		var runs [2][]loopCost
		for rep := range 3 {
			for k := range 2 {
				loop := (rep+k)%2 == 1 // alternate which path goes first
				c := runLoopCostChild(t, target, n, loop)
				t.Logf("%d streams, loop %v: %.1f us CPU per event, %.1f KB RSS per stream, p99 %.1f ms, %d events, %d short, %d errors",
					n, loop, c.CPUPerEventUS, c.RSSPerStreamK, c.LatencyP99MS, c.Events, c.Short, c.Errors)
				if c.Short > 0 || c.Errors > 0 {
					t.Errorf("%d streams, loop %v: %d streams missed ticks, %d errors", n, loop, c.Short, c.Errors)
				}
				i := 0
				if loop {
					i = 1
				}
				runs[i] = append(runs[i], c)
			}
		}
		med := func(cs []loopCost, f func(loopCost) float64) float64 {
			v := make([]float64, len(cs))
			for i, c := range cs {
				v[i] = f(c)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		cpu := func(c loopCost) float64 { return c.CPUPerEventUS }
		rss := func(c loopCost) float64 { return c.RSSPerStreamK }
		p99 := func(c loopCost) float64 { return c.LatencyP99MS }
		g, l := runs[0], runs[1]
		t.Logf("MEDIAN %d streams: CPU per event goroutine %.1f us, loop %.1f us (x%.2f); RSS per stream goroutine %.1f KB, loop %.1f KB (x%.2f); p99 goroutine %.1f ms, loop %.1f ms",
			n, med(g, cpu), med(l, cpu), med(l, cpu)/med(g, cpu), med(g, rss), med(l, rss), med(l, rss)/med(g, rss), med(g, p99), med(l, p99))
	}
}

func runLoopCostChild(t *testing.T, target string, n int, loop bool) loopCost {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLoopCostRunner$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %v", loopCostRunnerEnv, target, n, loop))
	cmd.Stderr = os.Stderr
	outp, err := cmd.Output()
	if err != nil {
		t.Fatalf("runner child: %v\n%s", err, outp)
	}
	for _, line := range strings.Split(string(outp), "\n") {
		if rest, ok := strings.CutPrefix(line, "LOOPCOST "); ok {
			var c loopCost
			if err := json.Unmarshal([]byte(rest), &c); err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatalf("runner child printed no result:\n%s", outp)
	return loopCost{}
}

// TestHelperLoopCostRunner is not a test: it is a child process of TestEventLoopCost.
// It holds the streams, measures one window and prints its loopCost.
func TestHelperLoopCostRunner(t *testing.T) {
	spec := os.Getenv(loopCostRunnerEnv)
	if spec == "" {
		t.Skip("child process of TestEventLoopCost")
	}
	var target string
	var n int
	var loop bool
	if _, err := fmt.Sscanf(spec, "%s %d %t", &target, &n, &loop); err != nil {
		t.Fatal(err)
	}
	if _, err := RaiseFDLimit(); err != nil {
		t.Fatal(err)
	}
	settle()
	before := rssBytes(t)

	var mu sync.Mutex
	var lat []time.Duration
	var measuring atomic.Bool
	ramp := time.Duration(n) * time.Second / 2000
	run, _ := startScaleRun(t, Config{Target: target, Streams: n, Ramp: ramp, Hold: time.Hour, Drain: 10 * time.Second, GoroutineReaders: !loop}, func(s *scaleRun, r Record) {
		if r.Kind != RecordEvent {
			return
		}
		s.eventInOrder(r)
		if measuring.Load() && r.Latency >= 0 {
			mu.Lock()
			lat = append(lat, r.Latency)
			mu.Unlock()
		}
	})
	time.Sleep(3 * time.Second)
	base := run.snapshot()
	if path := os.Getenv(loopCostProfileEnv); path != "" {
		// One profile per path: the last run of each writes it.
		if f, err := os.Create(fmt.Sprintf("%s.%d.loop-%v", path, n, loop)); err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
		}
	}
	measuring.Store(true)
	ev0, cpu0 := run.events.Load(), cpuTime()
	time.Sleep(loopCostWindow)
	ev1, cpu1 := run.events.Load(), cpuTime()
	measuring.Store(false)
	pprof.StopCPUProfile()
	short := run.short(base, int32(loopCostWindow/time.Second))
	settle()
	after := rssBytes(t)
	mu.Lock()
	slices.Sort(lat)
	var p99 time.Duration
	if len(lat) > 0 {
		p99 = lat[len(lat)*99/100]
	}
	mu.Unlock()
	c := loopCost{Loop: loop, Streams: n, Events: ev1 - ev0, RSSPerStreamK: float64(after-before) / float64(n) / 1024,
		LatencyP99MS: float64(p99) / 1e6, Short: short, Errors: run.errs.Load()}
	if c.Events > 0 {
		c.CPUPerEventUS = float64(cpu1-cpu0) / float64(c.Events) / 1e3
	}
	b, _ := json.Marshal(c)
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "LOOPCOST %s\n", b)
	w.Flush()
}
