package shards

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Timeline is one shard's count of open streams over time: Open[i] is the most
// streams open during [Start + i·Step, Start + (i+1)·Step) (as report.Timeline keeps
// it, with its StepMS as Step).
type Timeline struct {
	Start time.Time
	Step  time.Duration
	Open  []int64
}

// Overlap is how far the shards of a run were open at the same time.
type Overlap struct {
	// Peak is the most streams open at once across shards: the largest sum, over the
	// intervals where no shard's timeline changes step, of each shard's count there.
	// Each count is a maximum over its step, so Peak may exceed the true peak by what
	// the shards' counts varied within one step; it never misses one.
	Peak int64 `json:"peak"`
	// PeakAt is the start of the first interval with that sum.
	PeakAt time.Time `json:"peak_at"`
	// PeakShards is how many shards had streams open in that interval.
	PeakShards int `json:"peak_shards"`
	// SumOfPeaks is each shard's own peak added up: what a full overlap gives.
	SumOfPeaks int64 `json:"sum_of_peaks"`
	// AllOpenFrom and AllOpenUntil bound the longest stretch during which every shard
	// had streams open; zero times and AllOpenMS 0 when that never happened.
	AllOpenFrom  time.Time `json:"all_open_from"`
	AllOpenUntil time.Time `json:"all_open_until"`
	AllOpenMS    int64     `json:"all_open_ms"`
}

// Full says the shards overlapped completely: the peak across them is the sum of
// their own peaks.
func (o Overlap) Full() bool { return o.SumOfPeaks > 0 && o.Peak == o.SumOfPeaks }

// PeakConcurrent computes the overlap of the shards' timelines. Shards may start at
// different times and use different steps. A shard with no points counts as never
// open. It is an error when there is no timeline with points (no evidence: the
// overlap is unknown, not zero), or when a timeline with points has no positive step
// or a negative count.
func PeakConcurrent(shards []Timeline) (Overlap, error) {
	changes, sumOfPeaks, err := timelineChanges(shards)
	if err != nil {
		return Overlap{}, err
	}
	o := sweep(changes, len(shards))
	o.SumOfPeaks = sumOfPeaks
	return o, nil
}

// change is one shard's open count from a moment on.
type change struct {
	at    time.Time
	shard int
	open  int64
}

// timelineChanges turns the shards' timelines into their changes, in time order (each
// timeline ends with a change to 0 at its end), and the sum of the shards' own peaks.
func timelineChanges(shards []Timeline) ([]change, int64, error) {
	var (
		changes    []change
		sumOfPeaks int64
		probs      []string
		points     int
	)
	for i, sh := range shards {
		if len(sh.Open) == 0 {
			continue
		}
		if sh.Step <= 0 {
			probs = append(probs, fmt.Sprintf("shard %d: step %v, want a positive step", i, sh.Step))
			continue
		}
		var peak int64
		bad := false
		for j, n := range sh.Open {
			if n < 0 {
				probs = append(probs, fmt.Sprintf("shard %d: point %d has %d open streams", i, j, n))
				bad = true
				break
			}
			peak = max(peak, n)
			changes = append(changes, change{sh.Start.Add(time.Duration(j) * sh.Step), i, n})
		}
		if bad {
			continue
		}
		points += len(sh.Open)
		sumOfPeaks += peak
		changes = append(changes, change{sh.Start.Add(time.Duration(len(sh.Open)) * sh.Step), i, 0})
	}
	if len(probs) > 0 {
		return nil, 0, errors.New("shard timelines: " + strings.Join(probs, "; "))
	}
	if points == 0 {
		return nil, 0, errors.New("no shard timeline has points: the overlap is unknown")
	}
	slices.SortStableFunc(changes, func(a, b change) int { return a.at.Compare(b.at) })
	return changes, sumOfPeaks, nil
}

// sweep walks the changes of n shards in time order: the peak of their sum, and the
// longest time all n had streams open.
func sweep(changes []change, n int) Overlap {
	var (
		o       Overlap
		open    = make([]int64, n)
		total   int64
		nOpen   int
		allFrom time.Time
		allOpen bool
	)
	for k := 0; k < len(changes); {
		at := changes[k].at
		// Apply every change at this instant before looking at the sum: a shard's
		// step boundary is not a moment when it had none open.
		for ; k < len(changes) && changes[k].at.Equal(at); k++ {
			c := changes[k]
			if open[c.shard] > 0 {
				nOpen--
			}
			total += c.open - open[c.shard]
			open[c.shard] = c.open
			if c.open > 0 {
				nOpen++
			}
		}
		if total > o.Peak {
			o.Peak, o.PeakAt, o.PeakShards = total, at, nOpen
		}
		switch all := nOpen == n; {
		case all && !allOpen:
			allOpen, allFrom = true, at
		case !all && allOpen:
			allOpen = false
			if d := at.Sub(allFrom); d.Milliseconds() > o.AllOpenMS || o.AllOpenFrom.IsZero() {
				o.AllOpenFrom, o.AllOpenUntil, o.AllOpenMS = allFrom, at, d.Milliseconds()
			}
		}
	}
	return o
}
