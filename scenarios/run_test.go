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
