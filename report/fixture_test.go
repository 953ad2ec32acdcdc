package report

import (
	"errors"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// probeSeries returns readings of a server whose goroutines and RSS rise with the load
// and fall back after it, one per second over secs seconds.
func probeSeries(start time.Time, secs int, streams float64) ServerProbe {
	p := ServerProbe{
		Baseline: &ProbeSample{Time: start, Values: map[string]float64{ServerGoroutines: 12, ServerRSS: 20 << 20, "senders": 0}},
	}
	for i := 1; i <= secs; i++ {
		up := secs * 3 / 4
		frac := float64(i) / float64(up)
		if i > up {
			frac = float64(secs-i) / float64(secs-up)
		}
		p.Samples = append(p.Samples, ProbeSample{
			Time: start.Add(time.Duration(i) * time.Second),
			Values: map[string]float64{
				ServerGoroutines: 12 + 2*streams*frac,
				ServerRSS:        20<<20 + streams*frac*8192,
				"senders":        streams * frac,
			},
		})
	}
	p.AfterDrain = &ProbeSample{Time: start.Add(time.Duration(secs+2) * time.Second), Values: map[string]float64{ServerGoroutines: 13, ServerRSS: 21 << 20, "senders": 0}}
	return p
}

// fixtureResult is a fixed, realistic result: a passing load scenario with server
// figures, a failing one, one that could not run, and a conformance-style scenario with
// levels and spec citations. Every time in it is fixed, so renderings are reproducible.
func fixtureResult(t testing.TB) *Result {
	t.Helper()
	agg := mustAggregate(t, AggregateConfig{Start: t0})
	(&synthRun{streams: 120, events: 20, rampStep: 50 * time.Millisecond, seed: 42, interleave: true}).run(addTo(agg))
	resume := BuildScenario(ScenarioInput{
		Name:        "resume",
		Description: "clients reconnect with Last-Event-ID; every id arrives exactly once, in order",
		Start:       t0, End: t0.Add(12 * time.Second),
		Requested: RequestedLoad{Streams: 120, Browsers: 20, OpenRate: 20, HoldMS: 2000},
		Aggregate: agg,
		Server:    probeSeries(t0, 10, 120),
		Checks: []Check{
			{Name: "no-lost-ids", Rule: &Rule{Metric: "missing_ids", Op: "<=", Limit: 4}},
			{Name: "no-duplicate-ids", Rule: &Rule{Metric: "duplicate_ids", Op: "<=", Limit: 2}},
			{Name: "latency-p99", Rule: &Rule{Metric: "latency_p99", Op: "<=", Limit: 50}},
			{Name: "tls-handshake", Rule: &Rule{Metric: "tls_p99", Op: "<=", Limit: 100}},
			{Name: "in-order", Verdict: VerdictPass, Threshold: "0 out of order", Measured: "0", Detail: "checked per stream"},
		},
	})
	agg2 := mustAggregate(t, AggregateConfig{Start: t0.Add(20 * time.Second)})
	(&synthRun{streams: 30, events: 5, rampStep: 10 * time.Millisecond, seed: 43, interleave: true}).run(func(r runner.Record) {
		r.Time = r.Time.Add(20 * time.Second)
		if !r.Scheduled.IsZero() {
			r.Scheduled = r.Scheduled.Add(20 * time.Second)
		}
		if r.Kind == runner.RecordEvent && r.Stream%3 == 0 {
			r.DuplicateSender = true
		}
		agg2.Add(&r)
	})
	sameID := BuildScenario(ScenarioInput{
		Name:        "same-id-reconnect",
		Description: "a session reconnects with the same id while its old stream is open",
		Start:       t0.Add(20 * time.Second), End: t0.Add(26 * time.Second),
		Requested: RequestedLoad{Streams: 30, OpenRate: 0, Note: "3 reconnects at once per session"},
		Aggregate: agg2,
		Checks: []Check{
			{Name: "duplicate-senders", Rule: &Rule{Metric: "duplicate_senders", Op: "<=", Limit: 0}},
			{Name: "old-stream-ended", Verdict: VerdictFail, Threshold: "<= 1.00s", Measured: "never (30 of 30 still open)", Detail: "the server kept both streams | sending"},
			{Name: "server-senders-flat", Verdict: VerdictNotApplicable, Detail: "target exposes no sender metric"},
		},
	})
	broken := BuildScenario(ScenarioInput{
		Name: "six-connection-limit", Description: "more than 6 streams to one origin",
		Start: t0.Add(30 * time.Second), End: t0.Add(30 * time.Second),
		Err: errors.New("target unreachable: dial tcp 127.0.0.1:1: connect: connection refused"),
	})
	conform := BuildScenario(ScenarioInput{
		Name: "conform", Description: "WHATWG server-sent events conformance <checklist>",
		Start: t0.Add(40 * time.Second), End: t0.Add(41 * time.Second),
		Checks: []Check{
			{Name: "status-200", Level: LevelMust, Verdict: VerdictPass, Measured: "200", Spec: "HTML §9.2.3"},
			{Name: "content-type", Level: LevelMust, Verdict: VerdictPass, Measured: "text/event-stream; charset=utf-8", Spec: "HTML §9.2.3"},
			{Name: "retry-sanity", Level: LevelAdvisory, Verdict: VerdictWarn, Threshold: ">= 1000ms", Measured: "retry: 250", Detail: "clients reconnect 4x per second & storm", Spec: "HTML §9.2.6"},
			{Name: "cache-control", Level: LevelShould, Verdict: VerdictFail, Threshold: "no-cache", Measured: "(none)", Spec: "Fetch §2.2"},
			{Name: "stop-204", Level: LevelMust, Verdict: VerdictNotApplicable, Detail: "no --stop-url given", Spec: "HTML §9.2.3"},
		},
	})
	r := &Result{
		HarnessVersion: "v0.1.0-test",
		Target:         "http://127.0.0.1:8080/events?session={session}",
		Start:          t0,
		End:            t0.Add(41 * time.Second),
		Config:         map[string]any{"streams": 120, "drain": "2s"},
		Scenarios:      []ScenarioResult{resume, sameID, broken, conform},
	}
	r.Evaluate()
	return r
}
