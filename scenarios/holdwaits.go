package scenarios

import (
	"time"

	"github.com/sseharness/sseharness/runner"
)

// reconnectWaits keeps, per stream, the time it spent in the hold window waiting to
// reconnect: from an attempt's Closed record to the Reconnect record that ends the
// wait the server asked for (its retry field). A stream whose lifetime the server
// bounds is not behind for the events it was told to wait through: at the window's
// end they come with its resume, after the count. Only that wait is credited; an
// attempt the server does not answer (a pool that starves it) is not.
type reconnectWaits struct {
	from       []time.Time     // when the stream's current wait began; zero when not waiting
	in         []time.Duration // wait inside the window
	start, end time.Time       // the window; zero until it opens, closes
}

func newReconnectWaits(n int) *reconnectWaits {
	return &reconnectWaits{from: make([]time.Time, n), in: make([]time.Duration, n)}
}

func (w *reconnectWaits) observe(r *runner.Record) {
	i := r.Stream
	if i < 0 || i >= len(w.from) {
		return
	}
	switch r.Kind {
	case runner.RecordClosed:
		w.from[i] = r.Time
	case runner.RecordReconnect:
		if !w.from[i].IsZero() {
			w.add(i, r.Time)
		}
		w.from[i] = time.Time{}
	}
}

// add credits stream i's wait from w.from[i] to t, clipped to the window.
func (w *reconnectWaits) add(i int, t time.Time) {
	if w.start.IsZero() {
		return
	}
	a := w.from[i]
	if a.Before(w.start) {
		a = w.start
	}
	if !w.end.IsZero() && t.After(w.end) {
		t = w.end
	}
	if t.After(a) {
		w.in[i] += t.Sub(a)
	}
}

// open starts the window at t.
func (w *reconnectWaits) open(t time.Time) { w.start = t }

// close ends the window at t; streams still waiting are credited up to t.
func (w *reconnectWaits) close(t time.Time) {
	w.end = t
	for i, f := range w.from {
		if !f.IsZero() {
			w.add(i, t)
			w.from[i] = time.Time{} // credited; its Reconnect, when it comes, adds nothing
		}
	}
}
