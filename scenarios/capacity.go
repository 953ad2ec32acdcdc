package scenarios

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// capacity: ramp streams up in steps until the p99 delivery latency passes the SLO or
// errors appear; the answer is the largest sustained stream count and what each stream
// costs the server.
func capacity() *Scenario {
	return &Scenario{
		Name:   "capacity",
		Proves: "how many concurrent streams the target sustains within the latency SLO, and its memory and goroutines per stream",
		Checks: []CheckSpec{
			{Name: "sustained-steps", Default: "1", Means: "load steps held within the SLO with no error, at least"},
		},
		run: runCapacity,
	}
}

// defaultCapacitySteps are capacity's stream counts when none are given.
func defaultCapacitySteps() []int { return []int{100, 200, 400, 800} }

const defaultSLOP99 = 250 * time.Millisecond

type stepResult struct {
	streams              int
	p99                  time.Duration
	timed, errs, notOpen int
	serverRSS, serverGR  *float64
	runnerRSS            float64
}

func runCapacity(ctx context.Context, h *Harness) error {
	steps := h.opts.CapacitySteps
	if len(steps) == 0 {
		steps = defaultCapacitySteps()
	}
	if h.opts.Streams > 0 {
		steps = []int{h.opts.Streams}
	}
	slo := h.opts.SLOP99
	if slo == 0 {
		slo = defaultSLOP99
	}
	hold := 4 * time.Second
	if h.opts.Hold > 0 {
		hold = h.opts.Hold
	}
	h.Request(steps[len(steps)-1], steps[len(steps)-1], hold*time.Duration(len(steps)),
		fmt.Sprintf("steps %v, each held %s; SLO p99 %s", steps, hold, slo))

	var mu sync.Mutex
	var window []time.Duration
	collecting := false
	errs := 0
	h.Observe(func(r runner.Record) {
		mu.Lock()
		defer mu.Unlock()
		if !collecting {
			return
		}
		switch r.Kind {
		case runner.RecordEvent:
			if r.Latency >= 0 {
				window = append(window, r.Latency)
			}
		case runner.RecordError:
			errs++
		}
	})
	runnerBase, _ := selfRSS()
	var srcs []*runner.EventSource
	var results []stepResult
	sustained := 0
	for _, total := range steps {
		target := h.share(total)
		for i := len(srcs); i < target; i++ {
			es, err := h.OpenSession(ctx, i, h.Session("", i), nil)
			if err != nil {
				return err
			}
			srcs = append(srcs, es)
		}
		notOpen := WaitAll(ctx, srcs, 10*time.Second+time.Duration(target)*5*time.Millisecond, func(ctx context.Context, s *runner.EventSource) error { return s.WaitEvents(ctx, 1) })
		mu.Lock()
		window, errs, collecting = window[:0], 0, true
		mu.Unlock()
		if err := Sleep(ctx, hold); err != nil {
			return err
		}
		mu.Lock()
		collecting = false
		p99, ok := percentile(window, 0.99)
		res := stepResult{streams: total, p99: p99, timed: len(window), errs: errs, notOpen: len(notOpen)}
		mu.Unlock()
		if s, ok := h.Scrape(ctx); ok {
			if v, ok := s.Value(runner.MetricRSS); ok {
				res.serverRSS = &v
			}
			if v, ok := s.Value(runner.MetricGoroutines); ok {
				res.serverGR = &v
			}
		}
		if rss, ok := selfRSS(); ok {
			res.runnerRSS = rss - runnerBase
		}
		results = append(results, res)
		if len(notOpen) == len(srcs) && len(results) == 1 {
			if err := h.unreachable(srcs); err != nil {
				return err
			}
		}
		if !ok || p99 > slo || res.errs > 0 || res.notOpen > 0 {
			break
		}
		sustained++
	}
	h.Finish()

	var rows []string
	for _, r := range results {
		row := fmt.Sprintf("%d streams: p99 %s over %d events, %d errors, %d without events", r.streams, ms(r.p99), r.timed, r.errs, r.notOpen)
		if r.serverRSS != nil && r.serverGR != nil {
			if b, ok := h.baseline.Value(runner.MetricRSS); ok {
				row += fmt.Sprintf(", server %.1f KB/stream", (*r.serverRSS-b)/float64(r.streams)/1024)
			}
			if b, ok := h.baseline.Value(runner.MetricGoroutines); ok {
				row += fmt.Sprintf(" %.2f goroutines/stream", (*r.serverGR-b)/float64(r.streams))
			}
		}
		if r.runnerRSS > 0 {
			row += fmt.Sprintf(", runner %.1f KB/stream", r.runnerRSS/float64(r.streams)/1024)
		}
		rows = append(rows, row)
	}
	largest := 0
	if sustained > 0 {
		largest = results[sustained-1].streams
	}
	h.Check("sustained-steps", float64(sustained) >= h.Num("sustained-steps"),
		fmt.Sprintf("largest sustained: %d streams (p99 <= %s, no errors); %d of %d steps held", largest, slo, sustained, len(steps)),
		strings.Join(rows, "; "))
	return nil
}

// selfRSS is this process's resident set size in bytes (Linux).
func selfRSS() (float64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return 0, false
	}
	return pages * float64(os.Getpagesize()), true
}
