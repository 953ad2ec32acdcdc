package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/internal/testkit"
	"github.com/sseharness/sseharness/proxy"
)

// The machine running the tests is busy: conditions are awaited up to this long, and an
// absence ("nothing arrived") is judged over quietWindow.
const (
	awaitTimeout = 10 * time.Second
	quietWindow  = 300 * time.Millisecond
)

// waitFor polls cond until it holds or awaitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, awaitTimeout, what, cond)
}

// stepUpstream is an SSE upstream the test drives write by write: each value sent on
// writes is written and flushed, and the result reported on results. Closing writes ends
// the response.
type stepUpstream struct {
	srv     *httptest.Server
	writes  chan []byte
	results chan error
	started chan struct{} // the request arrived and its headers were flushed
	gone    chan struct{} // the request's context ended (client or proxy went away)
}

func newStepUpstream(t *testing.T, accel string) *stepUpstream {
	t.Helper()
	u := &stepUpstream{
		writes:  make(chan []byte),
		results: make(chan error, 1),
		started: make(chan struct{}),
		gone:    make(chan struct{}),
	}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Upstream", "step")
		if accel != "" {
			w.Header().Set("X-Accel-Buffering", accel)
		}
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		if err := rc.Flush(); err != nil {
			return
		}
		close(u.started)
		for {
			select {
			case <-r.Context().Done():
				close(u.gone)
				return
			case b, ok := <-u.writes:
				if !ok {
					return
				}
				_, err := w.Write(b)
				if err == nil {
					err = rc.Flush()
				}
				u.results <- err
			}
		}
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// write makes the upstream write b and fails the test if the write did not succeed.
func (u *stepUpstream) write(t *testing.T, b []byte) {
	t.Helper()
	select {
	case u.writes <- b:
	case <-time.After(awaitTimeout):
		t.Fatal("upstream handler is not taking writes")
	}
	select {
	case err := <-u.results:
		if err != nil {
			t.Fatalf("upstream write failed: %v", err)
		}
	case <-time.After(awaitTimeout):
		t.Fatal("upstream write blocked")
	}
}

// stream is a client reading a response through the proxy in the background.
type stream struct {
	cancel context.CancelFunc
	header chan *http.Response // the response, once its headers arrived
	chunks chan []byte         // each read's bytes
	ended  chan error          // the read error that ended the body (io.EOF on a clean end)
}

func openStream(t *testing.T, client *http.Client, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{
		cancel: cancel,
		header: make(chan *http.Response, 1),
		chunks: make(chan []byte, 1024),
		ended:  make(chan error, 1),
	}
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			s.ended <- err
			return
		}
		defer resp.Body.Close()
		s.header <- resp
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				s.chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				s.ended <- err
				return
			}
		}
	}()
	return s
}

func (s *stream) awaitHeader(t *testing.T) *http.Response {
	t.Helper()
	select {
	case resp := <-s.header:
		return resp
	case err := <-s.ended:
		t.Fatalf("stream failed before its headers: %v", err)
	case <-time.After(awaitTimeout):
		t.Fatal("timed out waiting for response headers")
	}
	return nil
}

// read collects exactly n bytes.
func (s *stream) read(t *testing.T, n int) []byte {
	t.Helper()
	var got []byte
	deadline := time.After(awaitTimeout)
	for len(got) < n {
		select {
		case b := <-s.chunks:
			got = append(got, b...)
		case err := <-s.ended:
			t.Fatalf("stream ended (%v) after %d of %d bytes", err, len(got), n)
		case <-deadline:
			t.Fatalf("timed out after %d of %d bytes", len(got), n)
		}
	}
	if len(got) > n {
		t.Fatalf("got %d bytes in one go, want %d", len(got), n)
	}
	return got
}

// expectQuiet fails if the stream delivers headers or bytes within quietWindow.
func (s *stream) expectQuiet(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s.header:
		t.Fatalf("%s: response headers arrived", what)
	case b := <-s.chunks:
		t.Fatalf("%s: %d bytes arrived: %q", what, len(b), head(b))
	case err := <-s.ended:
		t.Fatalf("%s: stream ended: %v", what, err)
	case <-time.After(quietWindow):
	}
}

// expectNoBytes is expectQuiet for a stream whose headers already arrived.
func (s *stream) expectNoBytes(t *testing.T, what string) {
	t.Helper()
	select {
	case b := <-s.chunks:
		t.Fatalf("%s: %d bytes arrived: %q", what, len(b), head(b))
	case err := <-s.ended:
		t.Fatalf("%s: stream ended: %v", what, err)
	case <-time.After(quietWindow):
	}
}

// head is the start of b, for failure messages.
func head(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

func (s *stream) awaitEnd(t *testing.T) (rest []byte, err error) {
	t.Helper()
	deadline := time.After(awaitTimeout)
	for {
		select {
		case b := <-s.chunks:
			rest = append(rest, b...)
		case err := <-s.ended:
			for {
				select {
				case b := <-s.chunks:
					rest = append(rest, b...)
				default:
					return rest, err
				}
			}
		case <-deadline:
			t.Fatal("timed out waiting for the stream to end")
		}
	}
}

func startProxy(t *testing.T, cfg proxy.Config) *proxy.Proxy {
	t.Helper()
	p, err := proxy.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// event is an SSE event of exactly n bytes.
func event(i, n int) []byte {
	head := fmt.Sprintf("id: %d\ndata: ", i)
	return []byte(head + strings.Repeat("x", n-len(head)-2) + "\n\n")
}

// checkBuffered drives 100-byte events through p and checks nginx-like buffering with a
// buffer of size bytes: nothing (not even the headers) before size bytes, then exactly
// size bytes at once, then the rest when the upstream ends.
func checkBuffered(t *testing.T, u *stepUpstream, p *proxy.Proxy, size int) {
	t.Helper()
	s := openStream(t, newClient(t), p.URL()+"/sessions/a/events")
	<-u.started
	var sent []byte
	for i := 0; len(sent)+100 < size; i++ {
		e := event(i, 100)
		u.write(t, e)
		sent = append(sent, e...)
	}
	s.expectQuiet(t, fmt.Sprintf("after %d of %d buffered bytes", len(sent), size))
	for i := 0; len(sent) < size+50; i++ {
		e := event(1000+i, 100)
		u.write(t, e)
		sent = append(sent, e...)
	}
	resp := s.awaitHeader(t)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Upstream") != "step" {
		t.Fatalf("status %d, headers %v: want the upstream's", resp.StatusCode, resp.Header)
	}
	if got := s.read(t, size); !bytes.Equal(got, sent[:size]) {
		t.Fatalf("first batch differs from the first %d bytes sent", size)
	}
	s.expectNoBytes(t, "after the first batch, with less than a buffer pending")
	close(u.writes)
	rest, err := s.awaitEnd(t)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v, want a clean end", err)
	}
	if !bytes.Equal(rest, sent[size:]) {
		t.Fatalf("after the upstream ended got %d bytes, want the %d pending", len(rest), len(sent)-size)
	}
}

// checkPassThrough checks that headers arrive before any event and every event arrives
// before the next is written.
func checkPassThrough(t *testing.T, u *stepUpstream, p interface{ URL() string }) {
	t.Helper()
	s := openStream(t, newClient(t), p.URL()+"/sessions/a/events")
	resp := s.awaitHeader(t) // no event written yet
	if resp.Header.Get("X-Upstream") != "step" {
		t.Fatalf("headers %v: want the upstream's", resp.Header)
	}
	if v := resp.Header.Values("X-Accel-Buffering"); len(v) != 0 {
		t.Fatalf("X-Accel-Buffering %q reached the client; nginx hides it", v)
	}
	for i := range 10 {
		e := event(i, 100)
		u.write(t, e)
		if got := s.read(t, len(e)); !bytes.Equal(got, e) {
			t.Fatalf("event %d: got %q want %q", i, got, e)
		}
	}
	close(u.writes)
	if rest, err := s.awaitEnd(t); !errors.Is(err, io.EOF) || len(rest) != 0 {
		t.Fatalf("end: %d extra bytes, err %v; want a clean end", len(rest), err)
	}
}

func TestBufferedHoldsResponseUntilBufferFills(t *testing.T) {
	u := newStepUpstream(t, "")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL})
	checkBuffered(t, u, p, proxy.DefaultBufferSize)
}

func TestBufferedCustomSize(t *testing.T) {
	u := newStepUpstream(t, "")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL, BufferSize: 1000})
	checkBuffered(t, u, p, 1000)
}

func TestXAccelBufferingNoPassesThrough(t *testing.T) {
	u := newStepUpstream(t, "no")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL})
	checkPassThrough(t, u, p)
}

func TestNoBufferingPassesThrough(t *testing.T) {
	u := newStepUpstream(t, "")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL, NoBuffering: true})
	checkPassThrough(t, u, p)
}

func TestXAccelBufferingYesBuffersDespiteNoBuffering(t *testing.T) {
	u := newStepUpstream(t, "yes")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL, NoBuffering: true, BufferSize: 1000})
	checkBuffered(t, u, p, 1000)
}

// The passthrough check must be able to fail: against a buffering proxy it does.
func TestPassThroughCheckFailsOnBufferingProxy(t *testing.T) {
	u := newStepUpstream(t, "")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL})
	s := openStream(t, newClient(t), p.URL()+"/")
	<-u.started
	u.write(t, event(0, 100))
	s.expectQuiet(t, "one event into a buffering proxy")
}

func TestForwardsRequest(t *testing.T) {
	type seen struct {
		Method, Path, Query, Host, Body string
		Header                          http.Header
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Accel-Redirect", "/internal")
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, string(body), r.Header})
	}))
	t.Cleanup(up.Close)
	p := startProxy(t, proxy.Config{Upstream: up.URL + "/base", NoBuffering: true})

	req, _ := http.NewRequest(http.MethodPost, p.URL()+"/sessions/s1/progress?x=1&y=2", strings.NewReader(`{"progress":50}`))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Last-Event-ID", "41")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "must not pass")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got seen
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/elsewhere" {
		t.Errorf("status %d Location %q: want the upstream's 201 and Location", resp.StatusCode, resp.Header.Get("Location"))
	}
	if v := resp.Header.Get("X-Accel-Redirect"); v != "" {
		t.Errorf("X-Accel-Redirect %q reached the client", v)
	}
	if got.Method != http.MethodPost || got.Path != "/base/sessions/s1/progress" || got.Query != "x=1&y=2" || got.Body != `{"progress":50}` {
		t.Errorf("upstream saw %s %s?%s body %q", got.Method, got.Path, got.Query, got.Body)
	}
	if want := strings.TrimPrefix(up.URL, "http://"); got.Host != want {
		t.Errorf("upstream saw Host %q, want %q (nginx's $proxy_host)", got.Host, want)
	}
	for k, want := range map[string]string{"Authorization": "Bearer tok", "Last-Event-Id": "41", "Accept": "text/event-stream", "X-Forwarded-For": "127.0.0.1"} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("upstream saw %s %q, want %q", k, v, want)
		}
	}
	if v := got.Header.Get("X-Hop"); v != "" {
		t.Errorf("hop-by-hop header X-Hop %q was forwarded", v)
	}
}

func TestUnreachableUpstreamIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := startProxy(t, proxy.Config{Upstream: "http://" + addr})
	resp, err := newClient(t).Get(p.URL() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
}

// sseFanout is an upstream whose every stream sends one event at once and then holds the
// stream open until its client goes; it counts streams that noticed the end.
func sseFanout(t *testing.T) (srv *httptest.Server, ended chan struct{}) {
	ended = make(chan struct{}, 100)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Accel-Buffering", "no")
		_, _ = w.Write([]byte("data: hello\n\n"))
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
		ended <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv, ended
}

func TestCutAllEndsEveryStream(t *testing.T) {
	up, ended := sseFanout(t)
	p := startProxy(t, proxy.Config{Upstream: up.URL})
	client := newClient(t)
	const n = 3
	var streams []*stream
	for range n {
		s := openStream(t, client, p.URL()+"/sessions/a/events")
		s.awaitHeader(t)
		s.read(t, len("data: hello\n\n"))
		streams = append(streams, s)
	}
	waitFor(t, "3 open streams", func() bool { st := p.Stats(); return st.Streams == n && st.ClientConns == n && st.UpstreamConns == n })

	if cut := p.CutAll(); cut != 2*n {
		t.Fatalf("CutAll closed %d connections, want %d", cut, 2*n)
	}
	for i, s := range streams {
		if _, err := s.awaitEnd(t); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("stream %d ended with %v, want an abrupt end (not a clean EOF)", i, err)
		}
	}
	for i := range n {
		select {
		case <-ended:
		case <-time.After(awaitTimeout):
			t.Fatalf("only %d of %d upstream streams saw the cut", i, n)
		}
	}
	waitFor(t, "no stream or connection left", func() bool {
		st := p.Stats()
		return st.Streams == 0 && st.ClientConns == 0 && st.UpstreamConns == 0
	})
	if st := p.Stats(); st.Cut != 2*n {
		t.Errorf("Stats.Cut %d, want %d", st.Cut, 2*n)
	}

	// The proxy still serves: clients can reconnect.
	s := openStream(t, client, p.URL()+"/sessions/a/events")
	s.awaitHeader(t)
	s.read(t, len("data: hello\n\n"))
}

func TestBlackholeDropsTrafficKeepsConnections(t *testing.T) {
	u := newStepUpstream(t, "no")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL})
	s := openStream(t, newClient(t), p.URL()+"/sessions/a/events")
	s.awaitHeader(t)
	first := event(0, 100)
	u.write(t, first)
	s.read(t, len(first))

	p.Blackhole(true)
	const chunk, total = 64 << 10, 4 << 20 // more than any socket buffer on this path keeps
	for i := 0; i < total/chunk; i++ {
		u.write(t, bytes.Repeat([]byte{':'}, chunk)) // fails the test if a write fails or blocks
	}
	waitFor(t, "the proxy to read and drop everything", func() bool { return p.Stats().Discarded == total })
	s.expectNoBytes(t, "blackhole on")
	if st := p.Stats(); st.ClientConns != 1 || st.UpstreamConns != 1 || st.Streams != 1 {
		t.Fatalf("stats %+v: the blackhole must keep both connections open", st)
	}

	// The client vanishes; the dropping network does not tell the upstream.
	s.cancel()
	s.awaitEnd(t)
	select {
	case <-u.gone:
		t.Fatal("the upstream learned of the client's departure through the blackhole")
	case <-time.After(quietWindow):
	}
	u.write(t, event(1, 100))

	p.Blackhole(false)
	select {
	case <-u.gone:
	case <-time.After(awaitTimeout):
		t.Fatal("after the blackhole went off, the upstream request was not ended for the departed client")
	}
}

func TestBlackholeHoldsUpstreamEnd(t *testing.T) {
	u := newStepUpstream(t, "no")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL})
	s := openStream(t, newClient(t), p.URL()+"/")
	s.awaitHeader(t)
	p.Blackhole(true)
	u.write(t, event(0, 100))
	close(u.writes) // the upstream ends its response
	waitFor(t, "the proxy to drop the event", func() bool { return p.Stats().Discarded == 100 })
	s.expectNoBytes(t, "upstream ended while blackholed")
	p.Blackhole(false)
	rest, err := s.awaitEnd(t)
	if !errors.Is(err, io.EOF) || len(rest) != 0 {
		t.Fatalf("after the blackhole: %d bytes, err %v; want a clean end and no dropped data", len(rest), err)
	}
}

func TestBlackholeHidesHeadersOfNewStreams(t *testing.T) {
	u := newStepUpstream(t, "no")
	p := startProxy(t, proxy.Config{Upstream: u.srv.URL})
	p.Blackhole(true)
	s := openStream(t, newClient(t), p.URL()+"/")
	<-u.started
	u.write(t, event(0, 100))
	s.expectQuiet(t, "stream opened while blackholed")
	p.Blackhole(false)
	e := event(1, 100)
	u.write(t, e) // the headers go out with the first bytes after the blackhole
	s.awaitHeader(t)
	if got := s.read(t, len(e)); !bytes.Equal(got, e) {
		t.Fatalf("after the blackhole got %q, want %q", got, e)
	}
}

func TestShutdownEndsStreamsWithoutLeaks(t *testing.T) {
	up, ended := sseFanout(t)
	tr := &http.Transport{Proxy: nil}
	client := &http.Client{Transport: tr}
	baseline := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	p, err := proxy.Start(ctx, proxy.Config{Upstream: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	var streams []*stream
	for range 3 {
		s := openStream(t, client, p.URL()+"/")
		s.awaitHeader(t)
		s.read(t, len("data: hello\n\n"))
		streams = append(streams, s)
	}
	p.Blackhole(true) // a blackholed stream must not hold up shutdown either
	cancel()
	select {
	case <-p.Done():
	case <-time.After(awaitTimeout):
		t.Fatal("proxy did not shut down after its context ended")
	}
	for _, s := range streams {
		s.awaitEnd(t)
	}
	for range 3 {
		<-ended
	}
	tr.CloseIdleConnections()
	var now int
	deadline := time.Now().Add(awaitTimeout)
	for now = runtime.NumGoroutine(); now > baseline && time.Now().Before(deadline); now = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	if now > baseline {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after shutdown, %d before start:\n%s", now, baseline, buf[:runtime.Stack(buf, true)])
	}
	if _, err := client.Get(p.URL()); err == nil {
		t.Fatal("the proxy still answers after shutdown")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (&proxy.Config{Upstream: "http://127.0.0.1:8080"}).Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	err := (&proxy.Config{Listen: "nope", Upstream: "ftp://?q=1", BufferSize: -1}).Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"listen address", "scheme must be http or https", "no host", "query", "buffer size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
	if err := (&proxy.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "upstream URL is required") {
		t.Errorf("missing upstream: %v", err)
	}
	if _, err := proxy.Start(context.Background(), proxy.Config{Upstream: "http://x", Listen: "256.0.0.1:1"}); err == nil {
		t.Error("Start listened on an impossible address")
	}
}

// A client that goes away ends its upstream request, as nginx does by default
// (proxy_ignore_client_abort off), in both modes.
func TestClientGoneEndsUpstream(t *testing.T) {
	for _, accel := range []string{"", "no"} {
		t.Run("X-Accel-Buffering="+accel, func(t *testing.T) {
			u := newStepUpstream(t, accel)
			p := startProxy(t, proxy.Config{Upstream: u.srv.URL, BufferSize: 100})
			s := openStream(t, newClient(t), p.URL()+"/")
			e := event(0, 100)
			u.write(t, e)
			s.awaitHeader(t)
			s.read(t, len(e))
			s.cancel()
			select {
			case <-u.gone:
			case <-time.After(awaitTimeout):
				t.Fatal("the upstream request outlived its client")
			}
			waitFor(t, "no stream left", func() bool { st := p.Stats(); return st.Streams == 0 && st.UpstreamConns == 0 })
		})
	}
}
