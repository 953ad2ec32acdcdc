package eventstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	sse "github.com/tmaxmax/go-sse"
)

const benchEvents = 10_000

// tickStream builds a body like the reference server's: n tick events with numeric
// ids and JSON data, and a ": ping" heartbeat after every tenth event.
func tickStream(n int) []byte {
	var b bytes.Buffer
	const t0 = 1_773_000_000_000_000_000
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "id: %d\nevent: tick\ndata: {\"session\":\"s1\",\"seq\":%d,\"sent_unix_ns\":%d,\"sender\":\"s-1\"}\n\n",
			i, i, t0+int64(i)*1_000_003)
		if i%10 == 0 {
			b.WriteString(": ping\n\n")
		}
	}
	return b.Bytes()
}

// mallocs returns the process's cumulative heap allocation count.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkParse parses the tick stream with this package; compare with
// BenchmarkGoSSERead on the same bytes.
func BenchmarkParse(b *testing.B) {
	body := tickStream(benchEvents)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	before := mallocs()
	for b.Loop() {
		p := New(bytes.NewReader(body), Config{})
		n := 0
		for {
			it, err := p.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
			if it.Kind == KindEvent {
				n++
			}
		}
		if n != benchEvents {
			b.Fatalf("parsed %d events, want %d", n, benchEvents)
		}
	}
	b.ReportMetric(float64(mallocs()-before)/float64(b.N*benchEvents), "allocs/event")
}

// BenchmarkGoSSERead parses the same stream with github.com/tmaxmax/go-sse's sse.Read.
func BenchmarkGoSSERead(b *testing.B) {
	body := tickStream(benchEvents)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	before := mallocs()
	for b.Loop() {
		n := 0
		for ev, err := range sse.Read(bytes.NewReader(body), nil) {
			if err != nil {
				b.Fatal(err)
			}
			if ev.Type == "tick" {
				n++
			}
		}
		if n != benchEvents {
			b.Fatalf("parsed %d events, want %d", n, benchEvents)
		}
	}
	b.ReportMetric(float64(mallocs()-before)/float64(b.N*benchEvents), "allocs/event")
}

// TestAllocationsPerEvent pins the steady-state cost of a tick event: its data and its
// new id share its one allocation (the repeated type and the heartbeat are reused).
func TestAllocationsPerEvent(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under -cover and -race")
	}
	body := tickStream(2000)
	p := New(bytes.NewReader(body), Config{})
	for range 100 { // warm up: buffers and cached strings in place
		if _, err := p.Next(); err != nil {
			t.Fatal(err)
		}
	}
	events := 0
	before := mallocs()
	for range 1000 {
		it, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		if it.Kind == KindEvent {
			events++
		}
	}
	perEvent := float64(mallocs()-before) / float64(events)
	t.Logf("%.3f allocations per event over %d events", perEvent, events)
	if perEvent > 1.01 {
		t.Errorf("%.3f allocations per event, want at most 1 (data and id share one string)", perEvent)
	}
}

// TestMemoryPerParser measures the live heap of many parsers that have each parsed a
// few tick events and sit waiting for more, as the runner's streams do: it must stay
// far below the 16 KB per stream budget of the whole client.
func TestMemoryPerParser(t *testing.T) {
	const n = 2000
	chunk := tickStream(3)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	parsers := make([]*Parser, n)
	for i := range parsers {
		p := New(bytes.NewReader(chunk), Config{})
		for {
			if _, err := p.Next(); err != nil {
				break
			}
		}
		parsers[i] = p
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perParser := float64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(parsers)
	t.Logf("%.0f bytes of heap per idle parser", perParser)
	if perParser > 6<<10 {
		t.Errorf("%.0f bytes per parser, want <= 6 KiB (4 KiB read buffer plus small line and data buffers)", perParser)
	}
}

// TestLongLineBufferIsReleased: one long line or event must not keep its buffer.
func TestLongLineBufferIsReleased(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 200<<10)
	body := append(append([]byte("data:"), long...), "\n\ndata:small\n\n"...)
	p := New(bytes.NewReader(body), Config{})
	for i := range 2 {
		it, err := p.Next()
		if err != nil || it.Kind != KindEvent {
			t.Fatalf("item %d: %s, %v", i, fmtItem(it), err)
		}
	}
	if cap(p.line) > keepBufferCap || cap(p.data) > keepBufferCap {
		t.Errorf("after a 200 KiB event: line buffer cap %d, data buffer cap %d; want <= %d", cap(p.line), cap(p.data), keepBufferCap)
	}
}

// TestUnfinishedEventBufferIsReleasedAtEOF: a big event cut off by the end of the body
// must not stay allocated while the stream waits to reconnect.
func TestUnfinishedEventBufferIsReleasedAtEOF(t *testing.T) {
	body := bytes.Repeat([]byte("data:"+strings.Repeat("x", 1000)+"\n"), 200)
	p := New(bytes.NewReader(body), Config{})
	if _, err := p.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
	if cap(p.line) > keepBufferCap || cap(p.data) > keepBufferCap {
		t.Errorf("after EOF inside a 200 KB event: line buffer cap %d, data buffer cap %d; want <= %d", cap(p.line), cap(p.data), keepBufferCap)
	}
}
