package scenarios

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// completion: progress callbacks drive each session to 100. The stream must get `done`,
// the server must end it, and the client's reconnect must get 204 so that it stops.
func completion() *Scenario {
	ck := completionChecks{
		doneReceived: &CheckSpec{Name: "done-received", Default: "5s", Means: "every stream got done within"},
		streamEnded:  &CheckSpec{Name: "stream-ended", Default: "2s", Means: "server ended the stream after done within"},
		stopsOn204:   &CheckSpec{Name: "stops-on-204", Default: "3s", Means: "client stopped by a 204 within retry plus"},
	}
	return &Scenario{
		Name:       "completion",
		Proves:     "a finished job ends its stream and answers the reconnect with 204, so clients stop instead of looping",
		Catches:    []string{"no-204"},
		Checks:     ck.all(),
		Needs:      []Capability{NeedSessions, NeedCallback},
		ServerArgs: []string{"--retry", "1s"},
		run:        func(ctx context.Context, h *Harness) error { return runCompletion(ctx, h, ck) },
	}
}

// completionChecks are Completion's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type completionChecks struct{ doneReceived, streamEnded, stopsOn204 *CheckSpec }

func (c completionChecks) all() []*CheckSpec {
	return []*CheckSpec{c.doneReceived, c.streamEnded, c.stopsOn204}
}

func runCompletion(ctx context.Context, h *Harness, ck completionChecks) error {
	n := h.streams(10)
	h.request(n, n, 0, "each session driven to 100% by progress callbacks 25, 50, 75, 100")

	var mu sync.Mutex
	doneAt := map[int]time.Time{}
	endedAt := map[int]time.Time{}
	retry := map[int]time.Duration{}
	attemptsAfterDone := map[int]int{}
	statusAfterDone := map[int]int{}
	h.observe(func(r runner.Record) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Kind {
		case runner.RecordEvent:
			if r.EventType == "done" {
				doneAt[r.Stream] = r.Time
			}
		case runner.RecordRetry:
			retry[r.Stream] = r.Retry
		case runner.RecordClosed:
			if t, ok := doneAt[r.Stream]; ok && !t.IsZero() && endedAt[r.Stream].IsZero() && r.Reason == runner.CloseEOF {
				endedAt[r.Stream] = r.Time
			}
		case runner.RecordHeaders:
			if _, ok := doneAt[r.Stream]; ok {
				attemptsAfterDone[r.Stream]++
				statusAfterDone[r.Stream] = r.Status
			}
		}
	})

	srcs, err := h.OpenSessions(ctx, "", n, nil)
	if err != nil {
		return err
	}
	if _, err := h.AwaitStarted(ctx, srcs, 1); err != nil {
		return err
	}
	for i := range n {
		for _, p := range []int{25, 50, 75, 100} {
			if err := h.PostProgress(ctx, h.Session("", i), p, fmt.Sprintf("step %d", p)); err != nil {
				return err
			}
		}
	}
	posted := time.Now()
	// The client waits its reconnection time after the stream ends, then must get 204.
	mu.Lock()
	var maxRetry time.Duration = runner.DefaultRetry
	for _, r := range retry {
		maxRetry = max(maxRetry, r)
	}
	mu.Unlock()
	stopWithin := h.dur(ck.stopsOn204)
	WaitAll(ctx, srcs, h.dur(ck.doneReceived)+h.dur(ck.streamEnded)+maxRetry+stopWithin, awaitDone)
	h.Finish()

	noDone, notEnded, looping, wrong := 0, 0, 0, 0
	var worstDone, worstEnd time.Duration
	for i, s := range srcs {
		d, got := doneAt[i]
		if !got || d.Sub(posted) > h.dur(ck.doneReceived) {
			noDone++
			continue
		}
		worstDone = max(worstDone, d.Sub(posted))
		e := endedAt[i]
		if e.IsZero() || e.Sub(d) > h.dur(ck.streamEnded) {
			notEnded++
		} else {
			worstEnd = max(worstEnd, e.Sub(d))
		}
		if s.Reason() != runner.CloseNoContent {
			looping++
			if statusAfterDone[i] != 0 && statusAfterDone[i] != 204 {
				wrong++
			}
		}
	}
	h.offenders(ck.doneReceived, noDone, n, fmt.Sprintf("%d of %d streams without done (slowest %s)", noDone, n, ms(worstDone)))
	h.offenders(ck.streamEnded, notEnded, n-noDone, fmt.Sprintf("%d of %d streams left open after done (slowest end %s)", notEnded, n-noDone, ms(worstEnd)))
	note := fmt.Sprintf("%d of %d clients still reconnecting %s after done (max %d attempts after done)", looping, n-noDone, maxRetry+stopWithin, maxAttempts(attemptsAfterDone))
	if wrong > 0 {
		note += fmt.Sprintf("; %d clients got status %d after done instead of 204 and keep reconnecting", wrong, firstNon204(statusAfterDone))
	}
	h.offenders(ck.stopsOn204, looping, n-noDone, note)
	return nil
}

func firstNon204(m map[int]int) int {
	for _, s := range m {
		if s != 204 && s != 0 {
			return s
		}
	}
	return 0
}

func maxAttempts(m map[int]int) int {
	x := 0
	for _, v := range m {
		x = max(x, v)
	}
	return x
}
