package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// TestReconnectRate: the reconnect rate is reconnects per second over the scenario's
// duration, a metric rules and compare read (also per stream), shown in the tables
// when there were reconnects; two shards merge to the whole run's rate.
func TestReconnectRate(t *testing.T) {
	t0 := time.Now()
	build := func(shard, of int, reconnects int) *Result {
		agg, _ := NewAggregate(AggregateConfig{Start: t0})
		for i := range 2 {
			stream := shard*2 + i
			agg.Add(&runner.Record{Kind: runner.RecordOpened, Stream: stream, Time: t0})
			agg.Add(&runner.Record{Kind: runner.RecordHeaders, Stream: stream, Time: t0, Status: 200, Accepted: true, FirstAccepted: true})
		}
		for i := range reconnects {
			agg.Add(&runner.Record{Kind: runner.RecordReconnect, Stream: shard * 2, Time: t0.Add(time.Duration(i) * time.Second)})
		}
		r := &Result{HarnessVersion: "v1", Target: "http://127.0.0.1:1/", Start: t0, End: t0.Add(4 * time.Second),
			Scenarios: []ScenarioResult{BuildScenario(ScenarioInput{Name: "hold", Start: t0, End: t0.Add(4 * time.Second), Aggregate: agg,
				Requested: RequestedLoad{Streams: 2 * of}})}}
		if of > 1 {
			r.Shard = &Shard{Index: shard, Count: of}
		}
		r.Evaluate()
		return r
	}
	one := build(0, 1, 12)
	s := &one.Scenarios[0]
	if s.Metrics.Reconnects != 12 || s.Metrics.Streams != 2 {
		t.Fatalf("reconnects %d, streams %d: the fixture is off", s.Metrics.Reconnects, s.Metrics.Streams)
	}
	for name, want := range map[string]float64{"reconnect_rate": 3, "reconnect_rate_per_stream": 1.5} {
		d, ok := lookupMetric(name)
		if !ok {
			t.Fatalf("no metric %s", name)
		}
		if v, ok := d.get(s); !ok || v != want {
			t.Errorf("%s: %v %v, want %v", name, v, ok, want)
		}
	}
	var out bytes.Buffer
	if err := Markdown(&out, one); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "12 reconnects in 4.0 s: 3/s, 1.50/s per stream of 2") {
		t.Errorf("the markdown does not show the reconnect rate:\n%s", out.String())
	}
	quiet := build(0, 1, 0)
	out.Reset()
	if err := Table(&out, quiet); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "reconnect rate") {
		t.Errorf("a run without reconnects shows a reconnect rate")
	}
	if _, ok := (&ScenarioResult{}).ReconnectRate(); ok {
		t.Error("a scenario without a duration has a rate")
	}

	merged, err := Merge([]*Result{build(0, 2, 8), build(1, 2, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := merged.Scenarios[0].ReconnectRate(); !ok || r != 3 {
		t.Errorf("merged rate %v %v, want 3 (12 reconnects in 4 s)", r, ok)
	}
}
