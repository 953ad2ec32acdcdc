package runner

import (
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// tickServer streams an event with an increasing id and its send time every 20 ms.
func tickServer(t *testing.T) (*countingServer, *atomic.Int32) {
	t.Helper()
	var requests atomic.Int32
	cs := &countingServer{}
	cs.Server = sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		next := 1
		if id, err := strconv.Atoi(r.Header.Get("Last-Event-ID")); err == nil {
			next = id + 1
		}
		streamHeaders(w)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			writeEvent(w, "id: %d\ndata: {\"sent_unix_ns\":%d,\"sender\":\"t\"}\n\n", next, time.Now().UnixNano())
			next++
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})
	return cs, &requests
}

// startLoad starts cfg (loopConfig applied) with an out channel of buf records, which
// is closed once the load is done.
func startLoad(t *testing.T, ctx context.Context, cfg Config, buf int) (*Load, <-chan Record) {
	t.Helper()
	out := make(chan Record, buf)
	l, err := Start(ctx, loopConfig(cfg), Chan(out))
	if err != nil {
		t.Fatal(err)
	}
	go func() { l.Wait(); close(out) }()
	return l, out
}

// runAll runs cfg and returns every record, in the order they were sent.
func runAll(t *testing.T, ctx context.Context, cfg Config) []Record {
	t.Helper()
	out := make(chan Record, 256)
	var recs []Record
	got := make(chan struct{})
	go func() {
		defer close(got)
		for r := range out {
			recs = append(recs, r)
		}
	}()
	l, err := Start(ctx, loopConfig(cfg), Chan(out))
	if err != nil {
		t.Fatal(err)
	}
	l.Wait()
	close(out)
	<-got
	return recs
}

// lastClosed returns each stream's last Closed reason.
func lastClosed(recs []Record) map[int]CloseReason {
	m := make(map[int]CloseReason)
	for _, r := range recs {
		if r.Kind == RecordClosed {
			m[r.Stream] = r.Reason
		}
	}
	return m
}

// wantEnded checks that recs close n streams and that each ended with reason.
func wantEnded(t *testing.T, recs []Record, n int, reason CloseReason) {
	t.Helper()
	closed := lastClosed(recs)
	if len(closed) != n {
		t.Errorf("%d streams closed, want %d", len(closed), n)
	}
	for i, got := range closed {
		if got != reason {
			t.Errorf("stream %d ended %q, want %s", i, got, reason)
		}
	}
}

func TestRunOpensOnScheduleAndStopsAfterHold(t *testing.T) {
	srv, _ := tickServer(t)
	cfg := Config{Target: srv.URL, StreamTemplate: "{target}/s/{session}", Streams: 5, Ramp: 400 * time.Millisecond,
		Hold: time.Second, Drain: 5 * time.Second}
	start := time.Now()
	recs := runAll(t, ctxTimeout(t, 30*time.Second), cfg)
	if el := time.Since(start); el < 1400*time.Millisecond {
		t.Errorf("run took %v, less than ramp + hold", el)
	}
	plan := cfg.Plan()
	var opened []Record
	events := make(map[int]int)
	for _, r := range recs {
		switch r.Kind {
		case RecordOpened:
			opened = append(opened, r)
		case RecordEvent:
			events[r.Stream]++
			if r.Latency < 0 || r.Missing != 0 || r.Duplicate || r.DuplicateSender {
				t.Errorf("event %+v", r)
			}
		case RecordError:
			t.Errorf("error %+v", r)
		}
	}
	if len(opened) != 5 {
		t.Fatalf("%d opened, want 5", len(opened))
	}
	sort.Slice(opened, func(i, j int) bool { return opened[i].Stream < opened[j].Stream })
	base := opened[0].Scheduled
	for i, o := range opened {
		if got := o.Scheduled.Sub(base); got != plan.StartAt(i) {
			t.Errorf("stream %d scheduled at +%v, want +%v", i, got, plan.StartAt(i))
		}
		if o.Time.Before(o.Scheduled) {
			t.Errorf("stream %d opened before its schedule", i)
		}
		if o.Session != "s-"+strconv.Itoa(i) {
			t.Errorf("stream %d session %q", i, o.Session)
		}
	}
	for i, reason := range lastClosed(recs) {
		if reason != CloseStopped {
			t.Errorf("stream %d ended %q, want stopped", i, reason)
		}
		if events[i] == 0 {
			t.Errorf("stream %d got no events", i)
		}
	}
}

func TestRunCancelledStillDeliversRecords(t *testing.T) {
	srv, _ := tickServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, out := startLoad(t, ctx, Config{Target: srv.URL, Streams: 4, Hold: time.Hour}, 16)
	var recs []Record
	opened := 0
	for opened < 4 {
		r := <-out
		recs = append(recs, r)
		if r.Kind == RecordHeaders {
			opened++
		}
	}
	cancel()
	for r := range out {
		recs = append(recs, r)
	}
	wantEnded(t, recs, 4, CloseCancelled)
}

func TestRunDrainGraceCancels(t *testing.T) {
	srv, _ := tickServer(t)
	cfg := Config{Target: srv.URL, Streams: 2, Hold: 50 * time.Millisecond, Drain: 50 * time.Millisecond}
	out := make(chan Record) // unbuffered: the streams block on their first record
	l, err := Start(context.Background(), loopConfig(cfg), Chan(out))
	if err != nil {
		t.Fatal(err)
	}
	// Read nothing until the grace has run out, so that no stream could finish
	// within it.
	select {
	case <-l.hardCtx.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("drain grace never ran out")
	}
	go func() { l.Wait(); close(out) }()
	var recs []Record
	for r := range out {
		recs = append(recs, r)
	}
	wantEnded(t, recs, 2, CloseCancelled) // the grace ran out
}

func TestRunStopEndsHoldEarly(t *testing.T) {
	srv, _ := tickServer(t)
	out := make(chan Record, 1024)
	l, err := Start(context.Background(), loopConfig(Config{Target: srv.URL, Streams: 3, Hold: time.Hour}), Chan(out))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "3 open streams", func() bool {
		n := 0
		for i := 0; i < 3; i++ {
			if es := l.Source(i); es != nil && es.IsOpen() {
				n++
			}
		}
		return n == 3
	})
	l.Source(1).StopReading()
	l.Stop()
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the load")
	}
	close(out)
	var recs []Record
	for r := range out {
		recs = append(recs, r)
	}
	wantEnded(t, recs, 3, CloseStopped)
}

func TestRunChurnComesBack(t *testing.T) {
	srv, requests := tickServer(t)
	cfg := Config{Target: srv.URL, Streams: 2, Hold: 1500 * time.Millisecond, ChurnShare: 1, ChurnDelay: 100 * time.Millisecond}
	recs := runAll(t, ctxTimeout(t, 30*time.Second), cfg)
	churned := make(map[int]bool)
	for _, r := range recs {
		switch {
		case r.Kind == RecordClosed && r.Reason == CloseChurn:
			churned[r.Stream] = true
		case r.Kind == RecordReconnect:
			if !churned[r.Stream] || r.LastEventID == "" || r.Delay < 100*time.Millisecond {
				t.Errorf("reconnect %+v", r)
			}
		case r.Kind == RecordEvent && (r.Duplicate || r.Missing != 0):
			t.Errorf("resume after churn lost or repeated ids: %+v", r)
		}
	}
	if len(churned) != 2 || requests.Load() != 4 {
		t.Errorf("churned %v, requests %d, want both streams and 4 requests", churned, requests.Load())
	}
}

func TestRunShardsSplitTheLoad(t *testing.T) {
	srv, requests := tickServer(t)
	seen := make(map[int]int)
	for shard := 0; shard < 2; shard++ {
		cfg := Config{Target: srv.URL, Streams: 6, StreamsPerBrowser: 2, Hold: time.Hour, Shard: Shard{Index: shard, Count: 2}}
		l, out := startLoad(t, ctxTimeout(t, 30*time.Second), cfg, 256)
		headers := 0
		for r := range out {
			switch r.Kind {
			case RecordOpened:
				if prev, ok := seen[r.Stream]; ok {
					t.Errorf("stream %d opened by shards %d and %d", r.Stream, prev, shard)
				}
				seen[r.Stream] = shard
				if r.Browser != r.Stream/2 || r.Browser%2 != shard {
					t.Errorf("stream %d browser %d in shard %d", r.Stream, r.Browser, shard)
				}
			case RecordHeaders:
				// Shard 0 has browsers 0 and 2 (4 streams), shard 1 browser 1 (2).
				if headers++; headers == 4-2*shard {
					l.Stop()
				}
			}
		}
	}
	if len(seen) != 6 || requests.Load() != 6 {
		t.Errorf("streams %v requests %d", seen, requests.Load())
	}
}

func TestRunSlowShare(t *testing.T) {
	srv, _ := tickServer(t)
	out := make(chan Record, 1024)
	go func() {
		for range out {
		}
	}()
	defer close(out)
	l, err := Start(context.Background(), loopConfig(Config{Target: srv.URL, Streams: 4, SlowShare: 0.5, ReadRate: 100, Hold: time.Hour}), Chan(out))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Wait()
	defer l.Stop()
	waitFor(t, 10*time.Second, "4 sources", func() bool { return l.Source(3) != nil })
	slow := 0
	for i := 0; i < 4; i++ {
		if l.Source(i).readRate.Load() == 100 {
			slow++
		}
	}
	if slow != 2 {
		t.Errorf("%d slow streams, want 2", slow)
	}
}

func TestStartRejectsInvalidConfig(t *testing.T) {
	if _, err := Start(context.Background(), loopConfig(Config{Streams: -1}), nil); err == nil {
		t.Fatal("Start accepted an invalid config")
	}
}

func TestRunOverHTTP2OneConnectionPerBrowser(t *testing.T) {
	srv := newCountingServer(t, true, 0)
	cfg := Config{Target: srv.URL, Streams: 14, StreamsPerBrowser: 7, Hold: time.Hour, RootCAs: srv.roots()}
	l, out := startLoad(t, ctxTimeout(t, 30*time.Second), cfg, 1024)
	headers := 0
	for r := range out {
		switch r.Kind {
		case RecordHeaders:
			if headers++; headers == 14 {
				l.Stop()
			}
			if r.Proto != "HTTP/2.0" {
				t.Errorf("stream %d over %s", r.Stream, r.Proto)
			}
		case RecordError:
			t.Errorf("error %+v", r)
		}
	}
	if headers != 14 || srv.conns.Load() != 2 {
		t.Errorf("%d streams opened over %d connections, want 14 over 2 (one per browser)", headers, srv.conns.Load())
	}
}

// TestRunPassesTheTargetDescription: a load's encoding, send-time field and mark
// prefix reach every stream.
func TestRunPassesTheTargetDescription(t *testing.T) {
	var sawAE atomic.Value
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		sawAE.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		zw := gzip.NewWriter(w)
		defer zw.Close()
		for i := 0; ; i++ {
			fmt.Fprintf(zw, "id: %d\ndata: {\"ts\":%d,\"text\":\"sseh-000000000000-%d-%d\"}\n\n", i, time.Now().UnixMilli(), i, time.Now().UnixNano())
			zw.Flush()
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	cfg := Config{Target: srv.URL, StreamTemplate: "{target}/", Streams: 2, Hold: 500 * time.Millisecond,
		AcceptEncoding: "gzip", SentField: "ts", MarkPrefix: "sseh-000000000000-"}
	recs := runAll(t, ctxTimeout(t, 30*time.Second), cfg)
	if ae, _ := sawAE.Load().(string); ae != "gzip" {
		t.Errorf("server saw Accept-Encoding %q, want gzip", ae)
	}
	var events, timed, marked int
	for _, r := range recs {
		switch r.Kind {
		case RecordHeaders:
			if r.ContentEncoding != "gzip" {
				t.Errorf("stream %d: content encoding %q", r.Stream, r.ContentEncoding)
			}
		case RecordEvent:
			events++
			if r.Latency >= 0 {
				timed++
			}
			if r.Mark >= 0 && r.MarkLatency >= 0 {
				marked++
			}
		case RecordError:
			t.Errorf("error %+v", r)
		}
	}
	if events == 0 || timed != events || marked != events {
		t.Errorf("%d events, %d timed from ts, %d with marks; want all", events, timed, marked)
	}
}
