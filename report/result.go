package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sseharness/sseharness/internal/shards"
)

// SchemaVersion is the version of the result file format this package writes. It
// changes when a field changes meaning or is removed; added fields keep it. Version 2
// carries histograms as sketches ("sketch": "ddsketch"); version 1 files, whose
// histograms are of the older bucket form, still load (oldestSchemaVersion), converted,
// and are written back as version 2.
const SchemaVersion = 2

// oldestSchemaVersion is the oldest result file format this package reads.
const oldestSchemaVersion = 1

// Verdict is the outcome of a check, a scenario or a whole run.
type Verdict string

// Verdicts. Warn and NotApplicable never fail a scenario; Error means a scenario could
// not run (harness or target problem), which the CLI maps to exit code 3.
const (
	VerdictPass          Verdict = "pass"
	VerdictFail          Verdict = "fail"
	VerdictWarn          Verdict = "warn"
	VerdictNotApplicable Verdict = "n/a"
	VerdictError         Verdict = "error"
)

// verdicts are every Verdict a result may hold.
var verdicts = []Verdict{VerdictPass, VerdictFail, VerdictWarn, VerdictNotApplicable, VerdictError}

// Level is how binding a conformance check is; scenario checks have no level.
type Level string

// Levels of conformance checks. With a level set, only a failed MUST fails its scenario.
const (
	LevelMust     Level = "MUST"
	LevelShould   Level = "SHOULD"
	LevelAdvisory Level = "ADVISORY"
)

// levels are every Level a check may hold besides none.
var levels = []Level{LevelMust, LevelShould, LevelAdvisory}

// ruleOps are the operators Rule knows.
var ruleOps = []string{"<=", "<", ">=", ">", "=="}

// Result is the whole outcome of one `run` or `conform`: the file `--out` writes and
// `report` re-renders.
type Result struct {
	SchemaVersion  int       `json:"schema_version"`
	HarnessVersion string    `json:"harness_version"`
	Target         string    `json:"target"`
	Start          time.Time `json:"start"`
	End            time.Time `json:"end"`
	// Config is the resolved configuration of the run, as the command saw it.
	Config any `json:"config,omitempty"`
	// Shard is set when the run was one shard of a distributed run (`run --shard I/N`).
	Shard *Shard `json:"shard,omitempty"`
	// MergedShards is how many shard results `report merge` combined into this one.
	MergedShards int              `json:"merged_shards,omitempty"`
	Scenarios    []ScenarioResult `json:"scenarios"`
	Verdict      Verdict          `json:"verdict"`
	// Runner is what each process of the run saw of its own health (one per worker;
	// a merged result has every shard's).
	Runner []RunnerWatch `json:"runner,omitempty"`
	// Starts are the start times the processes were given (`run --start-at`) and how
	// late each began.
	Starts []WorkerStart `json:"starts,omitempty"`
	// Incomplete marks a partial result: `run --out` rewrites the file while the run
	// goes, so that a run that dies keeps what it measured. End is when it was written;
	// the scenario that was running has its figures so far and no checks.
	Incomplete bool `json:"incomplete,omitempty"`
}

// IncompleteNote is what renderings and comparisons say of an incomplete result.
const IncompleteNote = "incomplete: the run had not finished when this result was written"

// Shard identifies one shard of a distributed run: Index in [0, Count).
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ScenarioResult is one scenario's outcome: its checks, metrics, server figures, load
// and timeline. Build it with BuildScenario.
type ScenarioResult struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Headline is the scenario's own answer in a few words when it measures something
	// (capacity's sustained streams, request-capacity's knee); the compact output shows
	// it beside the figures. A merged result keeps the first shard's: it is a share.
	Headline string  `json:"headline,omitempty"`
	Verdict  Verdict `json:"verdict"`
	// Error says why the scenario could not run; its verdict is then "error".
	Error    string        `json:"error,omitempty"`
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Load     Workload      `json:"load"`
	Checks   []Check       `json:"checks"`
	Metrics  Metrics       `json:"metrics"`
	Server   ServerFigures `json:"server"`
	Timeline Timeline      `json:"timeline"`
	// Groups are the metrics of the scenario's named groups of streams and windows of
	// time, which its rules may read.
	Groups []GroupResult `json:"groups,omitempty"`
	// Measures are figures the scenario measured itself, for its rules.
	Measures []Measure `json:"measures,omitempty"`
	// Overlap, set by `report merge`, is how far the shards' streams were open at the
	// same time: the peak of concurrent streams across shards from their timelines.
	Overlap *shards.Overlap `json:"overlap,omitempty"`
	// Incomplete: the scenario was still running when a partial result was written;
	// it has its figures so far and no checks.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Workload is the load a scenario asked for and what the harness managed to apply.
type Workload struct {
	Requested RequestedLoad `json:"requested"`
	Achieved  AchievedLoad  `json:"achieved"`
}

// RequestedLoad is the load shape a scenario asked for. Zero fields were not part of it.
type RequestedLoad struct {
	Streams  int     `json:"streams"`                   // simulated EventSources
	Browsers int     `json:"browsers,omitempty"`        // simulated browsers they belong to
	OpenRate float64 `json:"open_rate_per_s,omitempty"` // streams opened per second; 0 = at once
	HoldMS   float64 `json:"hold_ms,omitempty"`         // how long each stream is held
	Note     string  `json:"note,omitempty"`            // anything else about the shape
}

// AchievedLoad is what the run actually did, from the records.
type AchievedLoad struct {
	Streams  int64 `json:"streams"`   // streams opened
	PeakOpen int64 `json:"peak_open"` // most connections open at once
	// OpenRate is streams opened per second between the first and the last first open.
	OpenRate float64 `json:"open_rate_per_s,omitempty"`
	// StartLagP99MS and StartLagMaxMS: how late attempts started against their schedule
	// (falling behind is visible).
	StartLagP99MS float64 `json:"start_lag_p99_ms,omitempty"`
	StartLagMaxMS float64 `json:"start_lag_max_ms,omitempty"`
}

// Check is one finding: what was required, what was seen, and the verdict.
type Check struct {
	Name string `json:"name"`
	// Level is set for conformance checks (MUST, SHOULD, ADVISORY), empty for scenario
	// checks.
	Level     Level   `json:"level,omitempty"`
	Verdict   Verdict `json:"verdict"`
	Threshold string  `json:"threshold,omitempty"`
	Measured  string  `json:"measured,omitempty"`
	Detail    string  `json:"detail,omitempty"`
	// Spec cites the specification section a conformance check enforces.
	Spec string `json:"spec,omitempty"`
	// Rule, when set, lets the report compute Verdict, Measured and Threshold from the
	// metrics, so the check is re-evaluated exactly after merging shards.
	Rule *Rule `json:"rule,omitempty"`
	// Merged is set when merging shards could not re-evaluate the check (it has no Rule):
	// its verdict is the worst of the shards' and Measured lists each shard's.
	Merged bool `json:"merged,omitempty"`
}

// Fails reports whether c fails its scenario: a failed check without a level, or a
// failed MUST. Warnings, n/a and failed SHOULD or ADVISORY checks do not.
func (c Check) Fails() bool {
	return c.Verdict == VerdictFail && (c.Level == "" || c.Level == LevelMust)
}

// ScenarioInput is everything BuildScenario needs.
type ScenarioInput struct {
	Name, Description string
	Headline          string
	Start, End        time.Time
	Requested         RequestedLoad
	// Aggregate holds the scenario's records; nil when it produced none.
	Aggregate *Aggregate
	Server    ServerProbe
	// Checks are the scenario's findings. Checks with a Rule may leave Verdict, Measured
	// and Threshold empty: they are computed here.
	Checks []Check
	// Err, when set, means the scenario could not run; its verdict is "error".
	Err error
	// Groups are the scenario's named groups and windows, in order.
	Groups []GroupInput
	// Measures are the figures the scenario measured itself.
	Measures []Measure
}

// GroupInput is one named group of streams or window of time and its aggregate.
type GroupInput struct {
	Name      string
	Requested int
	Aggregate *Aggregate
}

// BuildScenario assembles a ScenarioResult: metrics and timeline from the aggregate,
// server figures from the probe, achieved load, rule checks evaluated, verdict set.
func BuildScenario(in ScenarioInput) ScenarioResult {
	s := ScenarioResult{
		Name: in.Name, Description: in.Description, Headline: in.Headline, Start: in.Start, End: in.End,
		Load:     Workload{Requested: in.Requested},
		Checks:   append([]Check(nil), in.Checks...),
		Measures: append([]Measure(nil), in.Measures...),
	}
	if in.Aggregate != nil {
		s.Metrics = in.Aggregate.Metrics()
		s.Timeline = in.Aggregate.Timeline()
	} else {
		empty, _ := NewAggregate(AggregateConfig{Start: in.Start})
		s.Metrics = empty.Metrics()
		s.Timeline = empty.Timeline()
	}
	for _, g := range in.Groups {
		gr := GroupResult{Name: g.Name, Requested: g.Requested}
		if g.Aggregate != nil {
			gr.Metrics = g.Aggregate.Metrics()
		}
		s.Groups = append(s.Groups, gr)
	}
	s.Server = NewServerFigures(in.Server, s.Metrics.Streams)
	if in.Err != nil {
		s.Error = in.Err.Error()
	}
	s.Evaluate()
	return s
}

// Evaluate recomputes what derives from the metrics: the achieved load, every check that
// has a Rule, and the verdict.
func (s *ScenarioResult) Evaluate() {
	m := s.Metrics
	s.Load.Achieved = AchievedLoad{
		Streams:       m.Streams,
		PeakOpen:      m.PeakOpen,
		StartLagP99MS: m.StartLag.P99MS,
		StartLagMaxMS: m.StartLag.MaxMS,
	}
	if m.Streams > 1 && m.LastOpen.After(m.FirstOpen) {
		s.Load.Achieved.OpenRate = float64(m.Streams-1) / m.LastOpen.Sub(m.FirstOpen).Seconds()
	}
	for i := range s.Checks {
		if r := s.Checks[i].Rule; r != nil {
			r.evaluate(s, &s.Checks[i])
		}
	}
	s.Verdict = scenarioVerdict(s)
}

// scenarioVerdict: error when it could not run; fail when a check fails; pass when at
// least one check was judged (pass, warn, or a failed SHOULD) and none fails; n/a when
// nothing was judged (no checks, or every one n/a): no verdict without evidence.
func scenarioVerdict(s *ScenarioResult) Verdict {
	if s.Error != "" {
		return VerdictError
	}
	judged := false
	for _, c := range s.Checks {
		if c.Fails() {
			return VerdictFail
		}
		if c.Name == CheckRunnerHealthy {
			continue // the runner's own health judges the harness, not the target
		}
		switch c.Verdict {
		case VerdictPass, VerdictWarn, VerdictFail:
			judged = true
		}
	}
	if !judged {
		return VerdictNotApplicable
	}
	return VerdictPass
}

// Evaluate sets the schema version and the run's verdict from its scenarios: fail when
// any failed; otherwise error when any could not run; otherwise n/a when any could not
// be judged (or there were none); pass only when every scenario passed.
func (r *Result) Evaluate() {
	r.SchemaVersion = SchemaVersion
	failed, errored, unjudged := false, false, len(r.Scenarios) == 0
	for _, s := range r.Scenarios {
		switch s.Verdict {
		case VerdictFail:
			failed = true
		case VerdictError:
			errored = true
		case VerdictNotApplicable:
			unjudged = true
		}
	}
	switch {
	case failed:
		r.Verdict = VerdictFail
	case errored:
		r.Verdict = VerdictError
	case unjudged:
		r.Verdict = VerdictNotApplicable
	default:
		r.Verdict = VerdictPass
	}
}

// Unjudged lists the scenarios of r with nothing judged, each with why: the details of
// its n/a checks ("no checks" when it has none).
func (r *Result) Unjudged() []string {
	var out []string
	for _, s := range r.Scenarios {
		if s.Verdict != VerdictNotApplicable {
			continue
		}
		var whys []string
		seen := map[string]bool{}
		for _, c := range s.Checks {
			w := c.Detail
			if w == "" {
				w = "no value"
			}
			if !seen[w] {
				seen[w] = true
				whys = append(whys, w)
			}
		}
		if len(whys) == 0 {
			whys = []string{"no checks"}
		}
		out = append(out, s.Name+": "+strings.Join(whys, "; "))
	}
	return out
}

// NotApplicable counts the n/a checks of r's scenarios (those of n/a scenarios included).
func (r *Result) NotApplicable() int {
	n := 0
	for _, s := range r.Scenarios {
		for _, c := range s.Checks {
			if c.Verdict == VerdictNotApplicable {
				n++
			}
		}
		if len(s.Checks) == 0 && s.Verdict == VerdictNotApplicable {
			n++
		}
	}
	return n
}

// FailedChecks lists the names of the checks that fail s.
func (s *ScenarioResult) FailedChecks() []string {
	var names []string
	for _, c := range s.Checks {
		if c.Fails() {
			names = append(names, c.Name)
		}
	}
	return names
}

// Validate reports every value of r this harness does not know, in one line naming each
// field: a verdict other than the Verdict constants, a level other than the Level
// constants, a rule operator Rule does not know, a scenario or check without a name, a
// scenario name given twice. A result read from a file is judged by its verdicts, so an
// unknown one must be refused rather than shown and passed.
func (r *Result) Validate() error {
	var p problems
	checkVerdict(&p, "verdict", r.Verdict)
	first := map[string]int{}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		at := fmt.Sprintf("scenarios[%d]", i)
		if s.Name == "" {
			p.add("%s.name: missing", at)
		} else if j, dup := first[s.Name]; dup {
			p.add("%s.name: %q is also scenarios[%d]", at, s.Name, j)
		} else {
			first[s.Name] = i
		}
		checkVerdict(&p, at+".verdict", s.Verdict)
		for j := range s.Checks {
			c := &s.Checks[j]
			cat := fmt.Sprintf("%s.checks[%d]", at, j)
			if c.Name == "" {
				p.add("%s.name: missing", cat)
			}
			checkVerdict(&p, cat+".verdict", c.Verdict)
			if c.Level != "" && !slices.Contains(levels, c.Level) {
				p.add("%s.level: unknown value %q (known: %s, or none)", cat, c.Level, joinValues(levels))
			}
			if c.Rule != nil && !slices.Contains(ruleOps, c.Rule.Op) {
				p.add("%s.rule.op: unknown value %q (known: %s)", cat, c.Rule.Op, joinValues(ruleOps))
			}
		}
	}
	return p.err()
}

func checkVerdict(p *problems, field string, v Verdict) {
	switch {
	case v == "":
		p.add("%s: missing", field)
	case !slices.Contains(verdicts, v):
		p.add("%s: unknown value %q (known: %s)", field, v, joinValues(verdicts))
	}
}

func joinValues[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// problems collects what is wrong with a result for one error line; past maxProblems it
// only counts, so that a file wrong throughout still gives a readable line.
type problems struct {
	list []string
	more int
}

const maxProblems = 5

func (p *problems) add(format string, args ...any) {
	if len(p.list) == maxProblems {
		p.more++
		return
	}
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	msg := strings.Join(p.list, "; ")
	if p.more > 0 {
		msg += fmt.Sprintf("; and %d more", p.more)
	}
	return fmt.Errorf("%s", msg)
}
