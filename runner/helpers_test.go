package runner

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sseharness/sseharness/internal/testkit"
)

// waitFor polls cond until it holds or the deadline passes (testkit.WaitFor).
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, within, what, cond)
}

// recorder collects the records of one or more sources.
type recorder struct {
	ch      chan Record
	flushed chan struct{}
	mu      sync.Mutex
	recs    []Record
	done    chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{ch: make(chan Record, 64), flushed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for rec := range r.ch {
			if rec.Kind == 0 {
				r.flushed <- struct{}{}
				continue
			}
			r.mu.Lock()
			r.recs = append(r.recs, rec)
			r.mu.Unlock()
		}
	}()
	// Registered before the sources' cleanups, so it runs after them: no source sends
	// any more when the channel closes.
	t.Cleanup(func() {
		close(r.ch)
		<-r.done
	})
	return r
}

func (r *recorder) all() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.recs...)
}

func (r *recorder) kind(k RecordKind) []Record {
	var out []Record
	for _, rec := range r.all() {
		if rec.Kind == k {
			out = append(out, rec)
		}
	}
	return out
}

func (r *recorder) count(k RecordKind) int { return len(r.kind(k)) }

// sseServer starts an httptest server whose cleanup first drops the streams (SSE
// handlers never end on their own) and then closes.
func sseServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// startSource runs a source and ends it at cleanup.
func startSource(t *testing.T, b *Browser, cfg SourceConfig, out chan<- Record) *EventSource {
	t.Helper()
	cfg = withTestLoops(t, cfg)
	es, err := b.NewEventSource(cfg, Chan(out))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go es.Run(ctx)
	t.Cleanup(func() {
		es.Close()
		cancel()
		select {
		case <-es.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("source %d did not end", cfg.Stream)
		}
	})
	return es
}

// serve starts srv over HTTP/1.1, or TLS with HTTP/2 when tlsH2 (testkit.Serve).
func serve(t *testing.T, srv *httptest.Server, tlsH2 bool) {
	t.Helper()
	testkit.Serve(t, srv, tlsH2)
}

// connServer answers connection n with streams[n-1] and every connection after the
// last one with the status then and no body. It returns the count of requests.
func connServer(t *testing.T, then int, streams ...http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := int(hits.Add(1))
		if n > len(streams) {
			w.WriteHeader(then)
			return
		}
		streams[n-1](w, r)
	})
	return srv, &hits
}

// resumeServer answers connection n with the stream bodies[n-1], which ends after it,
// and every connection after the last body with 204 No Content: a stream that resumes
// len(bodies)-1 times and then ends for good.
func resumeServer(t *testing.T, bodies ...string) *httptest.Server {
	t.Helper()
	streams := make([]http.HandlerFunc, len(bodies))
	for i, body := range bodies {
		streams[i] = func(w http.ResponseWriter, r *http.Request) {
			streamHeaders(w)
			writeEvent(w, "%s", body)
		}
	}
	srv, _ := connServer(t, http.StatusNoContent, streams...)
	return srv
}

// holdServer answers every request with the stream body and then holds the
// stream open until the request ends.
func holdServer(t *testing.T, body string) *httptest.Server {
	t.Helper()
	return sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		writeEvent(w, "%s", body)
		<-r.Context().Done()
	})
}

// streamHeaders writes the usual SSE response headers and flushes them.
func streamHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

func writeEvent(w http.ResponseWriter, format string, args ...any) {
	fmt.Fprintf(w, format, args...)
	w.(http.Flusher).Flush()
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitDone waits for the source's end; with rec set, also until its records are in.
func waitDone(t *testing.T, es *EventSource, within time.Duration, rec ...*recorder) {
	t.Helper()
	select {
	case <-es.Done():
	case <-time.After(within):
		t.Fatalf("source did not end within %v", within)
	}
	for _, r := range rec {
		r.flush()
	}
}

// waitKind waits until n records of kind k arrived and returns them.
func (r *recorder) waitKind(t *testing.T, k RecordKind, n int) []Record {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%d %s records", n, k), func() bool { return r.count(k) >= n })
	return r.kind(k)
}

// flush waits until every record sent before it has been collected.
func (r *recorder) flush() {
	r.ch <- Record{}
	<-r.flushed
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// loopTestServer accepts connections and serves each with serve after reading its
// request head; it closes every connection when the test ends.
func loopTestServer(t *testing.T, serve func(c net.Conn, n int)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				serve(c, n)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}
