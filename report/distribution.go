package report

import (
	"errors"
	"math"
	"slices"
	"time"

	"github.com/montanaflynn/stats"
)

// DefaultExactSamples is how many samples a distribution keeps exactly before it relies on
// its histogram alone.
const DefaultExactSamples = 10_000

// distribution holds the samples of one duration. Up to limit samples are kept exactly
// and percentiles come from montanaflynn/stats; past the limit the samples are dropped and
// percentiles come from the histogram, which is always fed, so memory stays bounded by
// limit plus the histogram's fixed bucket range.
type distribution struct {
	limit int
	exact []float64 // nanoseconds; nil once more than limit samples were added
	hist  *Histogram
}

func newDistribution(limit int) *distribution {
	return &distribution{limit: limit, hist: NewHistogram()}
}

// add records d; negative durations (not measured) are ignored.
func (d *distribution) add(v time.Duration) {
	if v < 0 {
		return
	}
	d.hist.Add(float64(v))
	switch n := d.hist.Count(); {
	case n <= uint64(d.limit):
		d.exact = append(d.exact, float64(v))
	case d.exact != nil:
		d.exact = nil
	}
}

func (d *distribution) isExact() bool {
	return d.hist.Count() <= uint64(d.limit)
}

// stats summarises the distribution for a result file; the summary stays valid while
// the distribution keeps growing.
func (d *distribution) stats() DurationStats { return d.copy().summarise() }

// copy is an independent copy of d: what the aggregate takes under its lock, to
// summarise after it.
func (d *distribution) copy() *distribution {
	return &distribution{limit: d.limit, exact: slices.Clone(d.exact), hist: d.hist.Clone()}
}

// summarise summarises a distribution the caller owns alone (a copy): its exact
// samples are sorted in place, once for all the percentiles, and its histogram goes
// into the summary.
func (d *distribution) summarise() DurationStats {
	s := DurationStats{Count: d.hist.Count(), Exact: d.isExact()}
	if s.Count == 0 {
		return s // no histogram: nothing to merge or draw
	}
	s.Histogram = d.hist
	if !s.Exact {
		s.fillFrom(d.hist.Percentile)
		return s
	}
	slices.Sort(d.exact)
	s.fillFrom(func(p float64) (float64, bool) { return nearestRank(d.exact, p) })
	// montanaflynn/stats over the exact samples, as the percentiles are.
	mean, _ := stats.Mean(d.exact)
	s.MeanMS = nsToMS(mean)
	return s
}

// nearestRank is the nearest-rank percentile p of sorted values: the definition of
// montanaflynn/stats.PercentileNearestRank (tested against it), without its sorted copy.
func nearestRank(sorted []float64, p float64) (float64, bool) {
	n := len(sorted)
	if n == 0 || math.IsNaN(p) || p < 0 || p > 100 {
		return 0, false
	}
	if p == 100 {
		return sorted[n-1], true
	}
	k := int(math.Ceil(float64(n) * p / 100))
	return sorted[max(k, 1)-1], true
}

// DurationStats summarises one measured duration. Percentiles use the nearest-rank
// definition. When Exact is true they were computed by montanaflynn/stats from every
// sample; otherwise from Histogram, each within HistogramRelativeError (1%) of the exact
// value. Min, Max, Mean and Count are always exact. Fields are omitted when Count is 0.
type DurationStats struct {
	Count  uint64  `json:"count"`
	Exact  bool    `json:"exact"`
	MinMS  float64 `json:"min_ms,omitempty"`
	MeanMS float64 `json:"mean_ms,omitempty"`
	P50MS  float64 `json:"p50_ms,omitempty"`
	P90MS  float64 `json:"p90_ms,omitempty"`
	P99MS  float64 `json:"p99_ms,omitempty"`
	MaxMS  float64 `json:"max_ms,omitempty"`
	// Histogram holds the values in nanoseconds; it is what merges across shards and what
	// the HTML report draws.
	Histogram *Histogram `json:"histogram,omitempty"`
}

// fillFrom sets every figure from a percentile function over nanoseconds and the exact
// min, max and mean of the histogram.
func (s *DurationStats) fillFrom(pct func(float64) (float64, bool)) {
	get := func(p float64) float64 {
		v, _ := pct(p)
		return nsToMS(v)
	}
	s.MinMS = nsToMS(s.Histogram.Min())
	s.MaxMS = nsToMS(s.Histogram.Max())
	s.MeanMS = nsToMS(s.Histogram.Sum() / float64(s.Histogram.Count()))
	s.P50MS, s.P90MS, s.P99MS = get(50), get(90), get(99)
}

// merge adds o's samples to s through the histograms. The result is exact only when one
// side was empty: merged percentiles come from the merged histogram.
func (s *DurationStats) merge(o DurationStats) error {
	return mergeSummary(s, o, s.Count, o.Count, s.Histogram, o.Histogram,
		func(d *DurationStats, h *Histogram) { d.Histogram = h }, durationStatsOf)
}

// durationStatsOf summarises a histogram alone (a merge's): every figure from h.
func durationStatsOf(h *Histogram) DurationStats {
	s := DurationStats{Count: h.Count(), Histogram: h}
	s.fillFrom(h.Percentile)
	return s
}

// mergeSummary merges the summary o into *s (DurationStats or ValueStats) through their
// histograms: nothing when o is empty, o itself (its own figures, with a copy of its
// histogram given to adopt) when s is empty, else the summary of the merged histogram.
func mergeSummary[T any](s *T, o T, sCount, oCount uint64, sHist, oHist *Histogram,
	adopt func(*T, *Histogram), summarise func(*Histogram) T) error {
	h, both, err := mergeHistograms(sCount, oCount, sHist, oHist)
	switch {
	case err != nil:
		return err
	case both:
		*s = summarise(h)
	case oCount > 0 && sCount == 0:
		*s = o
		adopt(s, h)
	}
	return nil
}

// Percentile returns the nearest-rank percentile p (0..100) from the histogram, within
// HistogramRelativeError; ok is false without samples or histogram.
func (s DurationStats) Percentile(p float64) (time.Duration, bool) {
	if s.Histogram == nil {
		return 0, false
	}
	v, ok := s.Histogram.Percentile(p)
	return time.Duration(v), ok
}

// errMissingHistogram: a result without histograms (written by hand or truncated) cannot
// be merged without averaging percentiles, which we refuse to do.
// mergeHistograms is the histogram of two distributions' samples, for their merge: nil
// when o has none (nothing to do), a copy of o's when s has none (both false: s becomes
// o, exact), else a merge of the two (both true); an error when either lacks its
// histogram. The inputs are not changed.
func mergeHistograms(sCount, oCount uint64, s, o *Histogram) (h *Histogram, both bool, err error) {
	switch {
	case oCount == 0:
		return nil, false, nil
	case sCount == 0:
		if o == nil {
			return nil, false, nil
		}
		return o.Clone(), false, nil
	case s == nil || o == nil:
		return nil, false, errMissingHistogram
	}
	h = s.Clone()
	if err := h.Merge(o); err != nil {
		return nil, false, err
	}
	return h, true, nil
}

var errMissingHistogram = errors.New("a distribution has no histogram, so it cannot be merged")

func nsToMS(ns float64) float64 { return ns / 1e6 }
