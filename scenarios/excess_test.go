package scenarios

import (
	"testing"
	"time"
)

// TestExcessEventsAtASlowTick: at one event per 15 s a stream held 230 s got its 15
// events, of which the 30 s window saw 1; that is no excess, whatever the window's
// phase. One that got 60 (history replayed on connect) is.
func TestExcessEventsAtASlowTick(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	w := newHoldTargetWatch(3)
	for i := range 3 {
		w.openAt[i] = t0
	}
	w.total = []int{15, 16, 60}
	w.end(t0.Add(230 * time.Second))
	h := newHarness(hold(), Options{Target: "http://127.0.0.1:1", StreamTemplate: "{target}/{session}"})
	defer h.Finish()
	spec, _ := h.sc.spec("excess-events")
	judgeExcessEvents(h, spec, w, []int{1, 2, 2}, 30*time.Second, func(yield func(int) bool) {
		for i := range 3 {
			if !yield(i) {
				return
			}
		}
	})
	if len(h.measures) != 1 || h.measures[0].Value != 1 {
		t.Fatalf("measures %+v: want 1 stream over (the replayed one)", h.measures)
	}
}
