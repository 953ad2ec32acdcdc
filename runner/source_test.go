package runner

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestNoContentStops(t *testing.T) {
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, Retry: time.Millisecond}, rec.ch)
	waitDone(t, es, 10*time.Second, rec)
	if es.Reason() != CloseNoContent {
		t.Errorf("reason %q, want %q", es.Reason(), CloseNoContent)
	}
	if hits.Load() != 1 || rec.count(RecordReconnect) != 0 || rec.count(RecordError) != 0 {
		t.Errorf("hits=%d reconnects=%d errors=%d, want 1, 0, 0", hits.Load(), rec.count(RecordReconnect), rec.count(RecordError))
	}
}

func TestFailsWithoutReconnect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		ctype  string
		reason CloseReason
		class  ErrorClass
	}{
		{"status 500", 500, "text/event-stream", CloseBadStatus, ErrStatus},
		{"wrong content type", 200, "application/json", CloseBadContentType, ErrContentType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				io.WriteString(w, "data: x\n\n")
			})
			rec := newRecorder(t)
			es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, Retry: time.Millisecond}, rec.ch)
			waitDone(t, es, 10*time.Second, rec)
			errs := rec.kind(RecordError)
			if es.Reason() != tc.reason || len(errs) != 1 || errs[0].Class != tc.class {
				t.Errorf("reason %q errors %+v, want %q with one %q error", es.Reason(), errs, tc.reason, tc.class)
			}
			if hits.Load() != 1 || rec.count(RecordEvent) != 0 || es.Opens() != 0 {
				t.Errorf("hits=%d events=%d opens=%d, want 1, 0, 0", hits.Load(), rec.count(RecordEvent), es.Opens())
			}
		})
	}
}

func TestCleanEndReconnectsAfterRetry(t *testing.T) {
	type req struct {
		at     time.Time
		lastID string
		accept string
		cache  string
	}
	var mu sync.Mutex
	var reqs []req
	var firstEnd time.Time
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, req{time.Now(), r.Header.Get("Last-Event-ID"), r.Header.Get("Accept"), r.Header.Get("Cache-Control")})
		n := len(reqs)
		mu.Unlock()
		if n > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHeaders(w)
		writeEvent(w, "retry: 400\nid: 7\ndata: one\n\nid: 8\ndata: two\n\n")
		mu.Lock()
		firstEnd = time.Now()
		mu.Unlock()
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	waitDone(t, es, 10*time.Second, rec)
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if reqs[0].lastID != "" || reqs[1].lastID != "8" {
		t.Errorf("Last-Event-ID %q then %q, want none then 8", reqs[0].lastID, reqs[1].lastID)
	}
	if reqs[0].accept != "text/event-stream" || reqs[0].cache != "no-cache" {
		t.Errorf("Accept %q Cache-Control %q", reqs[0].accept, reqs[0].cache)
	}
	if gap := reqs[1].at.Sub(firstEnd); gap < 400*time.Millisecond {
		t.Errorf("reconnected %v after the end, sooner than retry 400ms", gap)
	}
	rc := rec.kind(RecordReconnect)
	if len(rc) != 1 || rc[0].Retry != 400*time.Millisecond || rc[0].Delay < 400*time.Millisecond || rc[0].LastEventID != "8" || rc[0].Attempt != 1 {
		t.Errorf("reconnect records %+v", rc)
	}
	closed := rec.kind(RecordClosed)
	if len(closed) != 2 || closed[0].Reason != CloseEOF || closed[1].Reason != CloseNoContent {
		t.Errorf("closed records %+v", closed)
	}
}

// TestRetryJitterOnlyLengthens: with Jitter 1 every delay is at least the retry, and
// the delays spread over the jitter's range (up to twice the retry). The delays the
// source chooses are checked without a clock first: exactly the retry with Jitter 0,
// in [retry, 2*retry) and spread over at least half of it with Jitter 1 (64 uniform
// draws within half the range: chance below 1e-17), so the test fails when jitter does
// nothing. Then end to end: the delays waited are never shorter than the retry, and
// spread too (8 draws over 100ms within 10ms: chance below 1e-5).
func TestRetryJitterOnlyLengthens(t *testing.T) {
	const retry = 100 * time.Millisecond
	for _, jitter := range []float64{0, 1} {
		lo, hi := chosenDelays(t, SourceConfig{URL: "http://127.0.0.1:1/s", Retry: retry, MinReconnect: retry, MaxBackoff: retry, Jitter: jitter}, 64)
		switch {
		case jitter == 0 && (lo != retry || hi != retry):
			t.Errorf("without jitter the delays run %v to %v, want exactly the retry %v", lo, hi, retry)
		case jitter == 1 && (lo < retry || hi >= 2*retry || hi-lo < retry/2):
			t.Errorf("with jitter 1 the delays run %v to %v, want within [%v, %v) and spread over half of it", lo, hi, retry, 2*retry)
		}
	}
	testRetryJitter(t, 1)
}

// chosenDelays returns the shortest and longest of n reconnection delays a source of
// cfg picks after attempts that lived long (no backoff) and ended cleanly.
func chosenDelays(t *testing.T, cfg SourceConfig, n int) (lo, hi time.Duration) {
	t.Helper()
	es, err := NewBrowser(BrowserConfig{}).NewEventSource(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	lo = time.Duration(1<<63 - 1)
	for range n {
		es.actx, es.start = &attemptCtx{}, time.Now().Add(-time.Hour)
		if !es.again(CloseEOF) {
			t.Fatal("a clean end did not reconnect")
		}
		lo, hi = min(lo, es.delay), max(hi, es.delay)
	}
	return lo, hi
}

func testRetryJitter(t *testing.T, jitter float64) {
	// MaxBackoff at the retry: the attempts end at once, and the backoff of quick ends
	// would otherwise double the delays and spread them by itself.
	const reconnects, retry = 8, 100 * time.Millisecond
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) > reconnects {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHeaders(w)
		writeEvent(w, "retry: 100\ndata: x\n\n")
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, Jitter: jitter, MaxBackoff: retry, MinReconnect: retry}, rec.ch)
	waitDone(t, es, 20*time.Second, rec)
	rcs := rec.kind(RecordReconnect)
	if len(rcs) != reconnects {
		t.Fatalf("%d reconnects, want %d", len(rcs), reconnects)
	}
	lo, hi := rcs[0].Delay, rcs[0].Delay
	for _, rc := range rcs {
		if rc.Delay < retry {
			t.Errorf("jittered delay %v shorter than retry %v", rc.Delay, retry)
		}
		lo, hi = min(lo, rc.Delay), max(hi, rc.Delay)
	}
	if hi-lo < 10*time.Millisecond {
		t.Errorf("delays %v to %v: jitter did not spread them", lo, hi)
	}
}

func TestNetworkErrorReconnects(t *testing.T) {
	srv, _ := connServer(t, http.StatusNoContent, func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		writeEvent(w, "id: 1\ndata: x\n\n")
		// Cut the connection mid-body: no terminating chunk.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, Retry: 50 * time.Millisecond}, rec.ch)
	waitDone(t, es, 10*time.Second, rec)
	closed := rec.kind(RecordClosed)
	errs := rec.kind(RecordError)
	if len(closed) != 2 || closed[0].Reason != CloseNetworkError || closed[1].Reason != CloseNoContent {
		t.Fatalf("closed records %+v", closed)
	}
	if len(errs) != 1 || errs[0].Class != ErrRead {
		t.Errorf("error records %+v, want one read error", errs)
	}
	if rc := rec.kind(RecordReconnect); len(rc) != 1 || rc[0].LastEventID != "1" {
		t.Errorf("reconnect records %+v", rc)
	}
}

func TestRefusedReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: "http://" + addr + "/", Retry: 20 * time.Millisecond}, rec.ch)
	waitFor(t, 10*time.Second, "two reconnects", func() bool { return rec.count(RecordReconnect) >= 2 })
	es.Close()
	waitDone(t, es, 10*time.Second, rec)
	errs := rec.kind(RecordError)
	if len(errs) < 2 || errs[0].Class != ErrDial {
		t.Errorf("errors %+v, want dial errors", errs)
	}
	closed := rec.kind(RecordClosed)
	if closed[0].Reason != CloseNetworkError || closed[len(closed)-1].Reason != CloseClientClose {
		t.Errorf("closed %+v, want network errors then client-close", closed)
	}
}

func TestIDsFlagged(t *testing.T) {
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		for _, id := range []string{"1", "2", "4", "4", "3", "x", "5"} {
			writeEvent(w, "id: %s\ndata: {}\n\n", id)
		}
		<-r.Context().Done()
	})
	rec := newRecorder(t)
	startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	ev := rec.waitKind(t, RecordEvent, 7)
	type flags struct {
		seq     int64
		missing int64
		dup     bool
		ooo     bool
	}
	want := []flags{{1, 0, false, false}, {2, 0, false, false}, {4, 1, false, false}, {4, 0, true, false},
		{3, 0, false, true}, {-1, 0, false, false}, {5, 0, false, false}}
	for i, w := range want {
		got := flags{ev[i].Seq, ev[i].Missing, ev[i].Duplicate, ev[i].OutOfOrder}
		if got != w {
			t.Errorf("event %d (id %s): %+v, want %+v", i, ev[i].EventID, got, w)
		}
	}
}

// TestEventsWithoutOwnIDAreNotDuplicates: an event without an id field carries the
// previous id over (the spec's id buffer); it is not that event again.
func TestEventsWithoutOwnIDAreNotDuplicates(t *testing.T) {
	srv := holdServer(t, "id: 1\ndata: {}\n\nevent: connected\ndata: {}\n\nid: 2\ndata: {}\n\nid: 2\ndata: {}\n\n")
	rec := newRecorder(t)
	startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	ev := rec.waitKind(t, RecordEvent, 4)
	if ev[1].EventID != "1" || ev[1].Seq != -1 || ev[1].Duplicate {
		t.Errorf("event without an id: id %q seq %d duplicate %v; want id 1 carried over, seq -1, not a duplicate", ev[1].EventID, ev[1].Seq, ev[1].Duplicate)
	}
	if ev[2].Duplicate || !ev[3].Duplicate {
		t.Errorf("duplicates %v %v: want only the repeated id 2 flagged", ev[2].Duplicate, ev[3].Duplicate)
	}
}

func TestIDsTrackedAcrossResume(t *testing.T) {
	// A server that replays from too early and then skips one.
	srv := resumeServer(t, "retry: 10\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n", "id: 2\ndata: b\n\nid: 4\ndata: d\n\n")
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	waitDone(t, es, 10*time.Second, rec)
	ev := rec.kind(RecordEvent)
	if len(ev) != 4 || !ev[2].Duplicate || ev[3].Missing != 1 || ev[2].Attempt != 1 {
		t.Errorf("events after resume: %+v", ev)
	}
}

func TestSeededLastEventID(t *testing.T) {
	got := make(chan string, 1)
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Last-Event-ID")
		streamHeaders(w)
		writeEvent(w, "id: 13\ndata: x\n\n")
		<-r.Context().Done()
	})
	rec := newRecorder(t)
	startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, LastEventID: "10"}, rec.ch)
	if id := <-got; id != "10" {
		t.Errorf("Last-Event-ID %q, want 10", id)
	}
	if ev := rec.waitKind(t, RecordEvent, 1); ev[0].Missing != 2 {
		t.Errorf("missing %d after seed 10 and id 13, want 2", ev[0].Missing)
	}
}

func TestDuplicateSender(t *testing.T) {
	for _, tc := range []struct {
		name    string
		senders []string
		want    []bool
	}{
		{"A B A flagged", []string{"A", "B", "A"}, []bool{false, false, true}},
		{"plain switch not flagged", []string{"A", "A", "B", "B"}, []bool{false, false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
				streamHeaders(w)
				for i, s := range tc.senders {
					writeEvent(w, "id: %d\ndata: {\"sender\":%q}\n\n", i+1, s)
				}
				<-r.Context().Done()
			})
			rec := newRecorder(t)
			startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
			for i, ev := range rec.waitKind(t, RecordEvent, len(tc.senders)) {
				if ev.DuplicateSender != tc.want[i] || ev.Sender != tc.senders[i] {
					t.Errorf("event %d: sender %q duplicate %v, want %q %v", i, ev.Sender, ev.DuplicateSender, tc.senders[i], tc.want[i])
				}
			}
		})
	}
}

func TestDuplicateSenderIsPerConnection(t *testing.T) {
	// A then (reconnect) B then A: across connections that is a resume, not two
	// senders in one stream.
	srv := resumeServer(t, "retry: 10\ndata: {\"sender\":\"A\"}\n\n", "data: {\"sender\":\"B\"}\n\ndata: {\"sender\":\"B\"}\n\n")
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	waitDone(t, es, 10*time.Second, rec)
	for _, ev := range rec.kind(RecordEvent) {
		if ev.DuplicateSender {
			t.Errorf("event %+v flagged across connections", ev)
		}
	}
}

func TestLatencyAndTiming(t *testing.T) {
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		sent := time.Now().Add(-50 * time.Millisecond).UnixNano()
		writeEvent(w, "id: 1\ndata: {\"sent_unix_ns\":%d}\n\n", sent)
		writeEvent(w, ": heartbeat\n\n")
		writeEvent(w, "id: 2\ndata: not json\n\n")
		<-r.Context().Done()
	})
	rec := newRecorder(t)
	startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	ev := rec.waitKind(t, RecordEvent, 2)
	rec.waitKind(t, RecordComment, 1)
	if ev[0].Latency < 50*time.Millisecond || ev[0].Latency > 30*time.Second {
		t.Errorf("latency %v, want >= 50ms", ev[0].Latency)
	}
	if ev[1].Latency >= 0 {
		t.Errorf("non-JSON event timed: latency %v", ev[1].Latency)
	}
	if ev[0].TTFirst < 0 || ev[1].TTFirst >= 0 || ev[0].Gap >= 0 || ev[1].Gap < 0 {
		t.Errorf("TTFirst %v/%v Gap %v/%v", ev[0].TTFirst, ev[1].TTFirst, ev[0].Gap, ev[1].Gap)
	}
	if rec.count(RecordComment) != 1 {
		t.Errorf("comments %d, want 1", rec.count(RecordComment))
	}
	h := rec.kind(RecordHeaders)
	if len(h) != 1 || h[0].Status != 200 || h[0].Proto != "HTTP/1.1" || h[0].Dial < 0 || h[0].TLS >= 0 || h[0].TTHeaders < 0 {
		t.Errorf("headers %+v", h)
	}
	op := rec.kind(RecordOpened)
	if len(op) != 1 || op[0].Scheduled.IsZero() || op[0].Time.Before(op[0].Scheduled) {
		t.Errorf("opened %+v", op)
	}
}

func TestTooLargeFailsWithoutReconnect(t *testing.T) {
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		streamHeaders(w)
		writeEvent(w, "data: %s\n\n", strings.Repeat("x", 100))
		<-r.Context().Done()
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, MaxEventSize: 64, Retry: time.Millisecond}, rec.ch)
	waitDone(t, es, 10*time.Second, rec)
	if es.Reason() != CloseTooLarge || hits.Load() != 1 {
		t.Errorf("reason %q hits %d", es.Reason(), hits.Load())
	}
	if errs := rec.kind(RecordError); len(errs) != 1 || errs[0].Class != ErrTooLarge {
		t.Errorf("errors %+v", errs)
	}
}

// rawServer is a TCP server that answers one SSE request per connection by hand, so
// that a test sees exactly what the client does to the socket.
type rawServer struct {
	ln    net.Listener
	conns chan net.Conn
}

func newRawServer(t *testing.T) *rawServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(s.conns)
				return
			}
			s.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/events" }

// accept takes the next connection, reads the request head and answers with SSE
// headers (no chunking: the body runs until the connection ends).
func (s *rawServer) accept(t *testing.T) net.Conn {
	t.Helper()
	var c net.Conn
	select {
	case c = <-s.conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	buf := make([]byte, 0, 1024)
	tmp := make([]byte, 512)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(string(buf), "\r\n\r\n") {
		n, err := c.Read(tmp)
		if err != nil {
			t.Fatalf("reading request: %v", err)
		}
		buf = append(buf, tmp[:n]...)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: hello\n\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// readEnd reads until the client's end shows and says which it was.
func readEnd(t *testing.T, c net.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		return io.EOF
	}
	return err
}

func TestCloseCleanVersusReset(t *testing.T) {
	srv := newRawServer(t)
	b := NewBrowser(BrowserConfig{})

	rec := newRecorder(t)
	clean := startSource(t, b, SourceConfig{URL: srv.url(), Stream: 1}, rec.ch)
	c1 := srv.accept(t)
	if err := clean.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	clean.Close()
	if err := readEnd(t, c1); err != io.EOF {
		t.Errorf("clean close: server saw %v, want EOF (FIN)", err)
	}
	waitDone(t, clean, 10*time.Second, rec)

	reset := startSource(t, b, SourceConfig{URL: srv.url(), Stream: 2}, rec.ch)
	c2 := srv.accept(t)
	if err := reset.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	reset.Reset()
	if err := readEnd(t, c2); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset: server saw %v, want ECONNRESET (RST)", err)
	}
	waitDone(t, reset, 10*time.Second, rec)

	if clean.Reason() != CloseClientClose || reset.Reason() != CloseClientReset {
		t.Errorf("reasons %q and %q", clean.Reason(), reset.Reason())
	}
	if n := rec.count(RecordError); n != 0 {
		t.Errorf("%d error records for deliberate closes", n)
	}
}

func TestStopReadingKeepsSocket(t *testing.T) {
	srv := newRawServer(t)
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.url(), RecvBuffer: 4096}, rec.ch)
	c := srv.accept(t)
	if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	es.StopReading()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	// The server writes until its writes block: the client neither reads nor closes.
	chunk := []byte("data: " + strings.Repeat("x", 1000) + "\n\n")
	written := 0
	var werr error
	for written < 64<<20 {
		c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		var n int
		n, werr = c.Write(chunk)
		written += n
		if werr != nil {
			break
		}
	}
	var ne net.Error
	if !errors.As(werr, &ne) || !ne.Timeout() {
		t.Fatalf("server write ended with %v after %d bytes, want a timeout (blocked by a full window)", werr, written)
	}
	if !es.IsOpen() {
		t.Error("source not open while stopped reading")
	}
	// The socket is still there: a read from the server side would block, not EOF.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("server read %v, want a timeout (socket open)", err)
	}
	before := es.Events()
	es.ResumeReading()
	waitFor(t, 10*time.Second, "events after resume", func() bool { return es.Events() > before })
	es.Close()
	waitDone(t, es, 10*time.Second, rec)
	t.Logf("server wrote %d bytes before blocking", written)
}

func TestReadRateLimit(t *testing.T) {
	payload := fmt.Sprintf("data: %s\n\n", strings.Repeat("y", 6000))
	srv := holdServer(t, payload)
	measure := func(rate int64) time.Duration {
		es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, ReadRate: rate}, nil)
		start := time.Now()
		if err := es.WaitEvents(ctxTimeout(t, 30*time.Second), 1); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	slow := measure(10000) // ~6 KB at 10 KB/s: at least 0.5 s
	if slow < 450*time.Millisecond {
		t.Errorf("6 KB at 10 KB/s took %v, want >= 0.45s", slow)
	}
	t.Logf("rate-limited read took %v", slow)
}

func TestLeaveComesBackWithLastEventID(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		streamHeaders(w)
		writeEvent(w, "retry: 60000\nid: 5\ndata: x\n\n")
		<-r.Context().Done()
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	es.Leave(100*time.Millisecond, false)
	if err := es.WaitOpens(ctxTimeout(t, 10*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lastIDs) != 2 || lastIDs[1] != "5" {
		t.Errorf("Last-Event-IDs %q", lastIDs)
	}
	closed := rec.kind(RecordClosed)
	rc := rec.kind(RecordReconnect)
	if len(closed) < 1 || closed[0].Reason != CloseChurn || len(rc) != 1 || rc[0].Delay < 100*time.Millisecond || rc[0].Delay > 50*time.Second {
		t.Errorf("closed %+v reconnect %+v", closed, rc)
	}
}

func TestReconnectOff(t *testing.T) {
	for _, viaSetter := range []bool{false, true} {
		var hits atomic.Int32
		srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			streamHeaders(w)
			writeEvent(w, "retry: 1\ndata: x\n\n")
		})
		es, err := NewBrowser(BrowserConfig{}).NewEventSource(SourceConfig{URL: srv.URL, NoReconnect: !viaSetter}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if viaSetter {
			es.SetReconnect(false)
		}
		go es.Run(ctxTimeout(t, 20*time.Second))
		waitDone(t, es, 10*time.Second)
		if hits.Load() != 1 || es.Reason() != CloseEOF {
			t.Errorf("setter=%v: hits %d reason %q, want 1 and eof", viaSetter, hits.Load(), es.Reason())
		}
	}
}

func TestCloseWhileWaitingToReconnect(t *testing.T) {
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		writeEvent(w, "retry: 60000\ndata: x\n\n")
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
	waitFor(t, 10*time.Second, "first connection to end", func() bool { return es.Reason() == CloseEOF })
	es.Close()
	waitDone(t, es, 10*time.Second, rec)
	closed := rec.kind(RecordClosed)
	if len(closed) != 2 || closed[1].Reason != CloseClientClose || closed[1].Attempt != 1 {
		t.Errorf("closed %+v: the last Closed must say why the stream ended", closed)
	}
}

// TestEventSourceStaysInItsSizeClass: every stream keeps one EventSource, which the
// allocator rounds up to a size class (1,152 bytes, the next 1,280); a field that
// takes it past 1,152 costs 128 bytes per stream (on a loop a stream costs about 4
// KB in all). Group small fields to keep the padding down.
func TestEventSourceStaysInItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(EventSource{}); n > 1152 {
		t.Errorf("EventSource is %d bytes: past the 1,152-byte size class", n)
	}
}
