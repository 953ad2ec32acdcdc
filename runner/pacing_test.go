package runner

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBackoffRule(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		retry, floor, limit time.Duration
		quick               int
		want                time.Duration
	}{
		{0, 100 * ms, 30 * time.Second, 0, 100 * ms},          // retry: 0 is raised to the floor
		{1 * ms, 100 * ms, 30 * time.Second, 1, 100 * ms},     // one quick end: no backoff yet
		{0, 100 * ms, 30 * time.Second, 2, 200 * ms},          // then doubling
		{0, 100 * ms, 30 * time.Second, 3, 400 * ms},          //
		{0, 100 * ms, 30 * time.Second, 12, 30 * time.Second}, // capped
		{0, 100 * ms, 30 * time.Second, 1000, 30 * time.Second},
		{3 * time.Second, 100 * ms, 30 * time.Second, 0, 3 * time.Second}, // a longer retry is honoured
		{3 * time.Second, 100 * ms, 30 * time.Second, 2, 6 * time.Second},
		{time.Minute, 100 * ms, 30 * time.Second, 5, time.Minute}, // a retry above the cap still holds
	}
	for _, tc := range tests {
		if got := backoff(tc.retry, tc.floor, tc.limit, tc.quick); got != tc.want {
			t.Errorf("backoff(retry %v, floor %v, cap %v, %d quick ends) = %v, want %v", tc.retry, tc.floor, tc.limit, tc.quick, got, tc.want)
		}
	}
}

// TestRetryZeroStaysUnderFloor: a server advertising retry: 0 whose streams end at
// once must not be reconnected to faster than the floor allows; counted on the
// server over a bounded window.
func TestRetryZeroStaysUnderFloor(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		streamHeaders(w)
		writeEvent(w, "retry: 0\ndata: x\n\n")
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	const window = 2 * time.Second
	start := time.Now()
	waitFor(t, 10*time.Second, "the window to pass", func() bool { return time.Since(start) > window })
	es.Close()
	waitDone(t, es, 10*time.Second, rec)
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) < 3 {
		t.Fatalf("%d attempts in %v: too few to judge the pacing", len(arrivals), window)
	}
	inWindow := 0
	for i, a := range arrivals {
		if a.Sub(arrivals[0]) <= window {
			inWindow++
		}
		if i > 0 && a.Sub(arrivals[i-1]) < DefaultMinReconnect {
			t.Errorf("attempt %d came %v after the one before, under the %v floor", i, a.Sub(arrivals[i-1]), DefaultMinReconnect)
		}
	}
	if floorRate := int(window / DefaultMinReconnect); inWindow > floorRate {
		t.Errorf("%d attempts in %v, over the floor's %d", inWindow, window, floorRate)
	}
	// The backoff, not just the floor: 100, 200, 400, 800 ms ... leaves at most 5 in 2 s.
	if inWindow > 5 {
		t.Errorf("%d attempts in %v: the delay did not back off", inWindow, window)
	}
	rcs := rec.kind(RecordReconnect)
	for i, rc := range rcs {
		if rc.QuickEnds != i+1 {
			t.Errorf("reconnect %d: QuickEnds %d, want %d", i, rc.QuickEnds, i+1)
		}
	}
}

// TestBackoffResetsAfterAStreamThatLived: three immediate ends back off, a stream that
// lives past QuickEnd resets the delay to the floor.
func TestBackoffResetsAfterAStreamThatLived(t *testing.T) {
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if n > 5 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHeaders(w)
		writeEvent(w, "retry: 0\ndata: x\n\n")
		if n == 4 {
			select {
			case <-time.After(QuickEnd + 100*time.Millisecond):
			case <-r.Context().Done():
			}
		}
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	waitDone(t, es, 20*time.Second, rec)
	rcs := rec.kind(RecordReconnect)
	wantQuick := []int{1, 2, 3, 0, 1}
	wantMin := []time.Duration{100, 200, 400, 100, 100}
	if len(rcs) != len(wantQuick) {
		t.Fatalf("%d reconnects, want %d", len(rcs), len(wantQuick))
	}
	for i, rc := range rcs {
		if rc.QuickEnds != wantQuick[i] || rc.Delay < wantMin[i]*time.Millisecond {
			t.Errorf("reconnect %d: QuickEnds %d delay %v, want %d and at least %v ms", i, rc.QuickEnds, rc.Delay, wantQuick[i], wantMin[i])
		}
	}
	// Backed off, not slower than needed: the third delay is under the next step.
	if rcs[2].Delay >= 800*time.Millisecond+500*time.Millisecond {
		t.Errorf("third delay %v, want about 400 ms", rcs[2].Delay)
	}
}
