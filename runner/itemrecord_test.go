package runner

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingSink counts heads and events and allocates nothing.
type countingSink struct{ heads, events atomic.Int64 }

func (s *countingSink) Put(r *Record) {
	switch r.Kind {
	case RecordHeaders:
		s.heads.Add(1)
	case RecordEvent:
		s.events.Add(1)
	}
}

// TestItemRecordsAreNotAllocatedPerEvent: an event's record goes to the Sink by
// pointer, so a record made in the handler's frame would escape to the heap, one
// allocation of 480 bytes per event (at 10,000 streams about 2 us of CPU per event,
// 12.4 against 10.4). A load's sources take their item records from a pool instead:
// what is left per event is its data string. Measured over a load's streams on the
// event loops and on their own goroutines, against a server that writes its events
// from one prepared buffer.
func TestItemRecordsAreNotAllocatedPerEvent(t *testing.T) {
	const streams, events = 4, 2000
	for _, goroutines := range []bool{false, true} {
		name := "loops"
		if goroutines {
			name = "goroutines"
		}
		t.Run(name, func(t *testing.T) {
			if !goroutines {
				testLoops(t, 1) // skips off Linux
			}
			var body strings.Builder
			for i := 1; i <= events; i++ {
				fmt.Fprintf(&body, "id: %d\nevent: tick\ndata: {\"seq\":%d,\"sent_unix_ns\":1}\n\n", i, i)
			}
			payload := []byte(body.String())
			gate := make(chan struct{})
			openGate := sync.OnceFunc(func() { close(gate) })
			var heads atomic.Int64
			target := loopTestServer(t, func(c net.Conn, _ int) {
				if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")); err != nil {
					return
				}
				heads.Add(1)
				<-gate
				c.Write(payload)
				c.Read(make([]byte, 1)) // until the client or the test's end closes it
			})
			t.Cleanup(openGate) // before the server's cleanup waits for its handlers
			sink := &countingSink{}
			l, err := Start(context.Background(), Config{Target: target, Streams: streams,
				Hold: time.Hour, GoroutineReaders: goroutines}, sink)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { l.Stop(); l.Wait() }()
			waitFor(t, 10*time.Second, "every head", func() bool { return heads.Load() == streams && sink.heads.Load() == streams })
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			openGate()
			waitFor(t, 20*time.Second, "every event", func() bool { return sink.events.Load() == streams*events })
			runtime.ReadMemStats(&after)
			perEvent := float64(after.Mallocs-before.Mallocs) / (streams * events)
			t.Logf("%.3f allocations per event", perEvent)
			if perEvent > 1.3 {
				t.Errorf("%.3f allocations per event, want about 1 (its data string)", perEvent)
			}
		})
	}
}
