package scenarios

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// heldServer is a double of a session stream server that sends each stream an event
// with a sequential id and its send time every 50ms; with starveOdd, the streams whose
// session ends in an odd digit get their first event and then nothing, their
// connection held open (a server whose fan-out lost them).
func heldServer(t *testing.T, starveOdd bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		starved := starveOdd && strings.ContainsAny(r.URL.Path[len(r.URL.Path)-1:], "13579")
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if i == 0 || !starved {
				if _, err := fmt.Fprintf(w, "id: %d\ndata: {\"%s\": %d}\n\n", i, runner.DefaultSentField, time.Now().UnixNano()); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func heldOptions(url string, streams int) Options {
	return Options{Target: url, StreamTemplate: "{target}/s/{session}", Streams: streams, Hold: time.Second,
		HoldConfig: HoldConfig{Ramp: 70 * time.Millisecond}}
}

// TestRampedPhaseCountsEachHeldStream: hold's ramped phase opens its 7 streams through
// the load engine at the ramp's rate, and its Held every-event check counts, stream by
// stream, the 3 that got nothing in the hold window after their first event; the
// rules over the window (delivery latency) and the run (streams opened) judge the rest.
func TestRampedPhaseCountsEachHeldStream(t *testing.T) {
	res := runAgainst(t, hold(), heldOptions(heldServer(t, true).URL, 7))
	if c := checkOf(t, res, "every-event"); c.Verdict != report.VerdictFail {
		t.Errorf("every-event %s (%s; %s), want fail", c.Verdict, c.Measured, c.Detail)
	}
	if m := measureOf(t, res, "every-event"); m.Value != 3 || m.Of != 7 || !strings.Contains(m.Note, "3 of 7 streams behind") {
		t.Errorf("every-event measure %+v: want 3 of 7 streams behind", m)
	}
	for _, name := range []string{"streams-opened", "errors", "no-missing-ids", "delivery-latency", "first-event"} {
		if c := checkOf(t, res, name); c.Verdict != report.VerdictPass {
			t.Errorf("%s: %s (%s; %s), want pass", name, c.Verdict, c.Measured, c.Detail)
		}
	}
	if res.Metrics.Streams != 7 || res.Load.Requested.Streams != 7 || math.Abs(res.Load.Requested.OpenRate-100) > 1e-6 {
		t.Errorf("%d streams opened, %d requested at %.0f/s: want 7 at 100/s (7 over the 70ms ramp)",
			res.Metrics.Streams, res.Load.Requested.Streams, res.Load.Requested.OpenRate)
	}
	var window *report.GroupResult
	for i, g := range res.Groups {
		if g.Name == holdWindow {
			window = &res.Groups[i]
		}
	}
	if window == nil || window.Metrics.Events == 0 || window.Metrics.Events >= res.Metrics.Events {
		t.Errorf("hold window %+v: want some of the run's %d events, not all (the ramp and settle are outside it)", window, res.Metrics.Events)
	}
}

// TestRampedPhaseRunsItsShardAndNotesItsCost: shard 0 of 2 runs its 4 of the plan's 7
// streams (the Held counts are over them), every check passes against a server that
// feeds them all, and the result says what a stream cost the runner.
func TestRampedPhaseRunsItsShardAndNotesItsCost(t *testing.T) {
	opts := heldOptions(heldServer(t, false).URL, 7)
	opts.Shard = runner.Shard{Index: 0, Count: 2}
	res := runAgainst(t, hold(), opts)
	for _, c := range res.Checks {
		if c.Verdict != report.VerdictPass {
			t.Errorf("%s: %s (%s; %s), want pass", c.Name, c.Verdict, c.Measured, c.Detail)
		}
	}
	for _, name := range []string{"every-event", "excess-events", "first-event", "quick-ends"} {
		if m := measureOf(t, res, name); m.Of != 4 {
			t.Errorf("%s measure over %d streams, want this shard's 4", name, m.Of)
		}
	}
	if res.Metrics.Streams != 4 || !strings.Contains(res.Description, "KB RSS per stream") {
		t.Errorf("%d streams; description %q: want 4 and the runner's cost per stream", res.Metrics.Streams, res.Description)
	}
}

// TestRampedDeclarationsAreValidated: ramped phases and Held checks that cannot run
// are refused, every problem at once.
func TestRampedDeclarationsAreValidated(t *testing.T) {
	ramp := &Ramp{PerSecond: 1000, Window: "w"}
	bad := &Scenario{Name: "bad", Hold: time.Second,
		Checks: []*CheckSpec{{Name: "x", Default: "0", Held: &Held{}}},
		Load: []Phase{
			{Streams: 1, Until: Unawaited, Ramp: ramp},
			{Streams: 1, Until: UntilOpen, Group: "g", Ramp: &Ramp{}},
		}}
	err := bad.Validate()
	for _, want := range []string{"2 ramped phases", "no browsers, proxy", "awaits no stream", "0 streams per second", "names its hold window", "held kind 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	orphan := &Scenario{Name: "orphan", Checks: []*CheckSpec{{Name: "x", Default: "0", Held: &Held{Kind: HeldEveryEvent}}},
		Load: []Phase{{Streams: 1, Until: UntilOpen}}}
	if err := orphan.Validate(); err == nil || !strings.Contains(err.Error(), "no ramped phase") {
		t.Errorf("a Held check without a ramped phase: %v", err)
	}
	noHold := &Scenario{Name: "no-hold", Checks: []*CheckSpec{{Name: "x", Default: "0", Held: &Held{Kind: HeldEveryEvent}}},
		Load: []Phase{{Streams: 1, Until: Unawaited, Ramp: ramp}}}
	if err := noHold.Validate(); err == nil || !strings.Contains(err.Error(), "without a hold") {
		t.Errorf("a ramped phase without a hold: %v", err)
	}
}
