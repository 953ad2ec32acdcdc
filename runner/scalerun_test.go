package runner

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"
)

// heapProfileEnv, when set, makes the memory tests sample every 256 bytes allocated
// and write a heap profile to the path it names once their streams are held.
const heapProfileEnv = "SSEHARNESS_MEMTEST_HEAPPROFILE"

// sampleHeapIfAsked raises the heap profile's sampling rate when heapProfileEnv is set.
func sampleHeapIfAsked() {
	if os.Getenv(heapProfileEnv) != "" {
		runtime.MemProfileRate = 256
	}
}

// writeHeapProfileIfAsked writes a heap profile to heapProfileEnv's path, if set.
func writeHeapProfileIfAsked() {
	if path := os.Getenv(heapProfileEnv); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
}

// scaleRun is a load of many streams whose records one goroutine tallies in O(1)
// per stream: what a report does, without importing it.
type scaleRun struct {
	opened, events, errs atomic.Int64
	perStream            []atomic.Int32
}

// event counts one event of its stream.
func (s *scaleRun) event(r Record) {
	s.events.Add(1)
	s.perStream[r.Stream].Add(1)
}

// eventInOrder counts one event of its stream and, as an error, an id lost or repeated.
func (s *scaleRun) eventInOrder(r Record) {
	s.event(r)
	if r.Missing != 0 || r.Duplicate {
		s.errs.Add(1)
	}
}

// snapshot is each stream's event count now.
func (s *scaleRun) snapshot() []int32 {
	base := make([]int32, len(s.perStream))
	for i := range s.perStream {
		base[i] = s.perStream[i].Load()
	}
	return base
}

// short counts the streams with fewer than want-1 events since base: one tick of
// slack for a window's edges.
func (s *scaleRun) short(base []int32, want int32) int {
	short := 0
	for i := range s.perStream {
		if s.perStream[i].Load()-base[i] < want-1 {
			short++
		}
	}
	return short
}

// holdWindow lets the streams run for lead, then counts the streams short of one
// event per second over the following window.
func (s *scaleRun) holdWindow(lead, window time.Duration) int {
	time.Sleep(lead)
	base := s.snapshot()
	time.Sleep(window)
	return s.short(base, int32(window/time.Second))
}

// startScaleRun starts cfg's load, tallies heads as opened and error records as
// errors before handing every record to each, and waits until all cfg.Streams heads
// are in. It returns the tally and how long the heads took from Start's return.
// t.Cleanup stops the load and its consumer.
func startScaleRun(t *testing.T, cfg Config, each func(s *scaleRun, r Record)) (*scaleRun, time.Duration) {
	t.Helper()
	s := &scaleRun{perStream: make([]atomic.Int32, cfg.Streams)}
	out := make(chan Record, 1024)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for r := range out {
			switch r.Kind {
			case RecordHeaders:
				s.opened.Add(1)
			case RecordError:
				s.errs.Add(1)
			}
			each(s, r)
		}
	}()
	l, err := Start(context.Background(), cfg, Chan(out))
	if err != nil {
		close(out)
		<-consumed
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Stop()
		l.Wait()
		close(out)
		<-consumed
	})
	start := time.Now()
	n := cfg.Streams
	waitFor(t, cfg.Ramp+60*time.Second, fmt.Sprintf("%d open streams", n), func() bool { return s.opened.Load() == int64(n) })
	return s, time.Since(start)
}
