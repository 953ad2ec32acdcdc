// Command benchstat turns the raw files scripts/bench collects into the README's tables:
//
//	go run ./scripts/benchstat capacity DIR   # cap-r*.json: sseharness `run hold` results
//	go run ./scripts/benchstat peer DIR       # peer-n*-r*-{sse,node}.{json,cpu}
//	go run ./scripts/benchstat scale DIR      # scale-r*.{json,cpu,rss}: multi-process runs
//
// A .cpu file is the client process's CPU sampled about once a second from /proc/PID/stat
// ("# clk_tck N", then "unix_microseconds utime+stime_ticks" lines). CPU per received
// event is taken over hold's counting window (from the end of the ramp + 1 s, lasting the
// hold), the CPU interpolated at the window's ends and the events summed from the
// client's own per-second timeline over the same window.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	tables := map[string]func(io.Writer, string) error{"capacity": capacity, "peer": peer, "scale": scale}
	if len(os.Args) != 3 || tables[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: benchstat capacity|peer|scale DIR")
		os.Exit(2)
	}
	err := tables[os.Args[1]](os.Stdout, os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchstat:", err)
		os.Exit(1)
	}
}

// result is the part of an sseharness result file the tables need.
type result struct {
	Config struct {
		Ramp string `json:"ramp"`
	} `json:"config"`
	Scenarios []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Verdict     string `json:"verdict"`
		Checks      []struct {
			Name    string `json:"name"`
			Verdict string `json:"verdict"`
		} `json:"checks"`
		Load struct {
			Requested struct {
				Streams int     `json:"streams"`
				HoldMs  float64 `json:"hold_ms"`
			} `json:"requested"`
		} `json:"load"`
		Metrics struct {
			Streams         int64     `json:"streams"`
			Events          int64     `json:"events"`
			FirstOpen       time.Time `json:"first_open"`
			LastOpen        time.Time `json:"last_open"`
			DeliveryLatency quantiles `json:"delivery_latency"`
			FirstEvent      quantiles `json:"time_to_first_event"`
		} `json:"metrics"`
		Timeline struct {
			Start  time.Time `json:"start"`
			StepMs float64   `json:"step_ms"`
			Points []struct {
				Events float64 `json:"events"`
			} `json:"points"`
		} `json:"timeline"`
	} `json:"scenarios"`
	Runner []struct {
		Worker    int     `json:"worker"`
		OwnDelay  float64 `json:"own_delay_ms"`
		Saturated bool    `json:"saturated"`
		PeakCPU   float64 `json:"peak_cpu_use"`
	} `json:"runner"`
}

type quantiles struct {
	Count int64   `json:"count"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// holdRun is one `run hold` result's figures.
type holdRun struct {
	verdict, failed                           string
	requested                                 int
	opened                                    int64
	runnerKB, runnerGCKB, serverKB, goroutine float64
	p99, max, openS, ttfeP99                  float64
	window                                    window
	// the runner's self-watch over its workers: the largest own delay and peak CPU use of
	// any worker, how many were saturated, and the runner-healthy check's verdict
	ownDelayMs, peakCPU float64
	cpuUs               float64 // runner CPU per event in the window (capacity's .cpu file); NaN without one
	workers, saturated  int
	healthy             string
}

var (
	reRunner     = regexp.MustCompile(`runner ([0-9.]+) KB RSS per stream \(([0-9.]+) KB after a GC\)`)
	reServer     = regexp.MustCompile(`server ([0-9.]+) KB RSS per stream`)
	reGoroutines = regexp.MustCompile(`([0-9.]+) server goroutines per stream`)
)

func readHold(path string) (holdRun, error) {
	var r result
	b, err := os.ReadFile(path)
	if err != nil {
		return holdRun{}, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return holdRun{}, fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range r.Scenarios {
		if s.Name != "hold" {
			continue
		}
		h := holdRun{verdict: s.Verdict, requested: s.Load.Requested.Streams, opened: s.Metrics.Streams,
			p99: s.Metrics.DeliveryLatency.P99, max: s.Metrics.DeliveryLatency.Max,
			openS: s.Metrics.LastOpen.Sub(s.Metrics.FirstOpen).Seconds(), ttfeP99: s.Metrics.FirstEvent.P99,
			runnerKB: math.NaN(), runnerGCKB: math.NaN(), serverKB: math.NaN(), goroutine: math.NaN()}
		var failed []string
		for _, c := range s.Checks {
			if c.Verdict != "pass" {
				failed = append(failed, c.Name+" "+c.Verdict)
			}
		}
		h.failed = strings.Join(failed, ", ")
		for _, c := range s.Checks {
			if c.Name == "runner-healthy" {
				h.healthy = c.Verdict
			}
		}
		for _, wk := range r.Runner {
			h.workers++
			h.ownDelayMs, h.peakCPU = math.Max(h.ownDelayMs, wk.OwnDelay), math.Max(h.peakCPU, wk.PeakCPU)
			if wk.Saturated {
				h.saturated++
			}
		}
		if m := reRunner.FindStringSubmatch(s.Description); m != nil {
			h.runnerKB, _ = strconv.ParseFloat(m[1], 64)
			h.runnerGCKB, _ = strconv.ParseFloat(m[2], 64)
		}
		if m := reServer.FindStringSubmatch(s.Description); m != nil {
			h.serverKB, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := reGoroutines.FindStringSubmatch(s.Description); m != nil {
			h.goroutine, _ = strconv.ParseFloat(m[1], 64)
		}
		ramp, err := time.ParseDuration(r.Config.Ramp)
		if err != nil {
			return holdRun{}, fmt.Errorf("%s: config.ramp %q: %v", path, r.Config.Ramp, err)
		}
		h.window = window{start: s.Timeline.Start, stepMs: s.Timeline.StepMs, ramp: ramp,
			hold: time.Duration(s.Load.Requested.HoldMs * float64(time.Millisecond))}
		for _, p := range s.Timeline.Points {
			h.window.points = append(h.window.points, p.Events)
		}
		return h, nil
	}
	return holdRun{}, fmt.Errorf("%s: no hold scenario in the result", path)
}

// window is a client's per-step event timeline and hold's counting window on it.
type window struct {
	start      time.Time
	stepMs     float64
	points     []float64
	ramp, hold time.Duration
}

// bounds is the counting window: from the end of the ramp + 1 s, lasting the hold.
func (w window) bounds() (time.Time, time.Time) {
	from := w.start.Add(w.ramp + time.Second)
	return from, from.Add(w.hold)
}

// events sums the timeline's events in [from, to), prorating the steps at the edges.
func (w window) events(from, to time.Time) float64 {
	step := time.Duration(w.stepMs * float64(time.Millisecond))
	if step <= 0 {
		return 0
	}
	sum := 0.0
	for k, n := range w.points {
		a := w.start.Add(time.Duration(k) * step)
		b := a.Add(step)
		lo, hi := maxTime(a, from), minTime(b, to)
		if hi.After(lo) {
			sum += n * float64(hi.Sub(lo)) / float64(step)
		}
	}
	return sum
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// cpuSamples is a process's CPU time (seconds) sampled at wall-clock times.
type cpuSamples struct {
	at  []time.Time
	cpu []float64
}

func readCPU(path string) (cpuSamples, error) {
	f, err := os.Open(path)
	if err != nil {
		return cpuSamples{}, err
	}
	defer f.Close()
	return parseCPU(f, path)
}

func parseCPU(r io.Reader, name string) (cpuSamples, error) {
	var s cpuSamples
	clk := 0.0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "# clk_tck "); ok {
			clk, _ = strconv.ParseFloat(v, 64)
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		us, err1 := strconv.ParseInt(f[0], 10, 64)
		ticks, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil || clk <= 0 {
			return cpuSamples{}, fmt.Errorf("%s: bad line %q (or no clk_tck header)", name, line)
		}
		s.at = append(s.at, time.UnixMicro(us))
		s.cpu = append(s.cpu, ticks/clk)
	}
	return s, sc.Err()
}

// at interpolates the CPU time at t; false when t is outside the samples.
func (s cpuSamples) atTime(t time.Time) (float64, bool) {
	for i := 1; i < len(s.at); i++ {
		if !t.Before(s.at[i-1]) && !t.After(s.at[i]) {
			span := s.at[i].Sub(s.at[i-1])
			if span <= 0 {
				return s.cpu[i], true
			}
			f := float64(t.Sub(s.at[i-1])) / float64(span)
			return s.cpu[i-1] + f*(s.cpu[i]-s.cpu[i-1]), true
		}
	}
	return 0, false
}

// cpuPerEvent is the CPU microseconds per event received over w's counting window.
func cpuPerEvent(w window, s cpuSamples) (usPerEvent, events float64, err error) {
	from, to := w.bounds()
	if len(s.at) < 2 {
		return 0, 0, errors.New("fewer than two CPU samples")
	}
	// sseharness exits as its counting window ends, so the last sample may come a little
	// before the end: the window is what the samples cover, if that is most of it.
	lo, hi := maxTime(from, s.at[0]), minTime(to, s.at[len(s.at)-1])
	if float64(hi.Sub(lo)) < 0.8*float64(to.Sub(from)) {
		return 0, 0, fmt.Errorf("the CPU samples (%s to %s) cover less than 80%% of the counting window (%s to %s)",
			s.at[0].Format(time.StampMilli), s.at[len(s.at)-1].Format(time.StampMilli), from.Format(time.StampMilli), to.Format(time.StampMilli))
	}
	from, to = lo, hi
	a, _ := s.atTime(from)
	b, _ := s.atTime(to)
	events = w.events(from, to)
	if events == 0 {
		return 0, 0, errors.New("no events in the counting window")
	}
	return (b - a) * 1e6 / events, events, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func list(v []float64, format string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

// runFiles returns dir's NAME-r*.json files, ordered by run number; none is an error.
func runFiles(dir, name string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, name+"-r*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no %s-r*.json results in %s", name, dir)
	}
	num := regexp.MustCompile(`-r(\d+)`)
	sort.Slice(files, func(i, j int) bool {
		a, _ := strconv.Atoi(num.FindStringSubmatch(filepath.Base(files[i]))[1])
		b, _ := strconv.Atoi(num.FindStringSubmatch(filepath.Base(files[j]))[1])
		return a < b
	})
	return files, nil
}

// figure is one row of a table of runs: its name, unit, format and value in a run.
type figure[T any] struct {
	name, unit, format string
	of                 func(T) float64
}

// medianTable prints one row per figure: the median over the runs, then every run's value.
func medianTable[T any](w io.Writer, runs []T, figures []figure[T]) {
	fmt.Fprintf(w, "| figure | median of %d | the %d runs |\n|---|---|---|\n", len(runs), len(runs))
	for _, f := range figures {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f.of(r)
		}
		fmt.Fprintf(w, "| %s | "+f.format+"%s | %s |\n", f.name, median(v), f.unit, list(v, f.format))
	}
}

func capacity(w io.Writer, dir string) error {
	files, err := runFiles(dir, "cap")
	if err != nil {
		return err
	}
	var runs []holdRun
	for _, f := range files {
		h, err := readHold(f)
		if err != nil {
			return err
		}
		// The client's CPU, sampled beside the run (scripts/bench capacity): per event
		// received in hold's counting window, as peer measures it.
		h.cpuUs = math.NaN()
		if s, err := readCPU(strings.TrimSuffix(f, ".json") + ".cpu"); err == nil {
			us, _, err := cpuPerEvent(h.window, s)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			h.cpuUs = us
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		runs = append(runs, h)
	}
	figures := []figure[holdRun]{
		{"runner memory per stream (RSS growth / streams, during the hold)", " KB", "%.1f", func(r holdRun) float64 { return r.runnerKB }},
		{"runner memory per stream after a GC (what the streams keep alive)", " KB", "%.1f", func(r holdRun) float64 { return r.runnerGCKB }},
		{"server memory per stream, same run", " KB", "%.1f", func(r holdRun) float64 { return r.serverKB }},
		{"runner / server memory per stream", "", "%.2f", func(r holdRun) float64 { return r.runnerKB / r.serverKB }},
		{"server goroutines per stream", "", "%.2f", func(r holdRun) float64 { return r.goroutine }},
		{"p99 delivery latency (send to receipt)", " ms", "%.1f", func(r holdRun) float64 { return r.p99 }},
		{"max delivery latency", " ms", "%.1f", func(r holdRun) float64 { return r.max }},
		{fmt.Sprintf("time to open all %d streams", runs[0].requested), " s", "%.2f", func(r holdRun) float64 { return r.openS }},
		{"p99 time to first event", " ms", "%.1f", func(r holdRun) float64 { return r.ttfeP99 }},
	}
	if !slices.ContainsFunc(runs, func(r holdRun) bool { return math.IsNaN(r.cpuUs) }) {
		figures = append(figures, figure[holdRun]{"runner CPU per received event (hold window)", " us", "%.1f", func(r holdRun) float64 { return r.cpuUs }})
	}
	medianTable(w, runs, figures)
	fmt.Fprintln(w)
	for i, r := range runs {
		note := ""
		if r.failed != "" {
			note = " (not passing: " + r.failed + ")"
		}
		fmt.Fprintf(w, "run %d: hold %s, %d of %d streams opened%s\n", i+1, r.verdict, r.opened, r.requested, note)
	}
	return nil
}

// farmResult is what scripts/node-farm/farm.js prints.
type farmResult struct {
	Tool          string  `json:"tool"`
	Version       string  `json:"version"`
	Streams       int     `json:"streams"`
	RampMs        float64 `json:"ramp_ms"`
	HoldMs        float64 `json:"hold_ms"`
	Opened        int     `json:"opened"`
	Errors        int     `json:"errors"`
	Events        int64   `json:"events"`
	LagP99        float64 `json:"lag_p99_ms"`
	WindowMin     int     `json:"window_events_min"`
	WindowMedian  int     `json:"window_events_median"`
	RSSPerStreamK float64 `json:"rss_per_stream_kb"`
	Timeline      struct {
		StartUnixMs float64 `json:"start_unix_ms"`
		StepMs      float64 `json:"step_ms"`
		Points      []struct {
			Events float64 `json:"events"`
		} `json:"points"`
	} `json:"timeline"`
}

// peerRun is one tool's figures in one run.
type peerRun struct {
	rssKB, cpuUs, p99, events float64
	opened, requested         int
	note                      string
}

func readFarm(jsonPath, cpuPath string) (peerRun, string, error) {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return peerRun{}, "", err
	}
	var f farmResult
	if err := json.Unmarshal(b, &f); err != nil {
		return peerRun{}, "", fmt.Errorf("%s: %w", jsonPath, err)
	}
	wd := window{start: time.UnixMicro(int64(f.Timeline.StartUnixMs * 1000)), stepMs: f.Timeline.StepMs,
		ramp: time.Duration(f.RampMs * float64(time.Millisecond)), hold: time.Duration(f.HoldMs * float64(time.Millisecond))}
	for _, p := range f.Timeline.Points {
		wd.points = append(wd.points, p.Events)
	}
	s, err := readCPU(cpuPath)
	if err != nil {
		return peerRun{}, "", err
	}
	us, ev, err := cpuPerEvent(wd, s)
	if err != nil {
		return peerRun{}, "", fmt.Errorf("%s: %w", cpuPath, err)
	}
	r := peerRun{rssKB: f.RSSPerStreamK, cpuUs: us, p99: f.LagP99, events: ev, opened: f.Opened, requested: f.Streams}
	if f.Errors > 0 || f.Opened < f.Streams || f.WindowMin+2 < f.WindowMedian {
		r.note = fmt.Sprintf("%d errors, %d of %d opened, events per stream in the window min %d median %d", f.Errors, f.Opened, f.Streams, f.WindowMin, f.WindowMedian)
	}
	return r, f.Tool + " " + f.Version, nil
}

func readSSE(jsonPath, cpuPath string) (peerRun, error) {
	h, err := readHold(jsonPath)
	if err != nil {
		return peerRun{}, err
	}
	s, err := readCPU(cpuPath)
	if err != nil {
		return peerRun{}, err
	}
	us, ev, err := cpuPerEvent(h.window, s)
	if err != nil {
		return peerRun{}, fmt.Errorf("%s: %w", cpuPath, err)
	}
	r := peerRun{rssKB: h.runnerKB, cpuUs: us, p99: h.p99, events: ev, opened: int(h.opened), requested: h.requested}
	if h.verdict != "pass" {
		r.note = "hold " + h.verdict + ": " + h.failed
	}
	return r, nil
}

func peer(w io.Writer, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "peer-n*-r*-sse.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no peer-n*-r*-sse.json results in %s", dir)
	}
	byN := map[int][]string{}
	reN := regexp.MustCompile(`peer-n(\d+)-r(\d+)-sse\.json$`)
	for _, f := range files {
		m := reN.FindStringSubmatch(f)
		n, _ := strconv.Atoi(m[1])
		byN[n] = append(byN[n], strings.TrimSuffix(f, "-sse.json"))
	}
	var ns []int
	for n := range byN {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	fmt.Fprintln(w, "| streams | tool | marginal RSS per stream | CPU per received event | delivery p99 | runs |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	var notes, ratios []string
	for _, n := range ns {
		bases := byN[n]
		sort.Strings(bases)
		var sse, node []peerRun
		nodeName := "eventsource"
		for _, b := range bases {
			s, err := readSSE(b+"-sse.json", b+"-sse.cpu")
			if err != nil {
				return err
			}
			f, name, err := readFarm(b+"-node.json", b+"-node.cpu")
			if err != nil {
				return err
			}
			nodeName = name
			sse, node = append(sse, s), append(node, f)
			for _, p := range []struct {
				tool string
				r    peerRun
			}{{"sseharness", s}, {nodeName, f}} {
				if p.r.note != "" {
					notes = append(notes, fmt.Sprintf("%s, %d streams, %s: %s", p.tool, n, filepath.Base(b), p.r.note))
				}
			}
		}
		for _, t := range []struct {
			name string
			runs []peerRun
		}{{"sseharness", sse}, {nodeName + " (Node farm)", node}} {
			rss, cpu, p99 := pick(t.runs, func(r peerRun) float64 { return r.rssKB }), pick(t.runs, func(r peerRun) float64 { return r.cpuUs }), pick(t.runs, func(r peerRun) float64 { return r.p99 })
			fmt.Fprintf(w, "| %d | %s | %.1f KB | %.1f us | %.1f ms | %d (CPU per event: %s) |\n", n, t.name, median(rss), median(cpu), median(p99), len(t.runs), list(cpu, "%.1f"))
		}
		cpuRatio, rssRatio := make([]float64, len(sse)), make([]float64, len(sse))
		for i := range sse {
			cpuRatio[i] = sse[i].cpuUs / node[i].cpuUs
			rssRatio[i] = sse[i].rssKB / node[i].rssKB
		}
		ratios = append(ratios, fmt.Sprintf("%d streams: sseharness / %s CPU per event %.2fx (runs %s), RSS per stream %.2fx (runs %s)",
			n, nodeName, median(cpuRatio), list(cpuRatio, "%.2f"), median(rssRatio), list(rssRatio, "%.2f")))
	}
	fmt.Fprintln(w)
	for _, r := range ratios {
		fmt.Fprintln(w, r)
	}
	for _, n := range notes {
		fmt.Fprintln(w, "warning:", n)
	}
	return nil
}

func pick(runs []peerRun, f func(peerRun) float64) []float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	return v
}

// readRSS reads a scale run's .rss file: "NAME KB" lines (runner_before_kb, runner_hold_kb,
// server_before_kb, server_hold_kb).
func readRSS(path string) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kb := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		kb[f[0]] = v
	}
	for _, k := range []string{"runner_before_kb", "runner_hold_kb", "server_before_kb", "server_hold_kb"} {
		if _, ok := kb[k]; !ok {
			return nil, fmt.Errorf("%s: no %s line", path, k)
		}
	}
	return kb, nil
}

// scale prints the multi-process table: every figure per run and the medians.
func scale(w io.Writer, dir string) error {
	files, err := runFiles(dir, "scale")
	if err != nil {
		return err
	}
	type scaleRun struct {
		h                      holdRun
		runnerKB, serverKB, us float64
	}
	var runs []scaleRun
	for _, f := range files {
		base := strings.TrimSuffix(f, ".json")
		h, err := readHold(f)
		if err != nil {
			return err
		}
		if h.opened == 0 {
			return fmt.Errorf("%s: no stream opened", f)
		}
		kb, err := readRSS(base + ".rss")
		if err != nil {
			return err
		}
		s, err := readCPU(base + ".cpu")
		if err != nil {
			return err
		}
		us, _, err := cpuPerEvent(h.window, s)
		if err != nil {
			return fmt.Errorf("%s.cpu: %w", base, err)
		}
		n := float64(h.opened)
		runs = append(runs, scaleRun{h: h, us: us,
			runnerKB: (kb["runner_hold_kb"] - kb["runner_before_kb"]) / n,
			serverKB: (kb["server_hold_kb"] - kb["server_before_kb"]) / n})
	}
	medianTable(w, runs, []figure[scaleRun]{
		{fmt.Sprintf("streams open (of %d)", runs[0].h.requested), "", "%.0f", func(r scaleRun) float64 { return float64(r.h.opened) }},
		{"time to open them (first to last open)", " s", "%.1f", func(r scaleRun) float64 { return r.h.openS }},
		{"runner RSS per stream (run process and its workers)", " KB", "%.1f", func(r scaleRun) float64 { return r.runnerKB }},
		{"server RSS per stream (every serve process)", " KB", "%.1f", func(r scaleRun) float64 { return r.serverKB }},
		{"runner CPU per received event (hold window)", " us", "%.1f", func(r scaleRun) float64 { return r.us }},
		{"p99 delivery latency", " ms", "%.2f", func(r scaleRun) float64 { return r.h.p99 }},
		{"p99 time to first event", " ms", "%.1f", func(r scaleRun) float64 { return r.h.ttfeP99 }},
		{"runner's own delay (largest worker's tick lateness p99)", " ms", "%.1f", func(r scaleRun) float64 { return r.h.ownDelayMs }},
		{"runner's peak CPU use (largest worker's, of its cores)", "", "%.2f", func(r scaleRun) float64 { return r.h.peakCPU }},
	})
	fmt.Fprintln(w)
	for i, r := range runs {
		note := ""
		if r.h.failed != "" {
			note = " (not passing: " + r.h.failed + ")"
		}
		if r.h.healthy == "" {
			r.h.healthy = "absent"
		}
		fmt.Fprintf(w, "run %d: hold %s, %d of %d streams opened, %d workers (%d saturated), runner-healthy %s%s\n",
			i+1, r.h.verdict, r.h.opened, r.h.requested, r.h.workers, r.h.saturated, r.h.healthy, note)
	}
	return nil
}
