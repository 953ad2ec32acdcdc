package report

import (
	"fmt"
	"sort"
	"strings"
)

// Measure is a figure a scenario measured itself, from its sources' state or the
// server's metrics (streams still open after a reload, requests that waited, a metric
// still above its baseline), for its rules to judge as "measure.NAME". It says how it
// merges, so a merged result judges it again exactly: counts over disjoint shards add
// up, figures of the one server under test take the worst shard's.
type Measure struct {
	Name string `json:"name"`
	// Value is a count (streams, requests, a metric's excess over its baseline).
	Value float64 `json:"value"`
	// Of is how many things were examined (streams, requests, probes): 0 means nothing
	// was, and a rule over the measure is n/a, never a pass on "0 of 0".
	Of    int64        `json:"of"`
	Merge MeasureMerge `json:"merge"`
	// Note says what lies behind the value, in words; shown as the check's detail.
	Note string `json:"note,omitempty"`
}

// MeasureMerge says how a Measure combines across shards.
type MeasureMerge string

// Merge policies.
const (
	// MergeSum adds values and Of: a count over each shard's own streams.
	MergeSum MeasureMerge = "sum"
	// MergeMax takes the largest value (and Of): a figure of the one server, the worst
	// any shard saw. That is exact for shards of one server; a merge of shards that
	// scraped different servers (different metrics URLs) says so in the note.
	MergeMax MeasureMerge = "max"
)

// Measure returns the named measure of s.
func (s *ScenarioResult) Measure(name string) (Measure, bool) {
	for _, m := range s.Measures {
		if m.Name == name {
			return m, true
		}
	}
	return Measure{}, false
}

// measureDef reads measure key of a scenario result as a metric.
func measureDef(name, key string) metricDef {
	return metricDef{name: name, unit: unitCount, worse: 1,
		get: func(s *ScenarioResult) (float64, bool) {
			m, ok := s.Measure(key)
			return m.Value, ok && m.Of > 0
		},
		explain: func(s *ScenarioResult) string {
			m, _ := s.Measure(key)
			return m.Note
		},
	}
}

// mergeMeasures combines the measures of shards by each one's policy; notes are kept,
// each once.
func mergeMeasures(parts []shardScenario) ([]Measure, error) {
	var out []Measure
	index := map[string]int{}
	notes := map[string][]string{}
	for _, p := range parts {
		for _, m := range p.s.Measures {
			if m.Note != "" {
				notes[m.Name] = append(notes[m.Name], p.label+": "+m.Note)
			}
			i, ok := index[m.Name]
			if !ok {
				index[m.Name] = len(out)
				out = append(out, m)
				continue
			}
			o := &out[i]
			if o.Merge != m.Merge {
				return nil, fmt.Errorf("measure %s merges by %s in one shard and %s in another", m.Name, o.Merge, m.Merge)
			}
			switch m.Merge {
			case MergeSum:
				o.Value += m.Value
				o.Of += m.Of
			case MergeMax:
				o.Value = max(o.Value, m.Value)
				o.Of = max(o.Of, m.Of)
			default:
				return nil, fmt.Errorf("measure %s: unknown merge %q", m.Name, m.Merge)
			}
		}
	}
	for i := range out {
		if ns := notes[out[i].Name]; len(ns) > 1 {
			sort.Strings(ns)
			out[i].Note = strings.Join(ns, "; ")
		}
		if out[i].Merge == MergeMax {
			if urls := serversOf(parts); len(urls) > 1 {
				out[i].Note = strings.TrimPrefix(out[i].Note+"; ", "; ") +
					fmt.Sprintf("the worst figure of %d different servers (metrics URLs %s), not one server's", len(urls), strings.Join(urls, ", "))
			}
		}
	}
	return out, nil
}

// serversOf is the different metrics URLs the shards scraped, sorted; shards that do
// not say are left out.
func serversOf(parts []shardScenario) []string {
	seen := map[string]bool{}
	var urls []string
	for _, p := range parts {
		if p.metricsURL != "" && !seen[p.metricsURL] {
			seen[p.metricsURL] = true
			urls = append(urls, p.metricsURL)
		}
	}
	sort.Strings(urls)
	return urls
}
