package shards

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func TestPeakConcurrentFullOverlap(t *testing.T) {
	// Two shards with one start time ramp to 100 each and hold together.
	a := Timeline{Start: t0, Step: time.Second, Open: []int64{50, 100, 100, 100, 0}}
	b := Timeline{Start: t0, Step: time.Second, Open: []int64{40, 100, 100, 100, 100}}
	o, err := PeakConcurrent([]Timeline{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if o.Peak != 200 || !o.PeakAt.Equal(sec(1)) || o.PeakShards != 2 || o.SumOfPeaks != 200 || !o.Full() {
		t.Errorf("overlap %+v, want a full peak of 200 at 1s", o)
	}
	if !o.AllOpenFrom.Equal(t0) || !o.AllOpenUntil.Equal(sec(4)) || o.AllOpenMS != 4000 {
		t.Errorf("all open %v-%v (%d ms), want 0s-4s", o.AllOpenFrom, o.AllOpenUntil, o.AllOpenMS)
	}
}

func TestPeakConcurrentShardsThatNeverMeet(t *testing.T) {
	// The second shard was scheduled after the first had finished: 100 at a time.
	a := Timeline{Start: t0, Step: time.Second, Open: []int64{100, 100}}
	b := Timeline{Start: sec(5), Step: time.Second, Open: []int64{100, 100, 100}}
	o, err := PeakConcurrent([]Timeline{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if o.Peak != 100 || !o.PeakAt.Equal(t0) || o.PeakShards != 1 || o.SumOfPeaks != 200 || o.Full() {
		t.Errorf("overlap %+v, want a peak of 100 of 200", o)
	}
	if !o.AllOpenFrom.IsZero() || o.AllOpenMS != 0 {
		t.Errorf("all open %v (%d ms), want never", o.AllOpenFrom, o.AllOpenMS)
	}
}

func TestPeakConcurrentPartialOverlapWithDifferentSteps(t *testing.T) {
	// Shard a: 1 s steps from 0 s. Shard b started 2.5 s late with 2 s steps (its
	// timeline doubled its step). Overlap from 2.5 s to 4 s, where a has 30 and b 70.
	a := Timeline{Start: t0, Step: time.Second, Open: []int64{10, 20, 30, 30}}
	b := Timeline{Start: t0.Add(2500 * time.Millisecond), Step: 2 * time.Second, Open: []int64{70, 5}}
	o, err := PeakConcurrent([]Timeline{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if o.Peak != 100 || !o.PeakAt.Equal(t0.Add(2500*time.Millisecond)) || o.PeakShards != 2 || o.SumOfPeaks != 100 {
		t.Errorf("overlap %+v, want 100 from 2.5s", o)
	}
	if !o.AllOpenFrom.Equal(t0.Add(2500*time.Millisecond)) || !o.AllOpenUntil.Equal(sec(4)) || o.AllOpenMS != 1500 {
		t.Errorf("all open %v-%v (%d ms), want 2.5s-4s", o.AllOpenFrom, o.AllOpenUntil, o.AllOpenMS)
	}
}

func TestPeakConcurrentLongestAllOpenStretch(t *testing.T) {
	// Both open in [0,1) and [2,5); b drops to 0 at 1 s for a second.
	a := Timeline{Start: t0, Step: time.Second, Open: []int64{5, 5, 5, 5, 5}}
	b := Timeline{Start: t0, Step: time.Second, Open: []int64{5, 0, 5, 5, 5}}
	o, err := PeakConcurrent([]Timeline{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if !o.AllOpenFrom.Equal(sec(2)) || !o.AllOpenUntil.Equal(sec(5)) || o.AllOpenMS != 3000 || o.Peak != 10 {
		t.Errorf("overlap %+v, want all open 2s-5s", o)
	}
}

func TestPeakConcurrentNeedsEvidence(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []Timeline
		want string
	}{
		"no shards":     {nil, "no shard timeline has points"},
		"no points":     {[]Timeline{{Start: t0, Step: time.Second}}, "no shard timeline has points"},
		"zero step":     {[]Timeline{{Start: t0, Open: []int64{1}}}, "shard 0: step 0s"},
		"negative open": {[]Timeline{{Start: t0, Step: time.Second, Open: []int64{1}}, {Start: t0, Step: time.Second, Open: []int64{1, -2}}}, "shard 1: point 1 has -2"},
	} {
		_, err := PeakConcurrent(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	// A shard without points never overlaps with the others.
	o, err := PeakConcurrent([]Timeline{{Start: t0, Step: time.Second, Open: []int64{3}}, {}})
	if err != nil || o.Peak != 3 || o.AllOpenMS != 0 || !o.AllOpenFrom.IsZero() {
		t.Errorf("with an empty shard: %+v, %v", o, err)
	}
}

func TestPeakConcurrentListsEveryProblemInOneLine(t *testing.T) {
	_, err := PeakConcurrent([]Timeline{{Start: t0, Open: []int64{1}}, {Start: t0, Step: time.Second, Open: []int64{-1}}})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "shard 0: step") || !strings.Contains(err.Error(), "shard 1: point 0") {
		t.Errorf("error %q, want both problems in one line", err)
	}
}
