package scenarios

import (
	"context"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// runAgainst runs sc with opts, within 30 seconds, and fails the test at once if the
// run reports a scenario error.
func runAgainst(t *testing.T, sc *Scenario, opts Options) report.ScenarioResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := Run(ctx, sc, opts)
	if res.Error != "" {
		t.Fatalf("scenario error: %s", res.Error)
	}
	return res
}

// byName is the item of items whose name is want; the test fails without one.
func byName[T any](t *testing.T, items []T, name func(T) string, want string) T {
	t.Helper()
	for _, it := range items {
		if name(it) == want {
			return it
		}
	}
	t.Fatalf("no %s in %+v", want, items)
	var zero T
	return zero
}

// checkOf is the check of res named name.
func checkOf(t *testing.T, res report.ScenarioResult, name string) report.Check {
	t.Helper()
	return byName(t, res.Checks, func(c report.Check) string { return c.Name }, name)
}

// measureOf is the measure of res named name.
func measureOf(t *testing.T, res report.ScenarioResult, name string) report.Measure {
	t.Helper()
	return byName(t, res.Measures, func(m report.Measure) string { return m.Name }, name)
}
