package report

import (
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/internal/selfwatch"
)

func healthScenario(name string, sum selfwatch.Summary) ScenarioResult {
	s := ScenarioResult{Name: name, Checks: []Check{{Name: "x", Rule: &Rule{Metric: "streams", Op: ">=", Limit: 1}}}}
	s.Metrics.Streams = 1
	m, c := RunnerHealth(sum)
	s.Measures = append(s.Measures, m)
	s.Checks = append(s.Checks, c)
	s.Evaluate()
	return s
}

func healthCheck(t *testing.T, s ScenarioResult) Check {
	t.Helper()
	for _, c := range s.Checks {
		if c.Name == CheckRunnerHealthy {
			return c
		}
	}
	t.Fatalf("no %s check", CheckRunnerHealthy)
	return Check{}
}

// TestRunnerHealthJudgesTheWatch: n/a without a tick, pass when healthy, fail (a SHOULD,
// not failing the scenario) when saturated, with the reasons and the delay in words.
func TestRunnerHealthJudgesTheWatch(t *testing.T) {
	healthy := selfwatch.Summary{Evidence: true, TickLateness: selfwatch.DelayStats{Count: 100}, MaxCPU: 0.9, MaxDelayMS: 10,
		Note: "latency includes up to 0.4 ms of the runner's own delay"}
	saturated := healthy
	saturated.Saturated, saturated.Reasons = true, []string{"the runner used 99% of its 1 core, above 90%"}
	saturated.Note = "latency includes up to 42 ms of the runner's own delay"
	noTicks := selfwatch.Summary{MaxCPU: 0.9, MaxDelayMS: 10}

	if c := healthCheck(t, healthScenario("a", noTicks)); c.Verdict != VerdictNotApplicable {
		t.Errorf("without ticks: %s, want n/a", c.Verdict)
	}
	s := healthScenario("a", healthy)
	if c := healthCheck(t, s); c.Verdict != VerdictPass || s.Verdict != VerdictPass || !strings.HasPrefix(s.RunnerNote(), "runner: healthy; latency includes up to 0.4 ms") {
		t.Errorf("healthy: %s, scenario %s, note %q", c.Verdict, s.Verdict, s.RunnerNote())
	}
	s = healthScenario("a", saturated)
	c := healthCheck(t, s)
	if c.Verdict != VerdictFail || c.Fails() || s.Verdict != VerdictPass || !strings.Contains(c.Detail, "used 99% of its 1 core") ||
		!strings.Contains(s.RunnerNote(), "SATURATED") || !strings.Contains(s.RunnerNote(), "42 ms of the runner's own delay") {
		t.Errorf("saturated: %+v, scenario %s, note %q", c, s.Verdict, s.RunnerNote())
	}

	// The runner's health never makes a scenario judged on its own.
	alone := ScenarioResult{Name: "b"}
	m, hc := RunnerHealth(healthy)
	alone.Measures, alone.Checks = []Measure{m}, []Check{hc}
	alone.Evaluate()
	if alone.Verdict != VerdictNotApplicable {
		t.Errorf("a scenario judged only by runner-healthy: %s, want n/a", alone.Verdict)
	}

	// Merged, it is the worst worker's.
	t0 := time.Now()
	a, b := healthScenario("hold", healthy), healthScenario("hold", saturated)
	merged, err := Merge([]*Result{
		{Target: "t", Shard: &Shard{Index: 0, Count: 2}, Start: t0, End: t0, Scenarios: []ScenarioResult{a}, Runner: []RunnerWatch{{Worker: 0, Summary: healthy}}},
		{Target: "t", Shard: &Shard{Index: 1, Count: 2}, Start: t0, End: t0, Scenarios: []ScenarioResult{b}, Runner: []RunnerWatch{{Worker: 1, Summary: saturated}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := healthCheck(t, merged.Scenarios[0]); c.Verdict != VerdictFail || len(merged.Runner) != 2 {
		t.Errorf("merged: %s with %d runner summaries, want fail and 2", c.Verdict, len(merged.Runner))
	}
}
