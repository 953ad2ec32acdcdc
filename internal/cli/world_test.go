package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
)

// Doubles of SSE services the harness did not write (issue 11): broadcast feeds
// without sessions, hubs with a publish endpoint and opaque ids, ids that restart per
// connection, history replays, held heads, buffering proxies, streams that end at once.
// Each is judged through the CLI entry point with the verdicts asserted.

// feedOpts shape one double.
type feedOpts struct {
	tick       time.Duration // the feed's own events (0: none, a hub that only relays publishes)
	history    int           // events in the log before the first subscriber
	replayAll  bool          // a fresh connect (no Last-Event-ID) gets the whole log
	inclusive  bool          // a Last-Event-ID replay starts at that id, not after it
	perConnIDs bool          // each connection first gets ids 0, 1, 2, then the live ids
	opaque     bool          // ids such as 1795656668:4 instead of a plain counter
	holdHead   time.Duration // the response head is written only with the first event, this late
	noAccel    bool          // no X-Accel-Buffering: no (a buffering proxy buffers it)
	gzip       bool          // gzip the body when the client accepts it, flushing each event
	retry0     bool          // retry: 0, one event, then the stream ends
	dropEvery  int           // drop every Nth event to each subscriber (0: none)
	pad        int           // hex characters of incompressible padding in each event's data
	relayFor   int           // deliver this many events to each subscriber, then none (0: no limit)
}

type feedEvent struct {
	n    int64 // position in the log
	id   string
	data string
}

// feed is one broadcast log with its subscribers; memory is bounded by the log cap.
type feed struct {
	o    feedOpts
	mu   sync.Mutex
	log  []feedEvent
	next int64
	subs map[chan feedEvent]struct{}
}

const feedLogCap = 20000

func (f *feed) idOf(n int64) string {
	if f.o.opaque {
		return fmt.Sprintf("1795656668:%d", n)
	}
	return strconv.FormatInt(n, 10)
}

func (f *feed) broadcast(data string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	ev := feedEvent{n: f.next, id: f.idOf(f.next), data: data}
	f.log = append(f.log, ev)
	if len(f.log) > feedLogCap {
		f.log = f.log[len(f.log)-feedLogCap:]
	}
	for ch := range f.subs {
		select {
		case ch <- ev:
		default: // a subscriber 1024 events behind loses them (bounded)
		}
	}
}

func tsData(seq int64) string {
	return fmt.Sprintf(`{"seq":%d,"ts":%d}`, seq, time.Now().UnixMilli())
}

// padData is tsData with pad hex characters of a xorshift sequence: they do not
// compress, so a gzip body grows like a plain one.
func padData(seq int64, pad int) string {
	if pad == 0 {
		return tsData(seq)
	}
	b := make([]byte, pad)
	x := uint64(seq)*0x9E3779B97F4A7C15 | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = "0123456789abcdef"[x&15]
	}
	return fmt.Sprintf(`{"seq":%d,"ts":%d,"pad":"%s"}`, seq, time.Now().UnixMilli(), b)
}

// newFeed starts the double: GET /events streams, POST /publish broadcasts its body.
func newFeed(t *testing.T, o feedOpts) *httptest.Server {
	t.Helper()
	f := &feed{o: o, subs: map[chan feedEvent]struct{}{}}
	for i := 0; i < o.history; i++ {
		f.broadcast(tsData(int64(i + 1)))
	}
	stop := make(chan struct{})
	if o.tick > 0 {
		go func() {
			tk := time.NewTicker(o.tick)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					f.mu.Lock()
					seq := f.next + 1
					f.mu.Unlock()
					f.broadcast(padData(seq, o.pad))
				}
			}
		}()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.broadcast(string(b))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /events", f.serve)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { close(stop); srv.CloseClientConnections(); srv.Close() })
	return srv
}

func (f *feed) serve(w http.ResponseWriter, r *http.Request) {
	ch := make(chan feedEvent, 1024)
	last := r.Header.Get("Last-Event-ID")
	f.mu.Lock()
	var replay []feedEvent
	from := -1
	for i, ev := range f.log {
		if last != "" && ev.id == last {
			from = i + 1
			if f.o.inclusive {
				from = i
			}
		}
	}
	switch {
	case from >= 0:
		replay = append(replay, f.log[from:]...)
	case last == "" && f.o.replayAll:
		replay = append(replay, f.log...)
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	if !f.o.noAccel {
		h.Set("X-Accel-Buffering", "no")
	}
	var out io.Writer = w
	flush := func() { w.(http.Flusher).Flush() }
	if f.o.gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		out = gz
		flush = func() { _ = gz.Flush(); w.(http.Flusher).Flush() }
	}
	if f.o.holdHead > 0 {
		select {
		case <-time.After(f.o.holdHead):
		case <-r.Context().Done():
			return
		}
	} else {
		w.WriteHeader(http.StatusOK)
		flush()
	}
	retry := 500
	if f.o.retry0 {
		retry = 0
	}
	fmt.Fprintf(out, "retry: %d\n\n", retry)
	write := func(id, data string) bool {
		_, err := fmt.Fprintf(out, "id: %s\ndata: %s\n\n", id, data)
		flush()
		return err == nil
	}
	if f.o.perConnIDs {
		for i := 0; i < 3; i++ {
			if !write(strconv.Itoa(i), tsData(int64(i))) {
				return
			}
		}
	}
	for _, ev := range replay {
		if !write(ev.id, ev.data) {
			return
		}
	}
	if f.o.retry0 {
		write(f.idOf(0), tsData(0))
		return
	}
	hb := time.NewTicker(300 * time.Millisecond)
	defer hb.Stop()
	delivered := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case <-hb.C:
			if _, err := io.WriteString(out, ": ping\n\n"); err != nil {
				return
			}
			flush()
		case ev := <-ch:
			delivered++
			if f.o.dropEvery > 0 && delivered%f.o.dropEvery == 0 {
				continue
			}
			if f.o.relayFor > 0 && delivered > f.o.relayFor {
				continue
			}
			if !write(ev.id, ev.data) {
				return
			}
		}
	}
}

// worldRun runs `run` against target with the given flags and scenarios and returns
// the exit code, stderr and the result.
func worldRun(t *testing.T, timeout time.Duration, target string, args ...string) (int, string, *report.Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	full := append([]string{"run", "--target", target, "--stream-url", "{target}/events", "--progress-url", "none",
		"--metrics-url", "none", "--streams", "4", "--hold", "2s", "--sent-field", "ts", "--sent-unit", "ms",
		"--out", out, "--format", "json"}, args...)
	var stdout bytes.Buffer
	env, stderr := serveTestEnv(&stdout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	code := Main(ctx, full, env)
	res, err := report.Load(out)
	if err != nil {
		t.Fatalf("no result file (exit %d): %v\nstderr: %s", code, err, stderr)
	}
	return code, stderr.String(), res
}

func worldScenario(t *testing.T, res *report.Result, name string) (report.ScenarioResult, map[string]report.Check) {
	t.Helper()
	for _, s := range res.Scenarios {
		if s.Name == name {
			checks := map[string]report.Check{}
			for _, c := range s.Checks {
				checks[c.Name] = c
			}
			return s, checks
		}
	}
	t.Fatalf("no scenario %s in the result", name)
	return report.ScenarioResult{}, nil
}

// wantVerdicts asserts the verdict of each named check.
func wantVerdicts(t *testing.T, scenario string, checks map[string]report.Check, want map[string]report.Verdict) {
	t.Helper()
	for name, v := range want {
		c, ok := checks[name]
		if !ok {
			t.Errorf("%s/%s: missing", scenario, name)
			continue
		}
		if c.Verdict != v {
			t.Errorf("%s/%s: %s, want %s (%s; %s)", scenario, name, c.Verdict, v, c.Measured, c.Detail)
		}
	}
}

func allPass(t *testing.T, s report.ScenarioResult) {
	t.Helper()
	for _, c := range s.Checks {
		t.Logf("%s/%s: %s (%s; %s)", s.Name, c.Name, c.Verdict, c.Measured, c.Detail)
		if c.Name == report.CheckRunnerHealthy {
			continue // the test machine's health, not the target's (runhealth_test judges it)
		}
		if c.Verdict != report.VerdictPass {
			t.Errorf("%s/%s: %s (%s; %s)", s.Name, c.Name, c.Verdict, c.Measured, c.Detail)
		}
	}
}

// TestWorldBroadcastFeed: a correct broadcast feed without sessions, with a
// millisecond ts field, Last-Event-ID replay and heartbeats: every applicable check
// passes, latency is measured from ts, and the session checks are n/a with the reason.
func TestWorldBroadcastFeed(t *testing.T) {
	t.Parallel()
	srv := newFeed(t, feedOpts{tick: 100 * time.Millisecond})
	code, stderr, res := worldRun(t, 3*time.Minute, srv.URL, "hold", "resume", "reconnect-storm", "same-id-reconnect")
	if code != ExitOK {
		t.Errorf("exit %d, want 0\nstderr: %s", code, stderr)
	}
	for _, name := range []string{"hold", "resume", "reconnect-storm"} {
		s, _ := worldScenario(t, res, name)
		if s.Verdict != report.VerdictPass {
			t.Errorf("%s: verdict %s, want pass (%s)", name, s.Verdict, s.Error)
		}
		allPass(t, s)
	}
	hold, _ := worldScenario(t, res, "hold")
	if hold.Metrics.Latency.Count == 0 || !strings.Contains(hold.Description, `field "ts" (ms)`) {
		t.Errorf("hold: %d latency samples, description %q: want latency from ts", hold.Metrics.Latency.Count, hold.Description)
	}
	same, checks := worldScenario(t, res, "same-id-reconnect")
	if same.Verdict != report.VerdictNotApplicable {
		t.Errorf("same-id-reconnect: %s, want n/a", same.Verdict)
	}
	for _, c := range checks {
		if c.Verdict != report.VerdictNotApplicable || !strings.Contains(c.Detail, "broadcast feed") {
			t.Errorf("same-id-reconnect/%s: %s (%q), want n/a saying the target is a broadcast feed", c.Name, c.Verdict, c.Detail)
		}
	}
}

// TestWorldHubWithPublish: a hub that only relays what is published, with opaque ids:
// publish-to-deliver latency and loss measured from the harness's marks; a variant
// that drops every 100th event to each subscriber is caught.
func TestWorldHubWithPublish(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		drop, relay int
		want        report.Verdict
	}{{"correct", 0, 0, report.VerdictPass}, {"drops 1%", 100, 0, report.VerdictFail}, {"stops relaying", 0, 150, report.VerdictFail}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFeed(t, feedOpts{opaque: true, dropEvery: tc.drop, relayFor: tc.relay})
			code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "--publish-url", "{target}/publish", "--publish-rate", "100/s", "--hold", "3s", "hold")
			s, checks := worldScenario(t, res, "hold")
			allPassOr := func() {
				if tc.want == report.VerdictPass {
					allPass(t, s)
				}
			}
			allPassOr()
			if s.Metrics.MarkEvents == 0 || s.Metrics.MarkLatency.Count == 0 || s.Metrics.OpaqueIDs == 0 {
				t.Errorf("marks received %d, mark latencies %d, opaque ids %d: want all measured", s.Metrics.MarkEvents, s.Metrics.MarkLatency.Count, s.Metrics.OpaqueIDs)
			}
			wantVerdicts(t, "hold", checks, map[string]report.Verdict{"no-missing-ids": tc.want, "delivery-latency": report.VerdictPass})
			wantCode := ExitOK
			if tc.want == report.VerdictFail {
				wantCode = ExitFailed
				t.Logf("no-missing-ids: %s; %s", checks["no-missing-ids"].Measured, checks["no-missing-ids"].Detail)
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d\nstderr: %s", code, wantCode, stderr)
			}
		})
	}
}

// TestWorldIDsRestartPerConnection: ids 0, 1, 2 on every connection, then the live
// counter in the thousands: id resets and jumps, not thousands of missing ids.
func TestWorldIDsRestartPerConnection(t *testing.T) {
	t.Parallel()
	srv := newFeed(t, feedOpts{tick: 100 * time.Millisecond, history: 5000, perConnIDs: true})
	code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "hold", "reconnect-storm")
	hold, checks := worldScenario(t, res, "hold")
	wantVerdicts(t, "hold", checks, map[string]report.Verdict{"no-missing-ids": report.VerdictPass, "no-duplicate-ids": report.VerdictPass})
	if hold.Metrics.IDJumps == 0 || hold.Metrics.MissingIDs != 0 {
		t.Errorf("hold: %d id jumps, %d missing ids; want jumps, no missing ids", hold.Metrics.IDJumps, hold.Metrics.MissingIDs)
	}
	storm, _ := worldScenario(t, res, "reconnect-storm")
	if storm.Metrics.IDResets == 0 || storm.Metrics.MissingIDs > 0 {
		t.Errorf("reconnect-storm: %d id resets, %d missing ids; want resets on the reconnects, no missing ids", storm.Metrics.IDResets, storm.Metrics.MissingIDs)
	}
	_ = code
	_ = stderr
}

// TestWorldHistoryReplayedOnEveryConnect: a fresh connect gets the whole log of 2,000
// events: hold fails on the excess, exit 1.
func TestWorldHistoryReplayedOnEveryConnect(t *testing.T) {
	t.Parallel()
	srv := newFeed(t, feedOpts{tick: 100 * time.Millisecond, history: 2000, replayAll: true})
	code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "hold")
	_, checks := worldScenario(t, res, "hold")
	wantVerdicts(t, "hold", checks, map[string]report.Verdict{"excess-events": report.VerdictFail})
	if code != ExitFailed {
		t.Errorf("exit %d, want 1\nstderr: %s", code, stderr)
	}
	t.Logf("excess-events: %s", checks["excess-events"].Detail)
}

// TestWorldInclusiveLastEventIDReplay: the replay on a reconnect starts with the event
// the client already had: a repeat, caught by resume and reconnect-storm.
func TestWorldInclusiveLastEventIDReplay(t *testing.T) {
	t.Parallel()
	srv := newFeed(t, feedOpts{tick: 100 * time.Millisecond, inclusive: true})
	code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "resume", "reconnect-storm")
	_, rc := worldScenario(t, res, "resume")
	wantVerdicts(t, "resume", rc, map[string]report.Verdict{"ids-exactly-once": report.VerdictFail})
	_, sc := worldScenario(t, res, "reconnect-storm")
	wantVerdicts(t, "reconnect-storm", sc, map[string]report.Verdict{"no-duplicate-ids": report.VerdictFail})
	if code != ExitFailed {
		t.Errorf("exit %d, want 1\nstderr: %s", code, stderr)
	}
}

// TestWorldHeadHeldUntilFirstEvent: the head comes 2.5 s late, with the first event:
// hold fails on the time to the first event, saying the head was held, exit 1.
func TestWorldHeadHeldUntilFirstEvent(t *testing.T) {
	t.Parallel()
	srv := newFeed(t, feedOpts{tick: 100 * time.Millisecond, holdHead: 2500 * time.Millisecond})
	code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "--hold", "3s", "--threshold", "hold/first-event=1s", "hold")
	_, checks := worldScenario(t, res, "hold")
	wantVerdicts(t, "hold", checks, map[string]report.Verdict{"first-event": report.VerdictFail})
	if d := checks["first-event"].Detail; !strings.Contains(d, "head was held") {
		t.Errorf("first-event detail %q does not say the head was held", d)
	}
	if code != ExitFailed {
		t.Errorf("exit %d, want 1\nstderr: %s", code, stderr)
	}
}

// TestWorldStreamsEndAtOnce: retry: 0 and streams that end after one event: the
// reconnect rate stays under the floor and hold fails on quick ends.
func TestWorldStreamsEndAtOnce(t *testing.T) {
	t.Parallel()
	srv := newFeed(t, feedOpts{retry0: true})
	code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "--streams", "3", "hold")
	s, checks := worldScenario(t, res, "hold")
	wantVerdicts(t, "hold", checks, map[string]report.Verdict{"quick-ends": report.VerdictFail})
	// 3 streams for at most ~5 s at no more than one reconnect per 100 ms each.
	span := s.End.Sub(s.Start).Seconds()
	if limit := 3 * span / 0.1; float64(s.Metrics.Reconnects) > limit || s.Metrics.Reconnects == 0 {
		t.Errorf("%d reconnects in %.1f s for 3 streams, want 1..%.0f (the 100ms floor)", s.Metrics.Reconnects, span, limit)
	}
	if code != ExitFailed {
		t.Errorf("exit %d, want 1\nstderr: %s", code, stderr)
	}
	if d := checks["quick-ends"].Detail; !strings.Contains(d, "reconnect rate: ") || !strings.Contains(d, "/s per stream") {
		t.Errorf("quick-ends detail %q does not give the reconnect rate", d)
	}
	t.Logf("quick-ends: %s", checks["quick-ends"].Detail)
}

// buffered is a correct feed that forgets X-Accel-Buffering: no, with events of about
// 190 bytes every 50 ms: a 4 KiB proxy buffer holds ~21 of them (1 s), gzip ones more.
func buffered(gz bool) feedOpts {
	return feedOpts{tick: 50 * time.Millisecond, noAccel: true, pad: 128, gzip: gz}
}

// TestWorldBehindBufferingProxies: the same correct server, direct passes hold; behind
// the built-in buffering proxy and behind real nginx (docker/nginx/buffered.conf), plain
// and gzip, hold fails on batching with the bursts described, exit 1 (not 3); behind an
// unbuffered proxy it passes.
func TestWorldBehindBufferingProxies(t *testing.T) {
	t.Parallel()
	ngConf := ""
	if _, err := proxy.NginxAvailable(); err == nil {
		b, err := proxy.NginxConf("buffered.conf")
		if err != nil {
			t.Fatal(err)
		}
		ngConf = filepath.Join(t.TempDir(), "buffered.conf")
		if err := os.WriteFile(ngConf, b, 0o600); err != nil {
			t.Fatal(err)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("nginx is not installed: %v", err)
	}
	for _, tc := range []struct {
		name string
		gzip bool
		via  string // direct, builtin, nginx, unbuffered
		pass bool
	}{
		{"direct", false, "direct", true},
		{"builtin proxy", false, "builtin", false},
		{"builtin proxy gzip", true, "builtin", false},
		{"nginx", false, "nginx", false},
		{"nginx gzip", true, "nginx", false},
		{"unbuffered proxy", false, "unbuffered", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFeed(t, buffered(tc.gzip))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			target := srv.URL
			switch tc.via {
			case "builtin", "unbuffered":
				px, err := proxy.Start(ctx, proxy.Config{Listen: "127.0.0.1:0", Upstream: srv.URL, NoBuffering: tc.via == "unbuffered"})
				if err != nil {
					t.Fatal(err)
				}
				defer px.Close()
				target = px.URL()
			case "nginx":
				if ngConf == "" {
					t.Skip("nginx is not installed")
				}
				ng, err := proxy.StartNginx(ctx, proxy.NginxConfig{ConfFile: ngConf, Upstream: srv.URL, TempDir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = ng.Stop() }()
				target = ng.URL()
			}
			code, stderr, res := worldRun(t, 2*time.Minute, target, "--hold", "3s", "hold")
			s, checks := worldScenario(t, res, "hold")
			if tc.pass {
				allPass(t, s)
				if code != ExitOK {
					t.Errorf("exit %d, want 0\nstderr: %s", code, stderr)
				}
				return
			}
			wantVerdicts(t, "hold", checks, map[string]report.Verdict{"batching": report.VerdictFail})
			if d := checks["batching"].Detail; !strings.Contains(d, "events per burst") {
				t.Errorf("batching detail %q does not describe the bursts", d)
			}
			if code != ExitFailed {
				t.Errorf("exit %d, want 1 (not 3)\nstderr: %s", code, stderr)
			}
			t.Logf("batching: %s; first-event: %s", checks["batching"].Detail, checks["first-event"].Detail)
		})
	}
}

// TestWorldProxyBuffering: proxy-buffering on a server that is not ours. Forgetting
// X-Accel-Buffering fails the proxied paths, plain and gzip, with latency from ts and,
// without a send-time field, by the arrival rhythm; a server that sets it passes in both
// modes. Exit 1, never 3.
func TestWorldProxyBuffering(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		o      feedOpts
		rhythm bool
		pass   bool
	}{
		{"correct, latency", feedOpts{tick: 50 * time.Millisecond, pad: 128}, false, true},
		{"correct, rhythm", feedOpts{tick: 50 * time.Millisecond, pad: 128}, true, true},
		{"no X-Accel, latency", buffered(false), false, false},
		{"no X-Accel gzip, latency", buffered(true), false, false},
		{"no X-Accel, rhythm", buffered(false), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFeed(t, tc.o)
			args := []string{"--hold", "4s"}
			if tc.rhythm {
				args = append(args, "--sent-field", "no_such_field", "--sent-unit", "auto")
			}
			code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, append(args, "proxy-buffering")...)
			s, checks := worldScenario(t, res, "proxy-buffering")
			if tc.rhythm != strings.Contains(s.Description, "arrival rhythm compared") {
				t.Errorf("description %q: rhythm mode %v", s.Description, tc.rhythm)
			}
			if tc.pass {
				allPass(t, s) // but runner-healthy: the test machine's, not the target's
				if code != ExitOK {
					t.Errorf("exit %d, want 0\nstderr: %s", code, stderr)
				}
				return
			}
			wantVerdicts(t, "proxy-buffering", checks, map[string]report.Verdict{"direct-delivery": report.VerdictPass, "builtin-proxy-added-latency": report.VerdictFail})
			if _, err := proxy.NginxAvailable(); err == nil {
				wantVerdicts(t, "proxy-buffering", checks, map[string]report.Verdict{"nginx-added-latency": report.VerdictFail})
			}
			if code != ExitFailed {
				t.Errorf("exit %d, want 1 (not 3)\nstderr: %s", code, stderr)
			}
			t.Logf("builtin: %s; %s", checks["builtin-proxy-added-latency"].Measured, checks["builtin-proxy-added-latency"].Detail)
		})
	}
}

// TestWorldGoSSELibrary: the real go-sse server (a Joe provider with a finite replayer)
// as a broadcast target: hold, resume and reconnect-storm pass, latency from ts.
func TestWorldGoSSELibrary(t *testing.T) {
	t.Parallel()
	rp, err := sse.NewFiniteReplayer(1000, true)
	if err != nil {
		t.Fatal(err)
	}
	s := &sse.Server{Provider: &sse.Joe{Replayer: rp}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for seq := int64(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			m := &sse.Message{}
			m.AppendData(tsData(seq))
			_ = s.Publish(m)
		}
	}()
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer func() { _ = s.Shutdown(context.Background()) }()
	code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "hold", "resume", "reconnect-storm", "same-id-reconnect")
	for _, name := range []string{"hold", "resume", "reconnect-storm"} {
		sr, _ := worldScenario(t, res, name)
		allPass(t, sr)
	}
	hold, _ := worldScenario(t, res, "hold")
	if hold.Metrics.Latency.Count == 0 {
		t.Errorf("no latency measured from ts")
	}
	if same, _ := worldScenario(t, res, "same-id-reconnect"); same.Verdict != report.VerdictNotApplicable {
		t.Errorf("same-id-reconnect: %s, want n/a on a broadcast feed", same.Verdict)
	}
	if code != ExitOK {
		t.Errorf("exit %d, want 0\nstderr: %s", code, stderr)
	}
}

// TestWorldHubPublishDrivenResume: resume and reconnect-storm on a hub with opaque ids
// judge losses and repeats from the harness's marks: a hub that replays after the
// Last-Event-ID passes, one that replays nothing is caught.
func TestWorldHubPublishDrivenResume(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		inclusive bool
		want      report.Verdict
	}{{"replays after the id", false, report.VerdictPass}, {"replays the id again", true, report.VerdictFail}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFeed(t, feedOpts{opaque: true, inclusive: tc.inclusive})
			code, stderr, res := worldRun(t, 2*time.Minute, srv.URL, "--publish-url", "{target}/publish", "--publish-rate", "20/s",
				"resume", "reconnect-storm", "same-id-reconnect")
			_, rc := worldScenario(t, res, "resume")
			wantVerdicts(t, "resume", rc, map[string]report.Verdict{"ids-exactly-once": tc.want, "ids-in-order": report.VerdictPass})
			st, sc := worldScenario(t, res, "reconnect-storm")
			wantVerdicts(t, "reconnect-storm", sc, map[string]report.Verdict{"no-lost-ids": report.VerdictPass, "no-duplicate-ids": tc.want})
			if st.Metrics.MarkEvents == 0 || st.Metrics.OpaqueIDs == 0 {
				t.Errorf("reconnect-storm: %d marks, %d opaque ids: want the marks measured on opaque ids", st.Metrics.MarkEvents, st.Metrics.OpaqueIDs)
			}
			if same, _ := worldScenario(t, res, "same-id-reconnect"); same.Verdict != report.VerdictNotApplicable {
				t.Errorf("same-id-reconnect: %s, want n/a", same.Verdict)
			}
			wantCode := ExitOK
			if tc.want == report.VerdictFail {
				wantCode = ExitFailed
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d\nstderr: %s", code, wantCode, stderr)
			}
		})
	}
}
