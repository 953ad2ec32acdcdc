package scenarios

import (
	"fmt"
	"slices"
	"time"

	"github.com/sseharness/sseharness/report"
)

// RequestLoad declares a phase of request streams (Phase.Requests) in place of
// EventSources: the requests of Options.Requests (runner.RequestConfig), each answered
// with a finite event stream, sent open-loop at a scheduled rate (runner.RunRequests).
// Its records fold into the scenario's aggregate (and, in a sweep, its step's group),
// whose request metrics the checks' rules read.
type RequestLoad struct {
	// Window bounds each run (each step of a sweep) when neither --requests nor
	// --duration does.
	Window time.Duration
	// Sweep makes the phase step through every rate of RequestOptions.Rates (default
	// DefaultCapacityRates), each step a group of its own named "rate-R" (R the rate),
	// and stop after the first step whose goodput (read from that group's aggregate) is
	// below the goodput target, since the next rate would only be worse. Without
	// Sweep the phase runs once, at the one rate given (default 10/s).
	Sweep bool
	// SLO, when set, makes the goodput objective these checks' thresholds (with --slo
	// or --threshold, those); without it the objective is RequestOptions.SLO with the
	// defaults for the bounds it leaves out.
	SLO *RequestSLOChecks
}

// RequestSLOChecks are the checks whose thresholds bound time to first token,
// inter-token latency and end to end time of a request that counts as good.
type RequestSLOChecks struct {
	TTFT, ITL, E2E *CheckSpec
}

// RateSteps declares a check over the steps of a Sweep phase (CheckSpec.RateSteps):
// the first threshold-many steps, each with goodput at or above the goodput target
// (RequestOptions.GoodputTarget), judged as one report rule over the steps' groups,
// so a merged result is judged again exactly. A threshold of 0 only needs requests to
// have been sent; one above the configured rates fails, saying so.
type RateSteps struct {
	// Phase is the index of the Sweep phase in Scenario.Load.
	Phase int
}

// rateStepGroup is the name of the group of a sweep's step at rate.
func rateStepGroup(rate float64) string { return fmt.Sprintf("rate-%g", rate) }

// requestRule is the rule that metric of the scenario's request streams is op the
// check's threshold, on the evidence of at least one request sent.
func requestRule(metric, op string) *report.Rule {
	return &report.Rule{Metric: metric, Op: op, Limit: AtThreshold, Needs: []report.Evidence{report.EvidenceRequest}}
}

// validateRequests reports the problems of a scenario's request phases and RateSteps
// checks: a request phase beside other phases or a hook, without a window, or whose
// SLO names checks the scenario does not declare; a RateSteps of a phase that is no
// sweep.
func (s *Scenario) validateRequests() []error {
	var errs []error
	for i, p := range s.Load {
		r := p.Requests
		if r == nil {
			continue
		}
		if len(s.Load) > 1 || s.hook != nil {
			errs = append(errs, fmt.Errorf("scenario %s: request phase %d: a scenario of request streams has no other phase and no hook", s.Name, i))
		}
		if r.Window <= 0 {
			errs = append(errs, fmt.Errorf("scenario %s: request phase %d: window %s, want > 0", s.Name, i, r.Window))
		}
		if r.SLO != nil {
			for _, c := range []*CheckSpec{r.SLO.TTFT, r.SLO.ITL, r.SLO.E2E} {
				if c == nil || !slices.Contains(s.Checks, c) {
					errs = append(errs, fmt.Errorf("scenario %s: request phase %d: its SLO names a check it does not declare", s.Name, i))
					break
				}
			}
		}
	}
	for _, c := range s.Checks {
		if c == nil || c.RateSteps == nil {
			continue
		}
		if k := c.RateSteps.Phase; k < 0 || k >= len(s.Load) || s.Load[k].Requests == nil || !s.Load[k].Requests.Sweep {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: rate steps of phase %d, which is no request sweep", s.Name, c.Name, k))
		}
	}
	return errs
}
