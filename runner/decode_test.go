package runner

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// flushWriter is a compressor whose Flush pushes out everything written so far.
type flushWriter interface {
	io.WriteCloser
	Flush() error
}

// codings are the content codings the runner decodes, with an encoder each as servers
// use them (deflate both zlib-wrapped and raw, since servers send both).
var codings = []struct {
	name, header string
	new          func(w io.Writer) flushWriter
}{
	{"gzip", "gzip", func(w io.Writer) flushWriter { return gzip.NewWriter(w) }},
	{"deflate-zlib", "deflate", func(w io.Writer) flushWriter { return zlib.NewWriter(w) }},
	{"deflate-raw", "deflate", func(w io.Writer) flushWriter { fw, _ := flate.NewWriter(w, 5); return fw }},
	{"br", "br", func(w io.Writer) flushWriter { return brotli.NewWriterLevel(w, 5) }},
	{"zstd", "zstd", func(w io.Writer) flushWriter {
		zw, _ := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		return zw
	}},
}

// eventScript is a stream with what the parser must get exactly right: multi-line
// data, comments, retry, ids, an event type, CRLF and CR line ends, a long line.
var eventScript = []string{
	"retry: 50\n\n",
	": heartbeat\n\n",
	"id: 1\nevent: tick\ndata: {\"seq\":1}\n\n",
	"id: 2\r\ndata: line one\r\ndata: line two\r\n\r\n",
	"id: 3\rdata: cr only\r\r",
	"data: " + strings.Repeat("x", 40000) + "\n\n",
	"id: 1795656668:4\ndata: opaque\n\n",
}

// compressedServer serves eventScript in coding (nil: uncompressed), one event at a
// time: event k+1 is written only after the client received event k (proceed), so
// events arrive only if every flushed piece is decoded at once.
func compressedServer(t *testing.T, tlsH2 bool, coding func(io.Writer) flushWriter, header string, proceed <-chan struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if coding != nil {
			w.Header().Set("Content-Encoding", header)
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		var out io.Writer = w
		var enc flushWriter
		if coding != nil {
			enc = coding(w)
			out = enc
		}
		for i, ev := range eventScript {
			if i > 0 {
				select {
				case <-proceed:
				case <-r.Context().Done():
					return
				}
			}
			io.WriteString(out, ev)
			if enc != nil {
				enc.Flush()
			}
			w.(http.Flusher).Flush()
		}
		if enc != nil {
			enc.Close()
		}
	}))
	serve(t, srv, tlsH2)
	return srv
}

// parsed is what the records of one run say, to compare runs field by field.
type parsed struct {
	Kind      RecordKind
	EventType string
	EventID   string
	Bytes     int
	Retry     time.Duration
	Seq       int64
}

// runScript runs one source against the server, releasing the server's next event
// whenever one more record arrived, and returns the records' content.
func runScript(t *testing.T, srv *httptest.Server, tlsH2 bool, proceed chan<- struct{}) ([]parsed, []Record) {
	t.Helper()
	cfg := BrowserConfig{}
	if tlsH2 {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		cfg.RootCAs = pool
	}
	return runScriptAt(t, srv.URL, cfg, proceed)
}

// runScriptAt is runScript against a URL, with a browser of cfg.
func runScriptAt(t *testing.T, url string, cfg BrowserConfig, proceed chan<- struct{}) ([]parsed, []Record) {
	t.Helper()
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(cfg), SourceConfig{URL: url, Retry: time.Millisecond}, rec.ch)
	items := func() int {
		return rec.count(RecordEvent) + rec.count(RecordComment) + rec.count(RecordRetry)
	}
	for k := 1; k < len(eventScript); k++ {
		waitFor(t, 10*time.Second, fmt.Sprintf("item %d before the server sends the next", k), func() bool { return items() >= k })
		proceed <- struct{}{}
	}
	waitDone(t, es, 10*time.Second, rec)
	var out []parsed
	for _, r := range rec.all() {
		switch r.Kind {
		case RecordEvent, RecordComment, RecordRetry:
			out = append(out, parsed{r.Kind, r.EventType, r.EventID, r.Bytes, r.Retry, r.Seq})
		}
	}
	return out, rec.all()
}

// TestCompressedStreamsParseExactlyAsUncompressed: for every coding, over HTTP/1.1
// (the runner's own chunked reader) and HTTP/2, each event arrives before the server
// writes the next (incremental decoding) and the records equal those of the same
// stream uncompressed.
func TestCompressedStreamsParseExactlyAsUncompressed(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		proto := map[bool]string{false: "h1", true: "h2"}[h2]
		proceed := make(chan struct{})
		want, _ := runScript(t, compressedServer(t, h2, nil, "", proceed), h2, proceed)
		if len(want) != len(eventScript) {
			t.Fatalf("%s uncompressed: %d items, want %d: %+v", proto, len(want), len(eventScript), want)
		}
		for _, c := range codings {
			t.Run(proto+"/"+c.name, func(t *testing.T) {
				proceed := make(chan struct{})
				got, recs := runScript(t, compressedServer(t, h2, c.new, c.header, proceed), h2, proceed)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("records differ from the uncompressed stream:\n got %+v\nwant %+v", got, want)
				}
				for _, r := range recs {
					if r.Kind == RecordHeaders && r.Status == http.StatusOK && r.ContentEncoding != c.header {
						t.Errorf("Headers record ContentEncoding %q, want %q", r.ContentEncoding, c.header)
					}
					if r.Kind == RecordError {
						t.Errorf("error %s: %s", r.Class, r.Err)
					}
				}
			})
		}
	}
}

// TestRequestHeadersLikeChromium: every stream request carries what Chromium's
// EventSource sends, over both protocols; AcceptEncoding identity turns compression off.
func TestRequestHeadersLikeChromium(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		for _, ae := range []string{"", AcceptIdentity} {
			var got atomic.Pointer[http.Header]
			srv := newCountingServer(t, h2, 0)
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := r.Header.Clone()
				got.Store(&h)
				w.WriteHeader(http.StatusNoContent)
			})
			cfg := BrowserConfig{}
			if h2 {
				cfg.RootCAs = srv.roots()
			}
			rec := newRecorder(t)
			es := startSource(t, NewBrowser(cfg), SourceConfig{URL: srv.URL, AcceptEncoding: ae}, rec.ch)
			waitDone(t, es, 10*time.Second, rec)
			h := got.Load()
			if h == nil {
				t.Fatal("no request arrived")
			}
			wantAE := DefaultAcceptEncoding
			if ae != "" {
				wantAE = ae
			}
			for k, v := range map[string]string{"Accept": "text/event-stream", "Cache-Control": "no-cache",
				"Pragma": "no-cache", "Accept-Encoding": wantAE} {
				if h.Get(k) != v || len(h.Values(k)) != 1 {
					t.Errorf("h2=%v accept-encoding %q: %s %q, want %q once", h2, ae, k, h.Values(k), v)
				}
			}
		}
	}
}

// TestDecompressionBombStops: a gzip body that inflates a thousandfold (blank lines:
// the parser alone would read it forever) ends with a too-large error, no reconnect.
func TestDecompressionBombStops(t *testing.T) {
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	line := bytes.Repeat([]byte("\n"), 1<<20)
	for range 32 { // 32 MiB decoded
		zw.Write(line)
	}
	zw.Close()
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb.Bytes())
	})
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, Retry: time.Millisecond}, rec.ch)
	waitDone(t, es, 30*time.Second, rec)
	errs := rec.kind(RecordError)
	if len(errs) != 1 || errs[0].Class != ErrTooLarge || !strings.Contains(errs[0].Err, "decompression bomb") {
		t.Fatalf("errors %+v, want one too-large decompression bomb", errs)
	}
	if es.Reason() != CloseTooLarge || hits.Load() != 1 {
		t.Errorf("ended %q after %d requests, want too-large after 1", es.Reason(), hits.Load())
	}
	t.Logf("bomb of %d KB stopped: %s", bomb.Len()>>10, errs[0].Err)
}

func TestBadContentCodings(t *testing.T) {
	// run answers the first request with body in coding and later ones with 204, and
	// runs a source to its end: it returns the source, its records and the requests.
	run := func(t *testing.T, coding, body string) (*EventSource, *recorder, int32) {
		srv, hits := connServer(t, http.StatusNoContent, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Encoding", coding)
			io.WriteString(w, body)
		})
		rec := newRecorder(t)
		es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, Retry: time.Millisecond}, rec.ch)
		waitDone(t, es, 10*time.Second, rec)
		return es, rec, hits.Load()
	}
	t.Run("unsupported", func(t *testing.T) {
		es, rec, hits := run(t, "compress", "data: x\n\n")
		errs := rec.kind(RecordError)
		if len(errs) != 1 || errs[0].Class != ErrDecode || es.Reason() != CloseBadEncoding || hits != 1 {
			t.Errorf("errors %+v reason %q requests %d; want one decode error, bad-encoding, no reconnect", errs, es.Reason(), hits)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		_, rec, hits := run(t, "gzip", "data: this is not gzip\n\n")
		errs := rec.kind(RecordError)
		if len(errs) != 1 || errs[0].Class != ErrDecode || hits != 2 {
			t.Errorf("errors %+v requests %d; want one decode error, then a reconnect", errs, hits)
		}
		if cl := rec.kind(RecordClosed); len(cl) == 0 || cl[0].Reason != CloseNetworkError {
			t.Errorf("closed %+v, want network-error first", cl)
		}
	})
}

// TestDecodeByteByByte: the decoders work whatever the split of the compressed bytes.
func TestDecodeByteByByte(t *testing.T) {
	plain := strings.Join(eventScript, "")
	for _, c := range codings {
		var buf bytes.Buffer
		w := c.new(&buf)
		io.WriteString(w, plain)
		w.Close()
		body, undecode, err := newDecodedBody(c.header, iotest.OneByteReader(bytes.NewReader(buf.Bytes())), DefaultMaxDecodedRatio)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := io.ReadAll(iotest.OneByteReader(body))
		if undecode != nil {
			undecode()
		}
		if err != nil || string(got) != plain {
			t.Errorf("%s: %d bytes, err %v; want the %d plain bytes", c.name, len(got), err, len(plain))
		}
	}
}

// TestIdentityAllocatesNoDecoder: an uncompressed body is read as it is.
func TestIdentityAllocatesNoDecoder(t *testing.T) {
	src := strings.NewReader("data: x\n\n")
	for _, enc := range []string{"", "identity", " Identity "} {
		body, undecode, err := newDecodedBody(enc, src, DefaultMaxDecodedRatio)
		if err != nil || body != io.Reader(src) || undecode != nil {
			t.Errorf("%q: body %T undecode %v err %v, want the body itself", enc, body, undecode != nil, err)
		}
	}
	if _, _, err := newDecodedBody("gzip, compress", src, DefaultMaxDecodedRatio); !errors.Is(err, errUnsupportedCoding) {
		t.Errorf("gzip, compress: err %v, want unsupported", err)
	}
}

// TestCloseDuringCompressedStream: a source parked in a decoder's read ends at once
// on Close, as the client's doing, not as a decode or read error.
func TestCloseDuringCompressedStream(t *testing.T) {
	for _, c := range codings {
		t.Run(c.name, func(t *testing.T) {
			srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Content-Encoding", c.header)
				w.WriteHeader(http.StatusOK)
				enc := c.new(w)
				io.WriteString(enc, "id: 1\ndata: x\n\n")
				enc.Flush()
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			})
			rec := newRecorder(t)
			es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL}, rec.ch)
			if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
				t.Fatal(err)
			}
			es.Close()
			waitDone(t, es, 10*time.Second, rec)
			if errs := rec.kind(RecordError); len(errs) != 0 || es.Reason() != CloseClientClose {
				t.Errorf("errors %+v, reason %q; want none and client-close", errs, es.Reason())
			}
		})
	}
}
