package reference_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

// openRaw opens a session stream on a raw connection and reads its response head, so
// that the client side costs no goroutine; the body is left in the socket.
func openRaw(t *testing.T, base, id string) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(wait))
	req := "GET /sessions/" + id + "/events HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read head of %s: %v", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d", id, resp.StatusCode)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// goroutinesPerStream opens n session streams on cfg's server and returns the growth of
// the process's goroutines per stream once every stream's sender runs and the count
// settles at or below limit per stream (or, failing that, what it was at the deadline).
func goroutinesPerStream(t *testing.T, cfg reference.Config, n int, limit float64) float64 {
	t.Helper()
	base := startServer(t, cfg)
	scrape(t, base) // the metrics client's own keep-alive connection counts in the base
	before := runtime.NumGoroutine()
	for i := range n {
		openRaw(t, base, "g"+strconv.Itoa(i))
	}
	awaitMetrics(t, base, wait, "every stream has its sender", func(m map[string]float64) bool {
		return m["sseref_senders_active"] == float64(n) && m["sseref_streams_open"] == float64(n)
	})
	var per float64
	deadline := time.Now().Add(2 * time.Second)
	for {
		per = float64(runtime.NumGoroutine()-before) / float64(n)
		if per <= limit || time.Now().After(deadline) {
			return per
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}

// A session stream costs net/http's two goroutines (the connection's and its background
// read) and no third for its sender, which runs on the handler's goroutine; fault
// leak-on-disconnect, whose senders must outlive their streams, still has the third.
func TestSessionStreamCostsNoSenderGoroutine(t *testing.T) {
	const n = 40
	const slack = 0.2 // a few goroutines of the test and the runtime coming and going
	if per := goroutinesPerStream(t, testConfig(), n, 2+slack); per > 2+slack {
		t.Errorf("goroutines per session stream = %.2f, want 2 (no sender goroutine)", per)
	}
	cfg := testConfig()
	cfg.Faults.LeakOnDisconnect = true
	if per := goroutinesPerStream(t, cfg, n, 2+slack); per < 3-slack {
		t.Errorf("leak-on-disconnect: goroutines per session stream = %.2f, want 3 (a sender goroutine each)", per)
	}
}

// A same-id reconnect replaces a stream whose sender is blocked in a write to a client
// that stopped reading within about closeGrace (1 s), not after the write timeout: the
// sender writes on the handler's goroutine, so the replacement shortens the deadline.
func TestReplaceInterruptsABlockedWrite(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) {
		cfg.Tick = 0
		cfg.WriteTimeout = time.Minute // far beyond the test's waits
	})
	dialNotReading(t, base, "stuck")
	fillUntilBlocked(t, base, "stuck")
	t0 := time.Now()
	openRaw(t, base, "stuck") // fails after wait (5 s) if the old write holds on
	took := time.Since(t0)
	if took > 3*time.Second {
		t.Errorf("replacing a stream blocked in a write took %v, want about 1 s", took)
	}
	awaitMetrics(t, base, wait, "the old stream ended as replaced", func(m map[string]float64) bool {
		return m[closed("replaced")] == 1 && m["sseref_senders_active"] == 1
	})
	t.Logf("replaced after %v", took.Round(time.Millisecond))
}

// fillUntilBlocked posts large progress events to session id, whose client does not
// read, until the count of events written stops short of what was posted: its sender
// is blocked in a write.
func fillUntilBlocked(t *testing.T, base, id string) {
	t.Helper()
	msg := strings.Repeat("w", 60<<10)
	posted, last := 0.0, -1.0
	for {
		if posted == 300 { // 18 MB, far beyond loopback socket buffers
			t.Fatalf("300 large events posted to a client that does not read, and no write blocks: %s", sseref(scrape(t, base)))
		}
		if code, _ := post(t, base+"/sessions/"+id+"/progress", `{"progress":1,"message":"`+msg+`"}`, nil); code != http.StatusOK {
			t.Fatalf("progress: %d", code)
		}
		posted++
		sent := scrape(t, base)["sseref_events_sent_total"]
		if sent == last && sent+1 < posted {
			// Still the same a while later, with events waiting: blocked, not just late.
			time.Sleep(300 * time.Millisecond) // the interval over which the count must not move
			if scrape(t, base)["sseref_events_sent_total"] == sent {
				return
			}
		}
		last = sent
	}
}

// Shutdown ends a stream whose sender is blocked in a write within about closeGrace,
// not after the write timeout.
func TestShutdownInterruptsABlockedWrite(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Tick = 0
	cfg.WriteTimeout = time.Minute // far beyond the test's waits
	srv, err := reference.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	dialNotReading(t, ts.URL, "stuck")
	fillUntilBlocked(t, ts.URL, "stuck")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	t0 := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a stream blocked in a write: %v after %v", err, time.Since(t0))
	}
	if took := time.Since(t0); took > 3*time.Second {
		t.Errorf("Shutdown took %v, want about 1 s", took)
	}
}
