package scenarios

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestEdgeMarksOfCountsLikeAPassOverEveryMark: the binary searches count exactly the
// marks a pass over every published mark counts, for random windows and ranges.
func TestEdgeMarksOfCountsLikeAPassOverEveryMark(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for trial := range 500 {
		var pub []time.Time
		var seqs []int64
		at, seq := t0, int64(0)
		for range rng.IntN(60) {
			at = at.Add(time.Duration(rng.IntN(300)) * time.Millisecond) // equal times too
			seq += int64(1 + rng.IntN(3))                                // failed publishes leave gaps
			pub, seqs = append(pub, at), append(seqs, seq)
		}
		from := t0.Add(time.Duration(rng.IntN(10000)) * time.Millisecond)
		to := from.Add(time.Duration(rng.IntN(10000)-1000) * time.Millisecond)
		first := int64(rng.IntN(100)) // the stream's lowest and highest mark received
		last := first + int64(rng.IntN(60))
		if rng.IntN(4) == 0 {
			first, last = -1, -1 // none received
		}
		want := 0
		for j, a := range pub {
			if a.Before(from) || a.After(to) {
				continue
			}
			if s := seqs[j]; last < 0 || s < first || s > last {
				want++
			}
		}
		if got := edgeMarksOf(pub, seqs, from, to, first, last); got != want {
			t.Fatalf("trial %d: %d, want %d (from %v to %v, first %d last %d, %d marks)", trial, got, want, from.Sub(t0), to.Sub(t0), first, last, len(pub))
		}
	}
}
