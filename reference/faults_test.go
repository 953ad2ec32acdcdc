package reference_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

// Each fault mode must observably break the property it names; the tests of the
// correct server show the property holding.

func TestParseFaults(t *testing.T) {
	t.Parallel()
	f, err := reference.ParseFaults("no-replace, pool=10,no-204")
	if err != nil || !f.NoReplace || !f.No204 || f.Pool != 10 || f.NoFlush {
		t.Fatalf("ParseFaults = %+v, %v", f, err)
	}
	if got := f.String(); got != "no-204,no-replace,pool=10" {
		t.Fatalf("String() = %q", got)
	}
	for _, bad := range []string{"nonsense", "pool=0", "pool=x", "no-replace,typo"} {
		_, err := reference.ParseFaults(bad)
		if err == nil {
			t.Fatalf("ParseFaults(%q) accepted", bad)
		}
		if strings.Contains(bad, "o") && !strings.Contains(bad, "pool") && !strings.Contains(err.Error(), "leak-on-disconnect") {
			t.Fatalf("error %q does not list the known faults", err)
		}
	}
	if f, err := reference.ParseFaults(""); err != nil || f != (reference.Faults{}) {
		t.Fatalf("empty list = %+v, %v", f, err)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	cfg := reference.DefaultConfig()
	cfg.Addr = "nope"
	cfg.Tick = -1
	cfg.Retry = 0
	cfg.Replay = -1
	cfg.MaxSessions = 0
	cfg.CertFile = "c.pem"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"addr", "tick", "retry", "replay", "max-sessions", "cert and key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, err)
		}
	}
	if err := reference.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func withFault(t *testing.T, cfg reference.Config, faults string) reference.Config {
	t.Helper()
	f, err := reference.ParseFaults(faults)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Faults = f
	return cfg
}

// fault is withFault for serveWith.
func fault(t *testing.T, faults string) func(cfg *reference.Config) {
	return func(cfg *reference.Config) { *cfg = withFault(t, *cfg, faults) }
}

func TestFaultNoReplaceLeavesTwoSendersInOneStream(t *testing.T) {
	t.Parallel()
	base := startServer(t, withFault(t, testConfig(), "no-replace"))
	c1 := open(t, base+"/sessions/dup/events", nil)
	c1.awaitEvents(wait, "tick", 2)
	c2 := open(t, base+"/sessions/dup/events", nil)
	fs := c2.await(wait, "ticks from two senders in the new stream", func(fs []frame, _ bool) bool {
		return len(senders(t, fs, "tick")) == 2
	})
	if _, eof := c1.snapshot(); eof {
		t.Fatalf("the earlier stream was ended; no-replace must leave it open")
	}
	m := scrape(t, base)
	if m["sseref_duplicate_senders_total"] < 1 || m["sseref_senders_active"] != 2 {
		t.Fatalf("metrics not truthful: %s", sseref(m))
	}
	t.Logf("new stream got ticks from %v", senders(t, fs, "tick"))
}

func TestFaultLeakOnDisconnectKeepsSenderRunning(t *testing.T) {
	t.Parallel()
	base := startServer(t, withFault(t, testConfig(), "leak-on-disconnect"))
	c := open(t, base+"/sessions/leak/events", nil)
	c.awaitEvents(wait, "tick", 2)
	c.close()
	awaitMetrics(t, base, wait, "the stream closed as client_gone", func(m map[string]float64) bool {
		return m[closed("client_gone")] == 1 && m["sseref_streams_open"] == 0
	})
	// The sender goes on producing ticks for nobody: the session's sequence keeps growing.
	first := progress(t, base, "leak", 1, "probe")
	eventually(t, wait, "the leaked sender keeps ticking", func() bool {
		return progress(t, base, "leak", 1, "probe") > first+10
	})
	if m := scrape(t, base); m["sseref_senders_active"] != 1 {
		t.Fatalf("senders_active = %v, want the leaked 1", m["sseref_senders_active"])
	}
}

func TestFaultNoFlushHoldsEventsUntil2KiB(t *testing.T) {
	t.Parallel()
	cfg := withFault(t, testConfig(), "no-flush")
	cfg.Tick = 200 * time.Millisecond // about 13 ticks fill 2 KiB: seconds of margin after the fifth
	base := startServer(t, cfg)
	c := open(t, base+"/sessions/buf/events", nil)
	if v, ok := c.resp.Header["X-Accel-Buffering"]; ok {
		t.Fatalf("X-Accel-Buffering sent: %v", v)
	}
	// Five events (under 2 KiB) written by the server, and nothing of them reached the client.
	awaitMetrics(t, base, wait, "5 events written", func(m map[string]float64) bool { return m["sseref_events_sent_total"] >= 5 })
	if n := c.bodyBytes(); n != 0 {
		t.Fatalf("client got %d body bytes before the buffer filled, want 0", n)
	}
	// A large event fills the 2 KiB buffer: out it goes.
	progress(t, base, "buf", 5, strings.Repeat("m", 2500))
	c.awaitEvents(wait, "connected", 1)
}

func TestFaultNoRetryOmitsRetry(t *testing.T) {
	t.Parallel()
	base := startServer(t, withFault(t, testConfig(), "no-retry"))
	fs := open(t, base+"/sessions/r/events", nil).awaitEvents(wait, "tick", 3)
	if fs[0].Event != "connected" {
		t.Fatalf("first frame %+v, want the connected event", fs[0])
	}
	for _, f := range fs {
		if f.Retry != "" {
			t.Fatalf("retry field sent: %+v", f)
		}
	}
}

func TestFaultNoReplayLosesEventsOnResume(t *testing.T) {
	t.Parallel()
	base := startServer(t, withFault(t, testConfig(), "no-replay"))
	c1 := open(t, base+"/sessions/nr/events", nil)
	fs1 := c1.awaitEvents(wait, "tick", 3)
	c1.close()
	awaitMetrics(t, base, wait, "stream closed", func(m map[string]float64) bool { return m["sseref_streams_open"] == 0 })
	missed := progress(t, base, "nr", 40, "posted while away")
	last := seqs(t, fs1)
	c2 := open(t, base+"/sessions/nr/events", map[string]string{"Last-Event-ID": strconv.FormatUint(last[len(last)-1], 10)})
	fs2 := c2.awaitEvents(wait, "tick", 2)
	for _, s := range seqs(t, fs2) {
		if s == missed {
			t.Fatalf("the event posted while away (seq %d) was replayed", missed)
		}
	}
	if got := seqs(t, fs2)[0]; got <= missed {
		t.Fatalf("first event after resume %d, want a gap past %d", got, missed)
	}
}

func TestFaultNoHeartbeatSendsNoPings(t *testing.T) {
	t.Parallel()
	cfg := withFault(t, testConfig(), "no-heartbeat")
	cfg.Heartbeat = 20 * time.Millisecond
	cfg.Tick = 10 * time.Millisecond
	base := startServer(t, cfg)
	// 50 ticks span 25 heartbeat intervals.
	fs := open(t, base+"/sessions/hb/events", nil).awaitEvents(wait, "tick", 50)
	for _, f := range fs {
		if len(f.Comments) > 0 {
			t.Fatalf("comment sent: %v", f.Comments)
		}
	}
}

func TestFaultNoHeartbeatDoesNotReapHalfOpenClient(t *testing.T) {
	t.Parallel()
	cfg := withFault(t, testConfig(), "no-heartbeat")
	cfg.Tick = 0
	cfg.Heartbeat = 200 * time.Millisecond
	cfg.WriteTimeout = 500 * time.Millisecond
	url, _ := listening(t, cfg)
	conn := dialNotReading(t, url, "half")
	fillBuffers(t, url, "half")
	// The same window in which the correct server reaps it (see
	// TestHalfOpenClientIsReapedWithinHeartbeatPlusWriteTimeout): a bounded wait for
	// something that must not happen.
	window := cfg.Heartbeat + cfg.WriteTimeout + 1500*time.Millisecond
	time.Sleep(window)
	m := scrape(t, url)
	if m["sseref_streams_open"] != 1 || m[closed("write_error")] != 0 {
		t.Fatalf("half-open stream reaped under no-heartbeat: %s", sseref(m))
	}
	conn.Close()
}

func TestFaultPoolStarvesSessionNPlus1(t *testing.T) {
	t.Parallel()
	base := startServer(t, withFault(t, testConfig(), "pool=2"))
	a := open(t, base+"/sessions/a/events", nil)
	b := open(t, base+"/sessions/b/events", nil)
	a.awaitEvents(wait, "tick", 1)
	b.awaitEvents(wait, "tick", 1)
	c := open(t, base+"/sessions/c/events", nil)
	if c.resp.StatusCode != http.StatusOK {
		t.Fatalf("third session: status %d", c.resp.StatusCode)
	}
	awaitMetrics(t, base, wait, "one sender waiting for a worker", func(m map[string]float64) bool {
		return m["sseref_senders_waiting"] == 1 && m["sseref_streams_open"] == 3
	})
	// While the first sessions get 10 more ticks, the third gets nothing at all.
	a.awaitEvents(wait, "tick", 11)
	if fs, _ := c.snapshot(); len(fs) != 0 || c.bodyBytes() != 0 {
		t.Fatalf("session 3 got %s; want nothing", summary(fs))
	}
	// Workers never free up, even when their clients leave.
	a.close()
	awaitMetrics(t, base, wait, "a closed", func(m map[string]float64) bool { return m[closed("client_gone")] == 1 })
	b.awaitEvents(wait, "tick", 20)
	if fs, _ := c.snapshot(); len(fs) != 0 {
		t.Fatalf("session 3 got %s after a worker's client left; want nothing", summary(fs))
	}
}

func TestFaultNo204AnswersEmpty200(t *testing.T) {
	t.Parallel()
	base := startServer(t, withFault(t, testConfig(), "no-204"))
	progress(t, base, "job", 100, "done before anyone listened")
	resp, err := testHTTP.Do(mustReq(t, base+"/sessions/job/events", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := make([]byte, 1)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || n != 0 {
		t.Fatalf("finished session: status %d, type %q, %d body bytes; want an empty 200 event stream",
			resp.StatusCode, resp.Header.Get("Content-Type"), n)
	}
}

func TestFaultNoLifetimeKeepsStreamPastMaxLifetime(t *testing.T) {
	t.Parallel()
	cfg := withFault(t, testConfig(), "no-lifetime")
	cfg.MaxLifetime = 100 * time.Millisecond
	base := startServer(t, cfg)
	c := open(t, base+"/sessions/forever/events", nil)
	t0 := time.Now()
	// Ticks keep arriving on the same stream well past 3 lifetimes.
	c.await(wait, "ticks past 3x max-lifetime", func(fs []frame, eof bool) bool {
		return eof || time.Since(t0) > 3*cfg.MaxLifetime && len(events(fs, "tick")) > 0 &&
			events(fs, "tick")[len(events(fs, "tick"))-1].Arrived.Sub(t0) > 3*cfg.MaxLifetime
	})
	if _, eof := c.snapshot(); eof {
		t.Fatal("stream ended under no-lifetime")
	}
	if m := scrape(t, base); m[closed("lifetime")] != 0 {
		t.Fatalf("closed for lifetime: %v", m[closed("lifetime")])
	}
}
