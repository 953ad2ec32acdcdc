package conform

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseharness/sseharness/internal/testkit"
)

// srvOpts configures testServer: the zero value plus goodOpts is a server that breaks
// no check; each other field breaks exactly one thing.
type srvOpts struct {
	tick      time.Duration // interval of live events; 0 = none after the greeting
	heartbeat time.Duration // interval of ": ping" comments; 0 = none
	retry     string        // value of the retry field sent first; "" = none

	status            int           // 1, 18: status of every stream GET instead of 200
	contentType       string        // 2: Content-Type instead of text/event-stream; charset=utf-8
	refuseNoAccept    bool          // 3: 406 when the request has no Accept
	invalidUTF8       bool          // 4: a 0xFF byte inside the greeting's data
	partialOnAnyStar  bool          // 5: Accept */* gets a body that ends inside a block
	contentLength     bool          // 7: a Content-Length on the stream
	splitGreeting     time.Duration // 7: the greeting's blank line comes this much later
	headOnly          bool          // 7: headers flushed, then no byte at all
	gzip              bool          // gzip-encode the stream, flushing the compressor per write (fine)
	gzipHold          bool          // 7: with gzip, never flush the compressor: output waits in it
	dropAfter         time.Duration // 8: the server ends each stream after this long
	noReplay          bool          // 9: Last-Event-ID ignored
	replayInclusive   bool          // 9: the replay starts with the event the client had
	unknownStatus     int           // 9: status for an unknown Last-Event-ID
	resumeNeedsLastID bool          // 10: /resume/ refuses requests without Last-Event-ID
	refuseReconnect   bool          // 11: with dropAfter: a reconnect with Last-Event-ID is refused
	stopStatus        int           // 12: status of the stop URL (default 204)
	anyStar503        bool          // 13: Accept */* gets 503 with Retry-After
	doubleACAO        bool          // 14: two Access-Control-Allow-Origin headers
	acac              string        // 15: Access-Control-Allow-Credentials value (default "true"; "-" = none)
	preflightHeaders  string        // 16: preflight's Access-Control-Allow-Headers (default "last-event-id")
	noCORSOnResume    bool          // 17: no CORS headers when Last-Event-ID is sent
	cacheControl      string        // 19: Cache-Control instead of no-cache
	http10            bool          // 20: answer as HTTP/1.0, the body delimited by close
	xAccel            string        // 21: X-Accel-Buffering value (default "no"; "-" = none)
	requireHeader     string        // 18 (warn): this request header must be present
	noGreetingRetry   bool          // 22: no retry field at all
	greetingEventOnly bool          // 6 (warn): an event+id block without data
	emptyBody         bool          // 11 (warn): every stream is a 200 that ends at once
	noVary            bool          // 14 (warn): the echoed origin without Vary: Origin

	quiet          bool   // no greeting events: only what tick and heartbeat send
	hijack         string // "break": cut the chunked body at dropAfter; "reset": RST at dropAfter; "close-delimited": HTTP/1.1 without chunking (20)
	opaqueIDs      bool   // ids are 16 hex digits, not numbers
	history        int    // events produced before any stream
	retain         int    // only the last retain events can be replayed (0 = all)
	silentEvict    bool   // 9: an id older than the retained events replays them without a marker
	floodUnknown   bool   // 9: an unknown id replays the whole history without a marker
	oversizedEvent bool   // 23: after the greeting, an event with 2 MiB of data
	endlessLine    bool   // 23: after the retry field, one line that never ends
	flood          bool   // after the greeting, tiny events as fast as the connection takes them
	gzipBomb       bool   // 23: a gzip body of 10 GiB of zeros
}

// goodOpts is a server that breaks no check.
func goodOpts() srvOpts {
	return srvOpts{tick: 200 * time.Millisecond, heartbeat: 150 * time.Millisecond, retry: "3000"}
}

type sseEvent struct {
	seq  int
	id   string
	typ  string
	data string
}

type session struct {
	mu      sync.Mutex
	opaque  bool
	history []sseEvent
	streams int
}

func (s *session) add(typ, data string) sseEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := len(s.history) + 1
	id := strconv.Itoa(seq)
	if s.opaque {
		id = fmt.Sprintf("%016x", uint64(seq)*0x9E3779B97F4A7C15)
	}
	e := sseEvent{seq: seq, id: id, typ: typ, data: data}
	s.history = append(s.history, e)
	return e
}

// seqOf returns the seq of the event with the given id, and whether there is one.
func (s *session) seqOf(id string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opaque {
		n, err := strconv.Atoi(id)
		return n, err == nil && n >= 1 && n <= len(s.history)
	}
	for _, e := range s.history {
		if e.id == id {
			return e.seq, true
		}
	}
	return 0, false
}

// oldest returns the seq of the oldest event that can be replayed.
func (s *session) oldest(retain int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if retain <= 0 || len(s.history) <= retain {
		return 1
	}
	return len(s.history) - retain + 1
}

func (s *session) after(n int) []sseEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n >= len(s.history) {
		return nil
	}
	return append([]sseEvent(nil), s.history[n:]...)
}

// testServer is an SSE server with sessions, replay, heartbeats, CORS and a stop URL,
// in which each srvOpts field breaks one rule.
type testServer struct {
	opts     srvOpts
	mu       sync.Mutex
	sessions map[string]*session
}

func (ts *testServer) session(id string) *session {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := ts.sessions[id]
	if s == nil {
		s = &session{opaque: ts.opts.opaqueIDs}
		ts.sessions[id] = s
		for i := range ts.opts.history {
			s.add("tick", fmt.Sprintf(`{"old":%d}`, i))
		}
	}
	return s
}

// startTestServer serves opts on loopback; the server is closed at the end of the test.
// It returns the base URL.
func startTestServer(t *testing.T, opts srvOpts, tlsH2 bool) string {
	t.Helper()
	if opts.gzipBomb {
		// Compressing the member costs seconds under -race on a busy machine; done
		// here, it does not hold the response head past the client's --timeout.
		bombMember()
	}
	ts := &testServer{opts: opts, sessions: map[string]*session{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/s/{id}", ts.serveStream)
	mux.HandleFunc("/resume/{id}", ts.serveStream)
	mux.HandleFunc("/done", func(w http.ResponseWriter, r *http.Request) {
		code := opts.stopStatus
		if code == 0 {
			code = http.StatusNoContent
		}
		if code == http.StatusOK {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		w.WriteHeader(code)
	})
	srv := httptest.NewUnstartedServer(mux)
	testkit.Serve(t, srv, tlsH2)
	return srv.URL
}

func (ts *testServer) cors(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || (ts.opts.noCORSOnResume && r.Header.Get("Last-Event-ID") != "") {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if ts.opts.doubleACAO {
		h.Add("Access-Control-Allow-Origin", "*")
	}
	switch acac := ts.opts.acac; acac {
	case "":
		h.Set("Access-Control-Allow-Credentials", "true")
	case "-": // none
	default:
		h.Set("Access-Control-Allow-Credentials", acac)
	}
	if !ts.opts.noVary {
		h.Add("Vary", "Origin")
	}
}

// sink is where a stream's bytes go: a flushing ResponseWriter or a hijacked conn.
type sink interface {
	write(s string) error
}

type flushSink struct {
	w http.ResponseWriter
	f http.Flusher
}

func (s flushSink) write(b string) error {
	if _, err := s.w.Write([]byte(b)); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}

type gzipSink struct {
	gz   *gzip.Writer
	f    http.Flusher
	hold bool
}

func (s gzipSink) write(b string) error {
	if _, err := s.gz.Write([]byte(b)); err != nil {
		return err
	}
	if !s.hold {
		if err := s.gz.Flush(); err != nil {
			return err
		}
	}
	s.f.Flush()
	return nil
}

type connSink struct {
	bw      *bufio.ReadWriter
	chunked bool // frame each write as one chunk
}

func (s connSink) write(b string) error {
	if s.chunked {
		fmt.Fprintf(s.bw, "%x\r\n", len(b))
	}
	if _, err := s.bw.WriteString(b); err != nil {
		return err
	}
	if s.chunked {
		s.bw.WriteString("\r\n")
	}
	return s.bw.Flush()
}

// bombMember is one gzip member of 16 MiB of zeros (about 16 KB compressed); members
// concatenate into one gzip body.
var bombMember = sync.OnceValue(func() []byte {
	var b strings.Builder
	gz, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 16 {
		gz.Write(zeros)
	}
	gz.Close()
	return []byte(b.String())
})

// writeGzipBomb writes 10 GiB of zeros, gzip-compressed, until the client leaves.
func writeGzipBomb(ctx context.Context, w http.ResponseWriter) {
	m := bombMember()
	for range 640 {
		if ctx.Err() != nil {
			return
		}
		if _, err := w.Write(m); err != nil {
			return
		}
	}
}

func (ts *testServer) serveStream(w http.ResponseWriter, r *http.Request) {
	o := ts.opts
	h := w.Header()
	if r.Method == http.MethodOptions {
		ts.cors(h, r)
		allow := o.preflightHeaders
		if allow == "" {
			allow = "last-event-id"
		}
		h.Set("Access-Control-Allow-Methods", "GET")
		h.Set("Access-Control-Allow-Headers", allow)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if o.status == http.StatusMethodNotAllowed && r.Method == http.MethodGet {
		h.Set("Allow", "POST")
		http.Error(w, "use POST", o.status)
		return
	}
	if o.status != 0 {
		http.Error(w, "nope", o.status)
		return
	}
	if o.requireHeader != "" && r.Header.Get(o.requireHeader) == "" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if o.refuseNoAccept && r.Header.Get("Accept") == "" {
		http.Error(w, "need Accept", http.StatusNotAcceptable)
		return
	}
	if o.anyStar503 && r.Header.Get("Accept") == "*/*" {
		h.Set("Retry-After", "5")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	lastID := r.Header.Get("Last-Event-ID")
	if o.resumeNeedsLastID && strings.HasPrefix(r.URL.Path, "/resume/") && lastID == "" {
		http.Error(w, "Last-Event-ID required", http.StatusBadRequest)
		return
	}
	sess := ts.session(r.PathValue("id"))
	sess.mu.Lock()
	sess.streams++
	earlier := sess.streams > 1
	sess.mu.Unlock()
	if o.refuseReconnect && earlier && lastID != "" {
		http.Error(w, "gone", http.StatusConflict)
		return
	}
	var replay []sseEvent
	lost := false
	if lastID != "" && !o.noReplay {
		n, known := sess.seqOf(lastID)
		oldest := sess.oldest(o.retain)
		switch {
		case !known:
			if o.unknownStatus != 0 {
				http.Error(w, "unknown id", o.unknownStatus)
				return
			}
			if o.floodUnknown {
				replay = sess.after(0)
			} else {
				lost = true
			}
		case n+1 < oldest:
			replay = sess.after(oldest - 1)
			lost = !o.silentEvict
		case o.replayInclusive && n > 0:
			replay = sess.after(n - 1)
		default:
			replay = sess.after(n)
		}
	}

	ct := o.contentType
	if ct == "" {
		ct = "text/event-stream; charset=utf-8"
	}
	h.Set("Content-Type", ct)
	cc := o.cacheControl
	if cc == "" {
		cc = "no-cache"
	}
	h.Set("Cache-Control", cc)
	switch xa := o.xAccel; xa {
	case "":
		h.Set("X-Accel-Buffering", "no")
	case "-": // none
	default:
		h.Set("X-Accel-Buffering", xa)
	}
	ts.cors(h, r)
	if o.contentLength {
		h.Set("Content-Length", "1000000")
	}

	var out sink
	if o.http10 || o.hijack != "" {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		if o.hijack == "reset" {
			defer conn.(*net.TCPConn).SetLinger(0) // runs before Close: the close sends RST
		}
		chunked := o.hijack == "break" || o.hijack == "reset"
		if chunked {
			h.Set("Transfer-Encoding", "chunked")
		}
		if o.http10 {
			fmt.Fprintf(bw, "HTTP/1.0 200 OK\r\n")
		} else {
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\n")
		}
		for k, vs := range h {
			for _, v := range vs {
				fmt.Fprintf(bw, "%s: %s\r\n", k, v)
			}
		}
		bw.WriteString("\r\n")
		if bw.Flush() != nil {
			return
		}
		out = connSink{bw: bw, chunked: chunked}
		go func() { // a hijacked conn is not watched by the server: notice the client leaving
			buf := make([]byte, 1)
			_, _ = conn.Read(buf)
			conn.Close()
		}()
	} else if o.gzipBomb {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		writeGzipBomb(r.Context(), w)
		return
	} else if o.gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusOK)
		gz := gzip.NewWriter(w)
		defer gz.Close()
		out = gzipSink{gz: gz, f: w.(http.Flusher), hold: o.gzipHold}
	} else {
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		out = flushSink{w, w.(http.Flusher)}
	}
	if o.emptyBody {
		return
	}
	if o.headOnly {
		<-r.Context().Done()
		return
	}
	if o.endlessLine {
		if out.write("retry: 3000\n\ndata: ") != nil {
			return
		}
		line := strings.Repeat("x", 64<<10)
		for r.Context().Err() == nil && out.write(line) == nil {
		}
		return
	}
	if o.partialOnAnyStar && r.Header.Get("Accept") == "*/*" {
		_ = out.write("retry: 3000\n\ndata: never finished\n")
		return
	}
	ts.stream(r.Context(), out, sess, replay, lost)
}

func formatEvent(e sseEvent) string {
	return fmt.Sprintf("id: %s\nevent: %s\ndata: %s\n\n", e.id, e.typ, e.data)
}

func (ts *testServer) stream(ctx context.Context, out sink, sess *session, replay []sseEvent, lost bool) {
	o := ts.opts
	if !o.noGreetingRetry && o.retry != "" {
		if out.write("retry: "+o.retry+"\n\n") != nil {
			return
		}
	}
	if lost {
		if out.write(": events were lost\n") != nil {
			return
		}
	}
	for _, e := range replay {
		if out.write(formatEvent(e)) != nil {
			return
		}
	}
	// The greeting: two events, so that a client always has two ids to resume between.
	for i := 0; i < 2 && !o.quiet; i++ {
		data := fmt.Sprintf(`{"hello":%d}`, i)
		if o.invalidUTF8 && i == 0 {
			data = "bad \xff byte"
		}
		e := sess.add("hello", data)
		if o.splitGreeting > 0 && i == 0 {
			if out.write(strings.TrimSuffix(formatEvent(e), "\n")) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(o.splitGreeting):
			}
			if out.write("\n") != nil {
				return
			}
			continue
		}
		if out.write(formatEvent(e)) != nil {
			return
		}
	}
	if o.oversizedEvent {
		line := "data: " + strings.Repeat("x", 64<<10) + "\n"
		if out.write("event: big\n"+strings.Repeat(line, 32)+"\n") != nil {
			return
		}
	}
	if o.flood {
		block := strings.Repeat("data: x\n\n", 64<<10/9)
		for ctx.Err() == nil && out.write(block) == nil {
		}
		return
	}
	if o.greetingEventOnly {
		if out.write("event: orphan\nid: x\n\n") != nil {
			return
		}
	}
	tick, hb, drop := ticker(o.tick), ticker(o.heartbeat), timer(o.dropAfter)
	defer tick.stop()
	defer hb.stop()
	defer drop.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-drop.c:
			return
		case <-tick.c:
			e := sess.add("tick", fmt.Sprintf(`{"t":%d}`, time.Now().UnixNano()))
			if out.write(formatEvent(e)) != nil {
				return
			}
		case <-hb.c:
			if out.write(": ping\n") != nil {
				return
			}
		}
	}
}

// tickerC is a ticker whose channel is nil (never ready) for a zero interval.
type tickerC struct {
	c    <-chan time.Time
	stop func()
}

func ticker(d time.Duration) tickerC {
	if d <= 0 {
		return tickerC{stop: func() {}}
	}
	t := time.NewTicker(d)
	return tickerC{c: t.C, stop: t.Stop}
}

func timer(d time.Duration) tickerC {
	if d <= 0 {
		return tickerC{stop: func() {}}
	}
	t := time.NewTimer(d)
	return tickerC{c: t.C, stop: func() { t.Stop() }}
}

// unusedListener returns a loopback address nothing listens on.
func unusedListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
