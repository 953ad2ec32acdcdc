package eventstream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// vectorFile is the shape of testdata/sse-parse-vectors.json (format sse-parse-vectors/1).
type vectorFile struct {
	Format  string            `json:"format"`
	Vectors []vector          `json:"vectors"`
	Rules   map[string]string `json:"rules"`
}

type vector struct {
	Name               string   `json:"name"`
	Rules              []string `json:"rules"`
	StreamB64          string   `json:"stream_b64"`
	ChunksB64          []string `json:"chunks_b64"`
	InitialLastEventID string   `json:"initial_last_event_id"`
	ExpectedEvents     []struct {
		Type        string `json:"type"`
		Data        string `json:"data"`
		LastEventID string `json:"lastEventId"`
	} `json:"expected_events"`
	ExpectedReconnectionMS *int64 `json:"expected_reconnection_time_ms"`
	ExpectedLastEventID    string `json:"expected_last_event_id"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "sse-parse-vectors.json"))
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatalf("decoding vectors: %v", err)
	}
	if vf.Format != "sse-parse-vectors/1" || len(vf.Vectors) == 0 {
		t.Fatalf("unexpected vector file: format %q, %d vectors", vf.Format, len(vf.Vectors))
	}
	return vf
}

func (v vector) body(t testing.TB) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v.StreamB64)
	if err != nil {
		t.Fatalf("%s: stream_b64: %v", v.Name, err)
	}
	return b
}

// reporter is the part of testing.T checkVector uses, so a test can watch it fail.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// failures records Errorf calls.
type failures struct{ msgs []string }

func (f *failures) Helper() {}
func (f *failures) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

// checkVector compares one outcome with what the vector expects.
func checkVector(t reporter, v vector, how string, o outcome) {
	t.Helper()
	if o.Err != nil {
		t.Errorf("%s: error %v", how, o.Err)
	}
	got := events(o.Items)
	if len(got) != len(v.ExpectedEvents) {
		t.Errorf("%s: %d events %s, want %d", how, len(got), fmtItems(got), len(v.ExpectedEvents))
	} else {
		for i, w := range v.ExpectedEvents {
			g := got[i]
			if g.Type != w.Type || g.Data != w.Data || g.ID != w.LastEventID {
				t.Errorf("%s: event %d = type %q data %q id %q, want type %q data %q id %q",
					how, i, g.Type, g.Data, g.ID, w.Type, w.Data, w.LastEventID)
			}
		}
	}
	var retry *time.Duration
	for _, it := range o.Items {
		if it.Kind == KindRetry {
			r := it.Retry
			retry = &r
		}
	}
	switch {
	case v.ExpectedReconnectionMS == nil && retry != nil:
		t.Errorf("%s: reconnection time set to %v, want unset", how, *retry)
	case v.ExpectedReconnectionMS != nil && retry == nil:
		t.Errorf("%s: reconnection time unset, want %d ms", how, *v.ExpectedReconnectionMS)
	case v.ExpectedReconnectionMS != nil && *retry != time.Duration(*v.ExpectedReconnectionMS)*time.Millisecond:
		t.Errorf("%s: reconnection time %v, want %d ms", how, *retry, *v.ExpectedReconnectionMS)
	}
	if o.LastID != v.ExpectedLastEventID {
		t.Errorf("%s: last event ID %q, want %q", how, o.LastID, v.ExpectedLastEventID)
	}
}

// TestVectors runs every shared parse vector whole, byte by byte, in seeded random
// splits and through the testing/iotest readers, and checks the expected events,
// reconnection time and last event ID each way.
func TestVectors(t *testing.T) {
	vf := loadVectors(t)
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			body := v.body(t)
			cfg := Config{LastEventID: v.InitialLastEventID}
			for _, d := range deliveries() {
				checkVector(t, v, d.name, parseAll(d.rd(body), d.cfg(cfg)))
			}
			if v.ChunksB64 != nil {
				var chunks [][]byte
				for _, c := range v.ChunksB64 {
					b, err := base64.StdEncoding.DecodeString(c)
					if err != nil {
						t.Fatalf("chunks_b64: %v", err)
					}
					chunks = append(chunks, b)
				}
				checkVector(t, v, "chunks_b64", parseAll(&chunkReader{chunks: chunks}, cfg))
			}
			// Every cut point on its own, so a split inside any multi-byte sequence,
			// BOM or CRLF is covered.
			for cut := 1; cut < len(body) && cut < 600; cut++ {
				o := parseAll(&chunkReader{chunks: splitAt(body, []int{cut})}, cfg)
				checkVector(t, v, "cut", o)
				if t.Failed() {
					t.Fatalf("first failure with the body cut at byte %d", cut)
				}
			}
			// Bytes accounts for the body exactly.
			o := parseAll(bytes.NewReader(body), cfg)
			sum := 0
			for _, it := range o.Items {
				sum += it.Bytes
			}
			if o.Offset != int64(len(body)) || sum > len(body) {
				t.Errorf("offset %d, sum of Item.Bytes %d, body %d bytes", o.Offset, sum, len(body))
			}
		})
	}
}

// TestVectorsCoverEveryRule guards the vector file copy: each rule P1..P15 is
// exercised by at least one vector or has its own test below.
func TestVectorsCoverEveryRule(t *testing.T) {
	vf := loadVectors(t)
	if len(vf.Rules) != 15 {
		t.Fatalf("vector file defines %d rules, want P1..P15", len(vf.Rules))
	}
	seen := map[string]bool{}
	for _, v := range vf.Vectors {
		for _, r := range v.Rules {
			if _, ok := vf.Rules[r]; !ok {
				t.Errorf("vector %s names undefined rule %s", v.Name, r)
			}
			seen[r] = true
		}
	}
	for r := range vf.Rules {
		if !seen[r] && r != "P14" { // P14 (limits, splitting) is covered by TestP14* and FuzzParse
			t.Errorf("no vector exercises %s", r)
		}
	}
}

// TestVectorCheckCanFail feeds a vector a body that differs from its stream and
// expects checkVector to notice, so a passing TestVectors means something.
func TestVectorCheckCanFail(t *testing.T) {
	vf := loadVectors(t)
	for _, v := range vf.Vectors {
		if len(v.ExpectedEvents) == 0 {
			continue
		}
		var f failures
		body := append(v.body(t), "data: extra\n\n"...)
		checkVector(&f, v, "mutated", parseAll(bytes.NewReader(body), Config{LastEventID: v.InitialLastEventID}))
		if len(f.msgs) == 0 {
			t.Errorf("%s: an extra event went unnoticed", v.Name)
		}
		f = failures{}
		o := parseAll(bytes.NewReader(v.body(t)), Config{LastEventID: v.InitialLastEventID})
		o.LastID += "x"
		checkVector(&f, v, "mutated", o)
		if len(f.msgs) == 0 {
			t.Errorf("%s: a wrong last event ID went unnoticed", v.Name)
		}
	}
}
