package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/sseharness/sseharness/internal/selfwatch"
	"github.com/sseharness/sseharness/report"
)

// scenarioWatch watches the runner itself while one scenario runs; judge adds the
// runner-healthy measure and check to the scenario's result and says in words when
// the runner was saturated.
type scenarioWatch struct {
	w *selfwatch.Watcher
}

func startScenarioWatch(ctx context.Context, cfg selfwatch.Config) scenarioWatch {
	w, err := selfwatch.Start(ctx, cfg)
	if err != nil {
		// run validated cfg; an error here is a bug, and the check is then absent rather
		// than passed on nothing.
		return scenarioWatch{}
	}
	return scenarioWatch{w: w}
}

func (sw scenarioWatch) judge(sr *report.ScenarioResult, stderr io.Writer) {
	if sw.w == nil {
		return
	}
	sum := sw.w.Stop()
	if sr.Metrics.Started == 0 && sr.Metrics.Requests == nil {
		// The scenario put no load on the runner (it lacked what it needs of the target,
		// or could not start): there is no figure for the runner's delay to be in.
		return
	}
	m, c := report.RunnerHealth(sum)
	sr.Measures = append(sr.Measures, m)
	sr.Checks = append(sr.Checks, c)
	sr.Evaluate()
	if sum.Saturated {
		fmt.Fprintf(stderr, "%s: %s\n", sr.Name, m.Note)
	}
}
