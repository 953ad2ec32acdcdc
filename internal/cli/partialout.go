package cli

import (
	"sync"
	"time"

	"github.com/sseharness/sseharness/report"
)

// defaultOutInterval is how often `run --out` rewrites its file while the run goes.
const defaultOutInterval = 30 * time.Second

// partialOut rewrites the --out file every interval while a run goes, with the result so
// far marked incomplete: the scenarios that finished, and the running one with the
// figures of its aggregate and no checks. report.Save writes a temporary file and
// renames it, so the file is whole whenever the run dies. The final, complete result
// replaces it after close.
type partialOut struct {
	path   string
	report func(error) // told of the first failed rewrite

	mu       sync.Mutex
	head     report.Result // run header and the finished scenarios
	running  string
	agg      *report.Aggregate
	started  time.Time
	failed   bool
	stop     chan struct{}
	finished chan struct{}
}

// startPartialOut rewrites path every interval from head (the run's header and config)
// until close.
func startPartialOut(path string, every time.Duration, head report.Result, onErr func(error)) *partialOut {
	p := &partialOut{path: path, report: onErr, head: head, stop: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(p.finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				p.write(now)
			}
		}
	}()
	return p
}

// track is scenarios.Options.Live: the scenario now running.
func (p *partialOut) track(scenario string, agg *report.Aggregate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running, p.agg, p.started = scenario, agg, time.Now()
}

// done adds a finished scenario.
func (p *partialOut) done(s report.ScenarioResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.head.Scenarios = append(p.head.Scenarios, s)
	if p.running == s.Name {
		p.running, p.agg = "", nil
	}
}

// snapshot is the result so far at now, marked incomplete.
func (p *partialOut) snapshot(now time.Time) *report.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.head
	r.Scenarios = append([]report.ScenarioResult(nil), p.head.Scenarios...)
	if p.agg != nil {
		s := report.BuildScenario(report.ScenarioInput{Name: p.running, Start: p.started, End: now, Aggregate: p.agg})
		s.Incomplete = true
		r.Scenarios = append(r.Scenarios, s)
	}
	r.End = now
	r.Incomplete = true
	r.Evaluate()
	return &r
}

func (p *partialOut) write(now time.Time) {
	err := report.Save(p.path, p.snapshot(now))
	p.mu.Lock()
	first := err != nil && !p.failed
	p.failed = p.failed || err != nil
	p.mu.Unlock()
	if first {
		p.report(err)
	}
}

// close stops the rewrites; none happens after it returns.
func (p *partialOut) close() {
	close(p.stop)
	<-p.finished
}

// chainLive calls both hooks, either of which may be nil.
func chainLive(a, b func(string, *report.Aggregate)) func(string, *report.Aggregate) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(s string, agg *report.Aggregate) { a(s, agg); b(s, agg) }
}
