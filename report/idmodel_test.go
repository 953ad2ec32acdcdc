package report

import (
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// TestIDModelAndMarkCountsMerge: id resets, jumps, opaque ids, marks and their latency
// are counted and add up across shards; a late mark fills a gap.
func TestIDModelAndMarkCountsMerge(t *testing.T) {
	shard := func() Metrics {
		a := mustAggregate(t, AggregateConfig{Start: t0})
		ev := func(r runner.Record) {
			r.Kind, r.Time, r.Latency, r.Gap, r.TTFirst = runner.RecordEvent, t0, -1, -1, -1
			a.Add(&r)
		}
		ev(runner.Record{Seq: 1, Mark: 0, MarkLatency: 5 * time.Millisecond})
		ev(runner.Record{Seq: -1, Opaque: true, Mark: 3, MarkLatency: 7 * time.Millisecond, MarkMissing: 2})
		ev(runner.Record{Seq: 0, IDReset: true, Mark: 1, MarkLatency: 9 * time.Millisecond, MarkOutOfOrder: true})
		ev(runner.Record{Seq: 5000, IDJump: true, Jumped: 4998, Mark: 1, MarkLatency: time.Millisecond, MarkDuplicate: true})
		ev(runner.Record{Seq: -1, Mark: -1, MarkLatency: -1})
		a.Add(&runner.Record{Kind: runner.RecordPublish, Stream: -1, Time: t0, Status: 204})
		a.Add(&runner.Record{Kind: runner.RecordPublish, Stream: -1, Time: t0, Class: runner.ErrStatus, Status: 500})
		a.Add(&runner.Record{Kind: runner.RecordReconnect, Time: t0, QuickEnds: 2})
		return a.Metrics()
	}
	m := shard()
	want := Metrics{NumericIDs: 3, OpaqueIDs: 1, IDResets: 1, IDJumps: 1, JumpedIDs: 4998, Published: 1, PublishErrors: 1,
		MarkEvents: 4, MarksLost: 1, MarkDuplicates: 1, MarksOutOfOrder: 1, QuickEnds: 1}
	got := Metrics{NumericIDs: m.NumericIDs, OpaqueIDs: m.OpaqueIDs, IDResets: m.IDResets, IDJumps: m.IDJumps, JumpedIDs: m.JumpedIDs,
		Published: m.Published, PublishErrors: m.PublishErrors, MarkEvents: m.MarkEvents, MarksLost: m.MarksLost,
		MarkDuplicates: m.MarkDuplicates, MarksOutOfOrder: m.MarksOutOfOrder, QuickEnds: m.QuickEnds}
	if !metricsCountsEqual(got, want) {
		t.Errorf("one shard: got %+v\nwant %+v", got, want)
	}
	if m.MarkLatency.Count != 4 || m.MarkLatency.MaxMS != 9 {
		t.Errorf("mark latency %+v, want 4 samples up to 9ms", m.MarkLatency)
	}
	if err := m.merge(shard()); err != nil {
		t.Fatal(err)
	}
	if m.MarkEvents != 8 || m.IDResets != 2 || m.MarksLost != 2 || m.Published != 2 || m.QuickEnds != 2 || m.MarkLatency.Count != 8 {
		t.Errorf("merged: marks %d, resets %d, lost %d, published %d, quick ends %d, latencies %d", m.MarkEvents, m.IDResets, m.MarksLost, m.Published, m.QuickEnds, m.MarkLatency.Count)
	}
}

func metricsCountsEqual(a, b Metrics) bool {
	return a.NumericIDs == b.NumericIDs && a.OpaqueIDs == b.OpaqueIDs && a.IDResets == b.IDResets && a.IDJumps == b.IDJumps &&
		a.JumpedIDs == b.JumpedIDs && a.Published == b.Published && a.PublishErrors == b.PublishErrors && a.MarkEvents == b.MarkEvents &&
		a.MarksLost == b.MarksLost && a.MarkDuplicates == b.MarkDuplicates && a.MarksOutOfOrder == b.MarksOutOfOrder && a.QuickEnds == b.QuickEnds
}

// TestNumericIDAndMarkEvidence: without numeric ids or marks the rules that need them
// are n/a, saying why in words.
func TestNumericIDAndMarkEvidence(t *testing.T) {
	s := &ScenarioResult{Metrics: Metrics{Events: 10, OpaqueIDs: 10, Streams: 1}}
	if why := EvidenceNumericIDs.missing(s); !strings.Contains(why, "not numbers") {
		t.Errorf("numeric ids: %q", why)
	}
	if why := EvidenceMarks.missing(s); !strings.Contains(why, "no mark was published") {
		t.Errorf("marks: %q", why)
	}
	s.Metrics.Published = 20
	if why := EvidenceMarks.missing(s); !strings.Contains(why, "none of the 20 published marks arrived") {
		t.Errorf("marks: %q", why)
	}
	s.Metrics.NumericIDs, s.Metrics.MarkEvents = 1, 1
	if EvidenceNumericIDs.missing(s) != "" || EvidenceMarks.missing(s) != "" {
		t.Errorf("evidence present but reported missing")
	}
	c := Check{}
	s.Metrics.BatchedEvents = 8
	Rule{Metric: "batched_share", Op: "<=", Limit: 0.5, Needs: []Evidence{EvidenceEvent}}.evaluate(s, &c)
	if c.Verdict != VerdictFail || !strings.Contains(c.Detail, "10 events in 2 bursts (5.0 events per burst") {
		t.Errorf("batched share: %s %q %q", c.Verdict, c.Measured, c.Detail)
	}
}
