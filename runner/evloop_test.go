package runner

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopTestEnv set to 1 runs every source of the runner's tests on event loops too
// (loads use them by default), so that the whole suite proves the loop path gives
// the same behaviour; set to 0 it runs loads on goroutine readers, as before loops:
//
//	SSEHARNESS_TEST_EVLOOP=1 go test ./runner
//	SSEHARNESS_TEST_EVLOOP=0 go test ./runner
const loopTestEnv = "SSEHARNESS_TEST_EVLOOP"

func loopsForced() bool { return os.Getenv(loopTestEnv) == "1" && runtime.GOOS == "linux" }

func loopsForcedOff() bool { return os.Getenv(loopTestEnv) == "0" }

// withTestLoops gives cfg the test's event loops when the suite runs with loops
// forced on; they close after the sources' cleanups (cleanups run last-in first-out).
func withTestLoops(t *testing.T, cfg SourceConfig) SourceConfig {
	t.Helper()
	if !loopsForced() || cfg.EventLoops != nil {
		return cfg
	}
	if g, ok := testLoopSets.Load(t); ok {
		cfg.EventLoops = g.(*EventLoops)
		return cfg
	}
	g, err := NewEventLoops(2)
	if err != nil {
		t.Fatal(err)
	}
	testLoopSets.Store(t, g)
	t.Cleanup(func() {
		testLoopSets.Delete(t)
		g.Close()
	})
	cfg.EventLoops = g
	return cfg
}

// testLoopSets holds each test's loops while the suite runs with loops forced on.
var testLoopSets sync.Map

// loopConfig turns the event loops off when the suite runs with them forced off.
func loopConfig(cfg Config) Config {
	if loopsForcedOff() {
		cfg.GoroutineReaders = true
	}
	return cfg
}

// testLoops starts loops for a test that needs them whatever the env says.
func testLoops(t *testing.T, n int) *EventLoops {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("event loops need Linux")
	}
	g, err := NewEventLoops(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// looped reports whether the source's body is on a loop now.
func looped(es *EventSource) bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.looped != nil
}

// The same server and source, once on the goroutine and once on a loop, give the
// same records field by field (times apart), over chunked framing, an event split
// across writes, comments, retry, ids and a reconnect with Last-Event-ID.
func TestEventLoopSameRecords(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "cleartext", true: "tls"}[overTLS], func(t *testing.T) {
			testEventLoopSameRecords(t, overTLS)
		})
	}
}

// testEventLoopSameRecords is TestEventLoopSameRecords over cleartext or TLS
// (HTTP/1.1: the server offers no h2).
func testEventLoopSameRecords(t *testing.T, overTLS bool) {
	run := func(t *testing.T, loops *EventLoops) []Record {
		srv, _ := connServer(t, http.StatusNoContent, func(w http.ResponseWriter, r *http.Request) {
			streamHeaders(w)
			writeEvent(w, ": hello\n\nretry: 5\nid: 1\ndata: {\"sent_unix_ns\": 1, \"sender\": \"a\"}\n\n")
			writeEvent(w, "event: tick\nid: 2\ndata: line one\n")
			writeEvent(w, "data: line two\n\nid: 3\ndata: three\n\n: trailing comment")
		}, func(w http.ResponseWriter, r *http.Request) {
			streamHeaders(w)
			writeEvent(w, "id: 4\ndata: after %q\n\n", r.Header.Get("Last-Event-ID"))
		})
		url := srv.URL
		if overTLS {
			url = tlsTwin(t, srv)
		}
		rec := newRecorder(t)
		es := startSource(t, NewBrowser(BrowserConfig{Insecure: true}), SourceConfig{URL: url, Retry: time.Millisecond, NoReconnect: false, EventLoops: loops}, rec.ch)
		select {
		case <-es.Done():
		case <-time.After(10 * time.Second):
			rec.flush()
			for _, r := range rec.all() {
				t.Logf("%+v", r)
			}
			t.Fatalf("loops %v: source did not end within 10s", loops != nil)
		}
		rec.flush()
		if loops != nil && es.parserPush != true {
			t.Errorf("the body did not go to the loop")
		}
		return rec.all()
	}
	gor := run(t, nil)
	loop := run(t, testLoops(t, 1))
	if len(gor) != len(loop) {
		t.Fatalf("goroutine path %d records, loop %d:\n%v\n%v", len(gor), len(loop), gor, loop)
	}
	for i := range gor {
		a, b := normalized(gor[i]), normalized(loop[i])
		if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
			t.Errorf("record %d differs:\n goroutine %+v\n loop      %+v", i, a, b)
		}
	}
	if n := countKind(loop, RecordEvent); n != 4 {
		t.Errorf("%d events on the loop, want 4", n)
	}
	last := loop[len(loop)-1]
	if last.Kind != RecordClosed || last.Reason != CloseNoContent {
		t.Errorf("last record %+v, want Closed no-content", last)
	}
	if rs := kindOf(loop, RecordReconnect); len(rs) == 0 || rs[0].LastEventID != "3" {
		t.Errorf("reconnects %+v, want the first with Last-Event-ID 3", rs)
	}
}

// tlsTwin serves srv's handler over TLS (HTTP/1.1 only: httptest offers no h2 unless
// asked) and returns its URL.
func tlsTwin(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	twin := httptest.NewUnstartedServer(srv.Config.Handler)
	twin.StartTLS()
	t.Cleanup(func() { twin.CloseClientConnections(); twin.Close() })
	return twin.URL
}

// normalized drops what differs between two runs of the same exchange: times.
func normalized(r Record) Record {
	r.Time, r.Scheduled = time.Time{}, time.Time{}
	r.Waited, r.Dial, r.TTHeaders, r.Delay = 0, 0, 0, 0
	if r.TLS > 0 {
		r.TLS = 1
	}
	if r.TTFirst > 0 {
		r.TTFirst = 1
	}
	// Items parsed from one read share its receive time on a loop (the kernel's), so
	// their gaps and silences may be 0 there and a little more on a goroutine.
	if r.Gap >= 0 {
		r.Gap = 0
	}
	if r.Latency > 0 {
		r.Latency = 1
	}
	if r.Quiet > 0 {
		r.Quiet = 0
	}
	if r.Lived > 0 {
		r.Lived = 1
	}
	return r
}

func kindOf(recs []Record, k RecordKind) []Record {
	var out []Record
	for _, r := range recs {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

func countKind(recs []Record, k RecordKind) int { return len(kindOf(recs, k)) }

// An open, idle stream sits on the loop with no goroutine of its own; Close ends it
// with a FIN seen by the server, Reset with an RST.
func TestEventLoopHoldsStreamWithoutGoroutine(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			serverErr := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					serverErr <- err
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						serverErr <- err
						return
					}
					if line == "\r\n" {
						break
					}
				}
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: one\n\n")
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, err = br.ReadByte()
				serverErr <- err
			}()
			g := testLoops(t, 1)
			rec := newRecorder(t)
			es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: "http://" + ln.Addr().String() + "/", EventLoops: g}, rec.ch)
			if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the body on the loop", func() bool { return looped(es) })
			var buf [64 << 10]byte
			stacks := string(buf[:runtime.Stack(buf[:], true)])
			if strings.Contains(stacks, "runner.(*EventSource).consume") || strings.Contains(stacks, "runner.(*EventSource).attempts") {
				t.Errorf("a goroutine still serves the looped stream:\n%s", stacks)
			}
			if reset {
				es.Reset()
			} else {
				es.Close()
			}
			waitDone(t, es, 10*time.Second, rec)
			err = <-serverErr
			switch {
			case reset && (err == nil || !strings.Contains(err.Error(), "reset")):
				t.Errorf("server saw %v, want a connection reset", err)
			case !reset && err == nil:
				t.Errorf("server read a byte, want EOF")
			case !reset && !strings.Contains(err.Error(), "EOF"):
				t.Errorf("server saw %v, want EOF (FIN)", err)
			}
			want := CloseClientClose
			if reset {
				want = CloseClientReset
			}
			if got := es.Reason(); got != want {
				t.Errorf("reason %q, want %q", got, want)
			}
		})
	}
}

// StopReading on a looped stream hands it back to a goroutine at its next readable
// moment: it reads nothing more until ResumeReading, then everything.
func TestEventLoopPauseHandsBack(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "cleartext", true: "tls"}[overTLS], func(t *testing.T) {
			testEventLoopPauseHandsBack(t, overTLS)
		})
	}
}

func testEventLoopPauseHandsBack(t *testing.T, overTLS bool) {
	release := make(chan struct{})
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		writeEvent(w, "data: 1\n\n")
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		writeEvent(w, "data: 2\n\n")
		<-r.Context().Done()
	})
	url := srv.URL
	if overTLS {
		url = tlsTwin(t, srv)
	}
	g := testLoops(t, 1)
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{Insecure: true}), SourceConfig{URL: url, EventLoops: g}, rec.ch)
	if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the body on the loop", func() bool { return looped(es) })
	es.StopReading()
	close(release)
	waitFor(t, 10*time.Second, "the hand-back to a goroutine", func() bool { return !looped(es) })
	if n := es.Events(); n != 1 {
		t.Fatalf("%d events while paused, want 1", n)
	}
	es.ResumeReading()
	if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 2); err != nil {
		t.Fatal(err)
	}
}

// Closing the loops under an open stream ends its connection with a network error;
// the reconnect then reads on the source's goroutine.
func TestEventLoopCloseUnderStream(t *testing.T) {
	srv := holdServer(t, "data: x\n\n")
	g := testLoops(t, 2)
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, Retry: time.Millisecond, EventLoops: g}, rec.ch)
	if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the body on a loop", func() bool { return looped(es) })
	g.Close()
	if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	if looped(es) {
		t.Error("the reconnect went to a closed loop")
	}
	rec.flush()
	errs := rec.kind(RecordError)
	if len(errs) != 1 || errs[0].Class != ErrRead || !strings.Contains(errs[0].Err, errLoopClosed.Error()) {
		t.Errorf("errors %+v, want one read error saying the loop closed", errs)
	}
}
