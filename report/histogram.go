package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// HistogramRelativeError is the stated bound on the relative error of a percentile read
// from a Histogram: the value returned for rank r is within 1% of the r-th smallest value
// added. Buckets are built for a slightly smaller error (histogramAlpha) so that floating
// point rounding at bucket edges cannot push a value past the stated bound.
const HistogramRelativeError = 0.01

const (
	histogramAlpha = 0.0099
	// Values below histogramMinValue count as zero and values above histogramMaxValue as
	// histogramMaxValue, so that the bucket range, and with it memory, stays bounded
	// (about 3,200 buckets at most) whatever is added.
	histogramMinValue = 1e-9
	histogramMaxValue = 1e19
)

// Histogram is a mergeable histogram of non-negative values with logarithmic buckets
// (the DDSketch mapping): bucket i holds the values in (γ^(i-1), γ^i] and stands for
// 2γ^i/(γ+1), which is within α = (γ-1)/(γ+1) of every value in the bucket. Its memory
// depends on the range of the values, never on how many were added. Count, sum, min and
// max are exact.
//
// A Histogram is not safe for concurrent use. The zero value is not usable; call
// NewHistogram.
type Histogram struct {
	alpha    float64
	gamma    float64
	logGamma float64

	offset int      // bucket index of counts[0]
	counts []uint64 // dense from offset; grows at either end as needed
	zero   uint64   // values < histogramMinValue
	count  uint64
	sum    float64
	min    float64
	max    float64
}

// NewHistogram returns an empty histogram with the package's relative error.
func NewHistogram() *Histogram {
	h, _ := newHistogramAlpha(histogramAlpha)
	return h
}

func newHistogramAlpha(alpha float64) (*Histogram, error) {
	if !(alpha > 0 && alpha < 0.5) {
		return nil, fmt.Errorf("histogram: relative error %v outside (0, 0.5)", alpha)
	}
	gamma := (1 + alpha) / (1 - alpha)
	return &Histogram{alpha: alpha, gamma: gamma, logGamma: math.Log(gamma)}, nil
}

// Add records one value. NaN and negative values are ignored: callers filter values
// that were not measured (the runner marks those negative).
func (h *Histogram) Add(v float64) {
	h.addN(v, 1)
}

func (h *Histogram) addN(v float64, n uint64) {
	if math.IsNaN(v) || v < 0 || n == 0 {
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
	if v < histogramMinValue {
		h.zero += n
		return
	}
	i := h.index(v)
	h.counts = h.grow(i)
	h.counts[i-h.offset] += n
}

// index returns the bucket of v (v >= histogramMinValue).
func (h *Histogram) index(v float64) int {
	if v > histogramMaxValue {
		v = histogramMaxValue
	}
	return int(math.Ceil(math.Log(v) / h.logGamma))
}

// grow makes room for bucket i and returns the counts slice.
func (h *Histogram) grow(i int) []uint64 {
	if len(h.counts) == 0 {
		h.offset = i
		return append(h.counts[:0], 0)
	}
	switch {
	case i < h.offset:
		extra := h.offset - i
		c := make([]uint64, extra+len(h.counts))
		copy(c[extra:], h.counts)
		h.offset = i
		return c
	case i >= h.offset+len(h.counts):
		for i >= h.offset+len(h.counts) {
			h.counts = append(h.counts, 0)
		}
	}
	return h.counts
}

// value is the representative of bucket i.
func (h *Histogram) value(i int) float64 {
	return 2 * math.Exp(float64(i)*h.logGamma) / (h.gamma + 1)
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
// HistogramRelativeError of the exact one. ok is false when the histogram is empty or p
// is out of range.
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
	seen := h.zero
	if seen >= rank {
		return h.min, true
	}
	for j, c := range h.counts {
		seen += c
		if seen >= rank {
			return h.clamp(h.value(h.offset + j)), true
		}
	}
	return h.max, true
}

// clamp keeps a representative inside the exact range seen, which only reduces the error.
func (h *Histogram) clamp(v float64) float64 {
	return math.Min(math.Max(v, h.min), h.max)
}

// Merge adds every value of o to h. Both must have the same relative error.
func (h *Histogram) Merge(o *Histogram) error {
	if o == nil || o.count == 0 {
		return nil
	}
	if h.alpha != o.alpha {
		return fmt.Errorf("histogram: cannot merge relative error %v into %v", o.alpha, h.alpha)
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.count == 0 || o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
	h.zero += o.zero
	if len(o.counts) > 0 {
		h.counts = h.grow(o.offset)
		h.counts = h.grow(o.offset + len(o.counts) - 1)
		for j, c := range o.counts {
			h.counts[o.offset+j-h.offset] += c
		}
	}
	return nil
}

// Clone returns an independent copy of h.
func (h *Histogram) Clone() *Histogram {
	c := *h
	c.counts = append([]uint64(nil), h.counts...)
	return &c
}

// Bucket is one non-empty bucket of a Histogram: Count values in (Lower, Upper]. The
// bucket of zero has Lower = Upper = 0.
type Bucket struct {
	Lower, Upper float64
	Count        uint64
}

// Buckets lists the non-empty buckets in increasing order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	if h.zero > 0 {
		out = append(out, Bucket{Count: h.zero})
	}
	for j, c := range h.counts {
		if c == 0 {
			continue
		}
		i := h.offset + j
		out = append(out, Bucket{
			Lower: math.Exp(float64(i-1) * h.logGamma),
			Upper: math.Exp(float64(i) * h.logGamma),
			Count: c,
		})
	}
	return out
}

// histogramJSON is the file form: dense counts from Offset with empty ends trimmed.
type histogramJSON struct {
	RelativeError float64  `json:"relative_error"`
	Count         uint64   `json:"count"`
	Sum           float64  `json:"sum"`
	Min           float64  `json:"min"`
	Max           float64  `json:"max"`
	Zero          uint64   `json:"zero,omitempty"`
	Offset        int      `json:"offset"`
	Counts        []uint64 `json:"counts"`
}

// MarshalJSON writes the histogram in its file form.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	lo, hi := 0, len(h.counts)
	for lo < hi && h.counts[lo] == 0 {
		lo++
	}
	for hi > lo && h.counts[hi-1] == 0 {
		hi--
	}
	counts := h.counts[lo:hi]
	if counts == nil {
		counts = []uint64{}
	}
	return json.Marshal(histogramJSON{
		RelativeError: h.alpha, Count: h.count, Sum: h.sum, Min: h.min, Max: h.max,
		Zero: h.zero, Offset: h.offset + lo, Counts: counts,
	})
}

// UnmarshalJSON reads the file form and checks that it is consistent.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histogramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	n, err := newHistogramAlpha(j.RelativeError)
	if err != nil {
		return err
	}
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
	n.offset, n.counts = j.Offset, j.Counts
	n.zero, n.count, n.sum, n.min, n.max = j.Zero, j.Count, j.Sum, j.Min, j.Max
	*h = *n
	return nil
}
