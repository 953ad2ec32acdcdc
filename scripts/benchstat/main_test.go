package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func TestWindowEventsProratesEdgeSteps(t *testing.T) {
	w := window{start: t0, stepMs: 1000, points: []float64{10, 20, 30, 40}}
	got := w.events(t0.Add(1500*time.Millisecond), t0.Add(3250*time.Millisecond))
	if want := 0.5*20 + 30 + 0.25*40; math.Abs(got-want) > 1e-9 {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if got := w.events(t0.Add(10*time.Second), t0.Add(11*time.Second)); got != 0 {
		t.Fatalf("events after the timeline = %v, want 0", got)
	}
}

// cpuFile is a sample file: clk_tck 100, one sample a second from t0 to t0+last, the
// process using 0.1 s of CPU per second.
func cpuFile(last time.Duration) string {
	var b strings.Builder
	b.WriteString("# clk_tck 100\n")
	for d := time.Duration(0); d <= last; d += 500 * time.Millisecond {
		fmt.Fprintf(&b, "%d %d\n", t0.Add(d).UnixMicro(), int(d/(100*time.Millisecond)))
	}
	return b.String()
}

func TestCPUPerEventOverTheCountingWindow(t *testing.T) {
	// 100 events a second; ramp 1 s so the window is t0+2s .. t0+7s.
	w := window{start: t0, stepMs: 1000, points: []float64{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}, ramp: time.Second, hold: 5 * time.Second}
	for _, tc := range []struct {
		last       time.Duration
		wantEvents float64
		wantErr    string
	}{
		{10 * time.Second, 500, ""},
		{6500 * time.Millisecond, 450, ""}, // the client exited just before the window's end
		{5 * time.Second, 0, "cover less than 80%"},
	} {
		s, err := parseCPU(strings.NewReader(cpuFile(tc.last)), "test")
		if err != nil {
			t.Fatal(err)
		}
		us, ev, err := cpuPerEvent(w, s)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("samples to %v: err %v, want %q", tc.last, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("samples to %v: %v", tc.last, err)
		}
		// 0.1 s CPU per 100 events = 1000 us per event, whatever the window's length.
		if math.Abs(ev-tc.wantEvents) > 1e-6 || math.Abs(us-1000) > 1e-6 {
			t.Fatalf("samples to %v: %v us/event over %v events, want 1000 over %v", tc.last, us, ev, tc.wantEvents)
		}
	}
}

func TestParseCPUNeedsTheClockRate(t *testing.T) {
	if _, err := parseCPU(strings.NewReader("1796118172622377 4\n"), "x.cpu"); err == nil || !strings.Contains(err.Error(), "clk_tck") {
		t.Fatalf("err %v, want one naming clk_tck", err)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median of 3 = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Fatalf("median of 4 = %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Fatal("median of none is not NaN")
	}
}

// holdResult is a minimal sseharness result of `run hold` with the given figures.
func holdResult(runnerKB, gcKB, serverKB, p99 float64, verdict string) string {
	return fmt.Sprintf(`{"config":{"ramp":"1s"},"scenarios":[{"name":"hold","verdict":%q,
"description":"N streams held open (runner %.1f KB RSS per stream (%.1f KB after a GC), server %.1f KB RSS per stream, 3.00 server goroutines per stream)",
"checks":[{"name":"errors","verdict":"pass"},{"name":"every-event","verdict":%q}],
"load":{"requested":{"streams":100,"hold_ms":5000}},
"metrics":{"streams":100,"events":700,"first_open":"2026-12-01T09:00:00Z","last_open":"2026-12-01T09:00:01Z",
"delivery_latency":{"count":700,"p99_ms":%g,"max_ms":9},"time_to_first_event":{"count":100,"p99_ms":2}},
"timeline":{"start":"2026-12-01T09:00:00Z","step_ms":1000,"points":[{"events":100},{"events":100},{"events":100},{"events":100},{"events":100},{"events":100},{"events":100},{"events":100}]}}]}`,
		verdict, runnerKB, gcKB, serverKB, verdict, p99)
}

func TestCapacityTablePrintsMediansAndEveryRun(t *testing.T) {
	dir := t.TempDir()
	for i, r := range []struct{ runner, server, p99 float64 }{{14.9, 47.1, 7.8}, {14.8, 49.5, 8.4}, {14.7, 52.6, 11.1}} {
		verdict := "pass"
		if i == 2 {
			verdict = "fail"
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("cap-r%d.json", i+1)), []byte(holdResult(r.runner, 13.2, r.server, r.p99, verdict)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	if err := capacity(&b, dir); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| figure | median of 3 | the 3 runs |",
		"| runner memory per stream (RSS growth / streams, during the hold) | 14.8 KB | 14.9, 14.8, 14.7 |",
		"| server memory per stream, same run | 49.5 KB | 47.1, 49.5, 52.6 |",
		"| runner / server memory per stream | 0.30 | 0.32, 0.30, 0.28 |",
		"| p99 delivery latency (send to receipt) | 8.4 ms | 7.8, 8.4, 11.1 |",
		"| time to open all 100 streams | 1.00 s |",
		"run 3: hold fail, 100 of 100 streams opened (not passing: every-event fail)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "runner CPU") {
		t.Errorf("a CPU row without .cpu files:\n%s", out)
	}
	// With the CPU sampled beside each run: the runner's CPU per event in the window.
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("cap-r%d.cpu", i+1)), []byte(cpuFile(10*time.Second)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.Reset()
	if err := capacity(&b, dir); err != nil {
		t.Fatal(err)
	}
	if want := "| runner CPU per received event (hold window) | 1000.0 us | 1000.0, 1000.0, 1000.0 |"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
}

func TestPeerTableAndRatio(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// sseharness: 0.1 s CPU per second over 100 events a second = 1000 us per event.
	write("peer-n100-r1-sse.json", holdResult(15, 13, 50, 0.3, "pass"))
	write("peer-n100-r1-sse.cpu", cpuFile(10*time.Second))
	// The farm: twice the CPU for the same events, on a timeline of its own.
	farmStart := t0.Add(20 * time.Second)
	write("peer-n100-r1-node.json", fmt.Sprintf(`{"tool":"eventsource","version":"5.1.5","streams":100,"ramp_ms":1000,"hold_ms":5000,
"opened":100,"errors":0,"events":800,"lag_p99_ms":1.5,"window_events_min":5,"window_events_median":5,"rss_per_stream_kb":30,
"timeline":{"start_unix_ms":%d,"step_ms":1000,"points":[{"events":100},{"events":100},{"events":100},{"events":100},{"events":100},{"events":100},{"events":100},{"events":100}]}}`,
		farmStart.UnixMilli()))
	var cpu strings.Builder
	cpu.WriteString("# clk_tck 100\n")
	for s := 0; s <= 9; s++ {
		fmt.Fprintf(&cpu, "%d %d\n", farmStart.Add(time.Duration(s)*time.Second).UnixMicro(), 20*s)
	}
	write("peer-n100-r1-node.cpu", cpu.String())
	var b strings.Builder
	if err := peer(&b, dir); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| 100 | sseharness | 15.0 KB | 1000.0 us | 0.3 ms | 1 (CPU per event: 1000.0) |",
		"| 100 | eventsource 5.1.5 (Node farm) | 30.0 KB | 2000.0 us | 1.5 ms | 1 (CPU per event: 2000.0) |",
		"100 streams: sseharness / eventsource 5.1.5 CPU per event 0.50x (runs 0.50), RSS per stream 0.50x (runs 0.50)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("peer table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "warning") {
		t.Errorf("warning for clean runs:\n%s", out)
	}
}

func TestScaleTableFromTheProcessTrees(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	workers := `,"runner":[{"worker":0,"own_delay_ms":1.5,"saturated":false,"peak_cpu_use":0.2},` +
		`{"worker":1,"own_delay_ms":2.5,"saturated":%t,"peak_cpu_use":%g}]}`
	for i, r := range []struct {
		runnerHold, serverHold float64
		saturated              bool
		peak                   float64
	}{{600, 4000, false, 0.3}, {700, 4200, true, 0.95}} {
		res := strings.TrimSuffix(holdResult(0, 0, 0, 0.5+float64(i), "pass"), "}") + fmt.Sprintf(workers, r.saturated, r.peak)
		write(fmt.Sprintf("scale-r%d.json", i+1), res)
		// 0.1 s of CPU a second over 100 events a second: 1000 us per event.
		write(fmt.Sprintf("scale-r%d.cpu", i+1), cpuFile(10*time.Second))
		write(fmt.Sprintf("scale-r%d.rss", i+1), fmt.Sprintf("server_before_kb 1000\nrunner_before_kb 100\nrunner_hold_kb %g\nserver_hold_kb %g\n", r.runnerHold, r.serverHold))
	}
	var b strings.Builder
	if err := scale(&b, dir); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| streams open (of 100) | 100 | 100, 100 |",
		"| time to open them (first to last open) | 1.0 s | 1.0, 1.0 |",
		"| runner RSS per stream (run process and its workers) | 5.5 KB | 5.0, 6.0 |",
		"| server RSS per stream (every serve process) | 31.0 KB | 30.0, 32.0 |",
		"| runner CPU per received event (hold window) | 1000.0 us | 1000.0, 1000.0 |",
		"| p99 delivery latency | 1.00 ms | 0.50, 1.50 |",
		"| runner's own delay (largest worker's tick lateness p99) | 2.5 ms | 2.5, 2.5 |",
		"| runner's peak CPU use (largest worker's, of its cores) | 0.62 | 0.30, 0.95 |",
		"run 2: hold pass, 100 of 100 streams opened, 2 workers (1 saturated), runner-healthy absent",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scale table lacks %q:\n%s", want, out)
		}
	}
	write("scale-r2.rss", "server_before_kb 1000\n")
	if err := scale(&b, dir); err == nil || !strings.Contains(err.Error(), "no runner_before_kb") {
		t.Errorf("a .rss file without the runner's lines: err %v", err)
	}
}
