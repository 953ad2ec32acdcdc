package report

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// shardSplit is one synthetic run folded whole and split into shards by stream, each
// with the groups (by stream) and windows (by time) the scenario kinds declare.
type shardSplit struct {
	whole  ScenarioInput
	shards []ScenarioInput
}

func splitRun(t *testing.T, n int, s *synthRun) shardSplit {
	t.Helper()
	var all []runner.Record
	s.run(func(r runner.Record) { all = append(all, r) })
	mid := t0.Add(time.Duration(s.streams) * s.rampStep / 2)
	half := s.streams / 2
	// groups: "a" streams below half, "b" the rest; windows: w1 before mid, w2 after,
	// upto-1 before mid, upto-2 all of it.
	names := []string{"a", "b", "w1", "w2", "upto-1", "upto-2"}
	member := func(name string, r runner.Record) bool {
		switch name {
		case "a":
			return r.Stream < half
		case "b":
			return r.Stream >= half
		case "w1":
			return r.Time.Before(mid)
		case "upto-1": // until the streams opened by mid have had their first events
			return r.Time.Before(mid.Add(time.Second))
		case "w2":
			return !r.Time.Before(mid)
		}
		return true
	}
	input := func(keep func(runner.Record) bool, streams func(int) bool, server ServerProbe) ScenarioInput {
		agg := mustAggregate(t, AggregateConfig{Start: t0})
		in := ScenarioInput{Name: "x", Start: t0, End: t0.Add(time.Minute), Aggregate: agg, Server: server}
		groups := map[string]*Aggregate{}
		for _, name := range names {
			groups[name] = mustAggregate(t, AggregateConfig{Start: t0})
		}
		for st := 0; st < s.streams; st++ {
			if !streams(st) {
				continue
			}
			in.Requested.Streams++
		}
		for _, r := range all {
			if !keep(r) {
				continue
			}
			agg.Add(&r)
			for _, name := range names {
				if member(name, r) {
					groups[name].Add(&r)
				}
			}
		}
		for _, name := range names {
			req := 0
			for st := 0; st < s.streams; st++ {
				if !streams(st) {
					continue
				}
				switch {
				// The streams opened by the window's end: the first half by mid.
				case name == "a" && st < half, name == "b" && st >= half, (name == "w1" || name == "upto-1") && st < half,
					name == "w2" || name == "upto-2":
					req++
				}
			}
			in.Groups = append(in.Groups, GroupInput{Name: name, Requested: req, Aggregate: groups[name]})
		}
		return in
	}
	probe := probeSeries(t0, 10, float64(s.streams))
	out := shardSplit{whole: input(func(runner.Record) bool { return true }, func(int) bool { return true }, probe)}
	for k := range n {
		server := ServerProbe{}
		if k == 1 {
			server = probe
		}
		in := input(func(r runner.Record) bool { return r.Stream%n == k }, func(st int) bool { return st%n == k }, server)
		// What a scenario measures itself: a count over its own streams, and a figure
		// of the one server (the worst shard's counts).
		in.Measures = []Measure{
			{Name: "stalled", Value: float64(k), Of: 5, Merge: MergeSum, Note: fmt.Sprintf("%d of 5 stalled", k)},
			{Name: "server-excess", Value: float64(10 * k), Of: 1, Merge: MergeMax},
			{Name: "unexamined", Value: 0, Of: 0, Merge: MergeSum},
		}
		out.shards = append(out.shards, in)
		out.whole.Measures = []Measure{
			{Name: "stalled", Value: float64(n * (n - 1) / 2), Of: int64(5 * n), Merge: MergeSum},
			{Name: "server-excess", Value: float64(10 * (n - 1)), Of: 1, Merge: MergeMax},
			{Name: "unexamined", Value: 0, Of: 0, Merge: MergeSum},
		}
	}
	return out
}

// TestMergedRulesJudgeLikeOneRun: for the rule shapes of every scenario kind (counts with
// evidence, a group minus another, a group's percentile with an and-rule, server figures,
// windows of a stepped load, figures the scenario measured itself), the result merged from shards judges every check as the
// single run over the same records does, with thresholds on both sides of the value.
func TestMergedRulesJudgeLikeOneRun(t *testing.T) {
	split := splitRun(t, 3, &synthRun{streams: 300, events: 10, rampStep: 10 * time.Millisecond, seed: 11, interleave: true})
	probeWhole := BuildScenario(split.whole)
	value := func(r Rule) float64 {
		c := Check{Threshold: "-"}
		r.And = nil
		r.evaluateOne(&probeWhole, &c)
		if c.Verdict == VerdictNotApplicable || c.Verdict == "" {
			t.Fatalf("rule %+v has no value on the whole run: %s", r, c.Detail)
		}
		v := 0.0
		for i, term := range r.terms() {
			view, _ := probeWhole.view(term.Group)
			d, _ := lookupMetric(term.Metric)
			x, _ := d.get(view)
			v += r.sign(i) * x
		}
		return v
	}
	silent := func(g string) Rule { return Rule{Metric: "silent_streams", Group: g, Op: "<=", Limit: 0} }
	kinds := map[string][]Rule{
		"hold": {
			{Metric: "unopened_streams", Op: "<="},
			{Metric: "errors", Op: "<=", Needs: []Evidence{EvidenceHead}},
			{Metric: "missing_ids", Op: "<=", Needs: []Evidence{EvidenceEvent}},
			{Metric: "duplicate_ids", Op: "<=", Needs: []Evidence{EvidenceEvent}},
		},
		"proxy-buffering": {
			{Metric: "latency_p99", Group: "b", Minus: []Term{{Metric: "latency_p99", Group: "a"}}, Op: "<=", Needs: []Evidence{EvidenceEvent}, And: []Rule{silent("b")}},
			{Metric: "latency_p99", Group: "a", Op: "<=", Needs: []Evidence{EvidenceEvent}, And: []Rule{silent("a")}},
		},
		"slow-consumer": {
			{Metric: "latency_p99", Group: "b", Op: "<=", Needs: []Evidence{EvidenceEvent}, And: []Rule{silent("b")}},
			{Metric: "server_rss_bytes_peak", Minus: []Term{{Metric: "server_rss_bytes_baseline"}}, Op: "<=", Needs: []Evidence{EvidenceServer}},
		},
		"capacity": {
			{Metric: "latency_p99", Group: "w1", Op: "<=", Needs: []Evidence{EvidenceEvent}, And: []Rule{
				{Metric: "errors", Group: "w1", Op: "<=", Limit: 100}, silent("upto-1"),
				{Metric: "latency_p99", Group: "w2", Op: "<=", Limit: 1e6, Needs: []Evidence{EvidenceEvent}},
				{Metric: "errors", Group: "w2", Op: "<=", Limit: 100}, silent("upto-2"),
			}},
		},
		"starvation": {
			{Metric: "ttfe_max", Op: "<=", Needs: []Evidence{EvidenceEvent}, And: []Rule{silent("")}},
		},
		"reconnect-storm": {
			{Metric: "missing_ids", Op: "<=", Needs: []Evidence{EvidenceEvent}},
			{Metric: "duplicate_ids", Op: "<=", Needs: []Evidence{EvidenceEvent}},
		},
		"measured by the scenario (same-id-reconnect, six-connection-limit, completion, half-open, mid-stream-disconnect)": {
			{Metric: "measure.stalled", Op: "<="},
			{Metric: "measure.server-excess", Op: "<="},
		},
		"resume": {
			{Metric: "missing_ids", Plus: []Term{{Metric: "duplicate_ids"}}, Op: "<=", Needs: []Evidence{EvidenceEvent}},
			{Metric: "out_of_order_ids", Op: "<=", Needs: []Evidence{EvidenceEvent}},
		},
	}
	for kind, rules := range kinds {
		t.Run(kind, func(t *testing.T) {
			var checks []Check
			for i, r := range rules {
				v := value(r)
				// A limit the value meets and one it misses, clear of the histogram's 1%.
				for j, lim := range []float64{v*1.05 + 1e-9, v*0.95 - 1} {
					rr := r
					rr.Limit = lim
					checks = append(checks, Check{Name: fmt.Sprintf("%s-%d-%d", kind, i, j), Rule: &rr})
				}
			}
			whole := split.whole
			whole.Checks = checks
			one := BuildScenario(whole)
			dir := t.TempDir()
			var shards []*Result
			for k, in := range split.shards {
				in.Checks = checks
				r := &Result{HarnessVersion: "v1", Target: "t", Start: t0, End: t0.Add(time.Minute), Shard: &Shard{Index: k, Count: len(split.shards)},
					Scenarios: []ScenarioResult{BuildScenario(in)}}
				r.Evaluate()
				// Through the file format, as `report merge` reads shards.
				shards = append(shards, saveLoad(t, filepath.Join(dir, fmt.Sprintf("s%d.json", k)), r))
			}
			merged, err := Merge(shards)
			if err != nil {
				t.Fatal(err)
			}
			ms := merged.Scenarios[0]
			passes, fails := 0, 0
			for i, c := range ms.Checks {
				w := one.Checks[i]
				if c.Name != w.Name || c.Verdict != w.Verdict || c.Merged {
					t.Errorf("%s: merged %s (%s), one run %s (%s)", w.Name, c.Verdict, c.Measured, w.Verdict, w.Measured)
				}
				switch w.Verdict {
				case VerdictPass:
					passes++
				case VerdictFail:
					fails++
				}
			}
			if c, ok := ms.Measure("stalled"); ok && (c.Value != 3 || c.Of != 15) {
				t.Errorf("merged stalled %+v, want 3 of 15", c)
			}
			if passes == 0 || fails == 0 || ms.Verdict != one.Verdict {
				t.Errorf("%d passes, %d fails; verdicts merged %s, one run %s: want both outcomes, equal", passes, fails, ms.Verdict, one.Verdict)
			}
		})
	}
}
