package runner

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// The tests in this file run on synctest's fake clock: the waits they check take no
// wall time and have no scheduling slop, so they assert exact durations.

func TestWaitUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		start := time.Now()
		if !waitUntil(t.Context(), timer, start.Add(2*time.Second)) || time.Since(start) != 2*time.Second {
			t.Errorf("waited %v for a due time 2s ahead", time.Since(start))
		}
		start = time.Now()
		if !waitUntil(t.Context(), timer, start.Add(-time.Second)) || time.Since(start) != 0 {
			t.Errorf("waited %v for a due time already past", time.Since(start))
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		if waitUntil(ctx, timer, start.Add(time.Hour)) || time.Since(start) != time.Second {
			t.Errorf("a context ending after 1s: waited %v, want false after 1s", time.Since(start))
		}
		// The timer stays usable after a wait the context cut short.
		start = time.Now()
		if !waitUntil(t.Context(), timer, start.Add(time.Minute)) || time.Since(start) != time.Minute {
			t.Errorf("waited %v for a due time 1m ahead after a cut wait", time.Since(start))
		}
	})
}

// TestReconnectWait: the wait between attempts lasts the delay; a Leave during it
// restarts it with the leave delay, counted from the Leave; a Close ends it at once
// with the close's reason.
func TestReconnectWait(t *testing.T) {
	sleep := func(t *testing.T, d time.Duration, during func(*EventSource)) (CloseReason, time.Duration) {
		es, err := NewBrowser(BrowserConfig{}).NewEventSource(SourceConfig{URL: "http://127.0.0.1:1/s"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		es.mu.Lock()
		es.newAttemptLocked()
		es.mu.Unlock()
		start := time.Now()
		got := make(chan CloseReason)
		go func() { got <- es.sleep(d) }()
		if during != nil {
			during(es)
		}
		return <-got, time.Since(start)
	}
	synctest.Test(t, func(t *testing.T) {
		if r, took := sleep(t, 3*time.Second, nil); r != "" || took != 3*time.Second {
			t.Errorf("plain wait: %q after %v, want none after 3s", r, took)
		}
		r, took := sleep(t, 3*time.Second, func(es *EventSource) {
			time.Sleep(time.Second)
			es.Leave(5*time.Second, false)
		})
		if r != "" || took != 6*time.Second {
			t.Errorf("Leave(5s) 1s into a 3s wait: %q after %v, want none after 6s", r, took)
		}
		r, took = sleep(t, 3*time.Second, func(es *EventSource) {
			time.Sleep(time.Second)
			es.Close()
		})
		if r != CloseClientClose || took != time.Second {
			t.Errorf("Close 1s into a 3s wait: %q after %v, want %s after 1s", r, took, CloseClientClose)
		}
	})
}
