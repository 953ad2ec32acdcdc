package runner

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// orderSink is a Sink that checks Sink's rules as records come: a stream's records
// never come from two goroutines at once, and in order (Opened before its attempt's
// Headers and Events, Closed last); it keeps a count per stream and kind.
type orderSink struct {
	mu       sync.Mutex
	busy     map[int]bool // a Put of the stream is running
	open     map[int]bool // the stream's attempt opened and has not closed
	counts   map[int]map[RecordKind]int
	problems []string
}

func (s *orderSink) Put(r *Record) {
	s.mu.Lock()
	if s.busy[r.Stream] {
		s.problems = append(s.problems, "two Puts of one stream at once")
	}
	s.busy[r.Stream] = true
	switch r.Kind {
	case RecordOpened:
		s.open[r.Stream] = true
	case RecordHeaders, RecordEvent:
		if !s.open[r.Stream] {
			s.problems = append(s.problems, r.Kind.String()+" outside an opened attempt")
		}
	case RecordClosed:
		s.open[r.Stream] = false
	}
	if s.counts[r.Stream] == nil {
		s.counts[r.Stream] = map[RecordKind]int{}
	}
	s.counts[r.Stream][r.Kind]++
	s.mu.Unlock()
	runtime.Gosched() // let another goroutine try the same stream meanwhile
	s.mu.Lock()
	s.busy[r.Stream] = false
	s.mu.Unlock()
}

// TestSinkGetsEveryRecordInOrderFromTheLoops: a load's records reach a Sink put on the
// goroutines that made them (the event loops), each stream's in order and one at a
// time, and every one before Wait returns.
func TestSinkGetsEveryRecordInOrderFromTheLoops(t *testing.T) {
	cs, _ := tickServer(t)
	sink := &orderSink{busy: map[int]bool{}, open: map[int]bool{}, counts: map[int]map[RecordKind]int{}}
	l, err := Start(context.Background(), loopConfig(Config{Target: cs.URL, Streams: 8, Ramp: 40 * time.Millisecond, Hold: 600 * time.Millisecond}), sink)
	if err != nil {
		t.Fatal(err)
	}
	l.Wait()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, p := range sink.problems {
		t.Error(p)
	}
	if len(sink.counts) != 8 {
		t.Fatalf("records of %d streams, want 8", len(sink.counts))
	}
	for i, c := range sink.counts {
		if c[RecordOpened] == 0 || c[RecordHeaders] == 0 || c[RecordEvent] < 5 || c[RecordClosed] != c[RecordOpened] {
			t.Errorf("stream %d: %v, want opened, headers, events and a Closed per attempt", i, c)
		}
	}
}
