// Command histcompare compares report.Histogram with DataDog's sketches-go (DDSketch)
// and HdrHistogram-go on what the harness needs of a latency histogram (report.Histogram
// has been a DDSketch inside since this comparison found the hand-written one no better;
// what remains measures its wrapping: exact count, sum, min and max, nearest rank): percentile
// accuracy against the exact nearest rank, accuracy after merging four shards, memory
// (heap and serialized), and the cost of Add, Merge and a p99. It is a module of its
// own so that the harness does not depend on the libraries it is compared with:
//
//	cd scripts/histcompare && go run .
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"testing"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/sseharness/sseharness/report"
)

type sketch interface {
	add(v float64)
	q(p float64) float64 // p in 0..100
	merge(o sketch)
	size() int // serialized bytes
}

type ours struct{ h *report.Histogram }

func (o *ours) add(v float64) { o.h.Add(v) }
func (o *ours) q(p float64) float64 {
	v, _ := o.h.Percentile(p)
	return v
}
func (o *ours) merge(x sketch) { _ = o.h.Merge(x.(*ours).h) }
func (o *ours) size() int      { b, _ := json.Marshal(o.h); return len(b) }

type dd struct{ s *ddsketch.DDSketch }

func (d *dd) add(v float64) { _ = d.s.Add(v) }
func (d *dd) q(p float64) float64 {
	v, _ := d.s.GetValueAtQuantile(p / 100)
	return v
}
func (d *dd) merge(x sketch) { _ = d.s.MergeWith(x.(*dd).s) }
func (d *dd) size() int {
	var b []byte
	d.s.Encode(&b, false)
	return len(b)
}

type hdr struct{ h *hdrhistogram.Histogram }

func (h *hdr) add(v float64) { _ = h.h.RecordValue(int64(v)) }
func (h *hdr) q(p float64) float64 {
	return float64(h.h.ValueAtQuantile(p))
}
func (h *hdr) merge(x sketch) { h.h.Merge(x.(*hdr).h) }
func (h *hdr) size() int {
	b, _ := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	return len(b)
}

func newOurs() sketch { return &ours{report.NewHistogram()} }
func newDD() sketch {
	s, _ := ddsketch.LogCollapsingLowestDenseDDSketch(0.01, 2048)
	return &dd{s}
}
func newHDR() sketch { return &hdr{hdrhistogram.New(1, int64(3600e9), 2)} }

// nearestRank over sorted exact values.
func nearestRank(s []float64, p float64) float64 {
	k := int(math.Ceil(p / 100 * float64(len(s))))
	if k < 1 {
		k = 1
	}
	return s[k-1]
}

func heapOf(mk func() sketch, vals []float64) int64 {
	const k = 20
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	ss := make([]sketch, k)
	for i := range ss {
		ss[i] = mk()
		for _, v := range vals[:200_000] {
			ss[i].add(v)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&b)
	runtime.KeepAlive(ss)
	return (int64(b.HeapAlloc) - int64(a.HeapAlloc)) / k
}

// main is the comparison as one script, top to bottom (distributions, then each
// measurement printed as it is taken): about 100 lines kept together so that what is
// measured reads in the order of the table it prints.
func main() {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 1_000_000
	dists := map[string][]float64{}
	// Delivery latencies in ns: lognormal around 2ms; a bimodal mix with a 5% tail at
	// 300ms (a buffering proxy); a wide range from 50µs to 30s (log-uniform).
	ln := make([]float64, n)
	bi := make([]float64, n)
	wide := make([]float64, n)
	for i := range n {
		ln[i] = math.Round(math.Exp(math.Log(2e6) + 0.8*r.NormFloat64()))
		if r.Float64() < 0.05 {
			bi[i] = math.Round(3e8 * (1 + 0.1*r.NormFloat64()))
		} else {
			bi[i] = math.Round(1e6 * (1 + 0.2*math.Abs(r.NormFloat64())))
		}
		wide[i] = math.Round(math.Exp(math.Log(5e4) + r.Float64()*(math.Log(3e10)-math.Log(5e4))))
	}
	dists["lognormal 2ms"] = ln
	dists["bimodal 1ms+5% 300ms"] = bi
	dists["log-uniform 50us..30s"] = wide
	names := []string{"lognormal 2ms", "bimodal 1ms+5% 300ms", "log-uniform 50us..30s"}
	impls := []struct {
		name string
		mk   func() sketch
	}{{"report.Histogram", newOurs}, {"DDSketch 1% (2048 bins)", newDD}, {"HdrHistogram 2 digits", newHDR}}
	ps := []float64{50, 90, 99, 99.9}
	fmt.Println("ACCURACY: max relative error over p50/p90/p99/p99.9 vs exact nearest rank, 1e6 samples")
	for _, dn := range names {
		vals := dists[dn]
		sorted := append([]float64(nil), vals...)
		sort.Float64s(sorted)
		for _, im := range impls {
			s := im.mk()
			for _, v := range vals {
				s.add(v)
			}
			worst := 0.0
			for _, p := range ps {
				e := math.Abs(s.q(p)-nearestRank(sorted, p)) / nearestRank(sorted, p)
				worst = max(worst, e)
			}
			// Merge: 4 shards of 250k merged vs all in one.
			shards := make([]sketch, 4)
			for i := range shards {
				shards[i] = im.mk()
			}
			for i, v := range vals {
				shards[i%4].add(v)
			}
			m := shards[0]
			for _, o := range shards[1:] {
				m.merge(o)
			}
			mworst := 0.0
			for _, p := range ps {
				e := math.Abs(m.q(p)-nearestRank(sorted, p)) / nearestRank(sorted, p)
				mworst = max(mworst, e)
			}
			fmt.Printf("  %-24s %-26s err %.4f%%  merged(4) err %.4f%%  serialized %7d B  heap %8d B\n",
				dn, im.name, worst*100, mworst*100, s.size(), heapOf(im.mk, vals))
		}
	}
	fmt.Println("SPEED (lognormal)")
	vals := dists["lognormal 2ms"]
	for _, im := range impls {
		add := testing.Benchmark(func(b *testing.B) {
			s := im.mk()
			for i := 0; b.Loop(); i++ {
				s.add(vals[i%n])
			}
		})
		a, c := im.mk(), im.mk()
		for i, v := range vals {
			if i%2 == 0 {
				a.add(v)
			} else {
				c.add(v)
			}
		}
		merge := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				x := im.mk()
				x.merge(a)
				b.StartTimer()
				x.merge(c)
			}
		})
		q := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				_ = a.q(99)
			}
		})
		fmt.Printf("  %-26s add %6.1f ns/op  merge %8d ns/op  p99 %7d ns/op\n", im.name, float64(add.NsPerOp()), merge.NsPerOp(), q.NsPerOp())
	}
}
