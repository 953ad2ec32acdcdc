package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// TestEveryEventCreditsReconnectWaits: a stream short of the median only by the events
// of the reconnect wait the server asked for (here across the window's end, where its
// resume brings them after the count) is not behind; one as short without such a wait,
// or whose wait was brief and whose attempt then went unanswered (a starved pool), is.
func TestEveryEventCreditsReconnectWaits(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	w := newReconnectWaits(4)
	w.observe(&runner.Record{Kind: runner.RecordClosed, Stream: 1, Time: at(-1)}) // a wait before the window
	w.observe(&runner.Record{Kind: runner.RecordReconnect, Stream: 1, Time: at(-0.5)})
	w.open(t0)
	w.observe(&runner.Record{Kind: runner.RecordClosed, Stream: 1, Time: at(2.55)}) // waits past the end
	w.observe(&runner.Record{Kind: runner.RecordClosed, Stream: 3, Time: at(2.0)})
	w.observe(&runner.Record{Kind: runner.RecordReconnect, Stream: 3, Time: at(2.1)}) // then no answer
	w.close(at(3))
	w.observe(&runner.Record{Kind: runner.RecordReconnect, Stream: 1, Time: at(3.05)}) // late: clipped
	if w.in[1] != 450*time.Millisecond || w.in[3] != 100*time.Millisecond || w.in[0] != 0 || w.in[2] != 0 {
		t.Fatalf("waits in the window %v: want [0 450ms 0 100ms]", w.in)
	}

	h := newHarness(hold(), Options{Target: "http://127.0.0.1:1", StreamTemplate: "{target}/{session}"})
	defer h.Finish()
	spec, _ := h.sc.spec("every-event")
	per := []int{30, 25, 25, 25}
	judgeEveryEvent(h, spec, append(per, 30, 30, 30), append(w.in, 0, 0, 0), func(yield func(int) bool) {
		for i := range 7 {
			if !yield(i) {
				return
			}
		}
	}, 7, 3*time.Second)
	if len(h.measures) != 1 || h.measures[0].Value != 2 {
		t.Fatalf("measures %+v: want 2 streams behind (2 and 3), 1 excused", h.measures)
	}
	if note := h.measures[0].Note; !strings.Contains(note, "2 of 7 streams behind the median of 30") || !strings.Contains(note, "1 more short only by the events of their reconnect waits") {
		t.Errorf("note %q", note)
	}
}
