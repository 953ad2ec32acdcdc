package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/sseharness/sseharness/internal/selfwatch"
	"github.com/sseharness/sseharness/internal/shards"
)

// Names of the runner's self-health measure and check, which `run` adds to every
// scenario it runs.
const (
	MeasureRunnerSaturated = "runner_saturated"
	CheckRunnerHealthy     = "runner-healthy"
)

// RunnerWatch is what one process of a run (a worker, or the run itself) saw of its
// own health while it ran: the selfwatch summary of that process.
type RunnerWatch struct {
	// Worker is the shard index of the process (0 for a run in one process).
	Worker int `json:"worker"`
	selfwatch.Summary
}

// RunnerHealth returns the measure and the check that judge whether the runner itself
// was saturated while a scenario ran, from the summary of its watch over that time.
// The check has level SHOULD: it fails when the runner was saturated, without failing
// the scenario (the result and terminal say it in words instead).
// The measure is 1 when saturated, 0 when not; with no tick of the watch (no evidence)
// its Of is 0 and the check is n/a. Merged shards take the worst shard's.
func RunnerHealth(s selfwatch.Summary) (Measure, Check) {
	m := Measure{Name: MeasureRunnerSaturated, Merge: MergeMax, Note: s.Note}
	if s.Evidence {
		m.Of = int64(s.TickLateness.Count)
	}
	if s.Saturated {
		m.Value = 1
		m.Note = "the runner was saturated: " + strings.Join(s.Reasons, "; ") + "; " + s.Note
	}
	// A SHOULD: the check fails when the runner was saturated, but a harness that was
	// its own bottleneck is no finding about the target, so it neither fails the
	// scenario nor counts as judging it (scenarioVerdict).
	c := Check{
		Name:      CheckRunnerHealthy,
		Level:     LevelShould,
		Threshold: fmt.Sprintf("runner not saturated (CPU <= %.0f%% of its cores, scheduling delay p99 <= %s)", 100*s.MaxCPU, fmtMS(s.MaxDelayMS)),
		Rule:      &Rule{Metric: "measure." + MeasureRunnerSaturated, Op: "==", Limit: 0},
	}
	return m, c
}

// RunnerNote returns, for a scenario run by `run`, what the runner's own health means
// for its latency figures, in words ("" when the scenario has no such measure).
func (s *ScenarioResult) RunnerNote() string {
	m, ok := s.Measure(MeasureRunnerSaturated)
	if !ok || m.Of == 0 {
		return ""
	}
	if m.Value > 0 {
		return "runner: SATURATED, its own delay is in the figures: " + m.Note
	}
	return "runner: healthy; " + m.Note
}

// shardTimeline converts a scenario's timeline for shards.PeakConcurrent.
func shardTimeline(t Timeline) shards.Timeline {
	st := shards.Timeline{Start: t.Start, Step: t.Step(), Open: make([]int64, len(t.Points))}
	for i, p := range t.Points {
		st.Open[i] = p.Open
	}
	return st
}

// overlapOf computes how far the shards of a merged scenario were open at the same
// time; nil with fewer than two shards or without timelines (no evidence).
func overlapOf(parts []shardScenario) *shards.Overlap {
	if len(parts) < 2 {
		return nil
	}
	var ts []shards.Timeline
	for _, p := range parts {
		ts = append(ts, shardTimeline(p.s.Timeline))
	}
	o, err := shards.PeakConcurrent(ts)
	if err != nil {
		return nil
	}
	return &o
}

// OverlapNote says in words how far the shards of a merged scenario overlapped.
func (s *ScenarioResult) OverlapNote() string {
	o := s.Overlap
	if o == nil {
		return ""
	}
	full := "partly"
	if o.Full() {
		full = "fully"
	}
	return fmt.Sprintf("shards overlapped %s: peak %d concurrent streams of %d (sum of each shard's peak), all shards open together for %s",
		full, o.Peak, o.SumOfPeaks, fmtDuration(time.Duration(o.AllOpenMS)*time.Millisecond))
}

// StartNote says when the processes of a run were asked to start (`run --start-at`)
// and how late each began, "" when none was given a start time.
func (r *Result) StartNote() string {
	if len(r.Starts) == 0 {
		return ""
	}
	var parts []string
	for _, s := range r.Starts {
		parts = append(parts, fmt.Sprintf("worker %d %s late", s.Worker, fmtDuration(s.Late())))
	}
	return fmt.Sprintf("start at %s: %s", r.Starts[0].At.UTC().Format(time.RFC3339Nano), strings.Join(parts, ", "))
}

// WorkerStart is when one process of a run was asked to start and when it did.
type WorkerStart struct {
	Worker int `json:"worker"`
	shards.Start
}
