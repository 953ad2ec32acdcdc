package eventstream

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// refParse is a second, deliberately naive implementation of the same rules, used as
// an oracle by FuzzParse: it decodes the whole body at once, splits it into lines with
// strings, and interprets them the way the spec text reads. It shares no code with the
// parser. tooLarge reports that the parser must stop with ErrTooLarge after items.
func refParse(body []byte, cfg Config) (items []Item, lastID string, tooLarge bool) {
	maxLine := positiveOrRef(cfg.MaxLineSize, 1<<20)
	maxEvent := positiveOrRef(cfg.MaxEventSize, 1<<20)
	text := refDecode(body)
	text = strings.TrimPrefix(text, "\uFEFF")

	var lines []string
	for {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			break
		}
		lines = append(lines, text[:i])
		if strings.HasPrefix(text[i:], "\r\n") {
			text = text[i+2:]
		} else {
			text = text[i+1:]
		}
	}
	tail := text // unterminated: discarded at EOF, but still subject to the line limit

	lastID = cfg.LastEventID
	idBuf, typ, data := lastID, "", ""
	hasData, hasID := false, false
	for _, line := range lines {
		if len(line) > maxLine {
			return items, lastID, true
		}
		if line == "" {
			lastID = idBuf
			if hasData {
				t := typ
				if t == "" {
					t = "message"
				}
				items = append(items, Item{Kind: KindEvent, Type: t, Data: data, ID: lastID, HasID: hasID})
			}
			typ, data, hasData, hasID = "", "", false, false
			continue
		}
		if line[0] == ':' {
			items = append(items, Item{Kind: KindComment, Comment: line[1:]})
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			typ = value
		case "data":
			next := value
			if hasData {
				next = data + "\n" + value
			}
			if len(next) > maxEvent {
				return items, lastID, true
			}
			data, hasData = next, true
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf, hasID = value, true
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				items = append(items, Item{Kind: KindRetry, Retry: refRetry(value)})
			}
		}
	}
	return items, lastID, len(tail) > maxLine
}

func positiveOrRef(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func refRetry(digits string) time.Duration {
	ms, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || ms > math.MaxInt64/int64(time.Millisecond) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

// refDecode decodes b as the WHATWG UTF-8 decoder would, using the standard library
// for valid sequences and a brute-force search for the maximal valid prefix of an
// invalid one. A valid but incomplete sequence at the very end is left out, as a
// streaming decoder still waiting for bytes at EOF emits nothing for it before the
// unterminated last line is discarded.
func refDecode(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			sb.WriteRune(r)
			b = b[n:]
			continue
		}
		k := maximalValidPrefix(b)
		if k > 0 && k == len(b) {
			break
		}
		sb.WriteRune(utf8.RuneError)
		b = b[max(k, 1):]
	}
	return sb.String()
}

// maximalValidPrefix returns how many leading bytes of b (less than a whole sequence)
// could still start a valid UTF-8 sequence.
func maximalValidPrefix(b []byte) int {
	want := 0
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		want = 2
	case c >= 0xE0 && c <= 0xEF:
		want = 3
	case c >= 0xF0 && c <= 0xF4:
		want = 4
	default:
		return 0
	}
	best := 0
	for k := 1; k < want && k <= len(b); k++ {
		if completable(b[:k], want) {
			best = k
		} else {
			break
		}
	}
	return best
}

// completable reports whether some continuation bytes make prefix a valid sequence of
// length n.
func completable(prefix []byte, n int) bool {
	for second := byte(0x80); second <= 0xBF; second++ {
		seq := append([]byte(nil), prefix...)
		if len(seq) == 1 {
			seq = append(seq, second)
		}
		for len(seq) < n {
			seq = append(seq, 0x80)
		}
		if utf8.Valid(seq) {
			return true
		}
		if len(prefix) > 1 {
			return false
		}
	}
	return false
}

// TestReferenceAgreesOnVectors makes sure the oracle itself passes the shared vectors,
// so a fuzz disagreement points at the parser, not at the oracle.
func TestReferenceAgreesOnVectors(t *testing.T) {
	vf := loadVectors(t)
	for _, v := range vf.Vectors {
		items, lastID, tooLarge := refParse(v.body(t), Config{LastEventID: v.InitialLastEventID})
		if tooLarge {
			t.Errorf("%s: oracle hit a limit", v.Name)
		}
		checkVector(t, v, "oracle", outcome{Items: items, LastID: lastID})
	}
}

func TestReferenceDecoder(t *testing.T) {
	for in, want := range map[string]string{
		"\xF0\x9F\x98A":    "\uFFFDA",
		"\xED\xA0\x80":     "\uFFFD\uFFFD\uFFFD",
		"\xC0\x80":         "\uFFFD\uFFFD",
		"\xE0\xA0":         "", // incomplete at the end: pending
		"\xE0\x80":         "\uFFFD\uFFFD",
		"\xF4\x8F\xBF\xBF": "\U0010FFFF",
		"a\xF4\x90":        "a\uFFFD\uFFFD",
	} {
		if got := refDecode([]byte(in)); got != want {
			t.Errorf("refDecode(%q) = %q, want %q", in, got, want)
		}
	}
}
