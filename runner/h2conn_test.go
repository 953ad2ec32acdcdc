package runner

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2 is the server side of one HTTP/2 connection of a test double, written frame by
// frame: what a real server may do (GOAWAY mid-stream, tiny windows, a window
// overrun) without net/http's server deciding for it.
type rawH2 struct {
	t    *testing.T
	c    net.Conn
	fr   *http2.Framer
	wmu  sync.Mutex
	hbuf bytes.Buffer
	henc *hpack.Encoder
	done <-chan struct{} // closed when the test ends
}

// h2Double accepts TLS connections offering h2 and runs serve on each, one goroutine
// per connection; conns counts them.
type h2Double struct {
	URL   string
	conns atomic.Int32
}

func newH2Double(t *testing.T, settings []http2.Setting, serve func(n int, r *rawH2)) *h2Double {
	t.Helper()
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS() // only for its certificate
	certs := cert.TLS.Certificates
	cert.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: certs, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	d := &h2Double{URL: "https://" + ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			n := int(d.conns.Add(1))
			wg.Go(func() {
				defer c.Close()
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
					return
				}
				r := &rawH2{t: t, c: c, fr: http2.NewFramer(c, c), done: done}
				r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
				r.henc = hpack.NewEncoder(&r.hbuf)
				r.write(func(fr *http2.Framer) error { return fr.WriteSettings(settings...) })
				serve(n, r)
			})
		}
	})
	return d
}

func (r *rawH2) write(f func(fr *http2.Framer) error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	f(r.fr) // a closed connection shows on the reading side
}

// next returns the next frame that is not SETTINGS (acknowledged) or a PING; nil when
// the connection ended.
func (r *rawH2) next() http2.Frame {
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			return nil
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				r.write(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
			}
			continue
		case *http2.PingFrame:
			continue
		}
		return f
	}
}

// request waits for a request's HEADERS, skipping frames of other kinds.
func (r *rawH2) request() *http2.MetaHeadersFrame {
	for {
		f := r.next()
		if f == nil {
			return nil
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			return h
		}
	}
}

func (r *rawH2) head(id uint32, endStream bool) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.hbuf.Reset()
	r.henc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	r.henc.WriteField(hpack.HeaderField{Name: "content-type", Value: "text/event-stream"})
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hbuf.Bytes(), EndHeaders: true, EndStream: endStream})
}

func (r *rawH2) data(id uint32, s string, endStream bool) {
	r.write(func(fr *http2.Framer) error { return fr.WriteData(id, endStream, []byte(s)) })
}

// h2Browser is a browser that trusts the doubles' self-signed certificates.
func h2Browser() *Browser { return NewBrowser(BrowserConfig{Insecure: true}) }

// inBothReaders runs f with the stream bodies read on the sources' goroutines and
// parsed on the connections' readers (loops set: h2push.go).
func inBothReaders(t *testing.T, f func(t *testing.T, loops *EventLoops)) {
	t.Run("goroutine", func(t *testing.T) { f(t, nil) })
	t.Run("pushed", func(t *testing.T) { f(t, testLoops(t, 1)) })
}

// A GOAWAY lets the streams the server took finish on the old connection; a stream
// sent after the server's last id is sent again on a new connection without an error
// record, new streams go to the new connection, and the old one is closed by the
// client once its last stream ends.
func TestH2GoAwayRetriesUnprocessedStreams(t *testing.T) {
	inBothReaders(t, checkGoAway)
}

func checkGoAway(t *testing.T, loops *EventLoops) {
	oldClosed := make(chan struct{})
	release := make(chan struct{})
	d := newH2Double(t, nil, func(n int, r *rawH2) {
		if n == 1 {
			a, b := r.request(), r.request()
			if a == nil || b == nil {
				return
			}
			r.head(a.StreamID, false)
			r.data(a.StreamID, "id: 1\ndata: before\n\n", false)
			r.write(func(fr *http2.Framer) error { return fr.WriteGoAway(a.StreamID, http2.ErrCodeNo, nil) })
			select {
			case <-release:
			case <-r.done:
				return
			}
			r.data(a.StreamID, "id: 2\ndata: after\n\n", true)
			for r.next() != nil { // the client closes the idle connection
			}
			close(oldClosed)
			return
		}
		for {
			h := r.request()
			if h == nil {
				return
			}
			r.head(h.StreamID, false)
			r.data(h.StreamID, "id: 7\ndata: new\n\n", false)
		}
	})
	b := h2Browser()
	recA, recB := newRecorder(t), newRecorder(t)
	a := startSource(t, b, SourceConfig{URL: d.URL + "/a", NoReconnect: true, EventLoops: loops}, recA.ch)
	recA.waitKind(t, RecordOpened, 1)
	waitFor(t, 10*time.Second, "the first h2 connection", func() bool { return b.Stats().H2Conns == 1 })
	bs := startSource(t, b, SourceConfig{URL: d.URL + "/b", NoReconnect: true, EventLoops: loops}, recB.ch)
	recB.waitKind(t, RecordEvent, 1)
	recA.waitKind(t, RecordEvent, 1)
	close(release)
	evA := recA.waitKind(t, RecordEvent, 2)
	if evA[1].EventID != "2" {
		t.Errorf("stream A's events %+v, want ids 1 and 2 on the old connection", evA)
	}
	waitDone(t, a, 10*time.Second, recA)
	select {
	case <-oldClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not close the old connection after its last stream ended")
	}
	if errs := append(recA.kind(RecordError), recB.kind(RecordError)...); len(errs) > 0 {
		t.Errorf("errors %+v, want none: an unprocessed stream is retried", errs)
	}
	if h := recB.kind(RecordHeaders); len(h) != 1 || h[0].Proto != "HTTP/2.0" {
		t.Errorf("stream B's heads %+v, want one over HTTP/2", h)
	}
	if a.Reason() != CloseEOF || d.conns.Load() != 2 || b.Stats().H2Conns != 2 {
		t.Errorf("A ended %s; server connections %d, browser h2 connections %d; want eof, 2, 2", a.Reason(), d.conns.Load(), b.Stats().H2Conns)
	}
	bs.Close()
}

// Flow control both ways with small windows: a request body is cut to the server's
// 16-byte stream window and sent as the server credits it; a source that stops reading
// after its first event (a pushed stream is handed back to a goroutine) credits
// nothing, so the server cannot send past the 64 KiB window, and once it reads again
// every byte arrives in order.
func TestH2FlowControlSmallWindows(t *testing.T) {
	inBothReaders(t, checkSmallWindows)
}

func checkSmallWindows(t *testing.T, loops *EventLoops) {
	const events, pad = 200, 1000
	body := strings.Repeat("b", 100)
	type result struct {
		body      string
		maxFrame  int
		blockedAt int
		err       string
	}
	got := make(chan result, 1)
	blocked, gate := make(chan struct{}), make(chan struct{})
	d := newH2Double(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 16}}, func(_ int, r *rawH2) {
		var res result
		sent := false
		defer func() {
			if !sent {
				got <- res
			}
		}()
		h := r.request()
		if h == nil || h.StreamEnded() {
			res.err = "no request HEADERS with a body to follow"
			return
		}
		id := h.StreamID
		var recv strings.Builder
		window := 65535 // the client's window for our DATA, credited as it reads
		for {
			f := r.next()
			if f == nil {
				res.err = "connection ended before the body"
				return
			}
			if df, ok := f.(*http2.DataFrame); ok && df.StreamID == id {
				res.maxFrame = max(res.maxFrame, len(df.Data()))
				recv.Write(df.Data())
				if df.StreamEnded() {
					break
				}
				n := uint32(len(df.Data()))
				r.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(id, n) })
			}
		}
		res.body = recv.String()
		r.head(id, false)
		r.data(id, "id: 1\ndata: first\n\n", false)
		window -= len("id: 1\ndata: first\n\n")
		select {
		case <-gate:
		case <-r.done:
			return
		}
		ev := func(i int) string { return fmt.Sprintf("id: %d\ndata: %s\n\n", i, strings.Repeat("x", pad)) }
		for i := 2; i <= events; i++ {
			p := ev(i)
			for len(p) > window {
				if window > 0 {
					r.data(id, p[:window], false)
					p = p[window:]
					window = 0
				}
				if res.blockedAt == 0 {
					res.blockedAt = i
					close(blocked)
				}
				f := r.next()
				if f == nil {
					res.err = "connection ended while blocked"
					return
				}
				if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == id {
					window += int(wu.Increment)
				}
			}
			r.data(id, p, i == events)
			window -= len(p)
		}
		got <- res
		sent = true
		for r.next() != nil { // the browser keeps its connection
		}
	})
	b := h2Browser()
	rec := newRecorder(t)
	es, err := b.NewEventSource(SourceConfig{URL: d.URL + "/e", Method: http.MethodPost, Body: body, NoReconnect: true, EventLoops: loops}, Chan(rec.ch))
	if err != nil {
		t.Fatal(err)
	}
	go es.Run(ctxTimeout(t, 60*time.Second))
	t.Cleanup(es.Close)
	rec.waitKind(t, RecordEvent, 1)
	es.StopReading()
	close(gate)
	select {
	case <-blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the server never ran out of window while the source was not reading")
	}
	// A read already waiting when reading stopped may take one buffer more (4 KiB,
	// 4 events); the window holds 64.
	if n := es.Events(); n > 5 {
		t.Fatalf("%d events read while reading was stopped", n)
	}
	es.ResumeReading()
	evs := rec.waitKind(t, RecordEvent, events)
	waitDone(t, es, 20*time.Second, rec)
	res := <-got
	if res.err != "" {
		t.Fatal(res.err)
	}
	if res.body != body || res.maxFrame > 16 {
		t.Errorf("server got body %q in frames up to %d bytes, want %q in frames of at most 16", res.body, res.maxFrame, body)
	}
	// About 64 KiB of events fit the window: the server blocked there, not before.
	if want := 65535/(pad+16) + 1; res.blockedAt < want-1 || res.blockedAt > want+1 {
		t.Errorf("server blocked at event %d, want about %d (a 64 KiB window)", res.blockedAt, want)
	}
	for i, e := range evs {
		if e.EventID != fmt.Sprint(i+1) || e.Missing != 0 {
			t.Fatalf("event %d: id %s missing %d, want every id in order", i, e.EventID, e.Missing)
		}
	}
	if es.Reason() != CloseEOF || rec.count(RecordError) != 0 {
		t.Errorf("reason %s, errors %+v; want eof and none", es.Reason(), rec.kind(RecordError))
	}
}

// A server that sends past the stream's window gets RST_STREAM FLOW_CONTROL_ERROR,
// and the source reports the attempt as a network error; closing a source resets its
// stream with CANCEL.
func TestH2WindowOverrunAndCloseReset(t *testing.T) {
	inBothReaders(t, checkOverrunAndReset)
}

func checkOverrunAndReset(t *testing.T, loops *EventLoops) {
	codes := make(chan http2.ErrCode, 2)
	d := newH2Double(t, nil, func(_ int, r *rawH2) {
		for {
			h := r.request()
			if h == nil {
				return
			}
			r.head(h.StreamID, false)
			if h.PseudoValue("path") == "/overrun" {
				chunk := strings.Repeat("x", 16384)
				for range 5 { // 80 KiB, past the 64 KiB window
					r.data(h.StreamID, chunk, false)
				}
			} else {
				r.data(h.StreamID, "data: hello\n\n", false)
			}
			for {
				f := r.next()
				if f == nil {
					return
				}
				if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == h.StreamID {
					codes <- rst.ErrCode
					break
				}
			}
		}
	})
	b := h2Browser()
	rec := newRecorder(t)
	over, err := b.NewEventSource(SourceConfig{URL: d.URL + "/overrun", NoReconnect: true, EventLoops: loops}, Chan(rec.ch))
	if err != nil {
		t.Fatal(err)
	}
	over.StopReading() // no credit: the window cannot be reopened by reading
	go over.Run(ctxTimeout(t, 30*time.Second))
	select {
	case c := <-codes:
		if c != http2.ErrCodeFlowControl {
			t.Errorf("overrun reset with %v, want FLOW_CONTROL_ERROR", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no RST_STREAM for a window overrun")
	}
	over.ResumeReading()
	waitDone(t, over, 10*time.Second, rec)
	if errs := rec.kind(RecordError); len(errs) != 1 || errs[0].BeforeHead || over.Reason() != CloseNetworkError {
		t.Errorf("errors %+v, reason %s; want one read error after the head, network-error", errs, over.Reason())
	}
	rec2 := newRecorder(t)
	es := startSource(t, b, SourceConfig{URL: d.URL + "/ok", EventLoops: loops}, rec2.ch)
	rec2.waitKind(t, RecordEvent, 1)
	es.Close()
	waitDone(t, es, 10*time.Second, rec2)
	select {
	case c := <-codes:
		if c != http2.ErrCodeCancel {
			t.Errorf("closed stream reset with %v, want CANCEL", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no RST_STREAM after Close")
	}
	if es.Reason() != CloseClientClose || d.conns.Load() != 1 {
		t.Errorf("reason %s, %d connections; want client-close on the one connection", es.Reason(), d.conns.Load())
	}
}

// A source that leaves (churn) resets its stream with CANCEL, reconnects on the same
// connection with the last event id, and Reset ends it as client-reset: the interrupts
// reach a stream whether its body is read on the source's goroutine or pushed.
func TestH2LeaveReconnectsWithLastEventID(t *testing.T) {
	inBothReaders(t, checkLeave)
}

func checkLeave(t *testing.T, loops *EventLoops) {
	type req struct {
		lastID string
		reset  http2.ErrCode
	}
	reqs := make(chan req, 4)
	d := newH2Double(t, nil, func(_ int, r *rawH2) {
		for n := 1; ; n++ {
			h := r.request()
			if h == nil {
				return
			}
			var last string
			for _, f := range h.RegularFields() {
				if f.Name == "last-event-id" {
					last = f.Value
				}
			}
			r.head(h.StreamID, false)
			r.data(h.StreamID, fmt.Sprintf("retry: 10000\nid: %d\ndata: x\n\n", n), false)
			for {
				f := r.next()
				if f == nil {
					return
				}
				if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == h.StreamID {
					reqs <- req{last, rst.ErrCode}
					break
				}
			}
		}
	})
	rec := newRecorder(t)
	es := startSource(t, h2Browser(), SourceConfig{URL: d.URL + "/e", EventLoops: loops}, Chan(rec.ch))
	rec.waitKind(t, RecordEvent, 1)
	// Set before the event was sent. The source's own loops: the suite may force
	// loops on every source (SSEHARNESS_TEST_EVLOOP=1).
	if hasLoops := es.cfg.EventLoops != nil; es.parserPush != hasLoops {
		t.Fatalf("push parser %v with loops %v: the body did not go where it should", es.parserPush, hasLoops)
	}
	es.Leave(time.Millisecond, false)
	first := <-reqs
	rec.waitKind(t, RecordEvent, 2)
	es.Reset()
	waitDone(t, es, 10*time.Second, rec)
	second := <-reqs
	if first.lastID != "" || first.reset != http2.ErrCodeCancel || second.lastID != "1" || second.reset != http2.ErrCodeCancel {
		t.Errorf("requests %+v then %+v, want no Last-Event-ID then 1, each reset with CANCEL", first, second)
	}
	closed := rec.kind(RecordClosed)
	if len(closed) != 2 || closed[0].Reason != CloseChurn || closed[1].Reason != CloseClientReset {
		t.Errorf("closed %+v, want churn then client-reset", closed)
	}
	if d.conns.Load() != 1 || rec.count(RecordError) != 0 {
		t.Errorf("%d connections, errors %+v; want 1 and none", d.conns.Load(), rec.kind(RecordError))
	}
}

// h2StackProbeEnv makes TestH2ReaderStackFitsFourKiB's child process run the probe.
const h2StackProbeEnv = "SSEHARNESS_H2_STACK_PROBE"

// TestH2ReaderStackFitsFourKiB: a connection's reader parses its streams' events,
// comments and retry fields, and emits their records, within a 4 KiB stack (what a
// goroutine's stack is before it doubles to 8): the per-connection cost of an h2
// browser depends on it. The probe runs in a child process, since the stack limit
// it sets holds for every goroutine of the process; exceeding it is a fatal error.
func TestH2ReaderStackFitsFourKiB(t *testing.T) {
	if os.Getenv(h2StackProbeEnv) != "" {
		h2StackProbe(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestH2ReaderStackFitsFourKiB$", "-test.count=1")
	cmd.Env = append(os.Environ(), h2StackProbeEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(string(out), "\n")
		t.Fatalf("the probe failed (%v): %s", err, strings.Join(lines[:min(len(lines), 12)], "\n"))
	}
}

func h2StackProbe(t *testing.T) {
	gate := make(chan struct{})
	d := newH2Double(t, nil, func(_ int, r *rawH2) {
		h := r.request()
		if h == nil {
			return
		}
		r.head(h.StreamID, false)
		select {
		case <-gate:
		case <-r.done:
			return
		}
		r.data(h.StreamID, ": hello\n\nretry: 5000\n\nid: 1\nevent: tick\ndata: {\"seq\":1,\"sender\":\"s\",\"sent_unix_ns\":1}\n\n", false)
		for r.next() != nil {
		}
	})
	rec := newRecorder(t)
	es := startSource(t, h2Browser(), SourceConfig{URL: d.URL + "/e", EventLoops: testLoops(t, 1)}, rec.ch)
	rec.waitKind(t, RecordHeaders, 1)
	// The dial and the handshake grew the stacks they needed. A GC shrinks a stack
	// that uses under a quarter of itself, as GCs during a hold do to a parked reader's;
	// from here on no stack may grow past 4 KiB.
	runtime.GC()
	runtime.GC()
	old := debug.SetMaxStack(4 << 10)
	close(gate)
	rec.waitKind(t, RecordEvent, 1)
	debug.SetMaxStack(old)
	if n := rec.count(RecordComment) + rec.count(RecordRetry); n != 2 || !es.parserPush {
		t.Fatalf("%d comment and retry records, push parser %v: want 2, pushed", n, es.parserPush)
	}
}
