package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/sseharness/sseharness/report"
)

// gateFlag collects --max-regression values; the flag may be repeated.
type gateFlag []string

func (g *gateFlag) String() string     { return strings.Join(*g, ",") }
func (g *gateFlag) Set(v string) error { *g = append(*g, v); return nil }

// runCompare runs `sseharness compare`: a CI gate between a base result and a new one.
func runCompare(_ context.Context, env *Env, args []string) int {
	var defaults []string
	for _, g := range report.DefaultGates() {
		defaults = append(defaults, fmt.Sprintf("%s=%g", g.Metric, g.MaxRegressionPct))
	}
	fs := newFlagSet(env, "compare", "BASE.json NEW.json [--max-regression METRIC=PCT,...]", `
Compares two result files scenario by scenario and prints each metric, base to new, with
its change. A gated metric regresses when it gets worse by more than its limit, in
percent of the base value ("worse" is up for latencies, errors and lost ids, down for
streams and events). A base of 0 has no relative change: staying 0 is no change, and any
worsening from 0 (errors 0 -> 1) exceeds every limit. A metric with no value on either
side (no samples, server figure n/a) is shown as n/a; a gated one with a value in the
base and none in the new result has lost its evidence and regresses. A duration that
moves by 1 ms or less never regresses (timer noise on small values). A scenario or check
of the base that the new result lacks, or a scenario that could not run there, is a
regression too; a base without scenarios is refused (nothing to gate on).

Default gates: `+strings.Join(defaults, ", ")+`
(latency_p99: p99 delivery latency; ttfe_p99: p99 time to first event; missing_ids: lost
ids). --max-regression replaces the limit of a metric or gates another one.

Exit status: 0 when no gated metric regressed beyond its limit and nothing of the base
is missing, 1 otherwise, 2 for a missing, malformed or too large file, a base without
scenarios, an unknown metric or bad flags.`)
	var gates gateFlag
	fs.Var(&gates, "max-regression", "limit how much metrics may worsen, in percent of the base: `METRIC=PCT[,METRIC=PCT...]` (repeatable; unknown metrics are listed in the error) (default "+strings.Join(defaults, ",")+")")
	maxSize := maxFileSizeFlag(fs)
	files, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(files) != 2 {
		return usageError(env, "compare", "want BASE.json and NEW.json, got %d arguments", len(files))
	}
	overrides, err := report.ParseGates(strings.Join(gates, ","))
	if err != nil {
		return fileError(env, "compare", fmt.Errorf("--max-regression: %w", err))
	}
	base, err := loadResult(files[0], maxSize)
	if err != nil {
		return fileError(env, "compare", err)
	}
	next, err := loadResult(files[1], maxSize)
	if err != nil {
		return fileError(env, "compare", err)
	}
	if len(base.Scenarios) == 0 {
		return fileError(env, "compare", fmt.Errorf("base result %s has no scenarios: nothing to gate on", files[0]))
	}
	cmp := report.Compare(base, next, report.WithGates(report.DefaultGates(), overrides))
	if err := report.WriteComparison(env.Stdout, cmp); err != nil {
		return harnessError(env, "compare", err)
	}
	if !cmp.Regressed() {
		fmt.Fprintln(env.Stdout, "no gated metric regressed beyond its limit")
		return ExitOK
	}
	if regs := cmp.Regressions(); len(regs) > 0 {
		var parts []string
		for _, r := range regs {
			if !r.NewOK {
				parts = append(parts, fmt.Sprintf("%s %s has no value in the new result", r.Scenario, r.Metric))
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %s %s (limit %g%%)", r.Scenario, r.Metric, r.ChangeText(), r.LimitPct))
		}
		fmt.Fprintf(env.Stdout, "%d gated metric(s) regressed: %s\n", len(regs), strings.Join(parts, "; "))
	}
	if len(cmp.Lost) > 0 {
		fmt.Fprintf(env.Stdout, "%d item(s) of the base lost: %s\n", len(cmp.Lost), strings.Join(cmp.Lost, "; "))
	}
	return ExitFailed
}
