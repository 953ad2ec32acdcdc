package report

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/montanaflynn/stats"
)

// TestNearestRankMatchesStats: the percentile of sorted samples is exactly
// montanaflynn/stats' nearest rank, at every size and percentile, edges included.
func TestNearestRankMatchesStats(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1, 2, 3, 7, 10, 100, 1001, DefaultExactSamples} {
		data := make([]float64, n)
		for i := range data {
			data[i] = float64(r.IntN(n)) // duplicates too
		}
		sorted := slices.Sorted(slices.Values(data))
		for _, p := range []float64{0, 0.01, 1, 10, 33.3, 50, 66.7, 90, 99, 99.9, 99.99, 100} {
			want, _ := stats.PercentileNearestRank(data, p)
			if got, ok := nearestRank(sorted, p); !ok || got != want {
				t.Errorf("n=%d p%v: %v (%v), stats %v", n, p, got, ok, want)
			}
		}
	}
	for _, p := range []float64{-1, 101} {
		if _, ok := nearestRank([]float64{1}, p); ok {
			t.Errorf("p%v accepted", p)
		}
	}
	if _, ok := nearestRank(nil, 50); ok {
		t.Error("no samples gave a percentile")
	}
}

// TestDistributionStatsExact: an exact distribution's figures are those of
// montanaflynn/stats over its samples, whatever order they came in.
func TestDistributionStatsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	d := newDistribution(DefaultExactSamples)
	var ns []float64
	for range 5000 {
		v := time.Duration(r.Int64N(int64(time.Second)))
		d.add(v)
		ns = append(ns, float64(v))
	}
	s := d.stats()
	if !s.Exact {
		t.Fatal("5000 samples not exact")
	}
	for _, c := range []struct {
		p   float64
		got float64
	}{{50, s.P50MS}, {90, s.P90MS}, {99, s.P99MS}} {
		want, _ := stats.PercentileNearestRank(ns, c.p)
		if c.got != nsToMS(want) {
			t.Errorf("p%v = %v ms, stats %v ms", c.p, c.got, nsToMS(want))
		}
	}
	if mx, _ := stats.Max(ns); s.MaxMS != nsToMS(mx) {
		t.Errorf("max %v, want %v", s.MaxMS, nsToMS(mx))
	}
}

// BenchmarkDistributionStats: summarising a distribution of DefaultExactSamples exact
// samples, as Metrics does for each of its distributions under the aggregate's lock.
func BenchmarkDistributionStats(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	d := newDistribution(DefaultExactSamples)
	for range DefaultExactSamples {
		d.add(time.Duration(math.Exp(r.NormFloat64()*0.8 + 14.5)))
	}
	for b.Loop() {
		_ = d.stats()
	}
}
