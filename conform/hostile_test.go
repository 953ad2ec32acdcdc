package conform

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/eventstream"
)

// afterSecs finds a finding's first "after 4.9s".
var afterSecs = regexp.MustCompile(`after (\d+(?:\.\d+)?)s`)

// TestDefectDoubles: one double per defect of issue 12, each failing exactly the
// listed checks, with what the findings must say; and the correct variants of the
// same doubles failing nothing.
func TestDefectDoubles(t *testing.T) {
	t.Parallel()
	type seen map[int][]string // check -> substrings of its Seen
	cases := []struct {
		name    string
		opts    func(*srvOpts)
		idle    time.Duration
		want    []int
		verdict map[int]Verdict
		says    seen
		notSays seen
		// lasted: the check's "after Ns" lies in [lo, hi] seconds. The server's clock
		// starts when it has written the head, the check's when the head arrived, so
		// a busy machine shortens the span the check sees by its delay in between.
		lasted map[int][2]float64
	}{
		{name: "quiet-with-keep-alive", opts: func(o *srvOpts) { o.quiet, o.tick = true, 0 },
			want: nil, verdict: map[int]Verdict{7: NA, 8: Pass}, says: seen{7: {"no event"}}},
		{name: "quiet-and-silent", opts: func(o *srvOpts) { o.quiet, o.tick, o.heartbeat, o.retry = true, 0, 0, "" },
			want: []int{8}, verdict: map[int]Verdict{7: NA}, says: seen{7: {"no body byte", "check 8"}}},
		{name: "broken-after-5s", idle: 6 * time.Second,
			opts: func(o *srvOpts) {
				o.quiet, o.tick, o.heartbeat, o.retry = true, 0, 0, ""
				o.hijack, o.dropAfter = "break", 5*time.Second
			},
			want: []int{8}, verdict: map[int]Verdict{7: NA},
			says:    seen{7: {"broke"}, 8: {"broke"}, 11: {"broke"}},
			notSays: seen{7: {"6.5s", "20.5s"}, 11: {"kept the stream open"}},
			lasted:  map[int][2]float64{8: {4.5, 5.5}}},
		{name: "retry-0-immediate-close", opts: func(o *srvOpts) { o.retry, o.dropAfter = "0", 10*time.Millisecond },
			want: []int{8, 11, 22}, says: seen{11: {"retry 0", "tight loop"}},
			notSays: seen{11: {"bodies do not end at once"}}},
		{name: "rst-at-0.9s", opts: func(o *srvOpts) { o.hijack, o.dropAfter = "reset", 900*time.Millisecond },
			want: []int{8}, says: seen{8: {"broke", "reset"}, 11: {"broke", "reset"}},
			notSays: seen{11: {"kept the stream open"}}},
		{name: "replay-flood-for-unknown-opaque-id", opts: func(o *srvOpts) { o.opaqueIDs, o.history, o.floodUnknown = true, 300, true },
			want: []int{9}, says: seen{9: {"replay flood", "made-up", "replayed 3", "with no gap marker"}}},
		{name: "opaque-ids-unknown-goes-live", opts: func(o *srvOpts) { o.opaqueIDs, o.history = true, 300 },
			want: nil, verdict: map[int]Verdict{9: Pass}, says: seen{9: {"opaque", "went live"}}},
		{name: "silent-gap-for-evicted-id", opts: func(o *srvOpts) { o.history, o.retain, o.silentEvict = 100, 10, true },
			want: []int{9}, says: seen{9: {"silent gap", `Last-Event-ID "1"`, `from "1`, "(2..1", "no gap marker"}}},
		{name: "visible-gap-for-evicted-id", opts: func(o *srvOpts) { o.history, o.retain = 100, 10 },
			want: nil, verdict: map[int]Verdict{9: Pass}, says: seen{9: {"visible gap", `"1"`}}},
		{name: "400-for-made-up-id-and-inclusive-replay", opts: func(o *srvOpts) { o.unknownStatus, o.replayInclusive = 400, true },
			want: []int{9}, says: seen{9: {"400 Bad Request", "resent event"}}},
		{name: "close-delimited-http-1.1", opts: func(o *srvOpts) { o.hijack = "close-delimited" },
			want: []int{20}, says: seen{20: {"close", "chunked"}}},
		// Thousands of events, more than the kept items: the reconnect resumes from one
		// of the last (still retained), not from the first kept ones (long evicted).
		{name: "fast-stream-short-retention", opts: func(o *srvOpts) { o.tick, o.retain = time.Millisecond, 300 },
			want: nil, verdict: map[int]Verdict{9: Pass}},
		{name: "oversized-event", opts: func(o *srvOpts) { o.oversizedEvent = true },
			want: []int{23}, verdict: map[int]Verdict{8: NA}, says: seen{23: {"event data longer than 1048576"}}},
	}
	results := make([]map[int]Finding, len(cases))
	errs := make([]error, len(cases))
	cfgs := make([]Config, len(cases))
	for i, tc := range cases {
		opts := goodOpts()
		tc.opts(&opts)
		cfgs[i] = testConfig(startTestServer(t, opts, false), "double-"+tc.name)
		if tc.idle > 0 {
			cfgs[i].Idle = tc.idle
		}
	}
	concurrently(len(cases), func(i int) { results[i], errs[i] = conformFindings(cfgs[i]) })
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			fs := results[i]
			want := append([]int(nil), tc.want...)
			sort.Ints(want)
			if got := failing(fs); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("failed checks %v, want %v:\n%s", got, want, dump(fs))
			}
			for id, v := range tc.verdict {
				if fs[id].Verdict != v {
					t.Errorf("check %d: %s, want %s (%s)", id, fs[id].Verdict, v, fs[id].Seen)
				}
			}
			for id, subs := range tc.says {
				for _, sub := range subs {
					if !strings.Contains(fs[id].Seen, sub) {
						t.Errorf("check %d says %q, without %q", id, fs[id].Seen, sub)
					}
				}
			}
			for id, span := range tc.lasted {
				m := afterSecs.FindStringSubmatch(fs[id].Seen)
				if m == nil {
					t.Errorf("check %d says %q, without \"after Ns\"", id, fs[id].Seen)
					continue
				}
				if v, _ := strconv.ParseFloat(m[1], 64); v < span[0] || v > span[1] {
					t.Errorf("check %d says %q: after %ss, want %.1f to %.1f", id, fs[id].Seen, m[1], span[0], span[1])
				}
			}
			for id, subs := range tc.notSays {
				for _, sub := range subs {
					if strings.Contains(fs[id].Seen, sub) {
						t.Errorf("check %d says %q, with %q", id, fs[id].Seen, sub)
					}
				}
			}
			if t.Failed() {
				t.Logf("\n%s", dump(fs))
			}
			for _, id := range want {
				t.Logf("%d %s: %s", id, fs[id].Name, fs[id].Seen)
			}
		})
	}
}

func ids(list ...string) []eventstream.Item {
	var out []eventstream.Item
	for _, id := range list {
		out = append(out, eventstream.Item{Kind: eventstream.KindEvent, ID: id, HasID: true, Type: "message"})
	}
	return out
}

// TestProbeIDHasTheTargetsShape: the unknown id looks like the target's own ids.
func TestProbeIDHasTheTargetsShape(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ids  []string
		kind idKind
		want string // exact probe id; "" = check shape only
		ok   bool
	}{
		{"numeric-late", []string{"101", "102", "103"}, idNumeric, "1", true},
		{"numeric-from-1", []string{"1", "2"}, idNumeric, "0", true},
		{"numeric-from-0", []string{"0", "1"}, idNumeric, "", false},
		{"prefixed", []string{"s1:17", "s1:18"}, idPrefixed, "s1:1", true},
		{"prefixed-dash", []string{"evt-1", "evt-2"}, idPrefixed, "evt-0", true},
		{"uuid", []string{"3f2a9c1e-7b4d-4e8a-9c2f-0a1b2c3d4e5f", "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"}, idOpaque, "", true},
		{"hex", []string{"9e3779b97f4a7c15", "3c6ef372fe94f82a"}, idOpaque, "", true},
		{"none", nil, idNone, unknownID, true},
	}
	for _, tc := range cases {
		s := shapeOf(ids(tc.ids...), 0, time.Second)
		if s.kind != tc.kind {
			t.Errorf("%s: shape %s, want %s", tc.name, s.kind, tc.kind)
			continue
		}
		got, ok, why := s.probeID()
		if ok != tc.ok || (tc.want != "" && got != tc.want) {
			t.Errorf("%s: probe %q %v (%s), want %q %v", tc.name, got, ok, why, tc.want, tc.ok)
		}
		if tc.kind == idOpaque {
			if len(got) != len(tc.ids[0]) || s.seen[got] {
				t.Errorf("%s: made-up %q is not a new id of the same length", tc.name, got)
			}
			for i := range got {
				isHex := strings.ContainsRune("0123456789abcdef-", rune(got[i]))
				if !isHex {
					t.Errorf("%s: made-up %q leaves the ids' alphabet", tc.name, got)
					break
				}
			}
			if tc.name == "uuid" && (got[8] != '-' || got[14] != '4') {
				t.Errorf("uuid: made-up %q does not keep the dashes and version digit", got)
			}
		}
	}
}

// TestBoundedGzipStopsABomb: a gzip body of valid events (so no parser limit applies)
// expanding 1000:1 is stopped soon after 1 MiB decoded.
func TestBoundedGzipStopsABomb(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	block := bytes.Repeat([]byte("data: x\n\n"), 1<<16)
	for range 64 { // 36 MiB of events
		gz.Write(block)
	}
	gz.Close()
	wire := &countingReader{r: bytes.NewReader(b.Bytes())}
	n, err := io.Copy(io.Discard, &boundedGzip{wire: wire})
	var ge *expansionError
	if !errors.As(err, &ge) {
		t.Fatalf("err %v after %d bytes, want an expansion error", err, n)
	}
	if n > gzipRatioFrom+64<<10 {
		t.Errorf("%d bytes decoded before the stop, want about %d", n, gzipRatioFrom)
	}
	t.Log(err)

	// An ordinary compressed stream passes untouched.
	var small bytes.Buffer
	gz = gzip.NewWriter(&small)
	for i := range 20000 {
		fmt.Fprintf(gz, "id: %d\nevent: tick\ndata: {\"t\":%d}\n\n", i, time.Now().UnixNano())
	}
	gz.Close()
	if _, err := io.Copy(io.Discard, &boundedGzip{wire: &countingReader{r: &small}}); err != nil {
		t.Fatalf("ordinary gzip stream: %v", err)
	}
}

// TestUnknownReplayJudgement pins what a reply to the unknown-id probe may carry.
func TestUnknownReplayJudgement(t *testing.T) {
	t.Parallel()
	ev := func(id string) eventstream.Item {
		return eventstream.Item{Kind: eventstream.KindEvent, ID: id, HasID: true, Type: "tick"}
	}
	comment := func(c string) eventstream.Item { return eventstream.Item{Kind: eventstream.KindComment, Comment: c} }
	first := append(ids("101", "102", "103"), comment(" ping"))
	for i := range first[:3] {
		first[i].Type = "tick"
	}
	timestamps := ids("1733044800123", "1733044801456")
	opaque := ids("9e3779b97f4a7c15", "3c6ef372fe94f82a")
	cases := []struct {
		name  string
		first []eventstream.Item
		reply []eventstream.Item
		bad   string // substring of the problem; "" = none
	}{
		{"live", first, []eventstream.Item{ev("104"), ev("105")}, ""},
		{"replay-from-right-after-the-probe", first, []eventstream.Item{ev("2"), ev("3")}, ""},
		{"silent-gap", first, []eventstream.Item{ev("90"), ev("91"), ev("104")}, "88 event(s) (2..89) are skipped"},
		{"marked-gap", first, []eventstream.Item{comment(" events lost"), ev("90"), ev("104")}, ""},
		{"replay-from-the-probe", first, []eventstream.Item{ev("1"), ev("2")}, "at or before"},
		{"gap-in-timestamp-ids-is-not-counted", timestamps, []eventstream.Item{ev("1733044700000")}, "the events with ids 2..1733044699999"},
		{"opaque-replay", opaque, []eventstream.Item{ev("0000000000000001"), ev("9e3779b97f4a7c15")}, "replayed 2 events (1 of them already sent"},
		{"opaque-live", opaque, []eventstream.Item{ev("daa66d2c7ddf743f")}, ""},
	}
	head := time.Now()
	for _, tc := range cases {
		s := shapeOf(tc.first, 0, 10*time.Second)
		probe, _, _ := s.probeID()
		u := newUnknownReplay(&s, probe)
		for i, it := range tc.reply {
			if u.feed(it, head, head.Add(time.Duration(i)*time.Millisecond)) {
				break
			}
		}
		problem, note := u.problem(time.Second)
		if (tc.bad == "") != (problem == "") || !strings.Contains(problem, tc.bad) {
			t.Errorf("%s: problem %q (note %q), want %q", tc.name, problem, note, tc.bad)
		}
	}
}
