package reference_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

// The faults of issue 16: each breaks its property observably; the correct server keeps it.

// h2Settings dials url with ALPN h2 and returns the server's first SETTINGS frame.
func h2Settings(t *testing.T, rawURL string) map[uint16]uint32 {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) // self-signed
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	for {
		var h [9]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		payload := make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
		if _, err := io.ReadFull(c, payload); err != nil {
			t.Fatal(err)
		}
		if h[3] != 0x4 || h[4]&0x1 != 0 { // not SETTINGS, or an ACK
			continue
		}
		out := map[uint16]uint32{}
		for i := 0; i+6 <= len(payload); i += 6 {
			out[binary.BigEndian.Uint16(payload[i:])] = binary.BigEndian.Uint32(payload[i+2:])
		}
		return out
	}
}

const settingsMaxConcurrentStreams = 0x3

func TestH2MaxStreamsIsAdvertisedAndEnforced(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.TLS = true
	url, _ := listening(t, cfg)
	if got := h2Settings(t, url)[settingsMaxConcurrentStreams]; got != 1000 {
		t.Fatalf("default SETTINGS_MAX_CONCURRENT_STREAMS = %d, want 1000", got)
	}
	cfg.H2MaxStreams = 3
	url, _ = listening(t, cfg)
	if got := h2Settings(t, url)[settingsMaxConcurrentStreams]; got != 3 {
		t.Fatalf("--h2-max-streams 3: SETTINGS_MAX_CONCURRENT_STREAMS = %d", got)
	}
	// A client keeping to the cap has 3 streams open on its connection; the 4th waits.
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // self-signed
		ForceAttemptHTTP2: true,
		MaxConnsPerHost:   1,
		HTTP2:             &http.HTTP2Config{StrictMaxConcurrentRequests: true},
	}}
	t.Cleanup(hc.CloseIdleConnections)
	var cs []*client
	for i := range 3 {
		cs = append(cs, openWith(t, hc, fmt.Sprintf("%s/sessions/cap-%d/events", url, i), nil))
	}
	fourth := make(chan *http.Response, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/sessions/cap-3/events", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return
		}
		fourth <- resp
	}()
	select {
	case <-fourth:
		t.Fatal("a 4th stream opened over a connection capped at 3")
	case <-time.After(300 * time.Millisecond): // a negative: it must not open meanwhile
	}
	cs[0].close()
	select {
	case resp := <-fourth:
		resp.Body.Close()
	case <-time.After(wait):
		t.Fatal("the 4th stream did not open after one of the 3 closed")
	}
}

func TestFaultGzipBufferHoldsEventsInTheCompressor(t *testing.T) {
	t.Parallel()
	tick := func(cfg *reference.Config) { cfg.Tick = 5 * time.Millisecond }
	// The correct server: no compression, every event at once, whatever the client accepts.
	// (testHTTP asks for gzip and decodes it, as a browser does.)
	base := serveWith(t, tick)
	c := open(t, base+"/sessions/plain/events", nil)
	c.awaitEvents(wait, "tick", 3)
	if enc := c.resp.Header.Get("Content-Encoding"); enc != "" || c.resp.Uncompressed {
		t.Fatalf("correct server: Content-Encoding %q (uncompressed by the client %v), want none", enc, c.resp.Uncompressed)
	}

	base = serveWith(t, tick, fault(t, "gzip-buffer"))
	c = open(t, base+"/sessions/gz/events", nil)
	if !c.resp.Uncompressed {
		t.Fatal("gzip-buffer: the stream is not gzip-encoded")
	}
	awaitMetrics(t, base, wait, "30 events handed to the stream", func(m map[string]float64) bool {
		return m["sseref_events_sent_total"] >= 30
	})
	if fs, _ := c.snapshot(); len(fs) > 0 || c.bodyBytes() > 0 {
		t.Fatalf("gzip-buffer: %d frames (%d bytes) arrived of 30 events sent; want none until the compressor's buffer fills", len(fs), c.bodyBytes())
	}
	// Incompressible messages fill the compressor: then everything before arrives too.
	noise := make([]byte, 30<<10)
	_, _ = rand.Read(noise)
	msg := base64.StdEncoding.EncodeToString(noise)
	for p := 1; p <= 3; p++ {
		progress(t, base, "gz", p, msg)
	}
	fs := c.await(wait, "the held events once the compressor's buffer filled", func(fs []frame, _ bool) bool {
		return len(events(fs, "tick")) >= 25
	})
	if events(fs, "connected") == nil {
		t.Fatalf("gzip-buffer: the stream does not start with its connected event: %s", summary(fs))
	}
}

func TestFaultLateHeadHoldsTheHeadUntilTheFirstEvent(t *testing.T) {
	t.Parallel()
	quiet := func(cfg *reference.Config) { cfg.Tick, cfg.Heartbeat = 0, time.Hour }
	base := serveWith(t, quiet)
	// Correct: the head (and connected) arrive at once on a quiet stream.
	open(t, base+"/sessions/quiet/events", nil).awaitEvents(wait, "connected", 1)

	base = serveWith(t, quiet, fault(t, "late-head"))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	head := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sessions/late/events", nil)
		if resp, err := testHTTP.Do(req); err == nil {
			head <- resp
		}
	}()
	awaitMetrics(t, base, wait, "the stream open with its connected event handed over", func(m map[string]float64) bool {
		return m["sseref_streams_open"] == 1 && m["sseref_events_sent_total"] >= 1
	})
	select {
	case resp := <-head:
		resp.Body.Close()
		t.Fatal("late-head: the head of a quiet stream arrived before any event")
	case <-time.After(300 * time.Millisecond): // a negative: no head may arrive meanwhile
	}
	progress(t, base, "late", 10, "the first event")
	select {
	case resp := <-head:
		defer resp.Body.Close()
		body := make([]byte, 4096)
		n, _ := io.ReadAtLeast(resp.Body, body, 1)
		got := string(body[:n])
		if resp.StatusCode != http.StatusOK || !strings.Contains(got, "event: connected") {
			t.Fatalf("late-head: status %d, first bytes %q: want 200 with retry and connected", resp.StatusCode, got)
		}
	case <-time.After(wait):
		t.Fatal("late-head: no head after the first event")
	}
}

func TestFaultCutAfterEndsStreamsWithoutTheTerminator(t *testing.T) {
	t.Parallel()
	// Correct: a server-side end is clean (the chunked terminator, then EOF).
	base := serveWith(t, func(cfg *reference.Config) { cfg.MaxLifetime = 300 * time.Millisecond })
	c := open(t, base+"/sessions/clean/events", nil)
	c.awaitEOF(wait)
	if c.err != nil {
		t.Fatalf("correct server: the lifetime end is not clean: %v", c.err)
	}

	base = serveWith(t, func(cfg *reference.Config) { cfg.MaxLifetime = time.Hour }, fault(t, "cut-after=300ms"))
	start := time.Now()
	c = open(t, base+"/sessions/cut/events", nil)
	fs := c.awaitEOF(wait)
	took := time.Since(start)
	if c.err == nil || !errors.Is(c.err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut-after: the body ended with %v, want an unexpected EOF (no chunked terminator)", c.err)
	}
	if took < 300*time.Millisecond || len(events(fs, "tick")) == 0 {
		t.Fatalf("cut-after=300ms: cut after %v with %d ticks; want ticks, then the cut at 300ms", took, len(events(fs, "tick")))
	}
	awaitMetrics(t, base, wait, "the stream counted as cut", func(m map[string]float64) bool { return m[closed(reference.ReasonCut)] == 1 })
}

func TestParseNewFaults(t *testing.T) {
	t.Parallel()
	f, err := reference.ParseFaults("late-head,gzip-buffer,cut-after=1m30s")
	if err != nil || !f.LateHead || !f.GzipBuffer || f.CutAfter != 90*time.Second {
		t.Fatalf("ParseFaults = %+v, %v", f, err)
	}
	if got := f.String(); got != "cut-after=1m30s,gzip-buffer,late-head" {
		t.Fatalf("String() = %q", got)
	}
	for _, bad := range []string{"cut-after=", "cut-after=0s", "cut-after=-1s", "cut-after=soon"} {
		if _, err := reference.ParseFaults(bad); err == nil || !strings.Contains(err.Error(), "cut-after=D") {
			t.Errorf("ParseFaults(%q) = %v, want a cut-after=D error", bad, err)
		}
	}
	cfg := reference.DefaultConfig()
	cfg.H2MaxStreams = 0
	cfg.MaxEarlySessions = -1
	cfg.EarlySessionTTL = 0
	err = cfg.Validate()
	for _, want := range []string{"h2-max-streams", "max-early-sessions", "early-session-ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %v lacks %q", err, want)
		}
	}
}

// Topic streams are cut the same way.
func TestFaultCutAfterCutsTopicStreams(t *testing.T) {
	t.Parallel()
	base := startServer(t, withFault(t, testConfig(), "cut-after=200ms"))
	c := open(t, base+"/topics/news/events", nil)
	c.awaitEvents(wait, "connected", 1)
	c.awaitEOF(wait)
	if !errors.Is(c.err, io.ErrUnexpectedEOF) {
		t.Fatalf("topic stream under cut-after ended with %v, want an unexpected EOF", c.err)
	}
	awaitMetrics(t, base, wait, "the topic stream counted as cut", func(m map[string]float64) bool { return m[closed(reference.ReasonCut)] == 1 })
}
