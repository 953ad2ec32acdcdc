package scenarios

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/runner"
)

// Staged declarations (Phase.Settles): a scenario whose parts must not overlap, each
// judged against the server's figures from just before it (half-open: clients that
// stop reading, then streams behind a black-holing proxy). runStaged executes them one
// stage after the other:
//
//  1. the baselines of the stage's Settles checks are scraped (a check without its
//     metric, or OffAtZero with a threshold of 0, is n/a; a stage with nothing left
//     to judge is not opened);
//  2. the stage's streams are opened and awaited as any phase's;
//  3. the hook runs, with Opened holding the stages so far (the last one is the
//     stage's own);
//  4. each of the stage's checks awaits its figure back at its baseline (plus slack)
//     within its threshold;
//  5. before the next stage, the stage's streams are reset and their figures awaited
//     back (up to the longest of the stage's thresholds), so that the next stage
//     starts from a clean baseline.
//
// The Rule checks of a staged scenario are judged once every stage ran, as in any
// declaration. The only state kept is one baseline per check of the current stage.

// staged reports whether the scenario's phases are stages.
func (s *Scenario) staged() bool {
	return slices.ContainsFunc(s.Load, func(p Phase) bool { return len(p.Settles) > 0 })
}

// validateStages reports the problems of a staged declaration: a phase that is no
// stage, a stage's check that is not a declared Settles check or is in two stages, and
// what the stages do not interpret (other kinds of checks, nginx, reloads, a hold,
// publishing, a phase's own wait). A negative receive buffer is refused in any
// declaration.
func (s *Scenario) validateStages() []error {
	var errs []error
	for i, p := range s.Load {
		if p.RecvBuffer < 0 {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d: receive buffer %d, want >= 0", s.Name, i, p.RecvBuffer))
		}
	}
	if !s.staged() {
		return errs
	}
	if s.Publish || s.HookWindow != "" || s.Hold > 0 || s.HoldOf != nil {
		errs = append(errs, fmt.Errorf("scenario %s: a staged scenario neither publishes, holds nor opens a hook window", s.Name))
	}
	stageOf := map[*CheckSpec]int{}
	for i, p := range s.Load {
		if len(p.Settles) == 0 || p.Nginx != nil || p.Reopen != nil || p.Within != nil || p.Wait > 0 {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d: in a staged scenario every phase is a stage with Settles checks, without nginx, a reload or a wait of its own (a stage awaits its streams up to the start gate)", s.Name, i))
		}
		for _, c := range p.Settles {
			if _, twice := stageOf[c]; twice || c == nil || c.Settles == nil || !slices.Contains(s.Checks, c) {
				errs = append(errs, fmt.Errorf("scenario %s: phase %d: a stage check that is not one declared Settles check of one stage", s.Name, i))
				continue
			}
			stageOf[c] = i
		}
	}
	for _, c := range s.Checks {
		if c == nil {
			continue
		}
		if _, ok := stageOf[c]; c.Settles != nil && !ok {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: a Settles check of no stage", s.Name, c.Name))
		}
		if c.Settles == nil && c.Rule == nil {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: a staged scenario judges Settles checks (by stage) and rules only", s.Name, c.Name))
		}
	}
	return errs
}

// runStaged executes a staged declaration (see above).
func (h *Harness) runStaged(ctx context.Context) error {
	var opened Opened
	var notes []string
	total, browsers, stream := 0, 0, 0
	for i, p := range h.sc.Load {
		base := h.stageBaselines(ctx, p)
		if len(base) == 0 {
			opened.Phases = append(opened.Phases, nil)
			opened.Proxies = append(opened.Proxies, nil)
			continue
		}
		srcs, nb, px, err := h.openStage(ctx, p, i, opened, &stream)
		if err != nil {
			return err
		}
		total += len(srcs)
		browsers += nb
		each := "a browser each"
		if per := len(srcs) / nb; per > 1 {
			each = fmt.Sprintf("%d browsers of %d streams", nb, per)
		}
		notes = append(notes, fmt.Sprintf("%s: %d streams, %s, each awaited up to %s for %s", p.Describe, len(srcs), each, startTimeout, p.goal()))
		opened.Phases = append(opened.Phases, srcs)
		opened.Proxies = append(opened.Proxies, px)
		if h.sc.hook != nil {
			if err := h.sc.hook(ctx, h, opened); err != nil {
				return err
			}
		}
		for _, c := range p.Settles {
			if b, ok := base[c]; ok {
				h.settleStage(ctx, c, b, srcs, px)
			}
		}
		if i < len(h.sc.Load)-1 {
			for _, s := range srcs {
				s.Reset()
			}
			h.awaitStageBack(ctx, p, base, len(srcs))
		}
	}
	h.request(total, browsers, 0, strings.Join(notes, "; "))
	h.Finish()
	return h.judgeDeclared(ctx, afterLoad{opened: opened, total: total})
}

// stageBaselines scrapes the baselines of stage p's checks, by check: only those that
// can be judged (the others are recorded n/a, saying why); none, and the stage is not
// run.
func (h *Harness) stageBaselines(ctx context.Context, p Phase) map[*CheckSpec]float64 {
	var checks []*CheckSpec
	for _, c := range p.Settles {
		if c.Settles.OffAtZero != "" && h.dur(c) == 0 {
			h.notApplicable(c, c.Settles.OffAtZero)
			continue
		}
		checks = append(checks, c)
	}
	if len(checks) == 0 {
		return nil
	}
	sample, ok := h.Scrape(ctx)
	base := make(map[*CheckSpec]float64, len(checks))
	for _, c := range checks {
		name := h.metricName(c.Settles.Metric)
		v, has := sample.Value(name)
		switch {
		case !ok:
			h.notApplicable(c, "the target's metrics could not be read at --metrics-url: only the server can tell whether it let the streams go")
		case !has || name == "":
			h.notApplicable(c, "needs the target's "+orNone(name)+" metric at --metrics-url: only the server can tell whether it let the streams go")
		default:
			base[c] = v
		}
	}
	return base
}

// openStage opens stage p's streams (numbered from *stream on) and awaits them as any
// phase's; it returns them, how many browsers they use, and the stage's proxy (nil
// without one).
func (h *Harness) openStage(ctx context.Context, p Phase, index int, opened Opened, stream *int) ([]*runner.EventSource, int, *proxy.Proxy, error) {
	sessions := h.phaseSessions(p, opened, *stream)
	per := 1
	if p.PerBrowser > 0 {
		per = min(len(sessions), p.PerBrowser)
	}
	nb := max(1, len(sessions)/per)
	var g *Group
	if p.Group != "" {
		g = h.StreamGroup(p.Group, nb*per)
	}
	px, err := h.phaseProxy(ctx, p, index)
	if err != nil {
		return nil, 0, nil, err
	}
	srcs, _, err := h.openPhaseStreams(ctx, p, phaseStreams{sessions: sessions, browsers: nb, per: per, group: g, proxy: px}, stream)
	if err != nil {
		return nil, 0, nil, err
	}
	missed, err := h.awaitPhase(ctx, p, srcs, startTimeout)
	if err != nil {
		return nil, 0, nil, err
	}
	h.notePhase(p, srcs, missed, startTimeout)
	return srcs, nb, px, nil
}

// settleStage judges a stage's Settles check: how far its figure still was above the
// stage's baseline (plus slack) when the threshold ran out after the hook, 0 when it
// came back. Merged shards keep the worst excess, as for any Settles check.
func (h *Harness) settleStage(ctx context.Context, c *CheckSpec, base float64, srcs []*runner.EventSource, px *proxy.Proxy) {
	metric := h.metricName(c.Settles.Metric)
	back := base + c.Settles.Fixed + c.Settles.PerStream*float64(len(srcs))
	within := h.dur(c)
	var last float64
	took, held, available := h.AwaitMetric(ctx, metric, within, func(v float64) bool { last = v; return v <= back })
	dropped := ""
	if px != nil {
		dropped = fmt.Sprintf("%d bytes dropped by the proxy", px.Stats().Discarded)
	}
	in := func(sep string) string { // sep and dropped, or nothing
		if dropped == "" {
			return ""
		}
		return sep + dropped
	}
	switch {
	case held:
		h.excess(c, 0, fmt.Sprintf("all %d ended after %s (%s back to %.0f%s)", len(srcs), ms(took), metric, base, in(", ")))
	case !available:
		h.notApplicable(c, "the target's "+metric+" metric could not be read after the stage's step")
	default:
		missed := c.Settles.Missed
		if missed == "" {
			missed = "after the stage's step"
		}
		still := fmt.Sprintf("%s still %.0f (baseline %.0f)", metric, last, base)
		if c.Settles.Metric == OpenStreamsMetric {
			still = fmt.Sprintf("%.0f of %d still open", last-base, len(srcs))
		}
		h.excess(c, max(last-back, 1), fmt.Sprintf("%s %s %s%s", still, within, missed, in("; ")))
	}
}

// awaitStageBack waits, once stage p's streams were reset, until every figure its
// checks read is back at the stage's baseline (plus slack), up to the longest of their
// thresholds: a reset stream is to be gone as soon as a vanished one. A figure that
// stays above is noted; the next stage's baseline is then taken from there.
func (h *Harness) awaitStageBack(ctx context.Context, p Phase, base map[*CheckSpec]float64, streams int) {
	var wait time.Duration
	for c := range base {
		wait = max(wait, h.dur(c))
	}
	deadline := time.Now().Add(wait)
	for _, c := range p.Settles {
		b, ok := base[c]
		if !ok {
			continue
		}
		metric := h.metricName(c.Settles.Metric)
		back := b + c.Settles.Fixed + c.Settles.PerStream*float64(streams)
		var last float64
		if _, held, _ := h.AwaitMetric(ctx, metric, max(time.Until(deadline), 0), func(v float64) bool { last = v; return v <= back }); !held {
			h.note("%s still %.0f (baseline %.0f) %s after %s were reset: the next stage's baseline is taken from there", metric, last, b, wait, p.Describe)
		}
	}
}
