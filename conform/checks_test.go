package conform

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/eventstream"
)

// piece is one read of a synthetic body: its bytes and when, after the head, it came.
type piece struct {
	after time.Duration
	data  string
}

// syntheticStream builds a 200 text/event-stream exchange from reads, ended as end says
// at endAfter: the raw data the checks judge, without a network.
func syntheticStream(pieces []piece, end endKind, endAfter time.Duration) *exchange {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := &exchange{
		Label: "main", Start: t0.Add(-10 * time.Millisecond), Sent: t0.Add(-5 * time.Millisecond), HeadersAt: t0,
		Connected: true, Status: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ContentLength: -1,
		Header: http.Header{"Content-Type": {"text/event-stream"}},
		End:    end, EndAt: t0.Add(endAfter),
	}
	for _, p := range pieces {
		e.record([]byte(p.data), t0.Add(p.after))
	}
	parser := eventstream.New(bytes.NewReader(e.Body), eventstream.Config{})
	for {
		it, err := parser.Next()
		if err != nil {
			break
		}
		e.addItem(it)
	}
	return e
}

func obsWith(main *exchange, idle time.Duration) *observations {
	return &observations{cfg: Config{Idle: idle, Timeout: time.Second, Origin: DefaultOrigin}, main: main, watch: idle + watchSlack, resumeFrom: -1}
}

func TestUTF8Problem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		body     string
		complete bool
		bad      string // substring of the problem; "" = none
	}{
		{"ascii", "data: a\n\n", true, ""},
		{"multibyte", "data: \u2026 \U0001F600\n\n", true, ""},
		{"bom-at-0", "\xEF\xBB\xBFdata: a\n\n", true, ""},
		{"feff-inside-a-value", "data: a\uFEFFb\n\n", true, ""},
		{"invalid-byte", "data: \xFF\n\n", true, "invalid UTF-8 at byte 6"},
		{"overlong", "data: \xC0\xAF\n\n", true, "invalid UTF-8"},
		{"surrogate", "data: \xED\xA0\x80\n\n", true, "invalid UTF-8"},
		{"cut-by-the-capture", "data: \xE2\x80", false, ""},
		{"cut-by-the-server", "data: \xE2\x80", true, "invalid UTF-8"},
		{"two-boms", "\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n", true, "two BOMs"},
		{"bom-at-a-line-start", "data: a\n\n\xEF\xBB\xBFdata: b\n\n", true, "BOM at the start of the line at byte 9"},
	}
	for _, tc := range cases {
		got := utf8Problem([]byte(tc.body), tc.complete)
		if (tc.bad == "") != (got == "") || !strings.Contains(got, tc.bad) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.bad)
		}
	}
}

func TestScanLinesAndBlocks(t *testing.T) {
	t.Parallel()
	body := []byte("\xEF\xBB\xBFid: 1\r\ndata: a\rdata: b\n: c\n\r\n\n\ndata: tail")
	lines := scanLines(body)
	var got []string
	for _, l := range lines {
		got = append(got, string(body[l.Start:l.End]))
	}
	want := []string{"id: 1", "data: a", "data: b", ": c", "", "", "", "data: tail"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q", got, want)
	}
	if lines[len(lines)-1].Terminated || !lines[0].Terminated {
		t.Fatal("only the last line is unterminated")
	}
	blocks := scanBlocks(body, lines)
	if len(blocks) != 2 || !blocks[0].Terminated || blocks[1].Terminated {
		t.Fatalf("blocks %+v", blocks)
	}
	if len(blocks[0].Fields) != 3 || blocks[0].Comments != 1 || !blocks[0].hasField("id") {
		t.Fatalf("first block %+v", blocks[0])
	}
	if f := splitField([]byte("data:  two")); string(f.Name) != "data" || string(f.Value) != " two" {
		t.Fatalf("splitField removes one space only: %q %q", f.Name, f.Value)
	}
	if f := splitField([]byte("data")); string(f.Name) != "data" || f.Value != nil {
		t.Fatalf("a line without colon is a name: %q %q", f.Name, f.Value)
	}
}

// TestContentTypeCases: response cases of /work/shared/vectors/sse-parse-vectors.json
// (from web-platform-tests eventsource/format-mime-*.any.js), judged by check 2.
func TestContentTypeCases(t *testing.T) {
	t.Parallel()
	cases := map[string]Verdict{
		"text/event-stream":                      Pass,
		"text/event-stream; charset=utf-8":       Pass,
		"text/event-stream;":                     Pass,
		"Text/Event-Stream":                      Pass,
		"text/event-stream;charset=windows-1252": Warn,
		"text/x-bogus":                           Fail,
		"x bogus":                                Fail,
		"":                                       Fail,
		"text/plain":                             Fail,
	}
	for ct, want := range cases {
		e := syntheticStream(nil, endStopped, time.Second)
		e.Header = http.Header{}
		if ct != "" {
			e.Header.Set("Content-Type", ct)
		}
		if got := checkContentType(obsWith(e, time.Second)); got.Verdict != want {
			t.Errorf("%q: %s (%s), want %s", ct, got.Verdict, got.Seen, want)
		}
	}
}

// TestKeepAliveThresholds pins check 8's definition on synthetic timelines.
func TestKeepAliveThresholds(t *testing.T) {
	t.Parallel()
	s := time.Second
	hello := "retry: 3000\n\nid: 1\ndata: hi\n\n"
	cases := []struct {
		name   string
		idle   time.Duration
		pieces []piece
		end    endKind
		endAt  time.Duration
		want   Verdict
	}{
		{"comment-every-15s", 20 * s, []piece{{0, hello}, {15 * s, ": ping\n"}}, endStopped, 20*s + watchSlack, Pass},
		{"comment-every-19s-is-or-so", 20 * s, []piece{{0, hello}, {19 * s, ": ping\n"}}, endStopped, 20*s + watchSlack, Pass},
		{"comment-every-25s-warns", 60 * s, []piece{{0, hello}, {25 * s, ": p\n"}, {50 * s, ": p\n"}}, endStopped, 60*s + watchSlack, Warn},
		{"silent-for-the-window", 20 * s, []piece{{0, hello}}, endStopped, 20*s + watchSlack, Fail},
		{"nothing-at-all", 20 * s, nil, endStopped, 20*s + watchSlack, Fail},
		{"dropped-while-idle", 20 * s, []piece{{0, hello}}, endEOF, 12 * s, Fail},
		{"reset-while-idle", 20 * s, []piece{{0, hello}}, endError, 12 * s, Fail},
	}
	for _, tc := range cases {
		e := syntheticStream(tc.pieces, tc.end, tc.endAt)
		if tc.end == endError {
			e.EndErr = errors.New("connection reset")
		}
		if got := checkKeepAlive(obsWith(e, tc.idle)); got.Verdict != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, got.Verdict, got.Seen, tc.want)
		}
	}
}

// TestDeliveryTimeline pins check 7's timing rules on synthetic timelines.
func TestDeliveryTimeline(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	cases := []struct {
		name   string
		pieces []piece
		want   Verdict
	}{
		{"whole-events", []piece{{0, "data: a\n\n"}, {500 * ms, "data: b\n\n"}}, Pass},
		{"one-event-in-two-reads-together", []piece{{0, "data: a\n"}, {2 * ms, "\n"}}, Pass},
		{"blank-line-late", []piece{{0, "data: a\n"}, {1500 * ms, "\n"}}, Fail},
		{"event-pending-at-the-end", []piece{{0, "data: a\n\ndata: b\n"}}, Fail},
		{"comment-pending-is-fine", []piece{{0, "data: a\n\n: ping\n"}}, Pass},
		{"no-bytes-is-silence-not-buffering", nil, NA},
		{"comments-only", []piece{{0, ": ping\n"}}, NA},
	}
	for _, tc := range cases {
		e := syntheticStream(tc.pieces, endStopped, 3*time.Second)
		if got := checkDelivery(obsWith(e, 2*time.Second)); got.Verdict != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, got.Verdict, got.Seen, tc.want)
		}
	}
	e := syntheticStream([]piece{{0, "data: a\n\n"}}, endStopped, 3*time.Second)
	e.Sent = e.HeadersAt.Add(-3 * time.Second)
	if got := checkDelivery(obsWith(e, 2*time.Second)); got.Verdict != Warn {
		t.Errorf("head held 3 s until the first bytes: %s (%s), want warn", got.Verdict, got.Seen)
	}
}

// item is an event whose block carried its own id (unless id is the resume sentinel,
// which stands for none).
func item(id, typ, data string) eventstream.Item {
	return eventstream.Item{Kind: eventstream.KindEvent, ID: id, Type: typ, Data: data, HasID: id != resumeSentinel}
}

// carried is an event without an id field: its ID is the previous one, carried over.
func carried(id, typ, data string) eventstream.Item {
	return eventstream.Item{Kind: eventstream.KindEvent, ID: id, Type: typ, Data: data}
}

func TestJudgeReplay(t *testing.T) {
	t.Parallel()
	first := []eventstream.Item{item("0", "connected", "c"), item("1", "tick", "a"), item("2", "tick", "b"), item("3", "tick", "c")}
	from := resumePoint(first)
	if from != 2 {
		t.Fatalf("resumePoint %d, want 2 (resume after id 2, expect 3)", from)
	}
	cases := []struct {
		name string
		got  []eventstream.Item
		want replayVerdict
	}{
		{"replayed", []eventstream.Item{item("3", "tick", "c*")}, replayVerdict{done: true, found: true, firstID: `"3" (tick)`}},
		{"greeting-at-the-position-first", []eventstream.Item{item("2", "connected", "x"), item("3", "tick", "c*")}, replayVerdict{done: true, found: true, firstID: `"2" (connected)`}},
		{"no-id-greeting", []eventstream.Item{item(resumeSentinel, "hello", "x"), item("3", "tick", "c")}, replayVerdict{done: true, found: true, firstID: `"3" (tick)`}},
		{"greeting-without-id-carries-the-position", []eventstream.Item{carried("2", "connected", "x"), item("3", "tick", "c*")}, replayVerdict{done: true, found: true, firstID: `"3" (tick)`}},
		{"event-without-id-after-a-repeat", []eventstream.Item{item("2", "tick", "b"), carried("2", "tick", "x")}, replayVerdict{done: true, repeated: "2", firstID: `"2" (tick)`}},
		{"repeated", []eventstream.Item{item("2", "tick", "b")}, replayVerdict{done: true, repeated: "2", firstID: `"2" (tick)`}},
		{"skipped", []eventstream.Item{item("4", "tick", "d"), item("5", "tick", "e"), item("6", "tick", "f")}, replayVerdict{done: true, fresh: 3, firstID: `"4" (tick)`}},
		{"not-yet", []eventstream.Item{item("4", "tick", "d")}, replayVerdict{fresh: 1, firstID: `"4" (tick)`}},
	}
	for _, tc := range cases {
		if got := judgeReplay(first, from, tc.got); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if resumePoint([]eventstream.Item{item("", "m", "a"), item("", "m", "b")}) != -1 {
		t.Error("a stream without ids has no resume point")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := Config{Target: "ftp://x", StopURL: "nope", Origin: "http://a.test/path", Idle: -1, Timeout: -1,
		Header: http.Header{"Last-Event-Id": {"1"}}}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"target", "stop URL", "origin", "idle", "timeout", "Last-Event-Id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("empty config: %v", err)
	}
	if err := (Config{Target: "http://127.0.0.1:1/x"}).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestUnreachableTarget(t *testing.T) {
	t.Parallel()
	addr := unusedListener(t)
	_, err := Run(context.Background(), Config{Target: "http://" + addr + "/s/x", Idle: time.Second, Timeout: 2 * time.Second})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
}

// TestUntrustedCertificateIsUnreachable: without --insecure a self-signed server cannot
// be judged at all, and the error says how to proceed.
func TestUntrustedCertificateIsUnreachable(t *testing.T) {
	t.Parallel()
	base := startTestServer(t, goodOpts(), true)
	_, err := Run(context.Background(), Config{Target: base + "/s/tls", Idle: time.Second, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("err %v, want ErrUnreachable mentioning --insecure", err)
	}
}
