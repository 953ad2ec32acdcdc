package report

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

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
