package report

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/montanaflynn/stats"

	"github.com/sseharness/sseharness/runner"
)

// shardedRun aggregates one synthetic run twice: whole, and split into n shards by
// stream (as `run --shard I/N` splits streams). Each shard result goes through a file
// round trip, as in the Kubernetes flow.
func shardedRun(t *testing.T, n int, s *synthRun) (whole *Result, shards []*Result) {
	t.Helper()
	wholeAgg := mustAggregate(t, AggregateConfig{Start: t0})
	aggs := make([]*Aggregate, n)
	for i := range aggs {
		aggs[i] = mustAggregate(t, AggregateConfig{Start: t0})
	}
	s.run(func(r runner.Record) {
		wholeAgg.Add(&r)
		aggs[r.Stream%n].Add(&r)
	})
	checks := func(shard int) []Check {
		return []Check{
			{Name: "lost-ids", Rule: &Rule{Metric: "missing_ids", Op: "<=", Limit: 5}},
			{Name: "latency-p99", Rule: &Rule{Metric: "latency_p99", Op: "<=", Limit: 100}},
			{Name: "stall", Verdict: map[bool]Verdict{true: VerdictFail, false: VerdictPass}[shard == 2],
				Threshold: "<= 1s", Measured: fmt.Sprintf("%dms", 100*(shard+1)), Detail: fmt.Sprintf("worst stream of shard %d", shard)},
		}
	}
	probe := probeSeries(t0, 10, float64(s.streams))
	build := func(agg *Aggregate, shard int, server ServerProbe, streams int) *Result {
		r := &Result{HarnessVersion: "v1", Target: "http://127.0.0.1:1/", Start: t0, End: t0.Add(time.Minute),
			Scenarios: []ScenarioResult{BuildScenario(ScenarioInput{
				Name: "resume", Start: t0, End: t0.Add(time.Minute), Aggregate: agg, Server: server,
				Requested: RequestedLoad{Streams: streams, OpenRate: 100 / float64(n)}, Checks: checks(shard),
			})}}
		r.Evaluate()
		return r
	}
	whole = build(wholeAgg, -1, probe, s.streams)
	dir := t.TempDir()
	for i, agg := range aggs {
		server := ServerProbe{}
		if i == 1 {
			server = probe // only one shard was given the probe
		}
		r := build(agg, i, server, s.streams/n)
		r.Shard = &Shard{Index: i, Count: n}
		shards = append(shards, saveLoad(t, filepath.Join(dir, fmt.Sprintf("shard-%d.json", i)), r))
	}
	// Shards are handed over in any order.
	shards[0], shards[n-1] = shards[n-1], shards[0]
	return whole, shards
}

func TestMergeEqualsOneAggregate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		streams int
		events  int
	}{
		{"exact-whole", 200, 20},     // 4,400 latencies: the whole run's percentiles are exact
		{"histogram-whole", 600, 30}, // 19,800: the whole run's come from its histogram too
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &synthRun{streams: tc.streams, events: tc.events, rampStep: 5 * time.Millisecond, seed: 21, keep: true}
			whole, shards := shardedRun(t, 4, s)
			merged, err := Merge(shards)
			if err != nil {
				t.Fatal(err)
			}
			w, m := whole.Scenarios[0].Metrics, merged.Scenarios[0].Metrics
			counts := [][3]any{
				{"records", w.Records, m.Records}, {"streams", w.Streams, m.Streams}, {"attempts", w.Attempts, m.Attempts},
				{"events", w.Events, m.Events}, {"comments", w.Comments, m.Comments}, {"bytes", w.Bytes, m.Bytes},
				{"reconnects", w.Reconnects, m.Reconnects}, {"missing", w.MissingIDs, m.MissingIDs},
				{"duplicates", w.DuplicateIDs, m.DuplicateIDs}, {"out of order", w.OutOfOrderIDs, m.OutOfOrderIDs},
				{"duplicate senders", w.DuplicateSenders, m.DuplicateSenders},
				{"errors", w.Errors, m.Errors}, {"close reasons", w.CloseReasons, m.CloseReasons},
				{"statuses", w.Statuses, m.Statuses}, {"protocols", w.Protocols, m.Protocols},
				{"first open", w.FirstOpen, m.FirstOpen}, {"last open", w.LastOpen, m.LastOpen},
			}
			for _, c := range counts {
				if !reflect.DeepEqual(c[1], c[2]) {
					t.Errorf("%s: merged %v, one aggregate %v", c[0], c[2], c[1])
				}
			}
			for _, d := range durationMetrics() {
				wd, md := d.get(&w), d.get(&m)
				if wd.Count != md.Count || wd.MinMS != md.MinMS || wd.MaxMS != md.MaxMS {
					t.Errorf("%s: count/min/max merged %d/%v/%v, one aggregate %d/%v/%v", d.name, md.Count, md.MinMS, md.MaxMS, wd.Count, wd.MinMS, wd.MaxMS)
				}
				if wd.Count == 0 {
					continue
				}
				for _, p := range []struct {
					name string
					w, m float64
				}{{"p50", wd.P50MS, md.P50MS}, {"p90", wd.P90MS, md.P90MS}, {"p99", wd.P99MS, md.P99MS}} {
					switch {
					case !wd.Exact && p.w != p.m:
						// Both from histograms: bucket counts add exactly, so they agree exactly.
						t.Errorf("%s %s: merged %v, one aggregate's histogram %v", d.name, p.name, p.m, p.w)
					case relErr(p.m, p.w) > HistogramRelativeError:
						t.Errorf("%s %s: merged %v vs exact %v: beyond %.0f%%", d.name, p.name, p.m, p.w, 100*HistogramRelativeError)
					}
				}
			}
			// And against the exact latencies themselves.
			for _, p := range []float64{50, 90, 99} {
				exact, _ := stats.PercentileNearestRank(s.latencies, p)
				got, _ := m.Latency.Percentile(p)
				if e := relErr(float64(got), exact); e > HistogramRelativeError {
					t.Errorf("merged latency p%v %v vs exact %v: error %.4f", p, got, exact, e)
				}
			}
			// The timeline adds up per step.
			wt, mt := whole.Scenarios[0].Timeline, merged.Scenarios[0].Timeline
			if len(wt.Points) != len(mt.Points) || wt.StepMS != mt.StepMS {
				t.Fatalf("timeline %d points of %dms merged, %d of %dms whole", len(mt.Points), mt.StepMS, len(wt.Points), wt.StepMS)
			}
			for i := range wt.Points {
				if wt.Points[i].Events != mt.Points[i].Events || wt.Points[i].Opened != mt.Points[i].Opened || mt.Points[i].Open < wt.Points[i].Open {
					t.Errorf("timeline point %d: merged %+v, whole %+v", i, mt.Points[i], wt.Points[i])
				}
			}
		})
	}
}

func TestMergeChecksAndServer(t *testing.T) {
	whole, shards := shardedRun(t, 4, &synthRun{streams: 400, events: 10, rampStep: 5 * time.Millisecond, seed: 5})
	merged, err := Merge(shards)
	if err != nil {
		t.Fatal(err)
	}
	if merged.MergedShards != 4 || merged.Shard != nil {
		t.Errorf("merged shards %d shard %+v", merged.MergedShards, merged.Shard)
	}
	s := merged.Scenarios[0]
	byName := map[string]Check{}
	for _, c := range s.Checks {
		byName[c.Name] = c
	}
	// missing ids: each shard has at most 5 (passes alone), the whole run has 8 (fails):
	// the rule is re-evaluated on the merged metrics, matching the whole run.
	for _, sh := range shards {
		if c := sh.Scenarios[0].Checks[0]; c.Verdict != VerdictPass {
			t.Fatalf("shard check %+v should pass on its own", c)
		}
	}
	wholeLost := whole.Scenarios[0].Checks[0]
	if c := byName["lost-ids"]; c.Verdict != VerdictFail || c.Verdict != wholeLost.Verdict || c.Measured != wholeLost.Measured || c.Merged {
		t.Errorf("lost-ids merged %+v, whole %+v", c, wholeLost)
	}
	// A check without a rule takes the worst shard's verdict and lists each shard.
	if c := byName["stall"]; c.Verdict != VerdictFail || !c.Merged || !strings.Contains(c.Measured, "shard 2/4: 300ms") || !strings.Contains(c.Detail, "shard 2/4: worst stream of shard 2") {
		t.Errorf("stall %+v", c)
	}
	if s.Verdict != VerdictFail || merged.Verdict != VerdictFail {
		t.Errorf("verdicts %s / %s", s.Verdict, merged.Verdict)
	}
	// Server figures once, from the shard that had them; per stream over all streams.
	g, ok := s.Server.Metric(ServerGoroutines)
	wg, _ := whole.Scenarios[0].Server.Metric(ServerGoroutines)
	if !ok || g.Peak == nil || *g.Peak != *wg.Peak || *g.PerStream != *wg.PerStream || !strings.Contains(s.Server.Note, "shard 1/4") {
		t.Errorf("server %+v (note %q), whole %+v", g, s.Server.Note, wg)
	}
	if s.Load.Requested.Streams != 400 || s.Load.Achieved.Streams != 400 || s.Load.Requested.OpenRate != 100 {
		t.Errorf("load %+v", s.Load)
	}
}

func TestMergeRejectsBadShardSets(t *testing.T) {
	_, shards := shardedRun(t, 3, &synthRun{streams: 30, events: 2, rampStep: time.Millisecond, seed: 1})
	cases := []struct {
		name   string
		shards []*Result
		want   string
	}{
		{"none", nil, "no shard results"},
		{"missing", shards[:2], "is missing"},
		{"twice", []*Result{shards[0], shards[1], shards[2], shards[1]}, "given twice"},
		{"other target", func() []*Result {
			c := cloneResult(t, shards[2])
			c.Target = "http://elsewhere/"
			return []*Result{shards[0], shards[1], c}
		}(), "different targets"},
		{"other count", func() []*Result {
			c := cloneResult(t, shards[2])
			c.Shard.Count = 4
			return []*Result{shards[0], shards[1], c}
		}(), "shard count"},
		{"no histogram", func() []*Result {
			c := cloneResult(t, shards[2])
			c.Scenarios[0].Metrics.Latency.Histogram = nil
			return []*Result{shards[0], shards[1], c}
		}(), "no histogram"},
	}
	for _, c := range cases {
		_, err := Merge(c.shards)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := Merge(shards); err != nil {
		t.Errorf("the complete set: %v", err)
	}
}

// saveLoad writes r to path and reads it back, as `report merge` reads shards.
func saveLoad(t *testing.T, path string, r *Result) *Result {
	t.Helper()
	if err := Save(path, r); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// jsonRoundTrip marshals v and unmarshals it into a new T.
func jsonRoundTrip[T any](t *testing.T, v *T) *T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	back := new(T)
	if err := json.Unmarshal(b, back); err != nil {
		t.Fatal(err)
	}
	return back
}
