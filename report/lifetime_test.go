package report

import (
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// TestLifetimesAndAbruptEnds: attempts that opened give their lifetimes to the
// distribution, and those that ended by a network error count as abrupt; an attempt
// that never opened (Lived 0) counts as neither. Shards' figures merge to the whole's.
func TestLifetimesAndAbruptEnds(t *testing.T) {
	t0 := time.Now()
	closed := func(stream int, reason runner.CloseReason, lived time.Duration) runner.Record {
		return runner.Record{Kind: runner.RecordClosed, Stream: stream, Time: t0.Add(lived), Reason: reason, Lived: lived}
	}
	recs := []runner.Record{
		closed(0, runner.CloseEOF, 30*time.Second),         // clean end at the server's lifetime
		closed(1, runner.CloseNetworkError, 3*time.Second), // cut mid-stream
		closed(2, runner.CloseNetworkError, 0),             // a dial that failed: never opened
		closed(3, runner.CloseStopped, 10*time.Second),     // the harness left
	}
	whole, _ := NewAggregate(AggregateConfig{Start: t0})
	parts := [2]*Aggregate{}
	for i := range parts {
		parts[i], _ = NewAggregate(AggregateConfig{Start: t0})
	}
	for i, r := range recs {
		whole.Add(&r)
		parts[i%2].Add(&r)
	}
	m := whole.Metrics()
	if m.AbruptEnds != 1 {
		t.Errorf("abrupt ends %d, want 1", m.AbruptEnds)
	}
	if m.Lifetime.Count != 3 || m.Lifetime.MaxMS != 30000 || m.Lifetime.P50MS != 10000 {
		t.Errorf("lifetimes %+v, want 3 samples, median 10s, max 30s", m.Lifetime)
	}
	merged := cloneMetrics(parts[0].Metrics())
	if err := merged.merge(parts[1].Metrics()); err != nil {
		t.Fatal(err)
	}
	if merged.AbruptEnds != m.AbruptEnds || merged.Lifetime.Count != m.Lifetime.Count || merged.Lifetime.MaxMS != m.Lifetime.MaxMS {
		t.Errorf("merged abrupt %d lifetimes %+v, want %d and %+v", merged.AbruptEnds, merged.Lifetime, m.AbruptEnds, m.Lifetime)
	}
	s := &ScenarioResult{Metrics: m}
	if d, ok := lookupMetric("abrupt_ends"); !ok {
		t.Error("no metric abrupt_ends")
	} else if v, _ := d.get(s); v != 1 {
		t.Errorf("abrupt_ends %v, want 1", v)
	}
	if d, ok := lookupMetric("lifetime_max"); !ok {
		t.Error("no metric lifetime_max")
	} else if v, ok := d.get(s); !ok || v != 30000 {
		t.Errorf("lifetime_max %v %v, want 30000", v, ok)
	}
}

// TestSilenceOnTheWire: each record's Quiet is a silence of its stream; the longest
// one is silence_max, and a record with none (0) adds nothing.
func TestSilenceOnTheWire(t *testing.T) {
	t0 := time.Now()
	a, _ := NewAggregate(AggregateConfig{Start: t0})
	for _, r := range []runner.Record{
		{Kind: runner.RecordHeaders, Status: 200, Accepted: true, FirstAccepted: true, Time: t0},
		{Kind: runner.RecordEvent, Time: t0.Add(time.Millisecond), Quiet: time.Millisecond},
		{Kind: runner.RecordComment, Time: t0.Add(15 * time.Second), Quiet: 15*time.Second - time.Millisecond},
		{Kind: runner.RecordClosed, Reason: runner.CloseNetworkError, Time: t0.Add(35 * time.Second), Lived: 35 * time.Second, Quiet: 20 * time.Second},
	} {
		a.Add(&r)
	}
	m := a.Metrics()
	if m.Silence.Count != 3 || m.Silence.MaxMS != 20000 {
		t.Errorf("silences %+v, want 3 with max 20s", m.Silence)
	}
	d, ok := lookupMetric("silence_max")
	if !ok {
		t.Fatal("no metric silence_max")
	}
	if v, ok := d.get(&ScenarioResult{Metrics: m}); !ok || v != 20000 {
		t.Errorf("silence_max %v %v, want 20000", v, ok)
	}
}
