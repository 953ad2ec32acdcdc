package report

import (
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// TestSnapshotShowsRequests: while request streams run, the progress snapshot counts
// requests (started, streaming, completed, failed) and the TTFT p99, and its line shows
// them instead of the stream counts, which a request run leaves at zero.
func TestSnapshotShowsRequests(t *testing.T) {
	agg, _ := NewAggregate(AggregateConfig{})
	t0 := time.Unix(1000, 0)
	if s := agg.Snapshot(t0); s.Requests || !strings.Contains(s.String(), "streams 0") {
		t.Fatalf("no request record yet: %+v %q", s, s.String())
	}
	for _, rs := range [][]runner.RequestRecord{
		requestRecords(0, 50*time.Millisecond, 10*time.Millisecond, 3, 3, runner.EndTerminated, 0),
		requestRecords(1, 80*time.Millisecond, 10*time.Millisecond, 2, 2, runner.EndTimeout, 0),
		requestRecords(2, 400*time.Millisecond, 10*time.Millisecond, 4, 4, runner.EndTerminated, 0),
	} {
		for _, r := range rs {
			agg.AddRequest(r)
		}
	}
	// Request 3 has its first two events and has not ended: it is streaming.
	for _, r := range requestRecords(3, 60*time.Millisecond, 10*time.Millisecond, 2, 2, runner.EndTerminated, 0)[:2] {
		agg.AddRequest(r)
	}
	agg.AddRequest(runner.RequestRecord{Kind: runner.RequestEnd, Request: 4, Scheduled: t0.Add(4 * time.Second), TTHeaders: -1, TTFT: -1, TTLast: -1, E2E: -1, Usage: -1, End: runner.EndDropped})
	s := agg.Snapshot(t0.Add(5500 * time.Millisecond))
	if !s.Requests || s.ReqStarted != 5 || s.ReqStreaming != 1 || s.ReqCompleted != 2 || s.ReqFailed != 2 {
		t.Errorf("started %d streaming %d completed %d failed %d, want 5 1 2 2", s.ReqStarted, s.ReqStreaming, s.ReqCompleted, s.ReqFailed)
	}
	if !s.TTFTOK || s.TTFTP99 < 396*time.Millisecond || s.TTFTP99 > 404*time.Millisecond {
		t.Errorf("ttft p99 %v (ok %v), want 400ms within 1%%", s.TTFTP99, s.TTFTOK)
	}
	if s.Elapsed != 5500*time.Millisecond {
		t.Errorf("elapsed %v, want 5.5s from the first request's scheduled time", s.Elapsed)
	}
	line := s.String()
	for _, want := range []string{"5.00s  requests 5 started (1 streaming)", "2 completed", "2 failed", "ttft p99 4"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "streams") {
		t.Errorf("line %q shows stream counts", line)
	}
}
