package conform

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// numChecks is the length of the checklist.
const numChecks = 23

// testIdle keeps each run short; the servers' keep-alive (150 ms) is far inside it, a
// margin for a busy machine.
const testIdle = 3 * time.Second

// testConfig is the configuration runConform uses for base and a test name.
func testConfig(base, name string) Config {
	return Config{
		Target:  base + "/s/" + strings.ReplaceAll(name, "/", "_"),
		StopURL: base + "/done",
		Idle:    testIdle,
		Timeout: 5 * time.Second,
	}
}

// conformFindings runs the checks and returns the findings by id, or why it could not.
// It is safe to call from any goroutine.
func conformFindings(cfg Config) (map[int]Finding, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("Run: %w", err)
	}
	if len(res.Findings) != numChecks {
		return nil, fmt.Errorf("got %d findings, want %d", len(res.Findings), numChecks)
	}
	out := map[int]Finding{}
	for i, f := range res.Findings {
		if f.ID != i+1 {
			return nil, fmt.Errorf("finding %d has id %d", i, f.ID)
		}
		if f.Seen == "" || f.Spec == "" || f.Name == "" || f.Level == "" || f.Threshold == "" {
			return nil, fmt.Errorf("finding %d incomplete: %+v", f.ID, f)
		}
		out[f.ID] = f
	}
	return out, nil
}

// runConform runs the checks against base+"/s/<test name>" and returns the findings by id.
func runConform(t *testing.T, base string, mod func(*Config)) map[int]Finding {
	t.Helper()
	cfg := testConfig(base, t.Name())
	if mod != nil {
		mod(&cfg)
	}
	fs, err := conformFindings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// concurrently runs fn for every index at once and waits. Conformance runs mostly
// wait on timers, so they overlap fully; t.Parallel would cap them at GOMAXPROCS.
func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// failing returns the ids of failed checks, sorted.
func failing(fs map[int]Finding) []int {
	var ids []int
	for id, f := range fs {
		if f.Verdict == Fail {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

func dump(fs map[int]Finding) string {
	var b strings.Builder
	for id := 1; id <= numChecks; id++ {
		f := fs[id]
		fmt.Fprintf(&b, "  %2d %-22s %-8s %-4s %s\n", id, f.Name, f.Level, f.Verdict, f.Seen)
	}
	return b.String()
}

// TestGoodServerFailsNothing: a server that breaks no rule gets no fail, over HTTP/1.1
// and over h2 (TLS, --insecure).
func TestGoodServerFailsNothing(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			t.Parallel()
			base := startTestServer(t, goodOpts(), h2)
			fs := runConform(t, base, func(c *Config) { c.Insecure = h2 })
			t.Log("\n" + dump(fs))
			if ids := failing(fs); len(ids) > 0 {
				t.Fatalf("failed checks %v on a correct server:\n%s", ids, dump(fs))
			}
			for _, id := range []int{1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23} {
				if fs[id].Verdict != Pass {
					t.Errorf("check %d: %s, want pass\n%s", id, fs[id].Verdict, dump(fs))
				}
			}
			want20 := Warn
			if h2 {
				want20 = Pass
			}
			if fs[20].Verdict != want20 {
				t.Errorf("check 20 (protocol): %s (%s), want %s", fs[20].Verdict, fs[20].Seen, want20)
			}
			if fs[5].Verdict != NA || fs[11].Verdict != NA {
				t.Errorf("checks 5 and 11 need a server close and must be n/a here:\n%s", dump(fs))
			}
		})
	}
}

// TestGzipFlushedPerEventIsIncremental: compression is fine when each event is flushed
// through the compressor.
func TestGzipFlushedPerEventIsIncremental(t *testing.T) {
	t.Parallel()
	opts := goodOpts()
	opts.gzip = true
	fs := runConform(t, startTestServer(t, opts, false), nil)
	if ids := failing(fs); len(ids) > 0 {
		t.Fatalf("failed checks %v:\n%s", ids, dump(fs))
	}
	if fs[7].Verdict != Pass || !strings.Contains(fs[7].Seen, "gzip") || fs[9].Verdict != Pass {
		t.Fatalf("gzip stream:\n%s", dump(fs))
	}
}

// TestWarnings: what a check reports as a warning (the rule is followed in a way that
// costs clients something) is a warn, not a fail.
func TestWarnings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		check  int
		modify func(*srvOpts)
		cfg    func(*Config)
	}{
		{"charset-latin1", 2, func(o *srvOpts) { o.contentType = "text/event-stream; charset=iso-8859-1" }, nil},
		{"event-without-data", 6, func(o *srvOpts) { o.greetingEventOnly = true }, nil},
		{"bodies-end-at-once", 11, func(o *srvOpts) { o.emptyBody = true }, nil},
		{"echoed-origin-without-vary", 14, func(o *srvOpts) { o.noVary = true }, nil},
		{"no-allow-credentials", 15, func(o *srvOpts) { o.acac = "-" }, nil},
		{"needs-a-custom-header", 18, func(o *srvOpts) { o.requireHeader = "X-Token" }, func(c *Config) { c.Header = http.Header{"X-Token": {"t"}} }},
		{"no-cache-control-directive", 19, func(o *srvOpts) { o.cacheControl = "private" }, nil},
		{"no-x-accel-buffering", 21, func(o *srvOpts) { o.xAccel = "-" }, nil},
		{"retry-500ms", 22, func(o *srvOpts) { o.retry = "500" }, nil},
		{"no-retry", 22, func(o *srvOpts) { o.retry = "" }, nil},
	}
	results := make([]map[int]Finding, len(cases))
	errs := make([]error, len(cases))
	cfgs := make([]Config, len(cases))
	for i, tc := range cases {
		opts := goodOpts()
		tc.modify(&opts)
		cfgs[i] = testConfig(startTestServer(t, opts, false), "warn-"+tc.name)
		if tc.cfg != nil {
			tc.cfg(&cfgs[i])
		}
	}
	concurrently(len(cases), func(i int) { results[i], errs[i] = conformFindings(cfgs[i]) })
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%02d-%s", tc.check, tc.name), func(t *testing.T) {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if f := results[i][tc.check]; f.Verdict != Warn {
				t.Fatalf("check %d: %s, want warn:\n%s", tc.check, f.Verdict, dump(results[i]))
			}
			t.Logf("%d: %s", tc.check, results[i][tc.check].Seen)
		})
	}
}

// TestEachCheckCanFail: for every check, a server that breaks it (and, where the rule
// cannot be broken alone, the named checks that necessarily fail with it) makes exactly
// those checks fail.
func TestEachCheckCanFail(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		check    int
		break_   func(*srvOpts)
		cfg      func(c *Config, base string)
		alsoFail []int // checks that cannot pass when this rule is broken
	}{
		{"404", 1, func(o *srvOpts) { o.status = 404 }, nil, nil},
		{"text-plain", 2, func(o *srvOpts) { o.contentType = "text/plain" }, nil, nil},
		{"406-without-accept", 3, func(o *srvOpts) { o.refuseNoAccept = true }, nil, nil},
		{"invalid-utf8", 4, func(o *srvOpts) { o.invalidUTF8 = true }, nil, nil},
		{"unterminated-block-at-end", 5, func(o *srvOpts) { o.partialOnAnyStar = true }, nil, nil},
		{"retry-not-digits", 6, func(o *srvOpts) { o.retry = "3s" }, nil, nil},
		{"content-length", 7, func(o *srvOpts) { o.contentLength = true }, nil, nil},
		{"event-split-across-flushes", 7, func(o *srvOpts) { o.splitGreeting = 2200 * time.Millisecond }, nil, nil},
		// Silence is not buffering (issue 12): with no event, 7 is n/a and the silence
		// fails keep-alive alone, also when compressed output waits in the compressor.
		{"head-then-nothing", 8, func(o *srvOpts) { o.headOnly = true }, nil, nil},
		{"gzip-holds-output", 8, func(o *srvOpts) { o.gzip, o.gzipHold = true, true }, nil, nil},
		{"silent-when-idle", 8, func(o *srvOpts) { o.tick, o.heartbeat = 0, 0 }, nil, nil},
		{"dropped", 8, func(o *srvOpts) { o.dropAfter = 400 * time.Millisecond }, nil, nil},
		{"no-replay", 9, func(o *srvOpts) { o.noReplay = true }, nil, nil},
		{"replay-repeats", 9, func(o *srvOpts) { o.replayInclusive = true }, nil, nil},
		{"unknown-id-400", 9, func(o *srvOpts) { o.unknownStatus = 400 }, nil, nil},
		{"resume-url-needs-id", 10, func(o *srvOpts) { o.resumeNeedsLastID = true }, func(c *Config, base string) {
			c.ResumeURL = strings.Replace(c.Target, "/s/", "/resume/", 1)
		}, nil},
		// The reconnect after a close is the resume request: refusing it fails 9 and 17
		// as well, and the close itself is a drop for 8.
		{"refused-after-close", 11, func(o *srvOpts) { o.dropAfter, o.refuseReconnect = 400*time.Millisecond, true }, nil, []int{8, 9, 17}},
		{"stop-200-empty", 12, func(o *srvOpts) { o.stopStatus = 200 }, nil, nil},
		{"503-retry-after", 13, func(o *srvOpts) { o.anyStar503 = true }, nil, []int{3}},
		{"two-allow-origins", 14, func(o *srvOpts) { o.doubleACAO = true }, nil, []int{15}},
		{"allow-credentials-TRUE", 15, func(o *srvOpts) { o.acac = "TRUE" }, nil, nil},
		{"preflight-without-last-event-id", 16, func(o *srvOpts) { o.preflightHeaders = "content-type" }, nil, nil},
		{"no-cors-on-resume", 17, func(o *srvOpts) { o.noCORSOnResume = true }, nil, nil},
		{"405-for-get", 18, func(o *srvOpts) { o.status = 405 }, nil, []int{1}},
		{"max-age", 19, func(o *srvOpts) { o.cacheControl = "public, max-age=60" }, nil, nil},
		{"http-1.0", 20, func(o *srvOpts) { o.http10 = true }, nil, nil},
		{"x-accel-buffering-yes", 21, func(o *srvOpts) { o.xAccel = "yes" }, nil, nil},
		{"retry-0", 22, func(o *srvOpts) { o.retry = "0" }, nil, nil},
		{"oversized-event", 23, func(o *srvOpts) { o.oversizedEvent = true }, nil, nil},
	}
	covered := map[int]bool{}
	results := make([]map[int]Finding, len(cases))
	errs := make([]error, len(cases))
	names := make([]string, len(cases))
	for i, tc := range cases {
		covered[tc.check] = true
		names[i] = fmt.Sprintf("%02d-%s", tc.check, tc.name)
	}
	bases := make([]string, len(cases))
	for i, tc := range cases {
		opts := goodOpts()
		tc.break_(&opts)
		bases[i] = startTestServer(t, opts, false)
	}
	concurrently(len(cases), func(i int) {
		cfg := testConfig(bases[i], names[i])
		if cases[i].cfg != nil {
			cases[i].cfg(&cfg, bases[i])
		}
		results[i], errs[i] = conformFindings(cfg)
	})
	for i, tc := range cases {
		t.Run(names[i], func(t *testing.T) {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			fs := results[i]
			want := append([]int{tc.check}, tc.alsoFail...)
			sort.Ints(want)
			if got := failing(fs); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("failed checks %v, want %v:\n%s", got, want, dump(fs))
			}
			t.Logf("%d %s: %s", tc.check, fs[tc.check].Name, fs[tc.check].Seen)
		})
	}
	for id := 1; id <= numChecks; id++ {
		if !covered[id] {
			t.Errorf("no case makes check %d fail", id)
		}
	}
}
