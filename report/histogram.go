package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
)

// HistogramRelativeError is the stated bound on the relative error of a percentile read
// from a Histogram: the value returned for rank r is within 1% of the r-th smallest value
// added, while the values span less than histogramMaxBins bins (a ratio of about 6e17:
// 1 ns to 19 years). A histogram read from a result file of the older bucket form is
// converted, which can double the bound (see UnmarshalJSON).
const HistogramRelativeError = 0.01

// histogramMaxBins bounds the sketch's bins, and with them its memory (8 bytes a bin:
// about 20 KB a histogram at most, TestHistogramHeapBounded), whatever is added. Past that span the lowest bins are collapsed into
// one, which costs accuracy at the lowest percentiles only.
const histogramMaxBins = 2048

// histogramSketch names the file form of a Histogram (the "sketch" field).
const histogramSketch = "ddsketch"

// Histogram is a mergeable histogram of non-negative values: a DDSketch
// (github.com/DataDog/sketches-go) with a logarithmic mapping of relative accuracy
// HistogramRelativeError and at most histogramMaxBins bins, that collapse from the lowest.
// Bin k holds the values in [γ^k, γ^(k+1)), γ = (1+a)/(1-a), and stands for γ^k·(1+a),
// within a of every value in it; values too small for the mapping (below about 1e-308)
// count as zero. Count, sum, min and max are kept exactly beside the sketch.
//
// A Histogram is not safe for concurrent use. The zero value is not usable; call
// NewHistogram.
type Histogram struct {
	accuracy float64
	maxBins  int
	sketch   *ddsketch.DDSketch
	count    uint64
	sum      float64
	min      float64
	max      float64
}

// NewHistogram returns an empty histogram with the package's relative error.
func NewHistogram() *Histogram {
	h, _ := newHistogramAccuracy(HistogramRelativeError, histogramMaxBins)
	return h
}

func newHistogramAccuracy(accuracy float64, maxBins int) (*Histogram, error) {
	if !(accuracy > 0 && accuracy < 0.5) {
		return nil, fmt.Errorf("histogram: relative accuracy %v outside (0, 0.5)", accuracy)
	}
	if maxBins < 1 || maxBins > 1<<16 {
		return nil, fmt.Errorf("histogram: %d bins outside [1, 65536]", maxBins)
	}
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(accuracy, maxBins)
	if err != nil {
		return nil, fmt.Errorf("histogram: %w", err)
	}
	return &Histogram{accuracy: accuracy, maxBins: maxBins, sketch: s}, nil
}

// Add records one value. NaN, infinite and negative values are ignored: callers filter
// values that were not measured (the runner marks those negative), and a result file
// cannot hold an infinite sum.
func (h *Histogram) Add(v float64) {
	h.addN(v, 1)
}

func (h *Histogram) addN(v float64, n uint64) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || n == 0 {
		return
	}
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count += n
	h.sum += v * float64(n)
	// The top of the mapping (about 1e308) is far above any duration or count; clamping
	// keeps the sketch's only error (a value too high) out of the way.
	_ = h.sketch.AddWithCount(math.Min(v, h.sketch.MaxIndexableValue()), float64(n))
}

// Count is how many values were added.
func (h *Histogram) Count() uint64 { return h.count }

// Sum is the exact sum of the values added.
func (h *Histogram) Sum() float64 { return h.sum }

// Min is the smallest value added (0 when empty).
func (h *Histogram) Min() float64 { return h.min }

// Max is the largest value added (0 when empty).
func (h *Histogram) Max() float64 { return h.max }

// Percentile returns the nearest-rank percentile p (0..100), the same definition as
// montanaflynn/stats.PercentileNearestRank: the value of rank ceil(n·p/100), within
// HistogramRelativeError of the exact one. The rank is looked up in the sketch's bins
// directly, not through its quantile (which interpolates the rank as q·(n-1)), so the
// bin is the one that holds that rank. ok is false when the histogram is empty or p is
// out of range.
func (h *Histogram) Percentile(p float64) (v float64, ok bool) {
	if h.count == 0 || math.IsNaN(p) || p < 0 || p > 100 {
		return 0, false
	}
	if p == 100 {
		return h.max, true
	}
	rank := uint64(math.Ceil(float64(h.count) * p / 100))
	if rank == 0 {
		rank = 1
	}
	below := float64(rank - 1) // values before the one of this rank
	zero := h.sketch.GetZeroCount()
	if below < zero {
		return h.min, true
	}
	key := h.sketch.GetPositiveValueStore().KeyAtRank(below - zero)
	return h.clamp(h.sketch.Value(key)), true
}

// clamp keeps a representative inside the exact range seen, which only reduces the error.
func (h *Histogram) clamp(v float64) float64 {
	return math.Min(math.Max(v, h.min), h.max)
}

// Merge adds every value of o to h. Both must have the same relative accuracy.
func (h *Histogram) Merge(o *Histogram) error {
	if o == nil || o.count == 0 {
		return nil
	}
	if err := h.sketch.MergeWith(o.sketch); err != nil {
		return fmt.Errorf("histogram: cannot merge relative accuracy %v into %v", o.accuracy, h.accuracy)
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.count == 0 || o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
	return nil
}

// Clone returns an independent copy of h.
func (h *Histogram) Clone() *Histogram {
	c := *h
	c.sketch = h.sketch.Copy()
	return &c
}

// Bucket is one non-empty bin of a Histogram: Count values in [Lower, Upper). The bin of
// zero has Lower = Upper = 0.
type Bucket struct {
	Lower, Upper float64
	Count        uint64
}

// Buckets lists the non-empty bins in increasing order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	if z := h.sketch.GetZeroCount(); z > 0 {
		out = append(out, Bucket{Count: uint64(z)})
	}
	h.sketch.GetPositiveValueStore().ForEach(func(k int, c float64) bool {
		if c > 0 {
			out = append(out, Bucket{Lower: h.sketch.LowerBound(k), Upper: h.sketch.LowerBound(k + 1), Count: uint64(c)})
		}
		return false
	})
	slices.SortFunc(out, func(a, b Bucket) int { return cmpFloat(a.Lower, b.Lower) })
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// histogramJSON is the file form of a Histogram, documented in the README (Result
// files). The current form names its sketch: "sketch": "ddsketch", "relative_accuracy",
// "max_bins", and the positive bins as dense counts from bin index Offset (sketches-go's
// logarithmic mapping, index offset 0), empty ends trimmed. The older form, written
// before the sketch, has "relative_error" and no "sketch": bucket Offset+j holds the
// values in (γ^(i-1), γ^i] for γ = (1+e)/(1-e).
type histogramJSON struct {
	Sketch           string   `json:"sketch,omitempty"`
	RelativeAccuracy float64  `json:"relative_accuracy,omitempty"`
	MaxBins          int      `json:"max_bins,omitempty"`
	RelativeError    float64  `json:"relative_error,omitempty"` // the older form only
	Count            uint64   `json:"count"`
	Sum              float64  `json:"sum"`
	Min              float64  `json:"min"`
	Max              float64  `json:"max"`
	Zero             uint64   `json:"zero,omitempty"`
	Offset           int      `json:"offset"`
	Counts           []uint64 `json:"counts"`
}

// MarshalJSON writes the histogram in its current file form.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histogramJSON{
		Sketch: histogramSketch, RelativeAccuracy: h.accuracy, MaxBins: h.maxBins,
		Count: h.count, Sum: h.sum, Min: h.min, Max: h.max,
		Zero: uint64(h.sketch.GetZeroCount()), Counts: []uint64{},
	}
	pos := h.sketch.GetPositiveValueStore()
	if lo, err := pos.MinIndex(); err == nil {
		hi, _ := pos.MaxIndex()
		j.Offset, j.Counts = lo, make([]uint64, hi-lo+1)
		pos.ForEach(func(k int, c float64) bool {
			j.Counts[k-lo] += uint64(c)
			return false
		})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads either file form and checks that it is consistent. The older
// bucket form is converted into the sketch: each bucket's representative (within the
// old relative error e of its values) is added with the bucket's count, so count, sum,
// min and max stay exact and a percentile is within (1+e)(1+a)-1 (2% for the 1% forms)
// of the exact one.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histogramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if err := j.check(); err != nil {
		return err
	}
	var n *Histogram
	var err error
	switch {
	case j.Sketch == histogramSketch:
		n, err = j.sketchForm()
	case j.Sketch != "":
		return fmt.Errorf("histogram: unknown sketch %q (known: %s)", j.Sketch, histogramSketch)
	case j.RelativeError != 0:
		n, err = j.bucketForm()
	default:
		return errors.New("histogram: has neither sketch nor relative_error")
	}
	if err != nil {
		return err
	}
	n.count, n.sum, n.min, n.max = j.Count, j.Sum, j.Min, j.Max
	*h = *n
	return nil
}

// check validates what both forms share: the bins hold count values in a sane range.
func (j *histogramJSON) check() error {
	if len(j.Counts) > 1<<16 {
		return errors.New("histogram: too many buckets")
	}
	total := j.Zero
	for _, c := range j.Counts {
		total += c
	}
	if total != j.Count {
		return fmt.Errorf("histogram: buckets hold %d values but count is %d", total, j.Count)
	}
	if j.Count > 0 && (j.Min < 0 || j.Max < j.Min) {
		return fmt.Errorf("histogram: bad range [%v, %v]", j.Min, j.Max)
	}
	if int64(j.Offset) < math.MinInt32 || int64(j.Offset)+int64(len(j.Counts)) > math.MaxInt32 {
		return fmt.Errorf("histogram: offset %d outside the mapping's range", j.Offset)
	}
	return nil
}

// sketchForm rebuilds the sketch of the current file form bin by bin.
func (j *histogramJSON) sketchForm() (*Histogram, error) {
	if len(j.Counts) > j.MaxBins {
		return nil, fmt.Errorf("histogram: %d bins over max_bins %d", len(j.Counts), j.MaxBins)
	}
	n, err := newHistogramAccuracy(j.RelativeAccuracy, j.MaxBins)
	if err != nil {
		return nil, err
	}
	_ = n.sketch.AddWithCount(0, float64(j.Zero))
	pos := n.sketch.GetPositiveValueStore()
	for i, c := range j.Counts {
		if c > 0 {
			pos.AddWithCount(j.Offset+i, float64(c))
		}
	}
	return n, nil
}

// bucketForm converts the older bucket form into a sketch of the package's accuracy.
func (j *histogramJSON) bucketForm() (*Histogram, error) {
	e := j.RelativeError
	if !(e > 0 && e < 0.5) {
		return nil, fmt.Errorf("histogram: relative error %v outside (0, 0.5)", e)
	}
	n := NewHistogram()
	logGamma := math.Log((1 + e) / (1 - e))
	_ = n.sketch.AddWithCount(0, float64(j.Zero))
	for i, c := range j.Counts {
		if c == 0 {
			continue
		}
		// The old representative of bucket i: 2γ^i/(γ+1) = γ^i·(1-e), kept in the exact range.
		v := math.Exp(float64(j.Offset+i)*logGamma) * (1 - e)
		v = math.Min(math.Max(v, j.Min), math.Min(j.Max, n.sketch.MaxIndexableValue()))
		_ = n.sketch.AddWithCount(v, float64(c))
	}
	return n, nil
}
