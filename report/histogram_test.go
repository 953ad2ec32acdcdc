package report

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"testing"

	"github.com/montanaflynn/stats"
)

var testPercentiles = []float64{0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100}

// checkWithinBound compares every test percentile of h with the exact nearest-rank
// percentile of the same data.
func checkWithinBound(t *testing.T, name string, h *Histogram, data []float64) {
	t.Helper()
	for _, p := range testPercentiles {
		want, err := stats.PercentileNearestRank(data, p)
		if err != nil {
			t.Fatalf("%s: stats: %v", name, err)
		}
		got, ok := h.Percentile(p)
		if !ok {
			t.Fatalf("%s: p%v: not ok", name, p)
		}
		if rel := relErr(got, want); rel > HistogramRelativeError {
			t.Errorf("%s: p%v = %v, exact %v: relative error %.4f > %.2f", name, p, got, want, rel, HistogramRelativeError)
		}
	}
}

func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

func TestHistogramPercentilesWithinBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gens := map[string]func() float64{
		"uniform-ms":      func() float64 { return r.Float64() * 1e7 },
		"lognormal-ns":    func() float64 { return math.Exp(r.NormFloat64()*2 + 15) },
		"exponential-ns":  func() float64 { return r.ExpFloat64() * 2e6 },
		"tiny-fractions":  func() float64 { return r.Float64() * 1e-3 },
		"integers":        func() float64 { return float64(r.IntN(50)) },
		"huge":            func() float64 { return r.Float64() * 1e15 },
		"bimodal-latency": func() float64 { return []float64{1e6, 5e8}[r.IntN(2)] * (1 + r.Float64()) },
	}
	for name, gen := range gens {
		for _, n := range []int{1, 7, 100, 10_000, 100_000} {
			h := NewHistogram()
			data := make([]float64, n)
			for i := range data {
				data[i] = gen()
				h.Add(data[i])
			}
			sort.Float64s(data) // stats sorts a copy per call; sorted input makes that cheap
			checkWithinBound(t, name, h, data)
			if h.Count() != uint64(n) {
				t.Fatalf("%s: count %d, want %d", name, h.Count(), n)
			}
			mn, _ := stats.Min(data)
			mx, _ := stats.Max(data)
			if h.Min() != mn || h.Max() != mx {
				t.Errorf("%s: min/max %v/%v, want exact %v/%v", name, h.Min(), h.Max(), mn, mx)
			}
		}
	}
}

// TestHistogramErrorBoundIsTight shows the test above can fail: a histogram built for a
// coarser error misses the 1% bound on the same kind of data.
func TestHistogramErrorBoundIsTight(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	coarse, err := newHistogramAccuracy(0.05, histogramMaxBins)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]float64, 10_000)
	for i := range data {
		data[i] = math.Exp(r.NormFloat64()*2 + 15)
		coarse.Add(data[i])
	}
	worst := 0.0
	for _, p := range testPercentiles {
		want, _ := stats.PercentileNearestRank(data, p)
		got, _ := coarse.Percentile(p)
		worst = math.Max(worst, relErr(got, want))
	}
	if worst <= HistogramRelativeError {
		t.Fatalf("a 5%% histogram stayed within 1%% (worst %.4f): the bound check cannot fail", worst)
	}
}

func TestHistogramMergeEqualsSingle(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	whole := NewHistogram()
	parts := []*Histogram{NewHistogram(), NewHistogram(), NewHistogram()}
	var data []float64
	for i := 0; i < 30_000; i++ {
		v := math.Exp(r.NormFloat64()*3 + 10)
		if i%1000 == 0 {
			v = 0
		}
		data = append(data, v)
		whole.Add(v)
		parts[i%3].Add(v)
	}
	merged := NewHistogram()
	for _, p := range parts {
		if err := merged.Merge(p); err != nil {
			t.Fatal(err)
		}
	}
	if merged.Count() != whole.Count() || merged.Min() != whole.Min() || merged.Max() != whole.Max() {
		t.Fatalf("merged count/min/max %d/%v/%v, whole %d/%v/%v", merged.Count(), merged.Min(), merged.Max(), whole.Count(), whole.Min(), whole.Max())
	}
	for _, p := range testPercentiles {
		a, _ := merged.Percentile(p)
		b, _ := whole.Percentile(p)
		if a != b {
			t.Errorf("p%v: merged %v, single %v (bucket counts must add exactly)", p, a, b)
		}
	}
	checkWithinBound(t, "merged", merged, data)
}

func TestHistogramMergeRejectsOtherError(t *testing.T) {
	a := NewHistogram()
	b, _ := newHistogramAccuracy(0.02, histogramMaxBins)
	b.Add(1)
	if err := a.Merge(b); err == nil {
		t.Fatal("merging histograms of different relative error succeeded")
	}
}

func TestHistogramJSONRoundTrip(t *testing.T) {
	h := NewHistogram()
	for _, v := range []float64{0, 3, 3e3, 4e6, 4e6, 9e9} {
		h.Add(v)
	}
	back := jsonRoundTrip(t, h)
	for _, p := range testPercentiles {
		x, _ := h.Percentile(p)
		y, _ := back.Percentile(p)
		if x != y {
			t.Errorf("p%v: %v after round trip, %v before", p, y, x)
		}
	}
	if back.Count() != 6 || back.Sum() != h.Sum() {
		t.Errorf("count/sum %d/%v after round trip", back.Count(), back.Sum())
	}
	bad := []string{
		`{"sketch":"ddsketch","relative_accuracy":0.01,"max_bins":2048,"count":3,"offset":0,"counts":[1]}`,
		`{"sketch":"ddsketch","relative_accuracy":0,"max_bins":2048,"count":0,"offset":0,"counts":[]}`,
		`{"sketch":"ddsketch","relative_accuracy":0.01,"max_bins":2048,"count":1,"min":5,"max":1,"offset":0,"counts":[1]}`,
		`{"sketch":"ddsketch","relative_accuracy":0.01,"max_bins":1,"count":2,"min":1,"max":2,"offset":0,"counts":[1,1]}`,
		`{"sketch":"ddsketch","relative_accuracy":0.01,"max_bins":2048,"count":1,"min":1,"max":1,"offset":2147483647,"counts":[1]}`,
		`{"sketch":"tdigest","relative_accuracy":0.01,"max_bins":2048,"count":0,"offset":0,"counts":[]}`,
		`{"count":0,"offset":0,"counts":[]}`,
		// the older bucket form
		`{"relative_error":0.0099,"count":3,"offset":0,"counts":[1]}`,
		`{"relative_error":0.7,"count":1,"min":1,"max":1,"offset":0,"counts":[1]}`,
		`{"relative_error":0.0099,"count":1,"min":5,"max":1,"offset":0,"counts":[1]}`,
	}
	for _, s := range bad {
		var x Histogram
		if err := json.Unmarshal([]byte(s), &x); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if _, ok := h.Percentile(50); ok {
		t.Fatal("empty histogram gave a percentile")
	}
	h.Add(-1)
	h.Add(math.NaN())
	if h.Count() != 0 {
		t.Fatalf("negative/NaN counted: %d", h.Count())
	}
	h.Add(0)
	h.Add(0)
	h.Add(1e30) // clamped into the top bucket, exact max kept
	if v, _ := h.Percentile(50); v != 0 {
		t.Errorf("p50 of {0,0,1e30} = %v, want 0", v)
	}
	if v, _ := h.Percentile(100); v != 1e30 {
		t.Errorf("p100 = %v, want 1e30", v)
	}
	if _, ok := h.Percentile(101); ok {
		t.Error("p101 accepted")
	}
	if b := h.Buckets(); len(b) != 2 || b[0].Count != 2 || b[1].Count != 1 {
		t.Errorf("buckets %v for two zeros and one non-zero value", b)
	}
	h.Add(math.Inf(1))
	if h.Count() != 3 {
		t.Errorf("+Inf counted: %d", h.Count())
	}
}

// TestHistogramMemoryBounded: the bins are bounded whatever the range of the values;
// past the bound the lowest collapse, and the percentiles above them keep the bound.
func TestHistogramMemoryBounded(t *testing.T) {
	h := NewHistogram()
	var data []float64
	for v := 1e-9; v < 1e20; v *= 1.001 {
		h.Add(v)
		data = append(data, v)
	}
	if n := len(h.Buckets()); n > histogramMaxBins {
		t.Fatalf("%d bins over the whole range; want <= %d", n, histogramMaxBins)
	}
	for _, p := range []float64{50, 90, 99, 99.9} {
		want, _ := stats.PercentileNearestRank(data, p)
		got, _ := h.Percentile(p)
		if rel := relErr(got, want); rel > HistogramRelativeError {
			t.Errorf("p%v = %v, exact %v: relative error %.4f after collapsing", p, got, want, rel)
		}
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("a collapsed histogram does not load back: %v", err)
	}
	if back.Count() != h.Count() {
		t.Errorf("count %d after round trip, %d before", back.Count(), h.Count())
	}
}

// TestHistogramHeapBounded: a histogram fed values over the whole float range (far more
// than its bins cover) holds about 2,048 bins of 8 bytes, not one per value.
func TestHistogramHeapBounded(t *testing.T) {
	const k = 100
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	hs := make([]*Histogram, k)
	for i := range hs {
		hs[i] = NewHistogram()
		for v := 1e-9; v < 1e300; v *= 1.01 { // about 71,000 values
			hs[i].Add(v)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(hs)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / k
	t.Logf("%d bytes a histogram", per)
	if per > 24<<10 {
		t.Fatalf("%d bytes a histogram, want <= 24 KiB", per)
	}
}

// BenchmarkHistogramAdd: the cost of one sample on the record path (lognormal latencies
// around 2 ms, in nanoseconds).
func BenchmarkHistogramAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	vals := make([]float64, 1<<16)
	for i := range vals {
		vals[i] = math.Exp(r.NormFloat64()*0.8 + 14.5)
	}
	h := NewHistogram()
	for i := 0; b.Loop(); i++ {
		h.Add(vals[i&(len(vals)-1)])
	}
}

// BenchmarkHistogramP99: a percentile read, as the progress line does four times a second.
func BenchmarkHistogramP99(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	h := NewHistogram()
	for range 100_000 {
		h.Add(math.Exp(r.NormFloat64()*0.8 + 14.5))
	}
	for b.Loop() {
		_, _ = h.Percentile(99)
	}
}
