package report

import (
	"sort"

	"github.com/sseharness/sseharness/probe"
)

// Names of the server figures every report shows (n/a when the target does not expose
// them): the Prometheus names every probe reads. Other names in probe samples are
// reported too, after these.
const (
	ServerGoroutines = probe.MetricGoroutines
	ServerRSS        = probe.MetricRSS
)

// ProbeSample is one reading of the target server's own figures (probe.Sample), kept in
// the result as the server's timeline.
type ProbeSample = probe.Sample

// ServerProbe is what a scenario measured of the server: a reading before the load, the
// readings during it, and one after the clients left and the drain ended. Any of them
// may be missing (nil or empty) when the target exposes no figures.
type ServerProbe struct {
	Baseline   *ProbeSample
	Samples    []ProbeSample
	AfterDrain *ProbeSample
}

// maxServerSamples bounds the timeline a result carries; longer series are thinned.
const maxServerSamples = 1000

// ServerFigures summarises a ServerProbe per metric, with the readings kept as a timeline.
type ServerFigures struct {
	Metrics []ServerMetric `json:"metrics"`
	// Samples is every reading in time order (baseline, during, after drain), thinned to
	// at most 1,000 evenly spread ones.
	Samples []ProbeSample `json:"samples,omitempty"`
	// Note says why figures are missing or where they came from (merge).
	Note string `json:"note,omitempty"`
}

// ServerMetric is one server figure. A nil field is not available ("n/a"): the target
// did not report it at that moment, or the figure needs one that is missing. It is never
// a fake zero.
type ServerMetric struct {
	Name       string   `json:"name"`
	Baseline   *float64 `json:"baseline"`
	Peak       *float64 `json:"peak"`
	AfterDrain *float64 `json:"after_drain"`
	// PerStream is (Peak - Baseline) / streams opened.
	PerStream *float64 `json:"per_stream"`
}

// NewServerFigures summarises p for a load that opened streams streams. Goroutines and
// RSS are always listed, then every other metric name seen, in name order.
func NewServerFigures(p ServerProbe, streams int64) ServerFigures {
	var all []ProbeSample
	if p.Baseline != nil {
		all = append(all, *p.Baseline)
	}
	all = append(all, p.Samples...)
	if p.AfterDrain != nil {
		all = append(all, *p.AfterDrain)
	}
	names := map[string]bool{}
	for _, s := range all {
		for k := range s.Values {
			names[k] = true
		}
	}
	order := []string{ServerGoroutines, ServerRSS}
	var extra []string
	for k := range names {
		if k != ServerGoroutines && k != ServerRSS {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	order = append(order, extra...)

	f := ServerFigures{Samples: thinSamples(sortedSamples(all), maxServerSamples)}
	for _, name := range order {
		m := ServerMetric{Name: name}
		if p.Baseline != nil {
			m.Baseline = lookup(p.Baseline.Values, name)
		}
		if p.AfterDrain != nil {
			m.AfterDrain = lookup(p.AfterDrain.Values, name)
		}
		for _, s := range all {
			if v := lookup(s.Values, name); v != nil && (m.Peak == nil || *v > *m.Peak) {
				m.Peak = v
			}
		}
		if m.Peak != nil && m.Baseline != nil && streams > 0 {
			per := (*m.Peak - *m.Baseline) / float64(streams)
			m.PerStream = &per
		}
		f.Metrics = append(f.Metrics, m)
	}
	if !f.Available() {
		f.Note = "the target reported no server figures"
		for _, s := range all {
			if s.Err != "" {
				f.Note = "server probe failed: " + s.Err
				break
			}
		}
	}
	return f
}

// Metric returns the figure called name.
func (f ServerFigures) Metric(name string) (ServerMetric, bool) {
	for _, m := range f.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return ServerMetric{}, false
}

// Available reports whether any server figure was measured.
func (f ServerFigures) Available() bool {
	for _, m := range f.Metrics {
		if m.Baseline != nil || m.Peak != nil || m.AfterDrain != nil {
			return true
		}
	}
	return false
}

func lookup(values map[string]float64, name string) *float64 {
	v, ok := values[name]
	if !ok {
		return nil
	}
	return &v
}

func sortedSamples(s []ProbeSample) []ProbeSample {
	out := append([]ProbeSample(nil), s...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// thinSamples keeps at most max samples, evenly spread, always the first and last.
func thinSamples(s []ProbeSample, max int) []ProbeSample {
	if len(s) <= max {
		return s
	}
	out := make([]ProbeSample, 0, max)
	for i := 0; i < max; i++ {
		out = append(out, s[i*(len(s)-1)/(max-1)])
	}
	return out
}
