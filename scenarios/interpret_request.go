package scenarios

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sseharness/sseharness/report"
)

// The interpreter's part for request phases (RequestLoad) and RateSteps checks: what
// runDeclared does in place of opening EventSources when a scenario's load is request
// streams.

// runRequestPhase runs the request phase p, the scenario's only phase
// (validateRequests): once at its rate, or as a sweep through the rates with a group
// per step, stopping after the first step whose goodput is below the target.
func (h *Harness) runRequestPhase(ctx context.Context, p Phase) error {
	o := h.opts.Requests
	slo := h.requestSLO(p.Requests)
	if err := h.agg.SetRequestSLO(slo); err != nil {
		return err
	}
	if !p.Requests.Sweep {
		rate := float64(defaultRequestRate)
		if len(o.Rates) > 0 {
			rate = o.Rates[0]
		}
		cfg := o.config(h.opts.Target, rate, p.Requests.Window)
		h.request(0, 0, cfg.Duration, fmt.Sprintf("requests %s %s at %g/s (%s arrivals), max %d in flight, %s",
			cfg.Method, cfg.URL, rate, cfg.Arrival, cfg.Resolved().MaxConcurrency, bound(cfg)))
		_, err := h.runRequests(ctx, cfg)
		return err
	}
	rates, target := o.sweepRates(), o.goodputTarget()
	first := o.config(h.opts.Target, rates[0], p.Requests.Window)
	h.request(0, 0, first.Duration*time.Duration(len(rates)), fmt.Sprintf("requests %s %s at rates %v/s, each %s; goodput target %g%% within SLO %s",
		first.Method, first.URL, rates, bound(first), 100*target, slo))
	var steps []*Group
	for k, rate := range rates {
		step := h.newGroup(RateStepGroup(rate), 0, false)
		if err := step.agg.SetRequestSLO(slo); err != nil {
			return err
		}
		cfg := o.config(h.opts.Target, rate, p.Requests.Window)
		cfg.Seed = o.Seed + uint64(k)
		if _, err := h.runRequests(ctx, cfg, step); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		steps = append(steps, step)
		if g, ok := stepGoodput(step); !ok || g < target {
			break // the next rate would only be worse
		}
	}
	h.noteKnee(rates, steps, target)
	return nil
}

// requestSLO is the goodput objective of a request phase: its SLO checks' thresholds
// when it names them, else RequestOptions.SLO with the defaults for the rest.
func (h *Harness) requestSLO(r *RequestLoad) report.RequestSLO {
	if c := r.SLO; c != nil {
		return report.RequestSLO{TTFT: h.dur(c.TTFT), ITL: h.dur(c.ITL), E2E: h.dur(c.E2E)}
	}
	return h.opts.Requests.slo(h.opts.Embedded)
}

// stepGoodput is a sweep step's goodput, from its group's aggregate; ok is false
// without requests.
func stepGoodput(g *Group) (float64, bool) {
	return g.agg.Metrics().Requests.Goodput()
}

// noteKnee states the sweep's answer in the notes and the headline: the highest rate
// up to which every step's goodput, read from the steps' aggregates, reached target.
func (h *Harness) noteKnee(rates []float64, steps []*Group, target float64) {
	rows := make([]string, len(steps)) // one per step: bounded by the rates
	knee, held := 0.0, true
	for k, step := range steps {
		g, ok := stepGoodput(step)
		rows[k] = fmt.Sprintf("%g/s: goodput %.0f%%", rates[k], 100*g)
		if held = held && ok && g >= target; held {
			knee = rates[k]
		}
	}
	if knee > 0 {
		h.Note("knee: %g requests/s (%s)", knee, strings.Join(rows, ", "))
		h.setHeadline("knee: %g requests/s", knee)
		return
	}
	h.Note("no rate held the goodput target (%s)", strings.Join(rows, ", "))
	h.setHeadline("no rate held the goodput target")
}

// judgeRateSteps judges a RateSteps check: the first threshold-many rate steps, each
// with goodput at or above the target, one rule over the groups of the steps that
// ran (a step below the target ends the sweep, and its rule then decides).
func (h *Harness) judgeRateSteps(c *CheckSpec) {
	o := h.opts.Requests
	rates, target := o.sweepRates(), o.goodputTarget()
	need := int(math.Ceil(h.num(c)))
	if need <= 0 {
		// No step required: what is left to judge is that requests were sent at all.
		h.Judge(c, report.Rule{Metric: "requests_sent", Op: ">=", Limit: 1, Needs: []report.Evidence{report.EvidenceRequest}})
		return
	}
	if need > len(rates) {
		h.offenders(c, need-len(rates), need, fmt.Sprintf("%d rates configured, %d needed", len(rates), need))
		return
	}
	var rules []report.Rule
	for _, rate := range rates[:need] {
		name := RateStepGroup(rate)
		if !h.hasGroup(name) {
			break
		}
		rules = append(rules, report.Rule{Metric: "goodput", Group: name, Op: ">=", Limit: target, Needs: []report.Evidence{report.EvidenceRequest}})
	}
	if len(rules) == 0 {
		h.notApplicable(c, "no rate step ran")
		return
	}
	r := rules[0]
	r.And = rules[1:]
	h.Judge(c, r)
}

// hasGroup reports whether the scenario declared a group or window named name.
func (h *Harness) hasGroup(name string) bool {
	h.groupMu.Lock()
	defer h.groupMu.Unlock()
	for _, g := range h.groups {
		if g.name == name {
			return true
		}
	}
	return false
}
