// Package selfwatch watches the load generator itself while a run goes: how much of
// its cores the process used, how late a ticker's goroutine got to run, how long
// runnable goroutines waited for a core, and how long the garbage collector stopped
// the world. Its Summary says in words when the runner was saturated, so that a slow
// figure is not blamed on the server when the harness was the bottleneck.
//
// A Watcher costs one goroutine waking every Config.Tick (10 ms) and a fixed 4 KiB
// of memory, however long the run.
package selfwatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultTick     = 10 * time.Millisecond
	DefaultWindow   = time.Second
	DefaultMaxCPU   = 0.9
	DefaultMaxDelay = 10 * time.Millisecond
)

// Config says how the runner watches itself and when it counts as saturated. The zero
// value is the defaults.
type Config struct {
	// Tick is the period of the lateness probe. Default DefaultTick.
	Tick time.Duration
	// Window is the width over which the busiest CPU use (PeakCPUUse) is measured.
	// Default DefaultWindow.
	Window time.Duration
	// MaxCPU is the share of the process's cores (0 < MaxCPU <= 1) above which the mean
	// CPU use of the run counts as saturated. Default DefaultMaxCPU.
	MaxCPU float64
	// MaxDelay is the scheduling delay p99 (the ticker's lateness or the run-queue wait,
	// whichever is larger) above which the run counts as saturated. Default
	// DefaultMaxDelay.
	MaxDelay time.Duration
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var probs []string
	if c.Tick < 0 || c.Tick > 0 && c.Tick < 100*time.Microsecond {
		probs = append(probs, fmt.Sprintf("tick %v: want at least 100µs (0 for the default)", c.Tick))
	}
	if c.Window < 0 || c.Window > 0 && c.Window < 10*time.Millisecond {
		probs = append(probs, fmt.Sprintf("window %v: want at least 10ms (0 for the default)", c.Window))
	}
	if c.MaxCPU < 0 || c.MaxCPU > 1 || math.IsNaN(c.MaxCPU) {
		probs = append(probs, fmt.Sprintf("max CPU %v: want a share of the cores in (0, 1] (0 for the default)", c.MaxCPU))
	}
	if c.MaxDelay < 0 {
		probs = append(probs, fmt.Sprintf("max delay %v: want a positive duration (0 for the default)", c.MaxDelay))
	}
	if c.Tick > 0 && c.Window > 0 && c.Window < c.Tick {
		probs = append(probs, fmt.Sprintf("window %v is shorter than the tick %v", c.Window, c.Tick))
	}
	if len(probs) > 0 {
		return errors.New("self-watch: " + strings.Join(probs, "; "))
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.Window == 0 {
		c.Window = max(DefaultWindow, c.Tick)
	}
	if c.MaxCPU == 0 {
		c.MaxCPU = DefaultMaxCPU
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	return c
}

// DelayStats summarises a distribution of delays, in milliseconds. Quantiles are
// bucket upper bounds (at most 12.5% high for the tick lateness; the runtime's own
// buckets for the runtime's histograms), so they read "up to".
type DelayStats struct {
	Count   uint64  `json:"count"`
	P50MS   float64 `json:"p50_ms"`
	P99MS   float64 `json:"p99_ms"`
	MaxMS   float64 `json:"max_ms"`
	TotalMS float64 `json:"total_ms,omitempty"` // GC pauses: their sum (from bucket midpoints)
}

// Summary is what the runner saw of itself over a run (one per worker process). It
// is a plain value, JSON-serialisable.
type Summary struct {
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`

	// Cores is what the process could use: GOMAXPROCS, capped by the CPUs of its
	// affinity mask.
	Cores        int `json:"cores"`
	GOMAXPROCS   int `json:"gomaxprocs"`
	AffinityCPUs int `json:"affinity_cpus,omitempty"` // 0 when unknown here
	// CPUSeconds is user plus system CPU time of the whole process during the watch
	// (getrusage; the runtime's estimate where that is missing).
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUUse is CPUSeconds / (duration × Cores): 1 is every core busy all the time.
	CPUUse float64 `json:"cpu_use"`
	// PeakCPUUse is CPUUse over the busiest Window of the run.
	PeakCPUUse float64 `json:"peak_cpu_use"`

	// TickLateness is how late a goroutine woken every Tick ran: the delay any
	// stream's goroutine sees on top of its own work (the runtime favours timer wake-ups,
	// so this is the lower of the two delays).
	TickLateness DelayStats `json:"tick_lateness"`
	// RunQueueDelay is how long runnable goroutines waited for a core
	// (runtime/metrics /sched/latencies:seconds, sampled by the runtime).
	RunQueueDelay DelayStats `json:"run_queue_delay"`
	// GCPauses are the garbage collector's stop-the-world pauses
	// (/sched/pauses/total/gc:seconds).
	GCPauses DelayStats `json:"gc_pauses"`

	MaxCPU     float64 `json:"max_cpu"`      // threshold in force
	MaxDelayMS float64 `json:"max_delay_ms"` // threshold in force

	// Evidence is false when the watch was too short for a single tick: a check over
	// this summary is then n/a, not pass.
	Evidence bool `json:"evidence"`
	// Saturated says the runner itself was a bottleneck; Reasons say why, in words.
	Saturated bool     `json:"saturated"`
	Reasons   []string `json:"reasons,omitempty"`
	// OwnDelayMS is the runner's own scheduling delay p99 (the larger of the tick
	// lateness and the run-queue delay); Note says it in a sentence for the report.
	OwnDelayMS float64 `json:"own_delay_ms"`
	Note       string  `json:"note"`
}

// Watcher samples the process while a run goes. Summary and Stop are safe for
// concurrent use.
type Watcher struct {
	cfg      Config
	start    time.Time
	cpu0     time.Duration
	cpuErr   error
	hist0    []metrics.Sample
	cores    int
	procs    int
	affin    int
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	final    Summary // set by probe before done closes
	mu       sync.Mutex
	late     lateHist
	peak     float64
	winCPU   time.Duration // CPU time at the start of the current window
	winAt    time.Time
}

var histNames = [...]string{"/sched/latencies:seconds", "/sched/pauses/total/gc:seconds"}

// Start begins watching until ctx ends or Stop is called.
func Start(ctx context.Context, cfg Config) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &Watcher{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	w.procs = runtime.GOMAXPROCS(0)
	w.affin = affinityCPUs()
	w.cores = w.procs
	if w.affin > 0 && w.affin < w.cores {
		w.cores = w.affin
	}
	w.hist0 = readHists()
	w.start = time.Now()
	w.cpu0, w.cpuErr = processCPU()
	w.winCPU, w.winAt = w.cpu0, w.start
	go w.probe(ctx)
	return w, nil
}

func readHists() []metrics.Sample {
	s := make([]metrics.Sample, len(histNames))
	for i, n := range histNames {
		s[i].Name = n
	}
	metrics.Read(s)
	return s
}

// probe wakes every Tick and records how late it ran. Each wake is measured from the
// previous one, so a long stall counts once, with its whole length.
func (w *Watcher) probe(ctx context.Context) {
	defer func() {
		// The final figures end where the watch ended, however late Stop comes.
		w.final = w.summarise()
		close(w.done)
	}()
	t := time.NewTimer(w.cfg.Tick)
	defer t.Stop()
	due := time.Now().Add(w.cfg.Tick)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		late := max(now.Sub(due), 0)
		w.mu.Lock()
		w.late.add(late)
		if now.Sub(w.winAt) >= w.cfg.Window {
			if cpu, err := processCPU(); err == nil && w.cpuErr == nil {
				use := float64(cpu-w.winCPU) / (float64(now.Sub(w.winAt)) * float64(w.cores))
				w.peak = max(w.peak, use)
				w.winCPU, w.winAt = cpu, now
			}
		}
		w.mu.Unlock()
		due = now.Add(w.cfg.Tick)
		t.Reset(w.cfg.Tick)
	}
}

// Summary returns what the watch saw so far (while it goes, for live progress).
func (w *Watcher) Summary() Summary {
	select {
	case <-w.done:
		return w.final
	default:
	}
	return w.summarise()
}

// Stop ends the watch and returns its final summary; later calls return the same.
func (w *Watcher) Stop() Summary {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.final
}

func (w *Watcher) summarise() Summary {
	now := time.Now()
	cpu, cpuErr := processCPU()
	hists := readHists()
	w.mu.Lock()
	late := w.late
	peak := w.peak
	w.mu.Unlock()

	dur := now.Sub(w.start)
	s := Summary{
		Start:        w.start,
		DurationMS:   ms(dur),
		Cores:        w.cores,
		GOMAXPROCS:   w.procs,
		AffinityCPUs: w.affin,
		TickLateness: late.stats(),
		MaxCPU:       w.cfg.MaxCPU,
		MaxDelayMS:   ms(w.cfg.MaxDelay),
	}
	if cpuErr == nil && w.cpuErr == nil {
		s.CPUSeconds = (cpu - w.cpu0).Seconds()
		if dur > 0 && w.cores > 0 {
			s.CPUUse = float64(cpu-w.cpu0) / (float64(dur) * float64(w.cores))
		}
	}
	s.PeakCPUUse = max(peak, s.CPUUse)
	s.RunQueueDelay = histDiff(w.hist0[0], hists[0]).stats(false)
	s.GCPauses = histDiff(w.hist0[1], hists[1]).stats(true)
	judge(&s, w.cfg)
	return s
}

// judge sets the verdict, its reasons and the note from the figures.
func judge(s *Summary, cfg Config) {
	s.Evidence = s.TickLateness.Count > 0
	s.OwnDelayMS = max(s.TickLateness.P99MS, s.RunQueueDelay.P99MS)
	s.Note = "latency includes up to " + fmtMS(s.OwnDelayMS) + " ms of the runner's own delay"
	s.Saturated, s.Reasons = false, nil
	if !s.Evidence {
		return
	}
	maxDelay := ms(cfg.MaxDelay)
	if s.CPUUse > cfg.MaxCPU {
		s.Reasons = append(s.Reasons, fmt.Sprintf("the runner used %.0f%% of its %d %s, above %.0f%%",
			100*s.CPUUse, s.Cores, plural(s.Cores, "core", "cores"), 100*cfg.MaxCPU))
	}
	if s.TickLateness.P99MS > maxDelay {
		s.Reasons = append(s.Reasons, fmt.Sprintf("its ticker ran up to %s ms late at p99 (max %s ms), above %s ms",
			fmtMS(s.TickLateness.P99MS), fmtMS(s.TickLateness.MaxMS), fmtMS(maxDelay)))
	}
	if s.RunQueueDelay.P99MS > maxDelay {
		s.Reasons = append(s.Reasons, fmt.Sprintf("its goroutines waited up to %s ms for a core at p99, above %s ms",
			fmtMS(s.RunQueueDelay.P99MS), fmtMS(maxDelay)))
	}
	s.Saturated = len(s.Reasons) > 0
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMS writes milliseconds with one decimal below 10 ms and none above.
func fmtMS(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// lateHist is a fixed histogram of durations: 8 buckets per power of two of
// nanoseconds (at most 12.5% wide), plus the exact maximum.
type lateHist struct {
	counts [64 * 8]uint64
	n      uint64
	max    time.Duration
}

func lateBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 8 {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(v) // v in [2^e, 2^(e+1)), e >= 3
	sub := (v >> (e - 3)) & 7        // next three bits
	return e*8 + int(sub)
}

// lateUpper is the largest value bucket i holds.
func lateUpper(i int) time.Duration {
	if i < 24 { // buckets 8-23 stay empty: values below 8 ns have their own
		return time.Duration(min(i, 8))
	}
	e, sub := uint(i/8), uint64(i%8)
	lo := uint64(1)<<e | sub<<(e-3)
	return time.Duration(lo + uint64(1)<<(e-3) - 1)
}

func (h *lateHist) add(d time.Duration) {
	h.counts[lateBucket(d)]++
	h.n++
	h.max = max(h.max, d)
}

func (h *lateHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank && c > 0 {
			return min(lateUpper(i), h.max)
		}
	}
	return h.max
}

func (h *lateHist) stats() DelayStats {
	return DelayStats{Count: h.n, P50MS: ms(h.quantile(0.5)), P99MS: ms(h.quantile(0.99)), MaxMS: ms(h.max)}
}

// runtimeHist is the growth of one of the runtime's cumulative histograms.
type runtimeHist struct {
	counts  []uint64
	buckets []float64 // seconds; len(counts)+1 boundaries, possibly ±Inf at the ends
}

func histDiff(a, b metrics.Sample) runtimeHist {
	if b.Value.Kind() != metrics.KindFloat64Histogram {
		return runtimeHist{}
	}
	hb := b.Value.Float64Histogram()
	out := runtimeHist{counts: make([]uint64, len(hb.Counts)), buckets: hb.Buckets}
	copy(out.counts, hb.Counts)
	if a.Value.Kind() == metrics.KindFloat64Histogram {
		ha := a.Value.Float64Histogram()
		if len(ha.Counts) == len(hb.Counts) {
			for i := range out.counts {
				out.counts[i] -= min(ha.Counts[i], out.counts[i])
			}
		}
	}
	return out
}

// upper is bucket i's upper boundary in seconds, or its lower one when that is +Inf.
func (h runtimeHist) upper(i int) float64 {
	if hi := h.buckets[i+1]; !math.IsInf(hi, 1) {
		return hi
	}
	return max(h.buckets[i], 0)
}

func (h runtimeHist) stats(withTotal bool) DelayStats {
	var st DelayStats
	for _, c := range h.counts {
		st.Count += c
	}
	if st.Count == 0 {
		return st
	}
	q := func(p float64) float64 {
		rank := uint64(math.Ceil(p * float64(st.Count)))
		var cum uint64
		for i, c := range h.counts {
			cum += c
			if c > 0 && cum >= rank {
				return 1000 * h.upper(i)
			}
		}
		return 0
	}
	st.P50MS, st.P99MS = q(0.5), q(0.99)
	for i := len(h.counts) - 1; i >= 0; i-- {
		if h.counts[i] > 0 {
			st.MaxMS = 1000 * h.upper(i)
			break
		}
	}
	if withTotal {
		var total float64
		for i, c := range h.counts {
			if c == 0 {
				continue
			}
			lo, hi := max(h.buckets[i], 0), h.upper(i)
			total += float64(c) * (lo + hi) / 2
		}
		st.TotalMS = 1000 * total
	}
	return st
}
