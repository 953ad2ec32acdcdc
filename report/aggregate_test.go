package report

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/montanaflynn/stats"

	"github.com/sseharness/sseharness/runner"
)

// t0 is the fixed start of every synthetic run, so outputs are reproducible.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// synthRun generates the records of a synthetic run: streams streams, each opening at
// stream·rampStep, receiving events events one per 100ms with pseudo-random latencies,
// and closing. Every tenth stream reconnects once after a network error. emit is called
// for every record; nothing is stored, so the generator itself uses no memory per event.
// It returns the exact latencies it generated when keep is true.
type synthRun struct {
	streams, events int
	rampStep        time.Duration
	seed            uint64
	keep            bool
	latencies       []float64 // ns, when keep
	firstEvents     []float64 // ns, when keep
	// interleave delivers the records in time order, as a real run's channel would,
	// instead of stream after stream; it holds them all first, so only for small runs.
	interleave bool
}

func (s *synthRun) run(emit func(runner.Record)) {
	if s.interleave {
		var all []runner.Record
		s.generate(func(r runner.Record) { all = append(all, r) })
		sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
		for _, r := range all {
			emit(r)
		}
		return
	}
	s.generate(emit)
}

func (s *synthRun) generate(emit func(runner.Record)) {
	r := rand.New(rand.NewPCG(s.seed, 99))
	for st := 0; st < s.streams; st++ {
		begin := t0.Add(time.Duration(st) * s.rampStep)
		attempts := 1
		if st%10 == 0 {
			attempts = 2
		}
		seq := int64(0)
		at := begin
		for a := 0; a < attempts; a++ {
			base := runner.Record{Stream: st, Browser: st / 6, Session: "s", Attempt: a}
			rec := base
			rec.Kind, rec.Time = runner.RecordOpened, at
			rec.Scheduled = at.Add(-time.Duration(r.IntN(2000)) * time.Microsecond)
			emit(rec)
			rec = base
			rec.Kind, rec.Time = runner.RecordHeaders, at.Add(3*time.Millisecond)
			rec.Status, rec.Proto, rec.ContentType = 200, "HTTP/1.1", "text/event-stream"
			rec.Accepted, rec.FirstAccepted = true, a == 0
			rec.Dial = time.Duration(200+r.IntN(800)) * time.Microsecond
			rec.TLS = -1
			rec.TTHeaders = 2 * time.Millisecond
			rec.Waited = -1
			emit(rec)
			for e := 0; e < s.events; e++ {
				at = at.Add(100 * time.Millisecond)
				seq++
				rec = base
				rec.Kind, rec.Time = runner.RecordEvent, at
				rec.EventID, rec.Seq, rec.Bytes = "x", seq, 40
				rec.Mark, rec.MarkLatency = -1, -1                              // no publish-driven marks
				rec.Latency = time.Duration(math.Exp(r.NormFloat64()*0.8 + 14)) // ~1.2ms median
				rec.Gap = 100 * time.Millisecond
				rec.TTFirst = -1
				if e == 0 {
					rec.TTFirst = time.Duration(50+r.IntN(100)) * time.Millisecond
					rec.Gap = -1
					if s.keep {
						s.firstEvents = append(s.firstEvents, float64(rec.TTFirst))
					}
				}
				if st%97 == 5 && e == 3 {
					rec.Missing = 2
				}
				if st%101 == 7 && e == 4 {
					rec.Duplicate = true
				}
				if s.keep {
					s.latencies = append(s.latencies, float64(rec.Latency))
				}
				emit(rec)
				if e%10 == 9 {
					c := base
					c.Kind, c.Time, c.Bytes = runner.RecordComment, at, 3
					emit(c)
				}
			}
			rec = base
			rec.Time = at.Add(time.Millisecond)
			if a+1 < attempts {
				rec.Kind, rec.Class, rec.Err = runner.RecordError, runner.ErrRead, "connection reset"
				emit(rec)
				rec.Kind, rec.Reason = runner.RecordClosed, runner.CloseNetworkError
				emit(rec)
				rec = base
				at = at.Add(time.Second)
				rec.Kind, rec.Time, rec.Delay, rec.Retry = runner.RecordReconnect, at, time.Second, time.Second
				emit(rec)
			} else {
				rec.Kind, rec.Reason = runner.RecordClosed, runner.CloseStopped
				emit(rec)
			}
		}
	}
}

func mustAggregate(t testing.TB, cfg AggregateConfig) *Aggregate {
	t.Helper()
	a, err := NewAggregate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAggregateCounts(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{})
	s := &synthRun{streams: 200, events: 12, rampStep: 5 * time.Millisecond, seed: 1, keep: true}
	s.run(addTo(a))
	m := a.Metrics()
	attempts := int64(200 + 20)
	checks := []struct {
		name      string
		got, want int64
	}{
		{"streams", m.Streams, 200},
		{"attempts", m.Attempts, attempts},
		{"events", m.Events, attempts * 12},
		{"comments", m.Comments, attempts},
		{"bytes", m.Bytes, attempts*12*40 + attempts*3},
		{"reconnects", m.Reconnects, 20},
		{"errors", m.ErrorTotal(), 20},
		{"errors read", m.Errors["read"], 20},
		{"closed stopped", m.CloseReasons["stopped"], 200},
		{"closed network", m.CloseReasons["network-error"], 20},
		{"status 200", m.Statuses["200"], attempts},
		{"missing", m.MissingIDs, 2 * 3},  // streams 5, 102 and 199, one attempt each
		{"duplicates", m.DuplicateIDs, 2}, // streams 7 and 108
		{"latency samples", int64(m.Latency.Count), attempts * 12},
		{"first-event samples", int64(m.TimeToFirstEvent.Count), attempts},
		{"connect samples", int64(m.Connect.Count), attempts},
		{"tls samples (not measured)", int64(m.TLS.Count), 0},
		{"reconnect delays", int64(m.ReconnectDelay.Count), 20},
		{"gaps", int64(m.Gap.Count), attempts * 11},
		{"start lags", int64(m.StartLag.Count), attempts},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !m.Latency.Exact {
		t.Error("2640 latencies should be exact (limit 10,000)")
	}
	want99, _ := stats.PercentileNearestRank(s.latencies, 99)
	if got := m.Latency.P99MS; got != nsToMS(want99) {
		t.Errorf("exact p99 %vms, want %vms", got, nsToMS(want99))
	}
	wantMean, _ := stats.Mean(s.firstEvents)
	if math.Abs(m.TimeToFirstEvent.MeanMS-nsToMS(wantMean)) > 1e-9 {
		t.Errorf("first-event mean %v, want %v", m.TimeToFirstEvent.MeanMS, nsToMS(wantMean))
	}
	if m.PeakOpen < 1 || m.PeakOpen > 200 {
		t.Errorf("peak open %d", m.PeakOpen)
	}
}

// TestAggregateCountsCanFail: a record stream with a lost id and a duplicate sender shows
// in the counters, which the scenarios' checks read.
func TestAggregateCountsCanFail(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{})
	a.Add(&runner.Record{Kind: runner.RecordEvent, Time: t0, Missing: 3, DuplicateSender: true, Latency: -1, Gap: -1})
	// A late event fills one of the three gaps: two stay lost.
	a.Add(&runner.Record{Kind: runner.RecordEvent, Time: t0, OutOfOrder: true, Latency: -1, Gap: -1})
	m := a.Metrics()
	if m.MissingIDs != 2 || m.DuplicateSenders != 1 || m.OutOfOrderIDs != 1 || m.Latency.Count != 0 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestAggregateSwitchesToHistogramPastLimit(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{ExactSamples: 1000})
	s := &synthRun{streams: 100, events: 30, rampStep: time.Millisecond, seed: 7, keep: true}
	s.run(addTo(a))
	m := a.Metrics()
	if m.Latency.Exact {
		t.Fatal("3300 latencies with limit 1000 still exact")
	}
	if a.latency.exact != nil {
		t.Fatal("exact samples kept past the limit")
	}
	for _, p := range []struct {
		pct float64
		got float64
	}{{50, m.Latency.P50MS}, {90, m.Latency.P90MS}, {99, m.Latency.P99MS}} {
		want, _ := stats.PercentileNearestRank(s.latencies, p.pct)
		if e := relErr(p.got, nsToMS(want)); e > HistogramRelativeError {
			t.Errorf("p%v: %v vs exact %v: error %.4f", p.pct, p.got, nsToMS(want), e)
		}
	}
	mx, _ := stats.Max(s.latencies)
	if m.Latency.MaxMS != nsToMS(mx) {
		t.Errorf("max %v, want exact %v", m.Latency.MaxMS, nsToMS(mx))
	}
}

func TestAggregateTimeline(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{Start: t0})
	// 10 streams open at t0+0.5s, one event per stream per second for 5s, then close.
	for st := 0; st < 10; st++ {
		a.Add(&runner.Record{Kind: runner.RecordOpened, Stream: st, Time: t0.Add(500 * time.Millisecond)})
	}
	for sec := 1; sec <= 5; sec++ {
		for st := 0; st < 10; st++ {
			a.Add(&runner.Record{Kind: runner.RecordEvent, Stream: st, Time: t0.Add(time.Duration(sec)*time.Second + 100*time.Millisecond), Latency: time.Millisecond})
		}
	}
	for st := 0; st < 10; st++ {
		a.Add(&runner.Record{Kind: runner.RecordClosed, Stream: st, Time: t0.Add(8500 * time.Millisecond)})
	}
	tl := a.Timeline()
	if tl.Step() != time.Second || !tl.Start.Equal(t0) {
		t.Fatalf("step %v start %v", tl.Step(), tl.Start)
	}
	if len(tl.Points) != 9 {
		t.Fatalf("%d points, want 9", len(tl.Points))
	}
	for i, p := range tl.Points {
		wantEvents := int64(0)
		if i >= 1 && i <= 5 {
			wantEvents = 10
		}
		if p.Events != wantEvents || p.Open != 10 {
			t.Errorf("point %d: %+v, want 10 open, %d events", i, p, wantEvents)
		}
	}
	snap := a.Snapshot(t0.Add(3500 * time.Millisecond))
	if snap.EventRate != 10 || snap.Open != 0 || snap.Events != 50 || !snap.LatencyOK || snap.LatencyP99 != time.Millisecond {
		t.Errorf("snapshot %+v", snap)
	}
	if line := snap.String(); !strings.Contains(line, "10/s") || !strings.Contains(line, "p99 latency 1.00ms") {
		t.Errorf("progress line %q", line)
	}
}

func TestAggregateTimelineCompacts(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{Start: t0, TimelinePoints: 10})
	for sec := 0; sec < 35; sec++ {
		a.Add(&runner.Record{Kind: runner.RecordEvent, Time: t0.Add(time.Duration(sec) * time.Second), Latency: -1})
	}
	tl := a.Timeline()
	if len(tl.Points) > 10 || tl.Step() != 4*time.Second {
		t.Fatalf("%d points of %v", len(tl.Points), tl.Step())
	}
	var total int64
	for _, p := range tl.Points {
		total += p.Events
	}
	if total != 35 || tl.Points[0].Events != 4 {
		t.Fatalf("events %d (first point %d), want 35 (4)", total, tl.Points[0].Events)
	}
}

func TestAggregateConfigValidate(t *testing.T) {
	err := AggregateConfig{ExactSamples: -1, TimelineStep: time.Microsecond, TimelinePoints: 1}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"exact samples", "timeline step", "timeline points"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := NewAggregate(AggregateConfig{ExactSamples: -5}); err == nil {
		t.Error("NewAggregate accepted a bad config")
	}
}

func TestAggregateConcurrentSnapshot(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&synthRun{streams: 50, events: 20, rampStep: time.Millisecond, seed: 3}).run(addTo(a))
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			if a.Metrics().Streams != 50 {
				t.Fatal("streams lost")
			}
			return
		default:
			_ = a.Snapshot(t0.Add(time.Duration(i) * time.Millisecond))
			runtime.Gosched()
		}
	}
}

// heapAfterRun feeds an aggregate a synthetic run of streams x events and returns the
// heap it retains (after GC) above what was live before.
func heapAfterRun(tb testing.TB, streams, events int) (int64, *Aggregate) {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := mustAggregate(tb, AggregateConfig{})
	(&synthRun{streams: streams, events: events, rampStep: 100 * time.Microsecond, seed: 11}).run(addTo(a))
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), a
}

// TestAggregateMemoryDoesNotGrowWithEvents: ten times the events, about the same heap.
func TestAggregateMemoryDoesNotGrowWithEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds 3.3M records")
	}
	small, a1 := heapAfterRun(t, 10_000, 3)
	large, a2 := heapAfterRun(t, 10_000, 30)
	runtime.KeepAlive(a1)
	runtime.KeepAlive(a2)
	t.Logf("retained heap: %d bytes for 10k x 3 events, %d bytes for 10k x 30", small, large)
	if large > 2<<20 {
		t.Errorf("aggregate of 10k streams x 30 events retains %d bytes; want < 2 MiB", large)
	}
	if large > small+256<<10 {
		t.Errorf("retained heap grew from %d to %d bytes with 10x the events", small, large)
	}
}

// BenchmarkAggregate10kStreams feeds a 10,000-stream run and reports the heap the
// aggregate retains; compare events=30 with events=300: the figure does not grow.
func BenchmarkAggregate10kStreams(b *testing.B) {
	for _, events := range []int{30, 300} {
		b.Run("events="+itoa(events), func(b *testing.B) {
			var heap int64
			var records int64
			for b.Loop() {
				h, a := heapAfterRun(b, 10_000, events)
				heap = h
				records = a.Metrics().Records
				runtime.KeepAlive(a)
			}
			b.ReportMetric(float64(heap), "heap-bytes")
			b.ReportMetric(float64(records), "records")
		})
	}
}

func itoa(n int) string { return fmtNumber(float64(n)) }

// TestSnapshotP99FromHistogram: the progress line's p99 (read from the histogram) is
// within the histogram's 1% of the exact p99 of the result.
func TestSnapshotP99FromHistogram(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{Start: t0})
	for i := 1; i <= 1000; i++ {
		a.Add(&runner.Record{Kind: runner.RecordEvent, Time: t0, Latency: time.Duration(i) * time.Millisecond, Gap: -1})
	}
	snap := a.Snapshot(t0.Add(time.Second))
	exact := a.Metrics().Latency.P99MS
	if got := float64(snap.LatencyP99) / 1e6; !snap.LatencyOK || got < exact*0.99 || got > exact*1.01 {
		t.Errorf("snapshot p99 %.3fms, exact %.3fms", got, exact)
	}
}

// TestMetricsDistributionsInTableOrder: Metrics fills each DurationStats (and each request
// figure) from its own distribution: the lists Metrics and requestMetrics pair with the
// catalog's tables are in the same order.
func TestMetricsDistributionsInTableOrder(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{Start: t0})
	if err := a.SetRequestSLO(RequestSLO{}); err != nil {
		t.Fatal(err)
	}
	a.AddRequest(runner.RequestRecord{}) // creates the request part
	for i, d := range a.distributions() {
		d.add(time.Duration(i+1) * time.Millisecond)
	}
	ra := a.req
	for i, d := range []*distribution{ra.headers, ra.ttft, ra.cgap, ra.egap, ra.e2e, ra.wait} {
		d.add(time.Duration(i+100) * time.Millisecond)
	}
	for i, h := range []*Histogram{ra.events, ra.cbytes, ra.tokRate, ra.evRate, ra.bRate} {
		h.Add(float64(i + 1000))
	}
	m := a.Metrics()
	for i, d := range durationMetrics() {
		if got := d.get(&m).MaxMS; got != float64(i+1) {
			t.Errorf("%s: max %v ms, want %d (another distribution's)", d.name, got, i+1)
		}
	}
	for i, d := range requestDurations() {
		if got := d.get(m.Requests).MaxMS; got != float64(i+100) {
			t.Errorf("request %s: max %v ms, want %d", d.name, got, i+100)
		}
	}
	for i, v := range requestValues() {
		if got := v.get(m.Requests).Max; got != float64(i+1000) {
			t.Errorf("request %s: max %v, want %d", v.name, got, i+1000)
		}
	}
}

// TestAggregateConcurrentMetrics: Metrics summarises copies after releasing the lock, so
// Adds go on meanwhile (-race checks that nothing is shared; another goroutine calls
// Metrics throughout), and a summary taken midway does not change with later Adds.
func TestAggregateConcurrentMetrics(t *testing.T) {
	a := mustAggregate(t, AggregateConfig{})
	done := make(chan struct{})
	var mid Metrics
	var midCount uint64
	var midP99 float64
	go func() {
		defer close(done)
		n := 0
		(&synthRun{streams: 50, events: 40, rampStep: time.Millisecond, seed: 5}).run(func(r runner.Record) {
			a.Add(&r)
			if n++; n == 1500 {
				mid = a.Metrics()
				midCount, midP99 = mid.Latency.Count, mid.Latency.P99MS
			}
		})
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			_ = a.Metrics()
			runtime.Gosched()
		}
	}
	end := a.Metrics()
	alone := mustAggregate(t, AggregateConfig{})
	(&synthRun{streams: 50, events: 40, rampStep: time.Millisecond, seed: 5}).run(addTo(alone))
	want := alone.Metrics()
	if end.Streams != want.Streams || end.Latency.Count != want.Latency.Count || end.Latency.P99MS != want.Latency.P99MS {
		t.Fatalf("streams %d, latency samples %d, p99 %v; the same run without Metrics calls: %d, %d, %v",
			end.Streams, end.Latency.Count, end.Latency.P99MS, want.Streams, want.Latency.Count, want.Latency.P99MS)
	}
	if midCount == 0 || midCount >= end.Latency.Count {
		t.Fatalf("midway %d latency samples of %d", midCount, end.Latency.Count)
	}
	if mid.Latency.Count != midCount || mid.Latency.Histogram.Count() != midCount || mid.Latency.P99MS != midP99 {
		t.Errorf("a summary changed after later Adds: count %d histogram %d p99 %v, taken as %d %v",
			mid.Latency.Count, mid.Latency.Histogram.Count(), mid.Latency.P99MS, midCount, midP99)
	}
}

// addTo is a's Add for the emit of a synthRun.
func addTo(a *Aggregate) func(runner.Record) {
	return func(r runner.Record) { a.Add(&r) }
}
