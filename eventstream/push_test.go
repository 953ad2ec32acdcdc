package eventstream

import (
	"bytes"
	"errors"
	"testing"
)

// parsePush drains a push parser fed chunks one at a time, each from a buffer that is
// overwritten as soon as the parser says it needs more input (as an event loop's one
// read buffer is), then ends the body with end.
func parsePush(chunks [][]byte, cfg Config, end error) outcome {
	p := NewPush(cfg)
	scratch := make([]byte, 0, 128)
	next := 0
	return drain(p, func() {
		for i := range scratch {
			scratch[i] = 0xFF // the parser must hold nothing of it
		}
		if next == len(chunks) {
			p.EndBody(end)
			return
		}
		scratch = append(scratch[:0], chunks[next]...)
		next++
		p.Feed(scratch)
	})
}

func TestPushParsesAsPull(t *testing.T) {
	for i, v := range loadVectors(t).Vectors {
		body := v.body(t)
		cfg := Config{LastEventID: v.InitialLastEventID}
		whole := parseAll(bytes.NewReader(body), cfg)
		for _, chunks := range [][][]byte{{body}, byteByByte(body), splitAt(body, randomCuts(body, uint64(i)))} {
			if diff := diffOutcome(whole, parsePush(chunks, cfg, nil)); diff != "" {
				t.Errorf("vector %d (%s): push parse differs: %s", i, v.Name, diff)
			}
		}
	}
}

func TestPushReadErrorIsReturned(t *testing.T) {
	boom := errors.New("connection reset")
	o := parsePush([][]byte{[]byte("data: a\n\ndata: unfinished")}, Config{}, boom)
	if !errors.Is(o.Err, boom) || len(o.Items) != 1 || o.Items[0].Data != "a" {
		t.Fatalf("got items %s, error %v; want one event a, then %v", fmtItems(o.Items), o.Err, boom)
	}
	if o.Offset != int64(len("data: a\n\ndata: unfinished")) {
		t.Fatalf("offset %d", o.Offset)
	}
}

func TestPushResetKeepsLastEventID(t *testing.T) {
	p := NewPush(Config{})
	p.Feed([]byte("id: 7\ndata: x\n\ndata: half"))
	for {
		if _, err := p.Next(); err != nil {
			if !errors.Is(err, ErrPending) {
				t.Fatal(err)
			}
			break
		}
	}
	p.Reset(nil)
	p.Feed([]byte("data: y\n\n"))
	it, err := p.Next()
	if err != nil || it.Data != "y" || it.ID != "7" || it.HasID {
		t.Fatalf("after Reset: %s, %v; want data y carrying id 7", fmtItem(it), err)
	}
}

// FuzzPush checks that a push parse of any body, split anywhere, equals the pull
// parse of the whole body.
func FuzzPush(f *testing.F) {
	for i, v := range loadVectors(f).Vectors {
		f.Add(v.body(f), []byte{byte(i), 1, 2, 3}, false)
	}
	f.Fuzz(func(t *testing.T, body, splits []byte, small bool) {
		cfg := Config{}
		if small {
			cfg.MaxLineSize, cfg.MaxEventSize = fuzzLimits.MaxLineSize, fuzzLimits.MaxEventSize
		}
		if diff := diffOutcome(parseAll(bytes.NewReader(body), cfg), parsePush(splitBy(body, splits), cfg, nil)); diff != "" {
			t.Fatalf("split %v: %s", splits, diff)
		}
	})
}
