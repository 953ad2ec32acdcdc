package scenarios

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sseharness/sseharness/probe"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// capacity: ramp streams up in steps until the p99 delivery latency passes the SLO or
// errors appear; the answer is the largest sustained stream count and what each stream
// costs the server.
func capacity() *Scenario {
	return &Scenario{
		Name:   "capacity",
		Proves: "how many concurrent streams the target sustains within the latency SLO, and its memory and goroutines per stream",
		Checks: []*CheckSpec{{Name: "sustained-steps", Default: "1", Means: "load steps held within the SLO with no error and events on every stream, at least",
			Steps: true}},
		hook: stepUp,
	}
}

// defaultCapacitySteps are capacity's stream counts when none are given.
func defaultCapacitySteps() []int { return []int{100, 200, 400, 800} }

const defaultSLOP99 = 250 * time.Millisecond

// capacitySteps are the run's stream counts of capacity (--streams: that one step),
// its SLO and the hold of each step.
func (h *Harness) capacitySteps() (steps []int, slo, hold time.Duration) {
	steps = h.opts.CapacityConfig.Steps
	if len(steps) == 0 {
		steps = defaultCapacitySteps()
	}
	if h.opts.Streams > 0 {
		steps = []int{h.opts.Streams}
	}
	slo = cmp.Or(h.opts.CapacityConfig.SLOP99, defaultSLOP99)
	hold = cmp.Or(h.opts.Hold, 4*time.Second)
	return steps, slo, hold
}

// stepUp is capacity's hook, the step search: each step opens streams up to its count
// and holds them, in a window over its hold ("step-K": delivery latency, errors) and a
// window from its start to its end ("up-to-step-K": did every stream so far get
// events). It stops at the first step over the SLO, with errors or with streams that
// got no event, since the next one would only be worse; the Steps check judges the
// windows.
func stepUp(ctx context.Context, h *Harness, _ Opened) error {
	steps, slo, hold := h.capacitySteps()
	h.request(steps[len(steps)-1], steps[len(steps)-1], hold*time.Duration(len(steps)),
		fmt.Sprintf("steps %v, each held %s; SLO p99 %s", steps, hold, slo))
	// With a publish endpoint the harness publishes marks for the whole run and the
	// steps' latency is publish-to-delivery (the marks), else the events' send time.
	publishing, err := h.preparePublish(time.Duration(len(steps)) * (hold + 10*time.Second + time.Duration(steps[len(steps)-1])*5*time.Millisecond))
	if err != nil {
		return err
	}
	if publishing {
		h.startPublish(ctx)
	}
	runnerBase, _ := selfRSS()
	var srcs []*runner.EventSource
	var rows []string
	sustained := 0 // the largest step within the SLO, without errors, every stream served
	for k, total := range steps {
		target := h.share(total)
		upto := h.Window(fmt.Sprintf("up-to-step-%d", k+1), target)
		upto.Open()
		for i := len(srcs); i < target; i++ {
			es, err := h.openSession(ctx, i, h.Session("", i), nil)
			if err != nil {
				return err
			}
			srcs = append(srcs, es)
		}
		notOpen := WaitAll(ctx, srcs, 10*time.Second+time.Duration(target)*5*time.Millisecond, func(ctx context.Context, s *runner.EventSource) error { return s.WaitEvents(ctx, 1) })
		if len(notOpen) == len(srcs) && k == 0 {
			if err := h.unreachable(srcs); err != nil {
				return err
			}
		}
		step := h.Window(fmt.Sprintf("step-%d", k+1), target)
		step.Open()
		if err := Sleep(ctx, hold); err != nil {
			return err
		}
		step.Close()
		upto.Close()
		rows = append(rows, h.stepCosts(total, target, step.Name(), runnerBase))
		if p99, ok := windowP99(step, h.markPrefix != ""); !ok || p99 > slo || len(notOpen) > 0 || windowErrors(step) > 0 {
			break
		}
		sustained = total
	}
	h.Note("%s", strings.Join(rows, "; "))
	if sustained > 0 {
		h.setHeadline("sustained %d streams within p99 %s", sustained, ms(slo))
	} else {
		h.setHeadline("no step within p99 %s", ms(slo))
	}
	return nil
}

// stepCosts is a step's memory and goroutines per stream, on the server (its scraped
// figures against the baseline) and in the runner, in words.
func (h *Harness) stepCosts(total, target int, name string, runnerBase float64) string {
	row := fmt.Sprintf("%d streams (%s)", total, name)
	if sv, ok := h.Scrape(context.Background()); ok {
		if v, ok := sv.Value(probe.MetricRSS); ok {
			if b, ok := h.baseline.Value(probe.MetricRSS); ok {
				row += fmt.Sprintf(": server %.1f KB/stream", (v-b)/float64(total)/1024)
			}
		}
		if v, ok := sv.Value(probe.MetricGoroutines); ok {
			if b, ok := h.baseline.Value(probe.MetricGoroutines); ok {
				row += fmt.Sprintf(" %.2f goroutines/stream", (v-b)/float64(total))
			}
		}
	}
	if rss, ok := selfRSS(); ok && rss > runnerBase {
		row += fmt.Sprintf(", runner %.1f KB/stream", (rss-runnerBase)/float64(target)/1024)
	}
	return row
}

// judgeSteps judges a Steps check: sustaining k steps is each of the first k step
// windows within the SLO, without errors, and every stream with events up to its end,
// judged from the windows' aggregates, so merged shards are judged exactly.
func (h *Harness) judgeSteps(c *CheckSpec) {
	steps, slo, _ := h.capacitySteps()
	need := int(math.Ceil(h.num(c)))
	if need <= 0 {
		// No step required: what is left to judge is that the load ran at all.
		h.Judge(c, report.Rule{Metric: "streams", Op: ">=", Limit: 1, Needs: []report.Evidence{report.EvidenceEvent}})
		return
	}
	if need > len(steps) {
		h.offenders(c, need-len(steps), need, fmt.Sprintf("%d steps configured, %d needed", len(steps), need))
		return
	}
	ran := 0
	h.groupMu.Lock()
	for _, g := range h.groups {
		if g.window && strings.HasPrefix(g.name, "step-") {
			ran++
		}
	}
	h.groupMu.Unlock()
	// A step before the needed ones failed: the rules of the steps that ran decide.
	need = max(1, min(need, ran))
	sloMS := float64(slo) / float64(time.Millisecond)
	var rules []report.Rule
	for k := 1; k <= need; k++ {
		step, upto := fmt.Sprintf("step-%d", k), fmt.Sprintf("up-to-step-%d", k)
		rules = append(rules,
			h.resolve(report.Rule{Metric: DeliveryP99, Group: step, Op: "<=", Limit: sloMS}),
			report.Rule{Metric: "errors", Group: step, Op: "<=", Limit: 0},
			report.Rule{Metric: "silent_streams", Group: upto, Op: "<=", Limit: 0})
	}
	first := rules[0]
	first.And = rules[1:]
	h.Judge(c, first)
}

// windowP99 is the p99 delivery latency of a window so far, from its aggregate: of
// the harness's marks when it publishes (marks), else of the events' send time.
func windowP99(g *Group, marks bool) (time.Duration, bool) {
	m := g.agg.Metrics()
	lat := m.Latency
	if marks {
		lat = m.MarkLatency
	}
	if lat.Count == 0 {
		return 0, false
	}
	return time.Duration(lat.P99MS * float64(time.Millisecond)), true
}

func windowErrors(g *Group) int64 { return g.agg.Metrics().ErrorTotal() }

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
