package eventstream

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// fuzzLimits are small so the fuzzer reaches both limits often.
var fuzzLimits = Config{MaxLineSize: 40, MaxEventSize: 60}

// FuzzParse checks, for any body and any way of splitting it into reads chosen by the
// fuzzer: no panic; the same items (with the same Bytes), error, last event ID and
// offset as the whole-body parse; agreement with the naive oracle refParse; no item
// beyond the size limits; and every body byte accounted for at EOF.
func FuzzParse(f *testing.F) {
	for i, v := range loadVectors(f).Vectors {
		f.Add(v.body(f), []byte{byte(i), 1, 2, 3}, false, v.InitialLastEventID)
		f.Add(v.body(f), []byte{1}, true, "")
	}
	for _, s := range []string{
		"\xEF\xBB\xBFdata:\xF0\x9F\x98\x80\r\n\r\n",
		"data:\xF0\x9F\x98A\rdata:\xED\xA0\x80\n\n",
		"id:1\ndata\n\nid:\x00\ndata:x\r\r",
		"retry:99999999999999999999\nretry:12\n:c\n",
		"data:" + string(bytes.Repeat([]byte("x"), 100)) + "\n\n",
		"event:e\r\n\r\ndata:1\ndata:2\n\ndata:3",
	} {
		f.Add([]byte(s), []byte{3, 0, 7}, true, "seed")
	}
	f.Fuzz(func(t *testing.T, body, splits []byte, small bool, lastID string) {
		cfg := Config{LastEventID: lastID}
		if small {
			cfg.MaxLineSize, cfg.MaxEventSize = fuzzLimits.MaxLineSize, fuzzLimits.MaxEventSize
		}
		whole := parseAll(bytes.NewReader(body), cfg)

		chunks := splitBy(body, splits)
		split := parseAll(&chunkReader{chunks: chunks}, cfg)
		if diff := diffOutcome(whole, split); diff != "" {
			t.Fatalf("split %v: %s", splits, diff)
		}
		tiny := cfg
		tiny.ReadBufferSize = 1 + len(splits)%7
		if diff := diffOutcome(whole, parseAll(bytes.NewReader(body), tiny)); diff != "" {
			t.Fatalf("ReadBufferSize %d: %s", tiny.ReadBufferSize, diff)
		}

		refItems, refLastID, refTooLarge := refParse(body, cfg)
		if got := withoutBytes(whole.Items); !reflect.DeepEqual(got, refItems) && len(got)+len(refItems) > 0 {
			t.Fatalf("parser and oracle disagree\n parser %s\n oracle %s", fmtItems(got), fmtItems(refItems))
		}
		if whole.LastID != refLastID {
			t.Fatalf("last event ID: parser %q, oracle %q", whole.LastID, refLastID)
		}
		if gotTooLarge := errors.Is(whole.Err, ErrTooLarge); gotTooLarge != refTooLarge || (whole.Err != nil && !gotTooLarge) {
			t.Fatalf("error %v, oracle says too large: %v", whole.Err, refTooLarge)
		}

		maxLine, maxEvent := positiveOr(cfg.MaxLineSize, DefaultMaxLineSize), positiveOr(cfg.MaxEventSize, DefaultMaxEventSize)
		sum := 0
		for _, it := range whole.Items {
			sum += it.Bytes
			if len(it.Data) > maxEvent || len(it.Comment) > maxLine || len(it.Type) > maxLine ||
				(len(it.ID) > maxLine && it.ID != lastID) {
				t.Fatalf("item beyond the limits %d/%d: %s", maxLine, maxEvent, fmtItem(it))
			}
			if it.Bytes <= 0 {
				t.Fatalf("item with Bytes %d: %s", it.Bytes, fmtItem(it))
			}
		}
		if int64(sum) > whole.Offset || whole.Offset > int64(len(body)) {
			t.Fatalf("sum of Bytes %d, Offset %d, body %d", sum, whole.Offset, len(body))
		}
		if whole.Err == nil && whole.Offset != int64(len(body)) {
			t.Fatalf("at EOF Offset %d, body %d bytes", whole.Offset, len(body))
		}
	})
}
