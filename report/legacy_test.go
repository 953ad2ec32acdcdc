package report

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/montanaflynn/stats"
)

// legacyResultFile was written by the hand-written log-bucketed histogram that result
// files carried before the sketch (relative_error/offset/counts); it must keep loading,
// rendering, merging and comparing.
const legacyResultFile = "testdata/result-legacy-buckets.json"

// legacyLatencies are the latencies (nanoseconds) of the first scenario of
// legacyResultFile: more than DefaultExactSamples, so its percentiles came from the old
// histogram, with a few zeros and a slow tail.
func legacyLatencies() []time.Duration {
	r := rand.New(rand.NewPCG(13, 14))
	out := make([]time.Duration, 25_000)
	for i := range out {
		v := math.Exp(r.NormFloat64()*0.8 + 14.5) // about 2 ms
		switch {
		case i%997 == 0:
			v = 0
		case i%50 == 0:
			v *= 40 // a tail near 80 ms
		}
		out[i] = time.Duration(v)
	}
	return out
}

// legacyFixture is fixtureResult with the first scenario's latency from legacyLatencies.
func legacyFixture(t testing.TB) *Result {
	t.Helper()
	r := fixtureResult(t)
	d := newDistribution(DefaultExactSamples)
	for _, v := range legacyLatencies() {
		d.add(v)
	}
	r.Scenarios[0].Metrics.Latency = d.stats()
	return r
}

// legacyBound is the bound on a percentile of a histogram converted from the older
// bucket form: its own 0.99% and the sketch's 1% (see Histogram.UnmarshalJSON).
const legacyBound = (1+0.0099)*(1+HistogramRelativeError) - 1

// checkLatency compares the latency percentiles of s with the exact nearest-rank ones of
// data, within bound, and its count, min and max with the exact ones.
func checkLatency(t *testing.T, name string, s DurationStats, data []time.Duration, bound float64) {
	t.Helper()
	ns := make([]float64, len(data))
	for i, v := range data {
		ns[i] = float64(v)
	}
	if s.Count != uint64(len(data)) || s.Histogram == nil || s.Histogram.Count() != uint64(len(data)) {
		t.Fatalf("%s: count %d (histogram %v), want %d", name, s.Count, s.Histogram, len(data))
	}
	mn, _ := stats.Min(ns)
	mx, _ := stats.Max(ns)
	if s.Histogram.Min() != mn || s.Histogram.Max() != mx {
		t.Errorf("%s: min/max %v/%v, want exact %v/%v", name, s.Histogram.Min(), s.Histogram.Max(), mn, mx)
	}
	worst := 0.0
	for _, p := range []float64{1, 10, 50, 90, 99, 99.9} {
		want, _ := stats.PercentileNearestRank(ns, p)
		got, ok := s.Percentile(p)
		if !ok {
			t.Fatalf("%s: p%v: no value", name, p)
		}
		e := relErr(float64(got), want)
		worst = math.Max(worst, e)
		if e > bound {
			t.Errorf("%s: p%v = %v, exact %v: relative error %.4f > %.4f", name, p, got, time.Duration(want), e, bound)
		}
	}
	t.Logf("%s: worst relative error %.4f (bound %.4f)", name, worst, bound)
}

// TestLegacyResultLoads: a result file of the older bucket form loads, every renderer
// reads it, its histograms convert into the sketch within legacyBound, and written back it
// is of the current form and loads the same.
func TestLegacyResultLoads(t *testing.T) {
	old, err := Load(legacyResultFile)
	if err != nil {
		t.Fatal(err)
	}
	checkLatency(t, "legacy", old.Scenarios[0].Metrics.Latency, legacyLatencies(), legacyBound)
	for _, f := range Formats() {
		render, err := RendererFor(f)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := render(&b, old); err != nil || b.Len() == 0 {
			t.Errorf("%s of the legacy file: %v (%d bytes)", f, err, b.Len())
		}
	}
	var b bytes.Buffer
	if err := Encode(&b, old); err != nil {
		t.Fatal(err)
	}
	if old.SchemaVersion != SchemaVersion || strings.Contains(b.String(), `"relative_error"`) ||
		!strings.Contains(b.String(), `"sketch": "ddsketch"`) || !strings.Contains(b.String(), `"schema_version": 2`) {
		t.Fatal("a legacy file written back is not of the current form")
	}
	back, err := Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	a, z := old.Scenarios[0].Metrics.Latency, back.Scenarios[0].Metrics.Latency
	for _, p := range testPercentiles {
		x, _ := a.Percentile(p)
		y, _ := z.Percentile(p)
		if x != y {
			t.Errorf("p%v: %v written back, %v converted", p, y, x)
		}
	}
}

// TestLegacyResultMergesWithNew: a legacy result merged with one of the current form (the
// same samples, measured again) holds both sides' counts exactly and percentiles within
// legacyBound of the exact ones of all the samples.
func TestLegacyResultMergesWithNew(t *testing.T) {
	old, err := Load(legacyResultFile)
	if err != nil {
		t.Fatal(err)
	}
	cur := legacyFixture(t)
	checkLatency(t, "current", cur.Scenarios[0].Metrics.Latency, legacyLatencies(), HistogramRelativeError)
	merged, err := Merge([]*Result{old, cur})
	if err != nil {
		t.Fatal(err)
	}
	both := append(legacyLatencies(), legacyLatencies()...)
	checkLatency(t, "merged", merged.Scenarios[0].Metrics.Latency, both, legacyBound)
	for i := range old.Scenarios {
		o, c, m := old.Scenarios[i].Metrics, cur.Scenarios[i].Metrics, merged.Scenarios[i].Metrics
		if m.Events != o.Events+c.Events || m.TimeToFirstEvent.Count != o.TimeToFirstEvent.Count+c.TimeToFirstEvent.Count {
			t.Errorf("%s: merged events %d, ttfe count %d; want the sums of %d+%d, %d+%d", old.Scenarios[i].Name,
				m.Events, m.TimeToFirstEvent.Count, o.Events, c.Events, o.TimeToFirstEvent.Count, c.TimeToFirstEvent.Count)
		}
	}
}

// TestLegacyResultCompares: compare reads a legacy base against a current result of the
// same samples: the latency percentiles differ by no more than the conversion's bound and
// nothing regresses.
func TestLegacyResultCompares(t *testing.T) {
	old, err := Load(legacyResultFile)
	if err != nil {
		t.Fatal(err)
	}
	c := Compare(old, legacyFixture(t), DefaultGates())
	if c.Regressed() {
		t.Errorf("a legacy base against the same samples regressed: %v %v", c.Regressions(), c.Lost)
	}
	seen := 0
	for _, r := range c.Rows {
		if r.Scenario != "resume" || !strings.HasPrefix(r.Metric, "latency_p") {
			continue
		}
		seen++
		if !r.BaseOK || !r.NewOK || math.Abs(r.ChangePct) > 100*legacyBound {
			t.Errorf("%s: base %v new %v (%+.2f%%)", r.Metric, r.Base, r.New, r.ChangePct)
		}
	}
	if seen == 0 {
		t.Fatal("no latency percentile compared")
	}
}
