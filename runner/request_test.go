package runner

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

// requestResult is everything a run of request streams emitted.
type requestResult struct {
	run    RequestRun
	ends   []RequestRecord   // one per request, by request number
	chunks [][]RequestRecord // per request, in arrival order
}

func (r requestResult) classes() map[EndClass]int {
	m := map[EndClass]int{}
	for _, e := range r.ends {
		m[e.End]++
	}
	return m
}

// runRequests runs cfg to its end (bounded by a deadline) and checks that every
// scheduled request has exactly one End record after its chunks.
func runRequests(t *testing.T, cfg RequestConfig) requestResult {
	t.Helper()
	ch := make(chan RequestRecord, 64)
	var recs []RequestRecord
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for r := range ch {
			recs = append(recs, r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := RunRequests(ctx, cfg, ch)
	close(ch)
	<-collected
	if err != nil {
		t.Fatalf("RunRequests: %v", err)
	}
	res := requestResult{run: run}
	if run.NotDue == 0 {
		res.ends = make([]RequestRecord, run.Scheduled)
		res.chunks = make([][]RequestRecord, run.Scheduled)
	}
	for _, r := range recs {
		if r.Request < 0 || r.Request >= len(res.ends) {
			t.Fatalf("record of request %d in a run of %d", r.Request, len(res.ends))
		}
		if res.ends[r.Request].Kind != 0 {
			t.Fatalf("request %d: a %s record after its end", r.Request, r.Kind)
		}
		switch r.Kind {
		case RequestChunk:
			res.chunks[r.Request] = append(res.chunks[r.Request], r)
		case RequestEnd:
			res.ends[r.Request] = r
		}
	}
	for i, e := range res.ends {
		if e.Kind != RequestEnd {
			t.Fatalf("request %d has no end record", i)
		}
		if e.Events != len(res.chunks[i]) {
			t.Fatalf("request %d: Events %d, %d chunk records", i, e.Events, len(res.chunks[i]))
		}
	}
	return res
}

// requestSink drains a channel of request records, keeping the end records and the
// chunks with content, until close.
type requestSink struct {
	ch           chan RequestRecord
	ends, chunks []RequestRecord
	done         chan struct{}
}

// drainRequests starts a requestSink on a channel of the given buffer.
func drainRequests(buffer int) *requestSink {
	s := &requestSink{ch: make(chan RequestRecord, buffer), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for r := range s.ch {
			if r.Kind == RequestEnd {
				s.ends = append(s.ends, r)
			} else if r.Content {
				s.chunks = append(s.chunks, r)
			}
		}
	}()
	return s
}

// close closes the channel, waits until every record is drained and returns the ends.
func (s *requestSink) close() []RequestRecord {
	close(s.ch)
	<-s.done
	return s.ends
}

// chatServer serves the reference server with chat timings and faults.
func chatServer(t *testing.T, firstToken, interval time.Duration, faults string) string {
	t.Helper()
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.FirstTokenDelay = firstToken
	cfg.TokenInterval = interval
	f, err := reference.ParseFaults(faults)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Faults = f
	srv, err := reference.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	return ts.URL + "/v1/chat/completions"
}

// chatRequests is an OpenAI-style run of n requests of tokens tokens at rate.
func chatRequests(u string, n, tokens int, rate float64) RequestConfig {
	return RequestConfig{
		URL:         u,
		Body:        fmt.Sprintf(`{"model":"m","messages":[{"role":"user","content":"hi {n}"}],"stream":true,"max_tokens":%d}`, tokens),
		EndData:     "[DONE]",
		ContentPath: "choices.0.delta.content",
		UsagePath:   "usage.completion_tokens",
		Rate:        rate,
		Requests:    n,
		Timeout:     10 * time.Second,
	}
}

func TestJSONPathLookup(t *testing.T) {
	t.Parallel()
	doc := `{"id":"x","choices":[{"index":0,"delta":{"content":"he\"y"}},{"delta":{}}],"usage":{"completion_tokens":7},"a\u0062":1}`
	for path, want := range map[string]string{
		"choices.0.delta.content":   `"he\"y"`,
		"choices.1.delta":           `{}`,
		"usage.completion_tokens":   `7`,
		"id":                        `"x"`,
		"ab":                        `1`,
		"choices.2":                 ``,
		"choices.x":                 ``,
		"usage.completion_tokens.z": ``,
		"missing":                   ``,
	} {
		p, err := ParseJSONPath(path)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Lookup(doc)
		if got != want || ok != (want != "") {
			t.Errorf("Lookup(%s) = %q, %v; want %q", path, got, ok, want)
		}
	}
	p, _ := ParseJSONPath("a")
	for _, notJSON := range []string{"[DONE]", "", `{"a":`, `{"b":1,"a"}`} {
		if got, ok := p.Lookup(notJSON); ok {
			t.Errorf("Lookup in %q = %q", notJSON, got)
		}
	}
	if _, err := ParseJSONPath("a..b"); err == nil {
		t.Error("empty segment accepted")
	}
	if n, ok := jsonStringLen(`"he\"y"`); !ok || n != 4 {
		t.Errorf("jsonStringLen = %d, %v; want 4", n, ok)
	}
}

func TestLoadBodies(t *testing.T) {
	t.Parallel()
	got, err := LoadBodies(strings.NewReader("{\"a\":{n}}\n\n  {\"b\":\"{session}\"}  \n"))
	if err != nil || !slices.Equal(got, []string{`{"a":{n}}`, `{"b":"{session}"}`}) {
		t.Fatalf("LoadBodies = %q, %v", got, err)
	}
	_, err = LoadBodies(strings.NewReader("{}\nnot json\n{}\n{\"x\":\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("bad lines: %v", err)
	}
	if _, err := LoadBodies(strings.NewReader("\n\n")); err == nil {
		t.Fatal("empty file accepted")
	}
}

func TestRequestConfigValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	err := RequestConfig{
		Method: "PO ST", URL: "ftp://x", EndData: "[DONE]", EndEvent: "stop", ContentPath: "a..b",
		Arrival: Arrival{Kind: ArrivalGamma}, MaxConcurrency: -1, Timeout: -time.Second,
	}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"method", "url", "one terminal", "content path", "rate", "gamma", "max concurrency", "one bound", "timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, err)
		}
	}
	if err := chatRequests("http://127.0.0.1:1/x", 1, 1, 1).Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestRequestStreamsAgainstTheReferenceEndpoint(t *testing.T) {
	t.Parallel()
	u := chatServer(t, 20*time.Millisecond, 3*time.Millisecond, "")
	res := runRequests(t, chatRequests(u, 4, 6, 100))
	for i, e := range res.ends {
		if e.End != EndTerminated || e.Status != 200 || e.Err != "" {
			t.Fatalf("request %d: %s %d %q", i, e.End, e.Status, e.Err)
		}
		if e.ContentEvents != 6 || e.Usage != 6 || e.Events != 8 || e.ContentBytes != len("tok0 tok1 tok2 tok3 tok4 tok5 ") {
			t.Errorf("request %d: %d content events, usage %d, %d events, %d content bytes; want 6, 6, 8, 30", i, e.ContentEvents, e.Usage, e.Events, e.ContentBytes)
		}
		if !(e.TTHeaders >= 0 && e.TTHeaders <= e.TTFT && e.TTFT >= 20*time.Millisecond && e.TTFT <= e.TTLast && e.TTLast <= e.E2E) {
			t.Errorf("request %d: headers %v, TTFT %v, last %v, E2E %v: want 0 <= headers <= TTFT (>= 20ms) <= last <= E2E", i, e.TTHeaders, e.TTFT, e.TTLast, e.E2E)
		}
		cs := res.chunks[i]
		last := cs[len(cs)-1]
		if !last.Terminal || last.Since != e.E2E {
			t.Errorf("request %d: last chunk %+v is not the terminal event at E2E %v", i, last, e.E2E)
		}
		// The server writes token k at first token + k x 3ms: a late token makes the
		// next gap short, but the gaps add up to the span from the first token to the last.
		tokens, sum := 0, time.Duration(0)
		for _, c := range cs {
			if c.Content {
				if (tokens == 0) != (c.TokenGap < 0) {
					t.Errorf("request %d: content chunk %d has token gap %v", i, tokens, c.TokenGap)
				}
				sum += max(c.TokenGap, 0)
				tokens++
			}
		}
		if sum != e.TTLast-e.TTFT {
			t.Errorf("request %d: token gaps add up to %v, first to last token is %v", i, sum, e.TTLast-e.TTFT)
		}
		if e.BodyBytes <= 0 {
			t.Errorf("request %d: no body bytes", i)
		}
	}
	if res.run.Sent != 4 || res.run.Dropped != 0 || res.run.ScheduledRate < 99.99 || res.run.ScheduledRate > 100.01 {
		t.Errorf("run %+v: want 4 sent at a scheduled 100/s", res.run)
	}
}

func TestRequestStreamsCatchEachChatFault(t *testing.T) {
	t.Parallel()
	t.Run("token-batch", func(t *testing.T) {
		t.Parallel()
		res := runRequests(t, chatRequests(chatServer(t, time.Millisecond, 2*time.Millisecond, "token-batch=4"), 1, 8, 10))
		e := res.ends[0]
		if e.End != EndTerminated || e.ContentEvents != 2 || e.Usage != 8 {
			t.Fatalf("%s: %d content events, usage %d; want 2 chunks carrying the 8 tokens the server counts", e.End, e.ContentEvents, e.Usage)
		}
	})
	t.Run("no-done", func(t *testing.T) {
		t.Parallel()
		res := runRequests(t, chatRequests(chatServer(t, time.Millisecond, time.Millisecond, "no-done"), 2, 3, 50))
		if got := res.classes(); got[EndNoTerminal] != 2 {
			t.Fatalf("classes %v, want 2 ended without terminal event", got)
		}
		if e := res.ends[0]; e.ContentEvents != 3 || e.Usage != 3 {
			t.Errorf("content events %d, usage %d; want 3 and 3 (only the end is missing)", e.ContentEvents, e.Usage)
		}
	})
	t.Run("stream-error", func(t *testing.T) {
		t.Parallel()
		cfg := chatRequests(chatServer(t, time.Millisecond, time.Millisecond, "stream-error=50"), 4, 4, 50)
		cfg.MaxConcurrency = 1 // the server numbers requests as they come
		res := runRequests(t, cfg)
		if got := res.classes(); got[EndErrorEvent] != 2 || got[EndTerminated] != 2 {
			t.Fatalf("classes %v, want 2 error events and 2 terminated", got)
		}
		for _, e := range res.ends {
			if e.End == EndErrorEvent && (e.Status != 200 || !strings.Contains(e.Err, "stream_error") || e.ContentEvents != 2) {
				t.Errorf("error request: status %d, err %q, %d content events; want 200, the error, 2 tokens before it", e.Status, e.Err, e.ContentEvents)
			}
		}
	})
	t.Run("gen-slots", func(t *testing.T) {
		t.Parallel()
		// 3 requests due at once, 10 tokens 10ms apart each: with one slot the third
		// waits for two whole generations (each holds the slot >= 5ms + 9 x 10ms).
		for _, tc := range []struct {
			fault  string
			queued bool
		}{{"", false}, {"gen-slots=1", true}} {
			cfg := chatRequests(chatServer(t, 5*time.Millisecond, 10*time.Millisecond, tc.fault), 3, 10, 1000)
			res := runRequests(t, cfg)
			var maxTTFT, minE2E time.Duration = 0, time.Hour
			for _, e := range res.ends {
				if e.End != EndTerminated {
					t.Fatalf("%q: %s %q", tc.fault, e.End, e.Err)
				}
				maxTTFT = max(maxTTFT, e.TTFT)
				minE2E = min(minE2E, e.E2E)
			}
			if tc.queued && maxTTFT < 2*95*time.Millisecond {
				t.Errorf("%q: largest TTFT %v, want after two generations (190ms)", tc.fault, maxTTFT)
			}
			if !tc.queued && maxTTFT >= minE2E {
				t.Errorf("%q: largest TTFT %v not before the first request ended (%v)", tc.fault, maxTTFT, minE2E)
			}
		}
	})
	t.Run("late-head", func(t *testing.T) {
		t.Parallel()
		// The first token is due in 10 minutes; the request times out after 400ms.
		for _, tc := range []struct {
			fault string
			head  bool
		}{{"", true}, {"late-head", false}} {
			cfg := chatRequests(chatServer(t, 10*time.Minute, time.Millisecond, tc.fault), 1, 1, 1)
			cfg.Timeout = 400 * time.Millisecond
			e := runRequests(t, cfg).ends[0]
			if e.End != EndTimeout || e.TTFT >= 0 {
				t.Fatalf("%q: %s, TTFT %v; want a timeout before any token", tc.fault, e.End, e.TTFT)
			}
			if gotHead := e.TTHeaders >= 0 && e.Status == 200; gotHead != tc.head {
				t.Errorf("%q: head after %v (status %d), want a head: %v", tc.fault, e.TTHeaders, e.Status, tc.head)
			}
		}
	})
}

// TestCoordinatedOmissionIsCorrected: with one request at a time against an endpoint
// that takes 100ms, requests due every 20ms queue in the client. Their latencies count
// from when they were due, so they grow with the queue; the naive service time
// (E2E - Waited) stays near 100ms; the achieved rate is far below the scheduled one.
func TestCoordinatedOmissionIsCorrected(t *testing.T) {
	t.Parallel()
	const service = 100 * time.Millisecond
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(service)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"c\":\"x\"}\n\ndata: [DONE]\n\n")
	}))
	defer ts.Close()
	res := runRequests(t, RequestConfig{
		Method: http.MethodGet, URL: ts.URL, EndData: "[DONE]", ContentPath: "c",
		Rate: 50, Requests: 5, MaxConcurrency: 1, Timeout: 5 * time.Second,
	})
	for k, e := range res.ends {
		if e.End != EndTerminated {
			t.Fatalf("request %d: %s %q", k, e.End, e.Err)
		}
		// Request k cannot start before k earlier requests of >= 100ms each ended, and
		// was due at k x 20ms: it waited at least k x 80ms.
		minWait := time.Duration(k) * (service - 20*time.Millisecond)
		if e.Waited < minWait {
			t.Errorf("request %d waited %v in the client, want >= %v", k, e.Waited, minWait)
		}
		if e.E2E < minWait+service || e.TTFT < minWait+service || e.TTHeaders < minWait+service {
			t.Errorf("request %d: E2E %v, TTFT %v, headers %v; want each >= %v (queueing + service)", k, e.E2E, e.TTFT, e.TTHeaders, minWait+service)
		}
		if naive := e.E2E - e.Waited; naive < service || naive >= e.E2E && k > 0 {
			t.Errorf("request %d: service time %v, E2E %v", k, naive, e.E2E)
		}
	}
	last := res.ends[4]
	if last.E2E-last.Waited > last.E2E/2 {
		t.Errorf("last request: a naive client would report %v, the corrected latency is %v: want the queueing to dominate", last.E2E-last.Waited, last.E2E)
	}
	if r := res.run; r.ScheduledRate < 49.99 || r.ScheduledRate > 50.01 || r.AchievedRate >= 12.5 || r.AchievedRate <= 0 {
		t.Errorf("scheduled %.2f/s, achieved %.2f/s: want 50/s and at most 4 sends in 400ms (10/s)", r.ScheduledRate, r.AchievedRate)
	}
	if res.run.MaxWaited < 4*(service-20*time.Millisecond) {
		t.Errorf("max waited %v", res.run.MaxWaited)
	}
}

func TestRequestRunEndsAfterDrainDroppingWhatWaits(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer ts.Close()
	defer close(release)
	start := time.Now()
	res := runRequests(t, RequestConfig{
		URL: ts.URL, EndData: "[DONE]", Rate: 100, Requests: 5, MaxConcurrency: 1,
		Timeout: time.Minute, Drain: 200 * time.Millisecond,
	})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("run took %v, want it ended by the drain", took)
	}
	got := res.classes()
	if got[EndCancelled] != 1 || got[EndDropped] != 4 || res.run.Dropped != 4 || res.run.Sent != 1 {
		t.Fatalf("classes %v, run %+v: want the one sent request cancelled and 4 dropped", got, res.run)
	}
	for _, e := range res.ends[1:] {
		if !e.Sent.IsZero() || e.Waited <= 0 || e.TTHeaders >= 0 {
			t.Errorf("dropped request %d: %+v", e.Request, e)
		}
	}
}

func TestRequestStreamsEndClassesAgainstDoubles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		cfg     func(*RequestConfig)
		want    EndClass
		wantErr string
	}{
		{"anthropic message_stop", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\"}\n\n"+
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n"+
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
		}, func(c *RequestConfig) { c.EndData = ""; c.EndEvent = "message_stop"; c.ContentPath = "delta.text" }, EndTerminated, ""},
		{"anthropic error event", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n")
		}, func(c *RequestConfig) { c.EndData = ""; c.EndEvent = "message_stop" }, EndErrorEvent, "overloaded_error"},
		{"error null is no error", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"error\":null,\"c\":\"x\"}\n\ndata: [DONE]\n\n")
		}, nil, EndTerminated, ""},
		{"body ends early", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"c\":\"x\"}\n\n")
		}, nil, EndNoTerminal, "without the terminal"},
		{"no terminal configured", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"c\":\"x\"}\n\n")
		}, func(c *RequestConfig) { c.EndData = "" }, EndTerminated, ""},
		{"status 429", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"rate limited"}`, http.StatusTooManyRequests)
		}, nil, EndHTTPError, "status 429"},
		{"not an event stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"choices":[]}`)
		}, nil, EndHTTPError, "content type"},
		{"connection cut", func(w http.ResponseWriter, r *http.Request) {
			conn, bw, _ := w.(http.Hijacker).Hijack()
			_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n10\r\ndata: {\"c\":\"x\"}\n\n\r\n")
			_ = bw.Flush()
			conn.Close()
		}, nil, EndNetworkError, ""},
		{"mute after head", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, func(c *RequestConfig) { c.Timeout = 300 * time.Millisecond }, EndTimeout, "no end after"},
		{"event over the size limit", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+strings.Repeat("x", 2000)+"\n\n")
		}, func(c *RequestConfig) { c.MaxLineSize = 1000 }, EndProtocol, "longer than 1000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewServer(tc.handler)
			defer ts.Close()
			cfg := RequestConfig{URL: ts.URL, Body: `{}`, EndData: "[DONE]", ContentPath: "c", Rate: 1, Requests: 1, Timeout: 5 * time.Second}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			e := runRequests(t, cfg).ends[0]
			if e.End != tc.want || !strings.Contains(e.Err, tc.wantErr) || (tc.want == EndTerminated) != (e.Err == "") {
				t.Fatalf("end %s %q, want %s %q", e.End, e.Err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestRequestBodiesTemplatesAndHeaders(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]string{} // path -> method, header, body
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[r.URL.Path] = r.Method + " " + r.Header.Get("Authorization") + " " + r.Header.Get("Content-Type") + " " + string(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer ts.Close()
	base := RequestConfig{
		Method: http.MethodPut, URL: ts.URL + "/r/{n}/{session}", Header: http.Header{"Authorization": {"Bearer k"}},
		EndData: "[DONE]", Rate: 1000, Requests: 4, MaxConcurrency: 1,
	}
	cfg := base
	cfg.Body = `{"n":{n},"s":"{session}"}`
	res := runRequests(t, cfg)
	if got := res.classes(); got[EndTerminated] != 4 {
		t.Fatalf("classes %v", got)
	}
	if got := seen["/r/2/s-2"]; got != `PUT Bearer k application/json {"n":2,"s":"s-2"}` {
		t.Fatalf("request 2 sent %q", got)
	}

	cfg = base
	cfg.Bodies = []string{`{"b":0,"n":{n}}`, `{"b":1}`, `{"b":2}`}
	clear(seen)
	runRequests(t, cfg)
	if seen["/r/3/s-3"] != `PUT Bearer k application/json {"b":0,"n":3}` || seen["/r/1/s-1"] != `PUT Bearer k application/json {"b":1}` {
		t.Fatalf("bodies in order: %q", seen)
	}

	cfg.RandomBodies = true
	cfg.Requests = 12
	pick := func(seed uint64) []string {
		clear(seen)
		cfg.Seed = seed
		runRequests(t, cfg)
		var order []string
		for i := range cfg.Requests {
			order = append(order, seen[fmt.Sprintf("/r/%d/s-%d", i, i)])
		}
		return order
	}
	a, b, other := pick(7), pick(7), pick(8)
	if !slices.Equal(a, b) || slices.Equal(a, other) {
		t.Fatalf("random bodies: seed 7 %q then %q, seed 8 %q: want the same from one seed, different from another", a, b, other)
	}
	distinct := map[string]bool{}
	for _, s := range a {
		distinct[s] = true
	}
	if len(distinct) < 2 {
		t.Fatalf("random bodies: only %v", distinct)
	}
}

func TestRequestScheduleFollowsTheArrivalProcess(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer ts.Close()
	cfg := RequestConfig{URL: ts.URL, EndData: "[DONE]", Rate: 200, Arrival: Arrival{Kind: ArrivalPoisson}, Seed: 3, Duration: 200 * time.Millisecond}
	want := Schedule(cfg.Arrival, cfg.Rate, cfg.Seed, 0, cfg.Duration)
	res := runRequests(t, cfg)
	if res.run.Scheduled != len(want) || len(res.ends) != len(want) {
		t.Fatalf("%d requests scheduled, want %d", res.run.Scheduled, len(want))
	}
	for i, e := range res.ends {
		if got := e.Scheduled.Sub(res.run.Start); got != want[i] {
			t.Fatalf("request %d scheduled at +%v, want +%v", i, got, want[i])
		}
		if e.Sent.Before(e.Scheduled) {
			t.Fatalf("request %d sent %v before it was due", i, e.Scheduled.Sub(e.Sent))
		}
	}
}

// After the terminal event the runner reads on to the end of the body, so that
// requests one after another reuse one keep-alive connection.
func TestRequestStreamsReuseConnections(t *testing.T) {
	t.Parallel()
	srv, err := reference.New(func() reference.Config {
		cfg := reference.DefaultConfig()
		cfg.FirstTokenDelay, cfg.TokenInterval = 0, 0
		return cfg
	}())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := 0
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	ts.Start()
	defer ts.Close()
	defer func() { _ = srv.Shutdown(context.Background()) }()
	cfg := chatRequests(ts.URL+"/v1/chat/completions", 10, 3, 1000)
	cfg.MaxConcurrency = 1
	if got := runRequests(t, cfg).classes(); got[EndTerminated] != 10 {
		t.Fatalf("classes %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Fatalf("10 requests one at a time opened %d connections, want 1", conns)
	}
}

func TestRequestStreamsOverHTTP2WithTLS(t *testing.T) {
	t.Parallel()
	srv, err := reference.New(reference.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	defer func() { _ = srv.Shutdown(context.Background()) }()
	cfg := chatRequests(ts.URL+"/v1/chat/completions", 3, 4, 100)
	cfg.Insecure = true
	res := runRequests(t, cfg)
	for _, e := range res.ends {
		if e.End != EndTerminated || e.Proto != "HTTP/2.0" || e.ContentEvents != 4 {
			t.Fatalf("request %d: %s %q over %q, %d content events", e.Request, e.End, e.Err, e.Proto, e.ContentEvents)
		}
	}
	cfg.Insecure = false
	if e := runRequests(t, cfg).ends[0]; e.End != EndNetworkError || !strings.Contains(e.Err, "certificate") {
		t.Fatalf("without Insecure: %s %q, want a certificate error", e.End, e.Err)
	}
}

func TestRequestShardsSplitOneRun(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	bodies := map[string]string{} // session -> body
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[r.URL.Query().Get("s")] = string(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer ts.Close()
	cfg := RequestConfig{URL: ts.URL + "/?s={session}", Body: `{"n":{n}}`, EndData: "[DONE]", Rate: 100, Requests: 7}
	want := Schedule(cfg.Arrival, cfg.Rate, cfg.Seed, cfg.Requests, 0)
	seen := map[int]int{} // request -> shard
	for shard := range 2 {
		cfg.Shard = Shard{Index: shard, Count: 2}
		sink := drainRequests(64)
		run, err := RunRequests(context.Background(), cfg, sink.ch)
		ends := sink.close()
		if err != nil {
			t.Fatal(err)
		}
		wantN := []int{4, 3}[shard]
		if run.Scheduled != wantN || run.Sent != wantN || len(ends) != wantN {
			t.Fatalf("shard %d: run %+v, %d ends; want %d requests", shard, run, len(ends), wantN)
		}
		if run.ScheduledRate < 49.99 || run.ScheduledRate > 50.01 {
			t.Errorf("shard %d: scheduled rate %.3f, want 50/s (every other request of 100/s)", shard, run.ScheduledRate)
		}
		for _, e := range ends {
			if e.Request%2 != shard || e.End != EndTerminated {
				t.Fatalf("shard %d sent request %d (%s)", shard, e.Request, e.End)
			}
			if _, dup := seen[e.Request]; dup {
				t.Fatalf("request %d sent twice", e.Request)
			}
			seen[e.Request] = shard
			if got := e.Scheduled.Sub(run.Start); got != want[e.Request] {
				t.Errorf("request %d due at +%v, want +%v as in the whole run", e.Request, got, want[e.Request])
			}
		}
	}
	if len(seen) != 7 {
		t.Fatalf("shards sent %d of 7 requests", len(seen))
	}
	if got := bodies["s-5"]; got != `{"n":5}` {
		t.Fatalf("request 5's body %q, want its global number", got)
	}
	if err := (RequestConfig{URL: ts.URL, Rate: 1, Requests: 1, Shard: Shard{Index: 2, Count: 2}}).Validate(); err == nil || !strings.Contains(err.Error(), "shard index") {
		t.Fatalf("shard index 2 of 2: %v", err)
	}
}
