package eventstream

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// One test per parsing rule of testdata/sse-parse-vectors.json ("rules"). Every case
// runs under every delivery of deliveries(), so each also checks split independence.

func TestP1_UTF8DecodingOneReplacementPerMaximalSubpart(t *testing.T) {
	const r = "\uFFFD"
	cases := []struct{ name, in, want string }{
		{"valid two-byte", "caf\xC3\xA9", "café"},
		{"valid four-byte", "\xF0\x9F\x98\x80!", "😀!"},
		{"truncated four-byte then ASCII", "\xF0\x9F\x98A", r + "A"},
		{"surrogate", "\xED\xA0\x80", r + r + r},
		{"overlong two-byte", "\xC0\x80", r + r},
		{"overlong three-byte", "\xE0\x80\x80", r + r + r},
		{"overlong four-byte", "\xF0\x8F\xBF\xBF", r + r + r + r},
		{"above U+10FFFF", "\xF4\x90\x80\x80", r + r + r + r},
		{"lone continuation", "a\x80b", "a" + r + "b"},
		{"invalid byte FF", "\xFF\xFE", r + r},
		{"truncated three-byte before LF", "x\xE2\x80", "x" + r},
		{"truncated two then valid", "\xE2\x82\xE2\x82\xAC", r + "€"},
		{"F5 never a lead", "\xF5\x80", r + r},
		{"latin-1 is not windows-1252", "ok\x85", "ok" + r},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectItems(t, "data:"+c.in+"\n\n", Config{}, msg(c.want))
		})
	}
	t.Run("replacement inside a field name makes it unknown", func(t *testing.T) {
		expectItems(t, "dat\xE1:x\n\ndata:y\n\n", Config{}, msg("y"))
	})
}

func TestP2_BOMDroppedOnlyAtByteZero(t *testing.T) {
	for _, c := range []struct{ body, data string }{
		{"\xEF\xBB\xBFdata:1\n\n", "1"},
		// A second BOM is text: it spoils the field name of the first line.
		{"\xEF\xBB\xBF\xEF\xBB\xBFdata:1\n\ndata:2\n\n", "2"},
		// A BOM after the first line, even right after a leading blank line, is text.
		{"\n\xEF\xBB\xBFdata:1\n\ndata:2\n\n", "2"},
		{"data:1\n\n\xEF\xBB\xBFdata:2\n\n", "1"},
		// Inside data the BOM is kept.
		{"data:\xEF\xBB\xBFx\n\n", "\uFEFFx"},
		// An incomplete BOM is an invalid sequence, not a BOM.
		{"\xEF\xBBdata:1\n\ndata:2\n\n", "2"},
		// An invalid first byte means the BOM after it is text.
		{"\xFF\xEF\xBB\xBFdata:1\n\ndata:2\n\n", "2"},
	} {
		expectItems(t, c.body, Config{}, msg(c.data))
	}
	// The BOM's three bytes in three separate reads (also covered by every delivery).
	o := parseAll(&chunkReader{chunks: [][]byte{{0xEF}, {0xBB}, {0xBF}, []byte("data:1\n\n")}}, Config{})
	if len(o.Items) != 1 || o.Items[0].Data != "1" {
		t.Errorf("BOM split over reads: %s", fmtItems(o.Items))
	}
}

func TestP3_LineEndings(t *testing.T) {
	expectItems(t, "data:a\rdata:b\ndata:c\r\ndata:d\r\r", Config{}, msg("a\nb\nc\nd"))
	expectItems(t, "data:a\n\r\ndata:b\r\n\n", Config{}, msg("a"), msg("b"))
	// CR LF counts once: "\r\n\r\n" is two lines, "\n\r" is two lines too.
	expectItems(t, "data:x\r\n\r\n", Config{}, msg("x"))
	expectItems(t, "data:x\n\rdata:y\n\n", Config{}, msg("x"), msg("y"))
	// LF CR LF: LF ends the data line, CR LF is one blank line.
	expectItems(t, "data:x\n\r\n", Config{}, msg("x"))
	// CR CR LF: two line ends, then the LF belongs to the second CR.
	expectItems(t, "data:x\r\r\ndata:y\n\n", Config{}, msg("x"), msg("y"))

	t.Run("a lone CR ends the line without waiting for the next read", func(t *testing.T) {
		rd := &blockingReader{chunks: [][]byte{[]byte("data:x\r"), []byte("\r")}}
		p := New(rd, Config{})
		it, err := p.Next()
		if err != nil || it.Kind != KindEvent || it.Data != "x" {
			t.Fatalf("Next = %s, %v; want the event before any further read", fmtItem(it), err)
		}
		// The LF that completes the second CR arrives later and is swallowed.
		rd.chunks = [][]byte{[]byte("\ndata:y\n\n")}
		it, err = p.Next()
		if err != nil || it.Data != "y" {
			t.Fatalf("after the late LF: Next = %s, %v", fmtItem(it), err)
		}
	})
}

// blockingReader serves its chunks, then reports errWouldBlock: a parser that reads
// again where it has what it needs shows up as that error.
type blockingReader struct{ chunks [][]byte }

var errWouldBlock = errors.New("test reader: the parser read past what it needed")

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.chunks) == 0 {
		return 0, errWouldBlock
	}
	n := copy(p, b.chunks[0])
	b.chunks[0] = b.chunks[0][n:]
	if len(b.chunks[0]) == 0 {
		b.chunks = b.chunks[1:]
	}
	return n, nil
}

func TestP4_BlankLineDispatches(t *testing.T) {
	expectItems(t, "data:1\n\ndata:2\n\n\n\ndata:3\n\n", Config{}, msg("1"), msg("2"), msg("3"))
	t.Run("dispatch happens at the blank line, not later", func(t *testing.T) {
		p := New(&blockingReader{chunks: [][]byte{[]byte("data:1\n\n")}}, Config{})
		if it, err := p.Next(); err != nil || it.Data != "1" {
			t.Fatalf("Next = %s, %v", fmtItem(it), err)
		}
	})
}

func TestP5_CommentsAreItemsAndNeverEndAnEvent(t *testing.T) {
	expectItems(t, "data:1\n: ping\ndata:2\n:\n\n",
		Config{}, cm(" ping"), cm(""), msg("1\n2"))
	o := expectItems(t, ": ping\n:pong\n:\n:\x00\n", Config{}, cm(" ping"), cm("pong"), cm(""), cm("\x00"))
	for _, it := range o.Items {
		if it.Kind != KindComment {
			t.Errorf("comment-only stream produced %s", fmtItem(it))
		}
	}
	// A comment-only block dispatches nothing.
	expectItems(t, ": hello\n\ndata:x\n\n", Config{}, cm(" hello"), msg("x"))
}

func TestP6_NameBeforeFirstColonOneSpaceRemoved(t *testing.T) {
	expectItems(t, "data:a:b: c\n\n", Config{}, msg("a:b: c"))
	expectItems(t, "data: x\n\n", Config{}, msg("x"))
	expectItems(t, "data:  x\n\n", Config{}, msg(" x"))
	expectItems(t, "data:\tx\n\n", Config{}, msg("\tx"))
	expectItems(t, "data: \n\n", Config{}, msg(""))
	expectItems(t, "event: a b\ndata:x\n\n", Config{}, ev("a b", "x", ""))
	expectItems(t, "id:  7\ndata:x\n\n", Config{}, msgID("x", " 7"))
}

func TestP7_LineWithoutColonIsFieldWithEmptyValue(t *testing.T) {
	expectItems(t, "data\n\n", Config{}, msg(""))
	expectItems(t, "data\ndata\n\n", Config{}, msg("\n"))
	expectItems(t, "event:x\nevent\ndata:y\n\n", Config{}, msg("y"))
	o := expectItems(t, "id:1\ndata:a\n\nid\ndata:b\n\n", Config{}, msgID("a", "1"), msg("b"))
	if o.LastID != "" {
		t.Errorf("bare id: last event ID %q, want reset to empty", o.LastID)
	}
	expectItems(t, "retry\ndata:x\n\n", Config{}, msg("x"))
}

func TestP8_ExactFieldNames(t *testing.T) {
	for _, line := range []string{"Data:x", "DATA:x", "data :x", " data:x", "data\x00:x", "datas:x", "dat:x", "\uFEFFdata:x", "foo:bar", "justtext"} {
		t.Run(line, func(t *testing.T) {
			// An unknown field neither adds data nor ends the block. (The leading
			// comment keeps a U+FEFF away from byte 0, where it would be a BOM.)
			expectItems(t, ":\n"+line+"\ndata:y\n\n", Config{}, cm(""), msg("y"))
		})
	}
	expectItems(t, "Event:x\nID:1\nRetry:5\ndata:y\n\n", Config{}, msg("y"))
}

func TestP9_DataJoinedWithLFOneTrailingLFRemoved(t *testing.T) {
	expectItems(t, "data:a\ndata:b\ndata:c\n\n", Config{}, msg("a\nb\nc"))
	expectItems(t, "data:a\n\n", Config{}, msg("a"))
	expectItems(t, "data:\ndata:\n\n", Config{}, msg("\n"))
	expectItems(t, "data:a\ndata:\n\n", Config{}, msg("a\n"))
	// An empty data buffer dispatches nothing, whatever else the block held.
	expectItems(t, "event:x\nid:1\n\n", Config{})
	expectItems(t, "\n\n\n", Config{})
	expectItems(t, "data:\x00\n\n", Config{}, msg("\x00"))
}

func TestP10_TypeBufferLastWinsAndResetAtEveryDispatch(t *testing.T) {
	expectItems(t, "event:a\nevent:b\ndata:x\n\n", Config{}, ev("b", "x", ""))
	expectItems(t, "event:a\ndata:x\n\ndata:y\n\n", Config{}, ev("a", "x", ""), msg("y"))
	// Reset even by a dispatch that fires nothing.
	expectItems(t, "event:a\n\ndata:y\n\n", Config{}, msg("y"))
	expectItems(t, "event:\ndata:x\n\n", Config{}, msg("x"))
	expectItems(t, "event:a\nevent:\ndata:x\n\n", Config{}, msg("x"))
	// The type is case-sensitive and kept as sent.
	expectItems(t, "event: Tick \ndata:x\n\n", Config{}, ev("Tick ", "x", ""))
}

func TestP11_IDBuffer(t *testing.T) {
	o := expectItems(t, "id:1\ndata:a\n\ndata:b\n\n", Config{}, msgID("a", "1"), msgID("b", "1"))
	if o.LastID != "1" {
		t.Errorf("id buffer survives dispatch: last event ID %q, want 1", o.LastID)
	}
	for _, v := range []string{"\x00", "x\x00", "\x00x", "x\x00x"} {
		o := expectItems(t, "id:2\ndata:a\n\nid:"+v+"\ndata:b\n\n", Config{}, msgID("a", "2"), msgID("b", "2"))
		if o.LastID != "2" {
			t.Errorf("id with NUL %q: last event ID %q, want 2 (ignored)", v, o.LastID)
		}
	}
	o = expectItems(t, "id:1\ndata:a\n\nid:\ndata:b\n\n", Config{}, msgID("a", "1"), msg("b"))
	if o.LastID != "" {
		t.Errorf("empty id: last event ID %q, want reset", o.LastID)
	}
	// A dispatch that fires nothing still commits the id buffer.
	o = expectItems(t, "id:5\n\n", Config{})
	if o.LastID != "5" {
		t.Errorf("id-only block: last event ID %q, want 5", o.LastID)
	}
	// An id not yet followed by a blank line is not committed.
	o = expectItems(t, "id:1\ndata:a\n\nid:9\n", Config{}, msgID("a", "1"))
	if o.LastID != "1" {
		t.Errorf("uncommitted id: last event ID %q, want 1", o.LastID)
	}
	// The id in effect is the buffer at dispatch, wherever the id line sits in the block.
	expectItems(t, "data:a\nid:3\n\n", Config{}, msgID("a", "3"))
	expectItems(t, "id:\u2026\ndata:a\n\n", Config{}, msgID("a", "\u2026"))
}

func TestP12_RetryOnlyAllASCIIDigits(t *testing.T) {
	valid := map[string]time.Duration{
		"retry:1000":                       time.Second,
		"retry: 1000":                      time.Second,
		"retry:0":                          0,
		"retry:03000":                      3 * time.Second,
		"retry:99999999999999999999999999": time.Duration(math.MaxInt64),
	}
	for line, want := range valid {
		expectItems(t, line+"\n", Config{}, Item{Kind: KindRetry, Retry: want})
	}
	for _, line := range []string{"retry", "retry:", "retry: ", "retry:1000 ", "retry:  1000", "retry:-1", "retry:+1",
		"retry:1e3", "retry:1.5", "retry:0x10", "retry:\uFF11", "retry:1000x", "Retry:10"} {
		expectItems(t, line+"\ndata:x\n\n", Config{}, msg("x"))
	}
	// Retry takes effect when the line is processed: no blank line needed, and an
	// unfinished block at EOF does not undo it.
	expectItems(t, "retry:5\ndata:x\n", Config{}, rt(5))
	expectItems(t, "data:a\nretry:7\ndata:b\n\n", Config{}, rt(7), msg("a\nb"))
}

func TestP13_EOFDiscardsUnfinishedBlock(t *testing.T) {
	expectItems(t, "data:x\n", Config{})
	expectItems(t, "data:x", Config{})
	expectItems(t, "data:x\r", Config{})
	expectItems(t, "data:1\n\ndata:2\n", Config{}, msg("1"))
	expectItems(t, "data:1\n\ndata:2", Config{}, msg("1"))
	expectItems(t, "event:a\nid:4\ndata:2\n", Config{})
	// An unterminated last line is not a line at all: no retry, no comment.
	expectItems(t, "data:1\n\nretry:5", Config{}, msg("1"))
	expectItems(t, "data:1\n\n: ping", Config{}, msg("1"))
	o := expectItems(t, "data:1\n\nid:3", Config{}, msg("1"))
	if o.LastID != "" {
		t.Errorf("unterminated id line: last event ID %q, want empty", o.LastID)
	}
	// EOF is returned again, and the discarded bytes count in Offset.
	body := "data:1\n\ndata:2\n"
	p := New(strings.NewReader(body), Config{})
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := p.Next(); err != io.EOF {
			t.Fatalf("Next at end = %v, want io.EOF", err)
		}
	}
	if p.Offset() != int64(len(body)) {
		t.Errorf("Offset %d, want %d", p.Offset(), len(body))
	}
}

func TestP14_LimitsAreReportedNeverTruncated(t *testing.T) {
	t.Run("default line limit message", func(t *testing.T) {
		body := []byte("data:ok\r\n\r\n:" + strings.Repeat("x", DefaultMaxLineSize) + "\n")
		// Byte-by-byte deliveries of 1 MiB are slow under -race; the small limits
		// below go through every delivery.
		o := parseAll(bytes.NewReader(body), Config{})
		if diff := diffOutcome(o, parseAll(iotest.HalfReader(bytes.NewReader(body)), Config{})); diff != "" {
			t.Errorf("HalfReader: %s", diff)
		}
		if diff := diffOutcome(o, parseAll(&chunkReader{chunks: splitAt(body, randomCuts(body, 7))}, Config{})); diff != "" {
			t.Errorf("random split: %s", diff)
		}
		if !strings.HasSuffix(o.Err.Error(), "(in the line starting at body byte 11)") || o.Offset != 11 {
			t.Errorf("error %q, Offset %d: want the offending line's start, byte 11", o.Err, o.Offset)
		}
		if !errors.Is(o.Err, ErrTooLarge) {
			t.Fatalf("error %v, want ErrTooLarge", o.Err)
		}
		if !strings.Contains(o.Err.Error(), "event stream line longer than 1048576 bytes") {
			t.Errorf("message %q does not say which limit", o.Err)
		}
		if len(o.Items) != 1 || o.Items[0].Data != "ok" {
			t.Errorf("items before the limit: %s", fmtItems(o.Items))
		}
	})
	t.Run("line limit boundary", func(t *testing.T) {
		cfg := Config{MaxLineSize: 10}
		expectItems(t, "data:12345\n\n", cfg, msg("12345"))
		o := checkEverySplit(t, []byte("data:123456\n\n"), cfg)
		if !errors.Is(o.Err, ErrTooLarge) || len(o.Items) != 0 {
			t.Errorf("11-byte line: %s, %v; want ErrTooLarge and no item", fmtItems(o.Items), o.Err)
		}
	})
	t.Run("an unterminated line past the limit fails before EOF", func(t *testing.T) {
		o := checkEverySplit(t, []byte("data:"+strings.Repeat("y", 100)), Config{MaxLineSize: 50})
		if !errors.Is(o.Err, ErrTooLarge) {
			t.Errorf("error %v, want ErrTooLarge", o.Err)
		}
	})
	t.Run("line limit counts decoded bytes", func(t *testing.T) {
		// Three invalid bytes decode to three U+FFFD, 9 bytes.
		o := checkEverySplit(t, []byte("data:\xFF\xFF\xFF\n\n"), Config{MaxLineSize: 12})
		if !errors.Is(o.Err, ErrTooLarge) {
			t.Errorf("error %v, want ErrTooLarge", o.Err)
		}
	})
	t.Run("event data limit boundary", func(t *testing.T) {
		cfg := Config{MaxEventSize: 7}
		expectItems(t, "data:abc\ndata:def\n\n", cfg, msg("abc\ndef"))
		o := checkEverySplit(t, []byte("data:a\n\ndata:abc\ndata:defg\n\n"), cfg)
		if !errors.Is(o.Err, ErrTooLarge) || !strings.Contains(o.Err.Error(), "event data longer than 7 bytes") {
			t.Errorf("error %v, want ErrTooLarge naming the data limit", o.Err)
		}
		if len(o.Items) != 1 || o.Items[0].Data != "a" {
			t.Errorf("items before the limit: %s", fmtItems(o.Items))
		}
	})
	t.Run("the error is sticky", func(t *testing.T) {
		p := New(strings.NewReader("data:123456789\n\ndata:ok\n\n"), Config{MaxLineSize: 5})
		_, err1 := p.Next()
		_, err2 := p.Next()
		if !errors.Is(err1, ErrTooLarge) || err1 != err2 {
			t.Errorf("errors %v then %v, want the same ErrTooLarge", err1, err2)
		}
	})
	t.Run("large lines within the limit survive any split", func(t *testing.T) {
		long := strings.Repeat("z", 3*DefaultReadBufferSize+17)
		expectItems(t, "data:"+long+"\r\n\r\n", Config{}, msg(long))
	})
	t.Run("read errors pass through after the items before them", func(t *testing.T) {
		boom := errors.New("connection reset")
		p := New(io.MultiReader(strings.NewReader("data:1\n\ndata:2\n"), &errReader{boom}), Config{})
		if it, err := p.Next(); err != nil || it.Data != "1" {
			t.Fatalf("Next = %s, %v", fmtItem(it), err)
		}
		if _, err := p.Next(); err != boom {
			t.Fatalf("Next = %v, want the read error itself", err)
		}
	})
	t.Run("a reader that never progresses", func(t *testing.T) {
		if _, err := New(&chunkReader{chunks: make([][]byte, 1000)}, Config{}).Next(); err != io.ErrNoProgress {
			t.Fatalf("Next = %v, want io.ErrNoProgress", err)
		}
	})
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

func TestP15_LastEventIDSeedsTheNewStream(t *testing.T) {
	cfg := Config{LastEventID: "41"}
	o := expectItems(t, "data:a\n\n", cfg, msgID("a", "41"))
	if o.LastID != "41" {
		t.Errorf("last event ID %q, want the seed", o.LastID)
	}
	p := New(strings.NewReader(""), cfg)
	if p.LastEventID() != "41" {
		t.Errorf("before any byte: LastEventID %q, want 41", p.LastEventID())
	}
	expectItems(t, "id:42\ndata:a\n\n", cfg, msgID("a", "42"))
	o = expectItems(t, "id\ndata:a\n\n", cfg, msg("a"))
	if o.LastID != "" {
		t.Errorf("reset by the server: %q", o.LastID)
	}

	t.Run("Reset carries the last event ID into the next body", func(t *testing.T) {
		p := New(strings.NewReader("id:7\ndata:a\n\nid:8\ndata:lost"), Config{})
		for {
			if _, err := p.Next(); err != nil {
				break
			}
		}
		p.Reset(strings.NewReader("\xEF\xBB\xBFdata:b\n\n"))
		if p.LastEventID() != "7" {
			t.Fatalf("after Reset: LastEventID %q, want 7", p.LastEventID())
		}
		it, err := p.Next()
		if err != nil || it.Data != "b" || it.ID != "7" || it.Bytes != len("\xEF\xBB\xBFdata:b\n\n") {
			t.Fatalf("after Reset: %s, %v (BOM stripped again, id 7, bytes from 0)", fmtItem(it), err)
		}
	})
}

func TestItemBytesCountsRawBytesPerItem(t *testing.T) {
	body := "\xEF\xBB\xBFdata:x\n\n: ping\r\nretry:5\r\rdata:\xFF\n\nid:1\n"
	o := checkEverySplit(t, []byte(body), Config{})
	var got []int
	for _, it := range o.Items {
		got = append(got, it.Bytes)
	}
	// BOM+"data:x\n\n"; ": ping\r"; "\nretry:5\r"; "\rdata:\xFF\n\n" (the second CR
	// ends a blank line that dispatches nothing, so it counts toward the event).
	want := []int{3 + 8, 7, 9, 9}
	if len(got) != len(want) {
		t.Fatalf("items %s", fmtItems(o.Items))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d (%s): Bytes %d, want %d", i, fmtItem(o.Items[i]), got[i], want[i])
		}
	}
	if o.Offset != int64(len(body)) {
		t.Errorf("Offset %d, want %d", o.Offset, len(body))
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindEvent: "event", KindComment: "comment", KindRetry: "retry", 0: "Kind(0)"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	err := Config{MaxLineSize: -1, MaxEventSize: -2, ReadBufferSize: -3}.Validate()
	for _, name := range []string{"MaxLineSize", "MaxEventSize", "ReadBufferSize"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Validate = %v, want a problem about %s", err, name)
		}
	}
	// New treats what Validate rejects as the defaults rather than failing.
	o := parseAll(bytes.NewReader([]byte("data:x\n\n")), Config{MaxLineSize: -1, MaxEventSize: -1, ReadBufferSize: -1})
	if len(o.Items) != 1 || o.Err != nil {
		t.Errorf("negative config: %s, %v", fmtItems(o.Items), o.Err)
	}
}

// TestHasIDMarksEventsWithTheirOwnID: HasID is set only on events whose own block had an
// honoured id field; the others carry the previous id over (P11) without HasID.
func TestHasIDMarksEventsWithTheirOwnID(t *testing.T) {
	o := checkEverySplit(t, []byte("id: 1\ndata: a\n\ndata: b\n\nid: 1\ndata: c\n\nid: x\x00\ndata: d\n\nid\ndata: e\n\n"), Config{})
	got := events(o.Items)
	want := []struct {
		data, id string
		has      bool
	}{{"a", "1", true}, {"b", "1", false}, {"c", "1", true}, {"d", "1", false}, {"e", "", true}}
	if len(got) != len(want) {
		t.Fatalf("got %s", fmtItems(got))
	}
	for i, w := range want {
		if got[i].Data != w.data || got[i].ID != w.id || got[i].HasID != w.has {
			t.Errorf("event %d: data %q id %q HasID %v, want %q %q %v", i, got[i].Data, got[i].ID, got[i].HasID, w.data, w.id, w.has)
		}
	}
}
