package reference_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

func TestStreamHeadersRetryConnectedAndTicks(t *testing.T) {
	t.Parallel()
	base := startServer(t, testConfig())
	c := open(t, base+"/sessions/app.user-1:page_2/events", nil)
	h := c.resp.Header
	if got := h.Get("Content-Type"); got != "text/event-stream; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := h.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control = %q", got)
	}
	if got := h.Get("X-Accel-Buffering"); got != "no" {
		t.Errorf("X-Accel-Buffering = %q", got)
	}
	if c.resp.ContentLength != -1 || h.Get("Content-Length") != "" {
		t.Errorf("stream has a Content-Length: %d %q", c.resp.ContentLength, h.Get("Content-Length"))
	}
	fs := c.awaitEvents(wait, "tick", 5)
	if fs[0].Retry != "1000" || fs[0].Event != "" {
		t.Fatalf("first frame = %+v, want retry: 1000 alone", fs[0])
	}
	if fs[1].Event != "connected" || fs[1].ID != "" {
		t.Fatalf("second frame = %+v, want event connected without an id field", fs[1])
	}
	conn := fs[1].data(t)
	if conn.Session != "app.user-1:page_2" || conn.Sender == "" {
		t.Fatalf("connected data = %+v", conn)
	}
	for i, f := range events(fs, "tick")[:5] {
		d := f.data(t)
		want := uint64(i + 1)
		if f.ID != strconv.FormatUint(want, 10) || d.Seq != want {
			t.Fatalf("tick %d: id %q seq %d, want %d", i, f.ID, d.Seq, want)
		}
		if d.Session != "app.user-1:page_2" || d.Sender != conn.Sender || d.SentUnixNs == 0 {
			t.Fatalf("tick %d data = %+v", i, d)
		}
		// sent_unix_ns is stamped when written, so it is close to arrival.
		if lag := f.Arrived.Sub(time.Unix(0, d.SentUnixNs)); lag < -time.Second || lag > 2*time.Second {
			t.Fatalf("tick %d arrived %v after sent_unix_ns", i, lag)
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(f.Data), &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"session", "seq", "sent_unix_ns", "sender"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("tick data %s lacks %q", f.Data, k)
			}
		}
	}
}

func TestHeartbeatComment(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) {
		cfg.Tick = 0
		cfg.Heartbeat = 40 * time.Millisecond
	})
	c := open(t, base+"/sessions/hb/events", nil)
	c.await(wait, "want two ': ping' comments", func(fs []frame, _ bool) bool {
		n := 0
		for _, f := range fs {
			if len(f.Comments) == 1 && f.Comments[0] == "ping" && f.Event == "" {
				n++
			}
		}
		return n >= 2
	})
}

func TestBadSessionIDIs400(t *testing.T) {
	t.Parallel()
	base := startServer(t, testConfig())
	for _, id := range []string{"bad%20id!", strings.Repeat("a", 129), "caf%C3%A9", "a%2Fb", "semi;colon"} {
		for _, req := range []struct{ method, path string }{{"GET", "/events"}, {"POST", "/progress"}} {
			r, _ := http.NewRequest(req.method, base+"/sessions/"+id+req.path, strings.NewReader(`{"progress":1}`))
			resp, err := testHTTP.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %s: status %d, want 400", req.method, id, resp.StatusCode)
			}
			if lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n"); len(lines) != 1 || lines[0] == "" {
				t.Errorf("%s %s: reason %q is not one line", req.method, id, body)
			}
		}
	}
	// The longest valid id is accepted.
	c := open(t, base+"/sessions/"+strings.Repeat("a", 128)+"/events", nil)
	if c.resp.StatusCode != http.StatusOK {
		t.Fatalf("128-character id: status %d", c.resp.StatusCode)
	}
}

func TestSameIDEndsEarlierStreamAndStartsOneNewSender(t *testing.T) {
	t.Parallel()
	base := startServer(t, testConfig())
	c1 := open(t, base+"/sessions/dup/events", nil)
	c1.awaitEvents(wait, "tick", 2)
	c2 := open(t, base+"/sessions/dup/events", nil)
	fs1 := c1.awaitEOF(wait)
	if c1.err != nil {
		t.Fatalf("earlier stream ended with an error, want a clean end: %v", c1.err)
	}
	fs2 := c2.awaitEvents(wait, "tick", 5)
	s1, s2 := senders(t, fs1, "connected", "tick"), senders(t, fs2, "connected", "tick")
	if len(s1) != 1 || len(s2) != 1 || s1[0] == s2[0] {
		t.Fatalf("senders: earlier stream %v, new stream %v; want one each, different", s1, s2)
	}
	// The new stream continues the session's sequence after the earlier stream's last tick.
	last1 := events(fs1, "tick")
	first2 := events(fs2, "tick")[0].data(t).Seq
	if first2 <= last1[len(last1)-1].data(t).Seq {
		t.Fatalf("new stream's first tick %d does not follow the earlier stream's last %d", first2, last1[len(last1)-1].data(t).Seq)
	}
	awaitMetrics(t, base, wait, "one stream, one sender, one replaced", func(m map[string]float64) bool {
		return m["sseref_streams_open"] == 1 && m["sseref_senders_active"] == 1 && m[closed("replaced")] == 1 &&
			m["sseref_duplicate_senders_total"] == 0
	})
}

func TestConcurrentSameIDConnectsLeaveOneStreamAndOneSender(t *testing.T) {
	t.Parallel()
	base := startServer(t, testConfig())
	const n = 50
	clients := make([]*client, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { clients[i] = open(t, base+"/sessions/race/events", nil) })
	}
	wg.Wait()
	m := awaitMetrics(t, base, wait, "exactly one stream and one sender left", func(m map[string]float64) bool {
		return m["sseref_streams_open"] == 1 && m["sseref_senders_active"] == 1 && m[closed("replaced")] == n-1
	})
	if m["sseref_duplicate_senders_total"] != 0 {
		t.Fatalf("duplicate senders: %v", m["sseref_duplicate_senders_total"])
	}
	for _, c := range clients {
		if c.resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", c.resp.StatusCode)
		}
	}
	// Replaced clients see their body end.
	var survivors []*client
	eventually(t, wait, "every client but one sees its body end", func() bool {
		survivors = survivors[:0]
		for _, c := range clients {
			if _, eof := c.snapshot(); !eof {
				survivors = append(survivors, c)
			}
		}
		return len(survivors) == 1
	})
	fs := survivors[0].awaitEvents(wait, "tick", 3)
	if s := senders(t, fs, "tick"); len(s) != 1 {
		t.Fatalf("surviving stream has ticks from %v", s)
	}
	if got := scrape(t, base)["sseref_duplicate_senders_total"]; got != 0 {
		t.Fatalf("duplicate senders after the race: %v", got)
	}
}

// seqs returns the seq of every tick, progress and done event, in arrival order.
func seqs(t *testing.T, fs []frame) []uint64 {
	var out []uint64
	for _, f := range events(fs, "tick", "progress", "done") {
		d := f.data(t)
		if f.ID != strconv.FormatUint(d.Seq, 10) {
			t.Fatalf("event id %q differs from data seq %d", f.ID, d.Seq)
		}
		out = append(out, d.Seq)
	}
	return out
}

// exactlyOnceFrom1 checks that got is 1, 2, ..., len(got).
func exactlyOnceFrom1(t *testing.T, got []uint64) {
	t.Helper()
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("seq %d at position %d, want %d (missing, duplicated or out of order): %v", s, i, i+1, got)
		}
	}
}

func TestDisconnectThenResumeYieldsEverySeqOnceInOrder(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"header", "query"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			base := startServer(t, testConfig())
			id := "resume-" + via
			c1 := open(t, base+"/sessions/"+id+"/events", nil)
			c1.awaitEvents(wait, "tick", 3)
			progress(t, base, id, 10, "while connected")
			fs1 := c1.awaitEvents(wait, "progress", 1)
			c1.close() // abrupt: ticks the server wrote after this are never read
			got := seqs(t, fs1)
			awaitMetrics(t, base, wait, "stream closed", func(m map[string]float64) bool { return m["sseref_streams_open"] == 0 })
			// While nobody listens, the job goes on.
			p1 := progress(t, base, id, 20, "while away 1")
			p2 := progress(t, base, id, 30, strings.Repeat("x", 5000))
			last := strconv.FormatUint(got[len(got)-1], 10)
			url, hdr := base+"/sessions/"+id+"/events", map[string]string{"Last-Event-ID": last}
			if via == "query" {
				url, hdr = url+"?lastEventId="+last, nil
			}
			c2 := open(t, url, hdr)
			fs2 := c2.await(wait, "replayed progress and 3 live ticks after it", func(fs []frame, _ bool) bool {
				s := seqs(t, fs)
				return len(s) > 0 && s[len(s)-1] > p2+3
			})
			if conn := events(fs2, "connected")[0]; conn.ID != "" || fmt.Sprint(conn.data(t).Seq) != last {
				t.Fatalf("connected frame %+v: want no id field and the resume point %s as its seq", conn, last)
			}
			all := append(got, seqs(t, fs2)...)
			exactlyOnceFrom1(t, all)
			for _, f := range events(fs2, "progress") {
				if d := f.data(t); (d.Seq == p1 || d.Seq == p2) && !d.Replayed {
					t.Fatalf("progress %d not marked replayed", d.Seq)
				}
			}
			if m := scrape(t, base); m["sseref_events_replayed_total"] < 2 {
				t.Fatalf("events_replayed_total = %v, want >= 2", m["sseref_events_replayed_total"])
			}
		})
	}
}

func TestUnknownOrExpiredLastEventIDGetsLostCommentAndLiveStream(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) { cfg.Replay = 3 })
	lostComment := func(fs []frame) bool {
		for _, f := range fs {
			for _, c := range f.Comments {
				if strings.Contains(c, "lost") {
					return true
				}
			}
		}
		return false
	}

	t.Run("not a number", func(t *testing.T) {
		c := open(t, base+"/sessions/lost-a/events", map[string]string{"Last-Event-ID": "abc"})
		if c.resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", c.resp.StatusCode)
		}
		fs := c.awaitEvents(wait, "tick", 2)
		if !lostComment(fs) {
			t.Fatalf("no lost-events comment: %s", summary(fs))
		}
		exactlyOnceFrom1(t, seqs(t, fs))
	})
	t.Run("ahead of the session", func(t *testing.T) {
		c := open(t, base+"/sessions/lost-b/events", map[string]string{"Last-Event-ID": "1000"})
		fs := c.awaitEvents(wait, "tick", 2)
		if !lostComment(fs) {
			t.Fatalf("no lost-events comment: %s", summary(fs))
		}
		if s := seqs(t, fs); s[0] != 1001 || s[1] != 1002 {
			t.Fatalf("ids after an unknown id 1000: %v, want to continue at 1001", s)
		}
	})
	t.Run("expired", func(t *testing.T) {
		c1 := open(t, base+"/sessions/lost-c/events", nil)
		c1.awaitEvents(wait, "tick", 8)
		c1.close()
		awaitMetrics(t, base, wait, "stream closed", func(m map[string]float64) bool { return m["sseref_streams_open"] == 0 })
		p := progress(t, base, "lost-c", 50, "retained")
		c2 := open(t, base+"/sessions/lost-c/events", map[string]string{"Last-Event-ID": "1"})
		fs := c2.await(wait, "the retained events then live ticks", func(fs []frame, _ bool) bool {
			s := seqs(t, fs)
			return len(s) >= 5
		})
		if !lostComment(fs) {
			t.Fatalf("no lost-events comment: %s", summary(fs))
		}
		s := seqs(t, fs)
		// The 3 retained events end with the progress posted last, then live ticks follow.
		want := []uint64{p - 2, p - 1, p, p + 1, p + 2}
		if fmt.Sprint(s[:5]) != fmt.Sprint(want) {
			t.Fatalf("seqs %v, want %v first", s, want)
		}
	})
}

func TestProgressPushDoneThen204(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) { cfg.Tick = 0 })
	c := open(t, base+"/sessions/job/events", nil)
	c.awaitEvents(wait, "connected", 1)
	for i, p := range []int{10, 10, 55} {
		seq := progress(t, base, "job", p, fmt.Sprintf("step %d", i))
		fs := c.awaitEvents(wait, "progress", i+1)
		d := events(fs, "progress")[i].data(t)
		if d.Seq != seq || d.Progress == nil || *d.Progress != p || d.Message == nil || *d.Message != fmt.Sprintf("step %d", i) {
			t.Fatalf("progress event %d = %+v, want seq %d progress %d", i, d, seq, p)
		}
	}
	doneSeq := progress(t, base, "job", 100, "finished")
	fs := c.awaitEOF(wait)
	ev := events(fs)
	if last := ev[len(ev)-1]; last.Event != "done" || last.data(t).Seq != doneSeq || *last.data(t).Message != "finished" {
		t.Fatalf("last event = %+v, want done with seq %d", last, doneSeq)
	}
	awaitMetrics(t, base, wait, "stream closed as done", func(m map[string]float64) bool {
		return m[closed("done")] == 1 && m["sseref_streams_open"] == 0 && m["sseref_senders_active"] == 0
	})
	for _, hdr := range []map[string]string{nil, {"Last-Event-ID": strconv.FormatUint(doneSeq, 10)}, {"Last-Event-ID": "junk"}} {
		resp, err := testHTTP.Do(mustReq(t, base+"/sessions/job/events", hdr))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("GET after done with %v: status %d, want 204", hdr, resp.StatusCode)
		}
	}
	if code, _ := post(t, base+"/sessions/job/progress", `{"progress":100}`, nil); code != http.StatusConflict {
		t.Fatalf("progress after done: status %d, want 409", code)
	}
	// A client that missed the end resumes, gets what it missed up to done, then the end.
	c2 := open(t, base+"/sessions/job/events", map[string]string{"Last-Event-ID": "1"})
	fs2 := c2.awaitEOF(wait)
	if s := seqs(t, fs2); fmt.Sprint(s) != fmt.Sprint([]uint64{2, 3, doneSeq}) {
		t.Fatalf("resume after done replayed %v, want [2 3 %d]", s, doneSeq)
	}
}

func mustReq(t *testing.T, url string, hdr map[string]string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return r
}

func TestProgressRejectsBadBodiesWith400(t *testing.T) {
	t.Parallel()
	base := startServer(t, testConfig())
	for _, body := range []string{
		`nope`, `{"progress":`, `{"message":"no progress"}`, `{"progress":-1}`, `{"progress":101}`,
		`{"progress":50.5}`, `{"progress":"50"}`, `{"progress":5} {"progress":6}`, `{"progress":5,"message":7}`,
		`{"progress":50,"message":"` + strings.Repeat("x", 64<<10) + `"}`,
	} {
		code, reply := post(t, base+"/sessions/p/progress", body, nil)
		if code != http.StatusBadRequest {
			t.Errorf("body %.40q: status %d, want 400", body, code)
		}
		if strings.Count(strings.TrimSuffix(reply, "\n"), "\n") != 0 {
			t.Errorf("body %.40q: reason %q is not one line", body, reply)
		}
	}
	// Just under the limit is fine.
	msg := strings.Repeat("y", 64<<10-40)
	if code, reply := post(t, base+"/sessions/p/progress", `{"progress":50,"message":"`+msg+`"}`, nil); code != http.StatusOK {
		t.Fatalf("a body under 64 KiB: status %d %s", code, reply)
	}
}

func TestCallbackTokenRequired401(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) { cfg.CallbackToken = "s3cret" })
	for _, auth := range []string{"", "Bearer wrong", "s3cret", "Basic s3cret"} {
		hdr := map[string]string{}
		if auth != "" {
			hdr["Authorization"] = auth
		}
		if code, _ := post(t, base+"/sessions/t/progress", `{"progress":1}`, hdr); code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", auth, code)
		}
		if code, _ := post(t, base+"/topics/t", `x`, hdr); code != http.StatusUnauthorized {
			t.Errorf("publish with Authorization %q: status %d, want 401", auth, code)
		}
	}
	ok := map[string]string{"Authorization": "Bearer s3cret"}
	if code, body := post(t, base+"/sessions/t/progress", `{"progress":1}`, ok); code != http.StatusOK {
		t.Fatalf("right token: status %d %s", code, body)
	}
}

func TestMaxSessionsIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) { cfg.MaxSessions = 2 })
	open(t, base+"/sessions/one/events", nil).awaitEvents(wait, "connected", 1)
	progress(t, base, "early", 5, "a session made by a callback: held apart from max-sessions")
	open(t, base+"/sessions/two/events", nil).awaitEvents(wait, "connected", 1)
	for _, id := range []string{"three", "early"} { // a new one, and the callback's first stream
		resp, err := testHTTP.Do(mustReq(t, base+"/sessions/"+id+"/events", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("session %s: status %d Retry-After %q, want 503 with Retry-After", id, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	// Existing sessions still work.
	open(t, base+"/sessions/two/events", nil).awaitEvents(wait, "connected", 1)
	progress(t, base, "one", 10, "to an open session")
	if m := scrape(t, base); m["sseref_sessions_active"] != 3 {
		t.Fatalf("sessions_active = %v, want 3 (two streamed, one early)", m["sseref_sessions_active"])
	}
}

func TestIdleSessionsAreForgottenAfterTTL(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) {
		cfg.SessionTTL = 100 * time.Millisecond
		cfg.MaxSessions = 1
	})
	c := open(t, base+"/sessions/first/events", nil)
	c.awaitEvents(wait, "tick", 1)
	c.close()
	awaitMetrics(t, base, wait, "the idle session forgotten", func(m map[string]float64) bool {
		return m["sseref_sessions_active"] == 0
	})
	open(t, base+"/sessions/second/events", nil).awaitEvents(wait, "connected", 1)
}

func TestMaxLifetimeEndsStream(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) { cfg.MaxLifetime = 200 * time.Millisecond })
	c := open(t, base+"/sessions/life/events", nil)
	c.awaitEOF(wait)
	awaitMetrics(t, base, wait, "closed for lifetime", func(m map[string]float64) bool {
		return m[closed("lifetime")] == 1 && m["sseref_senders_active"] == 0
	})
}

func TestSendersReturnToZeroAfterClientsLeave(t *testing.T) {
	t.Parallel()
	base := startServer(t, testConfig())
	var cs []*client
	for i := range 20 {
		cs = append(cs, open(t, fmt.Sprintf("%s/sessions/leave-%d/events", base, i), nil))
	}
	awaitMetrics(t, base, wait, "20 senders", func(m map[string]float64) bool { return m["sseref_senders_active"] == 20 })
	for _, c := range cs {
		c.close()
	}
	awaitMetrics(t, base, 2*time.Second, "senders and streams back to 0 within 2s", func(m map[string]float64) bool {
		return m["sseref_senders_active"] == 0 && m["sseref_streams_open"] == 0 && m[closed("client_gone")] == 20
	})
}

func TestHealthzAndMetricNames(t *testing.T) {
	t.Parallel()
	base := startServer(t, testConfig())
	resp, err := testHTTP.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	m := scrape(t, base)
	names := []string{"go_goroutines", "process_resident_memory_bytes", "sseref_streams_open", "sseref_sessions_active",
		"sseref_senders_active", "sseref_duplicate_senders_total", "sseref_events_sent_total", "sseref_events_replayed_total"}
	for _, r := range []string{"client_gone", "replaced", "lifetime", "done", "write_error", "shutdown"} {
		names = append(names, closed(r))
	}
	for _, n := range names {
		if _, ok := m[n]; !ok {
			t.Errorf("metric %s missing", n)
		}
	}
}

func TestCORSPreflightAllowsLastEventID(t *testing.T) {
	t.Parallel()
	base := startServer(t, testConfig())
	r, _ := http.NewRequest(http.MethodOptions, base+"/sessions/cors/events", nil)
	r.Header.Set("Origin", "https://app.example")
	r.Header.Set("Access-Control-Request-Method", "GET")
	r.Header.Set("Access-Control-Request-Headers", "last-event-id")
	resp, err := testHTTP.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "last-event-id") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	c := open(t, base+"/sessions/cors/events", map[string]string{"Origin": "https://app.example"})
	if c.resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || c.resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("stream CORS headers: %v", c.resp.Header)
	}
}

func TestResumeWhileEventsAreProducedDuringTheReplay(t *testing.T) {
	t.Parallel()
	base := serveWith(t, func(cfg *reference.Config) { cfg.Tick = 5 * time.Millisecond })
	c1 := open(t, base+"/sessions/busy/events", nil)
	fs1 := c1.awaitEvents(wait, "tick", 3)
	c1.close()
	awaitMetrics(t, base, wait, "stream closed", func(m map[string]float64) bool { return m["sseref_streams_open"] == 0 })
	// A long backlog to replay, and callbacks racing with the replay.
	for i := range 300 {
		progress(t, base, "busy", i%100, "backlog")
	}
	got := seqs(t, fs1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var last uint64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				last = progress(t, base, "busy", 1, "during replay")
			}
		}
	})
	c2 := open(t, base+"/sessions/busy/events", map[string]string{"Last-Event-ID": strconv.FormatUint(got[len(got)-1], 10)})
	c2.awaitEvents(wait, "progress", 320)
	close(stop)
	wg.Wait()
	fs2 := c2.await(wait, "every event up to the last callback", func(fs []frame, _ bool) bool {
		s := seqs(t, fs)
		return len(s) > 0 && s[len(s)-1] >= last
	})
	exactlyOnceFrom1(t, append(got, seqs(t, fs2)...))
}
