// Package shards holds what lets the shards of one run start together and tells how
// well they overlapped: a common start time every process waits for (StartAt,
// WaitUntil), and the peak of concurrent streams across shards from their timelines
// (PeakConcurrent). It only computes; the CLI passes the time in and the merge reports
// the overlap.
package shards

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// MaxStartAhead bounds how far in the future a start time may be: a time zone slip
// (a local time written as UTC) should be refused, not waited for for hours.
const MaxStartAhead = 24 * time.Hour

// ParseStartAt parses an RFC 3339 start time ("2026-12-01T10:00:00Z", fractions of a
// second and offsets allowed) and refuses one more than MaxStartAhead after now. Its
// errors are one line.
func ParseStartAt(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("start time %q: want an RFC 3339 time such as 2026-12-01T10:00:00Z", s)
	}
	if ahead := t.Sub(now); ahead > MaxStartAhead {
		return time.Time{}, fmt.Errorf("start time %s is %v from now, more than %v: check its time zone",
			t.Format(time.RFC3339), ahead.Round(time.Second), MaxStartAhead)
	}
	return t, nil
}

// Start says when a process was asked to start and when it did. It is what a shard's
// result records: a shard that began late says by how much.
type Start struct {
	At      time.Time `json:"start_at"` // the time asked for
	Arrived time.Time `json:"arrived"`  // when the process was ready to wait
	Began   time.Time `json:"began"`    // when the wait ended and the load began
	// LateMS is Began - At in milliseconds, never below 0: a process that arrived
	// after At is late by the whole difference; one that waited, by how late it woke.
	LateMS float64 `json:"late_ms"`
	// Waited is false when the process arrived at or after At and began at once.
	Waited bool `json:"waited"`
}

// Late is LateMS as a duration.
func (s Start) Late() time.Duration { return time.Duration(s.LateMS * float64(time.Millisecond)) }

// WaitUntil blocks until the wall clock reaches at, or ctx ends (then it returns
// ctx's error). It re-reads the clock after each wake, so a clock step while waiting
// is followed rather than slept through.
func WaitUntil(ctx context.Context, at time.Time) (Start, error) {
	s := Start{At: at, Arrived: time.Now()}
	var timer *time.Timer
	for {
		now := time.Now()
		d := at.Sub(now)
		if d <= 0 {
			s.Began = now
			break
		}
		s.Waited = true
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
	if late := s.Began.Sub(at); late > 0 {
		s.LateMS = float64(late) / float64(time.Millisecond)
	}
	return s, nil
}
