package runner

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Target:     "ftp://x",
		Streams:    -1,
		Ramp:       -time.Second,
		ChurnShare: 1.5,
		SlowShare:  0.5, // without ReadRate
		Jitter:     -1,
		Shard:      Shard{Index: 3, Count: 2},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	msg := err.Error()
	for _, want := range []string{"target", "streams", "ramp", "churn share", "read rate", "jitter", "shard index"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Validate did not report %q; got:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n < 7 {
		t.Errorf("Validate reported %d problems, want at least 7:\n%s", n, msg)
	}
}

func TestValidateAcceptsDefaults(t *testing.T) {
	if err := (Config{Target: "http://127.0.0.1:8080"}).Validate(); err != nil {
		t.Fatalf("minimal config rejected: %v", err)
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "target: required") {
		t.Fatalf("missing target not reported: %v", err)
	}
	err := Config{Target: "http://h", Browsers: 2, StreamsPerBrowser: 2, Streams: 5}.Validate()
	if err == nil || !strings.Contains(err.Error(), "cannot hold 5 streams") {
		t.Fatalf("inconsistent browsers not reported: %v", err)
	}
	err = Config{Target: "http://h", StreamTemplate: "/no/target/{session}"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "stream template") {
		t.Fatalf("relative stream template not reported: %v", err)
	}
}

func TestResolvedDefaults(t *testing.T) {
	r := Config{Target: "http://h", Streams: 10, Browsers: 3}.Resolved()
	if r.StreamsPerBrowser != 4 || r.Browsers != 3 || r.MaxConnsPerHost != 6 || r.Retry != 3*time.Second ||
		r.SentField != "sent_unix_ns" || r.SenderField != "sender" || r.Shard.Count != 1 {
		t.Errorf("unexpected defaults: %+v", r)
	}
	r = Config{Target: "http://h", Streams: 10, StreamsPerBrowser: 3}.Resolved()
	if r.Browsers != 4 {
		t.Errorf("browsers = %d, want 4", r.Browsers)
	}
}

func TestURLs(t *testing.T) {
	c := Config{Target: "http://127.0.0.1:9/", SessionPrefix: "p/"}
	if got, want := c.StreamURL(7), "http://127.0.0.1:9/sessions/p%2F7/events"; got != want {
		t.Errorf("StreamURL = %q, want %q", got, want)
	}
	if got, want := c.ProgressURL(7), "http://127.0.0.1:9/sessions/p%2F7/progress"; got != want {
		t.Errorf("ProgressURL = %q, want %q", got, want)
	}
	c = Config{Target: "http://h", StreamTemplate: "{target}/s?id={session}&n={stream}", Sessions: 3}
	if got, want := c.StreamURL(4), "http://h/s?id=s-1&n=4"; got != want {
		t.Errorf("StreamURL = %q, want %q", got, want)
	}
}

func TestShardsAreDisjointAndComplete(t *testing.T) {
	for _, tc := range []struct{ streams, perBrowser, shards int }{{100, 1, 3}, {100, 7, 4}, {10, 6, 5}, {1, 1, 2}, {50, 3, 1}} {
		owner := make(map[int]int)
		sessions := make(map[string]int)
		for s := 0; s < tc.shards; s++ {
			cfg := Config{Target: "http://h", Streams: tc.streams, StreamsPerBrowser: tc.perBrowser, Shard: Shard{Index: s, Count: tc.shards}}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			p := cfg.Plan()
			browsersHere := make(map[int]bool)
			for i := range p.ShardStreams() {
				if prev, ok := owner[i]; ok {
					t.Errorf("%+v: stream %d in shards %d and %d", tc, i, prev, s)
				}
				owner[i] = s
				sess := cfg.Session(i)
				if prev, ok := sessions[sess]; ok {
					t.Errorf("%+v: session %s in shards %d and %d", tc, sess, prev, s)
				}
				sessions[sess] = s
				browsersHere[p.Browser(i)] = true
			}
			// A browser's streams all live in one shard, so its pool is not split.
			for b := range browsersHere {
				for i := b * tc.perBrowser; i < (b+1)*tc.perBrowser && i < tc.streams; i++ {
					if !p.InShard(i) {
						t.Errorf("%+v: browser %d split: stream %d not in shard %d", tc, b, i, s)
					}
				}
			}
		}
		if len(owner) != tc.streams {
			t.Errorf("%+v: shards cover %d of %d streams", tc, len(owner), tc.streams)
		}
	}
}

func TestPlanSchedule(t *testing.T) {
	p := Config{Target: "http://h", Streams: 5, Ramp: 4 * time.Second, Hold: 10 * time.Second}.Plan()
	for i, want := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second} {
		if got := p.StartAt(i); got != want {
			t.Errorf("StartAt(%d) = %v, want %v", i, got, want)
		}
	}
	if p.StopAt() != 14*time.Second {
		t.Errorf("StopAt = %v", p.StopAt())
	}
	if p := (Config{Target: "http://h", Streams: 5}).Plan(); p.StartAt(4) != 0 {
		t.Errorf("no ramp should open all at once, StartAt(4) = %v", p.StartAt(4))
	}
}

func TestPlanShares(t *testing.T) {
	p := Config{Target: "http://h", Streams: 1000, SlowShare: 0.25, ReadRate: 10, ChurnShare: 0.1, Hold: 10 * time.Second, Ramp: time.Second}.Plan()
	slow, churn := 0, 0
	for i := 0; i < 1000; i++ {
		if p.Slow(i) {
			slow++
		}
		if at, ok := p.LeaveAt(i); ok {
			churn++
			if at < p.Ramp || at > p.Ramp+p.Hold/2 {
				t.Errorf("stream %d leaves at %v, outside the first half of the hold", i, at)
			}
		}
	}
	if slow != 250 || churn != 100 {
		t.Errorf("slow=%d churn=%d, want 250 and 100", slow, churn)
	}
	// Evenly spread: every block of 40 streams has 10 slow ones.
	for b := 0; b < 1000; b += 40 {
		n := 0
		for i := b; i < b+40; i++ {
			if p.Slow(i) {
				n++
			}
		}
		if n != 10 {
			t.Errorf("block %d has %d slow streams, want 10", b, n)
		}
	}
}

func TestFDLimitCheck(t *testing.T) {
	l := FDLimit{Soft: 1024, Hard: 4096}
	if l.MaxStreams() != 1024-FDHeadroom {
		t.Errorf("MaxStreams = %d", l.MaxStreams())
	}
	if err := l.CheckStreams(900); err != nil {
		t.Errorf("900 streams rejected: %v", err)
	}
	err := l.CheckStreams(10000)
	if err == nil || !strings.Contains(err.Error(), "10000 streams") || !strings.Contains(err.Error(), "limit is 1024") {
		t.Errorf("10000 streams: %v", err)
	}
	cur, err := RaiseFDLimit()
	if err != nil {
		t.Skipf("open-file limit not available: %v", err)
	}
	if cur.Soft != cur.Hard {
		t.Errorf("soft limit %d not raised to hard %d", cur.Soft, cur.Hard)
	}
}

func TestNewFieldsDefaultsAndValidation(t *testing.T) {
	r := Config{Target: "http://h"}.Resolved()
	if r.AcceptEncoding != DefaultAcceptEncoding || r.MinReconnect != 100*time.Millisecond || r.MaxBackoff != 30*time.Second ||
		r.MaxDecodedRatio != DefaultMaxDecodedRatio || r.SentUnit != SentNanos {
		t.Errorf("defaults: accept encoding %q, min reconnect %v, max backoff %v, ratio %d, sent unit %q",
			r.AcceptEncoding, r.MinReconnect, r.MaxBackoff, r.MaxDecodedRatio, r.SentUnit)
	}
	err := Config{Target: "http://h", AcceptEncoding: "gzip\r\nX: y", MinReconnect: -1, MaxBackoff: -1, MaxDecodedRatio: -1}.Validate()
	if err == nil {
		t.Fatal("bad fields accepted")
	}
	for _, want := range []string{"accept encoding", "min reconnect", "max backoff", "max decoded ratio"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate did not report %q; got:\n%s", want, err)
		}
	}
}

// TestDefaultsAreTheSourcesAndBrowsers: the defaults a resolved Config hands its
// streams and browsers are the ones a bare SourceConfig and BrowserConfig get, and a
// value set on the Config (or a negative one, for Validate) survives resolving.
func TestDefaultsAreTheSourcesAndBrowsers(t *testing.T) {
	r := Config{Target: "http://h"}.Resolved()
	s, b := (SourceConfig{}).resolved(), (BrowserConfig{}).resolved()
	if r.Retry != s.Retry || r.HeaderTimeout != s.HeaderTimeout || r.Method != s.Method || r.SenderField != s.SenderField ||
		r.MaxConnsPerHost != b.MaxConnsPerHost || r.DialTimeout != b.DialTimeout {
		t.Errorf("resolved config %+v differs from the source defaults %+v or browser defaults %+v", r, s, b)
	}
	if s.Retry != DefaultRetry || b.MaxConnsPerHost != DefaultMaxConnsPerHost || b.UserAgent != DefaultUserAgent {
		t.Errorf("defaults retry %v, max conns %d, user agent %q", s.Retry, b.MaxConnsPerHost, b.UserAgent)
	}
	r = Config{Target: "http://h", Retry: time.Minute, MaxConnsPerHost: -2, HeaderTimeout: -time.Second}.Resolved()
	if r.Retry != time.Minute || r.MaxConnsPerHost != -2 || r.HeaderTimeout != -time.Second {
		t.Errorf("set values not kept: retry %v, max conns %d, header timeout %v", r.Retry, r.MaxConnsPerHost, r.HeaderTimeout)
	}
}

// TestValidateReportsWhatNewEventSourceRefuses: the request fields judged once, for
// the load and for a single source.
func TestValidateReportsWhatNewEventSourceRefuses(t *testing.T) {
	bad := SourceConfig{URL: "http://h/s", SentField: "a..b", SentUnit: "weeks", Body: "x", AcceptEncoding: "gzip\nX: y"}
	_, err := NewBrowser(BrowserConfig{}).NewEventSource(bad, nil)
	cerr := Config{Target: "http://h", SentField: bad.SentField, SentUnit: bad.SentUnit, Body: bad.Body, AcceptEncoding: bad.AcceptEncoding}.Validate()
	for _, want := range []string{"sent field", "sent unit", "stream body given with method GET", "accept encoding"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewEventSource did not report %q: %v", want, err)
		}
		if cerr == nil || !strings.Contains(cerr.Error(), want) {
			t.Errorf("Validate did not report %q: %v", want, cerr)
		}
	}
}

func TestTargetsPinStreamURLs(t *testing.T) {
	targets := []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}
	c := Config{Target: targets[0], StreamTemplate: "{target}/s/{session}", Streams: 20, Targets: targets}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	for i := range 20 {
		want := PinTarget(targets, c.Session(i)) + "/s/" + c.Session(i)
		if got := c.StreamURL(i); got != want {
			t.Errorf("StreamURL(%d) = %q, want %q", i, got, want)
		}
		used[PinTarget(targets, c.Session(i))]++
	}
	if len(used) != 2 {
		t.Errorf("20 sessions pinned to %v, want both targets", used)
	}
	c.Targets = []string{targets[0], "127.0.0.1:3"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `target "127.0.0.1:3"`) {
		t.Errorf("relative target not reported: %v", err)
	}
}

func TestShardStreamsStopsWhenTheLoopDoes(t *testing.T) {
	p := Config{Target: "http://h", Streams: 10, Shard: Shard{Index: 1, Count: 2}}.Plan()
	var got []int
	for i := range p.ShardStreams() {
		if got = append(got, i); len(got) == 3 {
			break
		}
	}
	if fmt.Sprint(got) != "[1 3 5]" {
		t.Errorf("first three streams of shard 1 of 2: %v, want [1 3 5]", got)
	}
}
