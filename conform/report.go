package conform

import (
	"fmt"
	"sort"

	"github.com/sseharness/sseharness/report"
)

// ScenarioName is the name of the one scenario a conformance result holds.
const ScenarioName = "conform"

// reportConfig is the configuration a result file records: header names only, since
// their values are often credentials.
type reportConfig struct {
	Target    string   `json:"target"`
	ResumeURL string   `json:"resume_url"`
	StopURL   string   `json:"stop_url,omitempty"`
	Origin    string   `json:"origin"`
	Idle      string   `json:"idle"`
	Timeout   string   `json:"timeout"`
	Insecure  bool     `json:"insecure"`
	Headers   []string `json:"headers,omitempty"`
}

// Report turns r into the result format that report renders (table, markdown, JUnit,
// HTML) and saves: one scenario, "conform", whose checks are the findings in order,
// named "NN name" so that they sort and read as the checklist.
func (r Result) Report(harnessVersion string) *report.Result {
	checks := make([]report.Check, 0, len(r.Findings))
	for _, f := range r.Findings {
		checks = append(checks, report.Check{
			Name:      fmt.Sprintf("%02d %s", f.ID, f.Name),
			Level:     f.Level,
			Verdict:   report.Verdict(f.Verdict),
			Threshold: f.Threshold,
			Measured:  f.Seen,
			Spec:      f.Spec,
		})
	}
	end := r.Started.Add(r.Duration)
	sc := report.BuildScenario(report.ScenarioInput{
		Name:        ScenarioName,
		Description: "WHATWG server-sent events conformance of " + r.Config.Target,
		Start:       r.Started,
		End:         end,
		Checks:      checks,
	})
	cfg := reportConfig{
		Target: r.Config.Target, ResumeURL: r.Config.ResumeURL, StopURL: r.Config.StopURL,
		Origin: r.Config.Origin, Idle: r.Config.Idle.String(), Timeout: r.Config.Timeout.String(),
		Insecure: r.Config.Insecure,
	}
	for k := range r.Config.Header {
		cfg.Headers = append(cfg.Headers, k)
	}
	sort.Strings(cfg.Headers)
	out := &report.Result{
		HarnessVersion: harnessVersion,
		Target:         r.Config.Target,
		Start:          r.Started,
		End:            end,
		Config:         cfg,
		Scenarios:      []report.ScenarioResult{sc},
	}
	out.Evaluate()
	return out
}
