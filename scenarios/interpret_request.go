package scenarios

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
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
		step := h.newGroup(rateStepGroup(rate), 0, false)
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
		if _, held := stepHeld(step, target); !held {
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

// stepHeld is a sweep step's goodput, from its group's aggregate, and whether it
// reached target (never without requests).
func stepHeld(g *Group, target float64) (goodput float64, held bool) {
	gp, ok := g.agg.Metrics().Requests.Goodput()
	return gp, ok && gp >= target
}

// noteKnee states the sweep's answer in the notes and the headline: the highest rate
// up to which every step's goodput, read from the steps' aggregates, reached target.
func (h *Harness) noteKnee(rates []float64, steps []*Group, target float64) {
	rows := make([]string, len(steps)) // one per step: bounded by the rates
	knee, held := 0.0, true
	for k, step := range steps {
		g, ok := stepHeld(step, target)
		rows[k] = fmt.Sprintf("%g/s: goodput %.0f%%", rates[k], 100*g)
		if held = held && ok; held {
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
		name := rateStepGroup(rate)
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

// runRequests runs cfg (this shard's part of it) and folds its records into the
// scenario's aggregate and into each of groups. It returns an error when the target
// never answered a request.
func (h *Harness) runRequests(ctx context.Context, cfg runner.RequestConfig, groups ...*Group) (runner.RequestRun, error) {
	cfg.Header = h.opts.Header
	cfg.Insecure = h.opts.Insecure
	cfg.Shard = h.opts.Shard
	cfg.SessionPrefix = fmt.Sprintf("%s-%s-", h.opts.RunID, h.sc.Name)
	aggs := []*report.Aggregate{h.agg}
	for _, g := range groups {
		aggs = append(aggs, g.agg)
	}
	ch := make(chan runner.RequestRecord, 1024)
	done := make(chan struct{})
	var before int64
	if m := h.agg.Metrics().Requests; m != nil {
		before = m.Sent
	}
	go func() {
		defer close(done)
		for r := range ch {
			for _, a := range aggs {
				a.AddRequest(r)
			}
		}
	}()
	run, err := runner.RunRequests(ctx, cfg, ch)
	close(ch)
	<-done
	if err != nil {
		return run, err
	}
	for _, a := range aggs {
		a.AddRequestRun(run)
	}
	m := h.agg.Metrics().Requests
	if m != nil && m.Sent > before && len(m.Statuses) == 0 {
		return run, fmt.Errorf("target unreachable: no response to any of %d requests to %s (%s)", m.Sent-before, cfg.URL, breakdownCounts(m.Ends))
	}
	return run, nil
}

// bound is how a run of c is bounded, in words.
func bound(c runner.RequestConfig) string {
	switch {
	case c.Requests > 0 && c.Duration > 0:
		return fmt.Sprintf("%d requests or %s", c.Requests, c.Duration)
	case c.Requests > 0:
		return fmt.Sprintf("%d requests", c.Requests)
	}
	return "for " + c.Duration.String()
}
