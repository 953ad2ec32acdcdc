package scenarios

import (
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
	ck := capacityChecks{
		sustainedSteps: &CheckSpec{Name: "sustained-steps", Default: "1", Means: "load steps held within the SLO with no error and events on every stream, at least"},
	}
	return &Scenario{
		Name:   "capacity",
		Proves: "how many concurrent streams the target sustains within the latency SLO, and its memory and goroutines per stream",
		Checks: ck.all(),
		run:    func(ctx context.Context, h *Harness) error { return runCapacity(ctx, h, ck) },
	}
}

// capacityChecks are Capacity's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type capacityChecks struct{ sustainedSteps *CheckSpec }

func (c capacityChecks) all() []*CheckSpec { return []*CheckSpec{c.sustainedSteps} }

// defaultCapacitySteps are capacity's stream counts when none are given.
func defaultCapacitySteps() []int { return []int{100, 200, 400, 800} }

const defaultSLOP99 = 250 * time.Millisecond

func runCapacity(ctx context.Context, h *Harness, ck capacityChecks) error {
	steps := h.opts.CapacityConfig.Steps
	if len(steps) == 0 {
		steps = defaultCapacitySteps()
	}
	if h.opts.Streams > 0 {
		steps = []int{h.opts.Streams}
	}
	slo := h.opts.CapacityConfig.SLOP99
	if slo == 0 {
		slo = defaultSLOP99
	}
	hold := 4 * time.Second
	if h.opts.Hold > 0 {
		hold = h.opts.Hold
	}
	h.request(steps[len(steps)-1], steps[len(steps)-1], hold*time.Duration(len(steps)),
		fmt.Sprintf("steps %v, each held %s; SLO p99 %s", steps, hold, slo))

	// With a publish endpoint the harness publishes marks for the whole run and the
	// steps' latency is publish-to-delivery (the marks), else the events' send time.
	publishing, err := h.preparePublish(time.Duration(len(steps)) * (hold + 10*time.Second + time.Duration(steps[len(steps)-1])*5*time.Millisecond))
	if err != nil {
		return err
	}
	latencyMetric, latencyNeeds := "latency_p99", []report.Evidence{report.EvidenceEvent}
	if publishing {
		latencyMetric, latencyNeeds = "mark_latency_p99", []report.Evidence{report.EvidenceMarks}
		h.startPublish(ctx)
	}

	// Each step is a window over its hold (delivery latency, errors) and a window from
	// the start to its end (did every stream so far get events): the rules read both.
	runnerBase, _ := selfRSS()
	var srcs []*runner.EventSource
	var rows []string
	var stepRules []report.Rule
	sustained := 0 // the largest step within the SLO, without errors, every stream served
	sloMS := float64(slo) / float64(time.Millisecond)
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
		stepRules = append(stepRules,
			report.Rule{Metric: latencyMetric, Group: step.Name(), Op: "<=", Limit: sloMS, Needs: latencyNeeds},
			report.Rule{Metric: "errors", Group: step.Name(), Op: "<=", Limit: 0},
			report.Rule{Metric: "silent_streams", Group: upto.Name(), Op: "<=", Limit: 0})
		row := fmt.Sprintf("%d streams (%s)", total, step.Name())
		if sv, ok := h.Scrape(ctx); ok {
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
		rows = append(rows, row)
		if p99, ok := windowP99(step, publishing); !ok || p99 > slo || len(notOpen) > 0 || windowErrors(step) > 0 {
			break // the next step would only be worse
		}
		sustained = total
	}
	h.Finish()
	h.Note("%s", strings.Join(rows, "; "))
	if sustained > 0 {
		h.setHeadline("sustained %d streams within p99 %s", sustained, ms(slo))
	} else {
		h.setHeadline("no step within p99 %s", ms(slo))
	}
	if note := h.latencyNote(); publishing && note != "" {
		h.Note("%s", note)
	}

	// Sustaining k steps: each of the first k windows within the SLO, without errors,
	// every stream with events. Judged from the windows' aggregates, so merged shards
	// are judged exactly.
	need := int(math.Ceil(h.num(ck.sustainedSteps)))
	if need <= 0 {
		// No step required: what is left to judge is that the load ran at all.
		h.Judge(ck.sustainedSteps, report.Rule{Metric: "streams", Op: ">=", Limit: 1, Needs: []report.Evidence{report.EvidenceEvent}})
		return nil
	}
	if need*3 > len(stepRules) {
		if need > len(steps) {
			h.offenders(ck.sustainedSteps, need-len(steps), need, fmt.Sprintf("%d steps configured, %d needed", len(steps), need))
			return nil
		}
		// A step before the needed ones failed, so the rules of the steps run decide.
		need = len(stepRules) / 3
	}
	rules := stepRules[:need*3]
	first := rules[0]
	first.And = rules[1:]
	h.Judge(ck.sustainedSteps, first)
	return nil
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
