package eventstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// outcome is everything a parse of one body yields, for comparing parses of the same
// bytes delivered differently.
type outcome struct {
	Items  []Item
	Err    error // nil at io.EOF
	LastID string
	Offset int64
}

// parseAll drains a parser over r.
func parseAll(r io.Reader, cfg Config) outcome {
	return drain(New(r, cfg), nil)
}

// drain collects p's items up to its first error. With refill set, ErrPending is not
// an end: refill is called, and must feed p more input or end its body.
func drain(p *Parser, refill func()) outcome {
	var o outcome
	for {
		it, err := p.Next()
		if refill != nil && errors.Is(err, ErrPending) {
			refill()
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				o.Err = err
			}
			break
		}
		o.Items = append(o.Items, it)
	}
	o.LastID = p.LastEventID()
	o.Offset = p.Offset()
	return o
}

// splitBy cuts body into chunks whose sizes (1 to 97) cycle through splits, or into
// single bytes when splits is empty.
func splitBy(body, splits []byte) [][]byte {
	var chunks [][]byte
	rest := body
	for i := 0; len(rest) > 0; i++ {
		n := 1
		if len(splits) > 0 {
			n = 1 + int(splits[i%len(splits)])%97
		}
		n = min(n, len(rest))
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	return chunks
}

// chunkReader returns its chunks one per Read (an empty chunk is a (0, nil) read).
type chunkReader struct {
	chunks [][]byte
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.chunks[0])
	if n == len(c.chunks[0]) {
		c.chunks = c.chunks[1:]
	} else {
		c.chunks[0] = c.chunks[0][n:]
	}
	return n, nil
}

// splitAt cuts body at the given sorted, in-range offsets.
func splitAt(body []byte, cuts []int) [][]byte {
	var chunks [][]byte
	prev := 0
	for _, c := range cuts {
		chunks = append(chunks, body[prev:c])
		prev = c
	}
	return append(chunks, body[prev:])
}

// randomCuts picks up to len(body) cut points from a seeded generator, so a failure
// names a seed that reproduces it.
func randomCuts(body []byte, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0x5EED))
	var cuts []int
	for i := 1; i < len(body); i++ {
		if rng.IntN(4) == 0 {
			cuts = append(cuts, i)
		}
	}
	return cuts
}

func byteByByte(body []byte) [][]byte {
	chunks := make([][]byte, len(body))
	for i := range body {
		chunks[i] = body[i : i+1]
	}
	return chunks
}

// delivery is one way of handing a body to the parser.
type delivery struct {
	name string
	cfg  func(Config) Config
	rd   func([]byte) io.Reader
}

func sameCfg(c Config) Config { return c }

// deliveries returns every delivery the split-independence checks use.
func deliveries() []delivery {
	ds := []delivery{
		{"whole", sameCfg, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"byte-by-byte", sameCfg, func(b []byte) io.Reader { return &chunkReader{chunks: byteByByte(b)} }},
		{"read-buffer-1", func(c Config) Config { c.ReadBufferSize = 1; return c }, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"read-buffer-3", func(c Config) Config { c.ReadBufferSize = 3; return c }, func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"iotest.OneByteReader", sameCfg, func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		{"iotest.HalfReader", sameCfg, func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
		{"iotest.DataErrReader", sameCfg, func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
		{"iotest.DataErrReader(OneByteReader)", sameCfg, func(b []byte) io.Reader {
			return iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(b)))
		}},
		{"empty-reads", sameCfg, func(b []byte) io.Reader {
			var chunks [][]byte
			for _, c := range byteByByte(b) {
				chunks = append(chunks, nil, c)
			}
			return &chunkReader{chunks: chunks}
		}},
	}
	for _, seed := range []uint64{1, 2, 3, 42, 1234} {
		ds = append(ds, delivery{fmt.Sprintf("random-seed-%d", seed), sameCfg, func(b []byte) io.Reader {
			return &chunkReader{chunks: splitAt(b, randomCuts(b, seed))}
		}})
	}
	return ds
}

// checkEverySplit parses body whole and under every delivery and fails on any
// difference; it returns the whole-body outcome.
func checkEverySplit(t *testing.T, body []byte, cfg Config) outcome {
	t.Helper()
	whole := parseAll(bytes.NewReader(body), cfg)
	for _, d := range deliveries() {
		got := parseAll(d.rd(body), d.cfg(cfg))
		if diff := diffOutcome(whole, got); diff != "" {
			t.Errorf("%s: differs from whole-body parse: %s", d.name, diff)
		}
	}
	return whole
}

func diffOutcome(a, b outcome) string {
	if !reflect.DeepEqual(a.Items, b.Items) {
		return fmt.Sprintf("items\n  whole: %s\n  split: %s", fmtItems(a.Items), fmtItems(b.Items))
	}
	if (a.Err == nil) != (b.Err == nil) || (a.Err != nil && a.Err.Error() != b.Err.Error()) {
		return fmt.Sprintf("error: whole %v, split %v", a.Err, b.Err)
	}
	if a.LastID != b.LastID {
		return fmt.Sprintf("last event ID: whole %q, split %q", a.LastID, b.LastID)
	}
	if a.Offset != b.Offset {
		return fmt.Sprintf("offset: whole %d, split %d", a.Offset, b.Offset)
	}
	return ""
}

func fmtItems(items []Item) string {
	var sb strings.Builder
	sb.WriteString("[")
	for i, it := range items {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(fmtItem(it))
	}
	sb.WriteString("]")
	return sb.String()
}

func fmtItem(it Item) string {
	switch it.Kind {
	case KindEvent:
		return fmt.Sprintf("event{type=%q data=%q id=%q bytes=%d}", it.Type, it.Data, it.ID, it.Bytes)
	case KindComment:
		return fmt.Sprintf("comment{%q bytes=%d}", it.Comment, it.Bytes)
	case KindRetry:
		return fmt.Sprintf("retry{%v bytes=%d}", it.Retry, it.Bytes)
	}
	return fmt.Sprintf("%#v", it)
}

// Shorthands for expected items; Bytes is not compared by expectItems.
func ev(typ, data, id string) Item {
	return Item{Kind: KindEvent, Type: typ, Data: data, ID: id}
}
func cm(text string) Item        { return Item{Kind: KindComment, Comment: text} }
func rt(ms time.Duration) Item   { return Item{Kind: KindRetry, Retry: ms * time.Millisecond} }
func msg(data string) Item       { return ev("message", data, "") }
func msgID(data, id string) Item { return ev("message", data, id) }

func withoutBytes(items []Item) []Item {
	out := make([]Item, len(items))
	for i, it := range items {
		it.Bytes = 0
		out[i] = it
	}
	return out
}

// expectItems parses body under every delivery and checks the items (ignoring Bytes)
// and that the stream ended cleanly at EOF.
func expectItems(t *testing.T, body string, cfg Config, want ...Item) outcome {
	t.Helper()
	o := checkEverySplit(t, []byte(body), cfg)
	if o.Err != nil {
		t.Errorf("body %q: unexpected error %v", body, o.Err)
	}
	if want == nil {
		want = []Item{}
	}
	// HasID has its own test (TestHasIDMarksEventsWithTheirOwnID); the rule tests
	// compare everything else.
	if got := withoutHasID(withoutBytes(o.Items)); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("body %q:\n got  %s\n want %s", body, fmtItems(got), fmtItems(want))
	}
	return o
}

func withoutHasID(items []Item) []Item {
	for i := range items {
		items[i].HasID = false
	}
	return items
}

// events keeps only the KindEvent items.
func events(items []Item) []Item {
	var out []Item
	for _, it := range items {
		if it.Kind == KindEvent {
			out = append(out, it)
		}
	}
	return out
}
