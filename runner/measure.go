package runner

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// seqWindow is how many ids below the highest one a stream remembers. Ids are mostly
// increasing, so a stream keeps the highest id and a ring bitmap of the seqWindow ids
// under it (128 bytes): a repeat within the window is a Duplicate, an id older than
// the window is reported OutOfOrder since it can no longer be told from a duplicate.
const seqWindow = 1024

// Id models. A stream's numeric ids are one run of a counter until they go backwards
// at a connection's first event to where the run began (or past the window): a
// per-connection counter or a restarted server, an id reset; or until they jump
// forward by more than the target could have produced since the last event (more than
// jumpMin ids, and more than jumpFactor times the run's own id rate over the time
// since the last event): a per-connection greeting id followed by a live counter, an
// id jump. Either restarts the tracking at the new id, and neither counts as missing,
// duplicated or out of order. The rate is known once a run spans rateSpan.
const (
	jumpMin    = seqWindow
	jumpFactor = 10
	rateSpan   = int64(time.Second)
)

// seqTracker finds missing, duplicated and out-of-order numeric ids of one stream
// across its reconnects, in O(1) memory; opaque ids are checked for repeats in a
// small window.
type seqTracker struct {
	have   bool
	hi     int64 // highest id of the current run
	lo     int64 // first id of the current run
	loAt   int64 // unix ns when the run began
	hiAt   int64 // unix ns when hi arrived
	lastAt int64 // unix ns of the latest numeric id
	bits   [seqWindow / 64]uint64
	opaque *opaqueWindow // allocated at the first opaque id
}

// seqResult is how an id relates to the ids seen before; see Record.
type seqResult struct {
	missing    int64
	dup        bool
	outOfOrder bool
	reset      bool
	jump       bool
	jumped     int64
}

func (t *seqTracker) bit(s int64) (word int, mask uint64) {
	i := uint64(s) % seqWindow
	return int(i / 64), 1 << (i % 64)
}

func (t *seqTracker) set(s int64) {
	w, m := t.bit(s)
	t.bits[w] |= m
}

func (t *seqTracker) clear(s int64) {
	w, m := t.bit(s)
	t.bits[w] &^= m
}

func (t *seqTracker) isSet(s int64) bool {
	w, m := t.bit(s)
	return t.bits[w]&m != 0
}

// restart begins a new run at id s, seen at unix ns at.
func (t *seqTracker) restart(s, at int64) {
	t.have = true
	t.hi, t.lo = s, s
	t.loAt, t.hiAt, t.lastAt = at, at, at
	t.bits = [seqWindow / 64]uint64{}
	t.set(s)
}

// seed records the last event ID a stream starts from as seen without reporting it,
// so that the first event after a resume reports the ids it skipped, or a repeat.
func (t *seqTracker) seed(id string, at int64) {
	if s := parseSeq(id); s >= 0 {
		if !t.have {
			t.restart(s, at)
			return
		}
		t.observe(s, at, true)
		return
	}
	if id != "" {
		t.observeOpaque(id)
	}
}

// ratePerNs is the run's id rate (ids per ns), 0 while it spans less than rateSpan.
func (t *seqTracker) ratePerNs() float64 {
	span := t.hiAt - t.loAt
	if span < rateSpan || t.hi <= t.lo {
		return 0
	}
	return float64(t.hi-t.lo) / float64(span)
}

// observe records numeric id s (>= 0) seen at unix ns at; connFirst says it is the
// first event of a connection.
func (t *seqTracker) observe(s, at int64, connFirst bool) seqResult {
	if !t.have {
		t.restart(s, at)
		return seqResult{}
	}
	elapsed := max(at-t.lastAt, 0)
	t.lastAt = at
	if d := s - t.hi; d > jumpMin && float64(d) > jumpFactor*t.ratePerNs()*float64(max(elapsed, rateSpan)) {
		t.restart(s, at)
		return seqResult{jump: true, jumped: d - 1}
	}
	if s < t.hi && connFirst && (s <= t.lo || t.hi-s >= seqWindow) {
		t.restart(s, at)
		return seqResult{reset: true}
	}
	return t.observePlain(s, at)
}

// observePlain relates id s to the ids seen before as one sequence: no resets, no
// jumps. Publish-driven marks are tracked so: they are the truth.
func (t *seqTracker) observePlain(s, at int64) seqResult {
	if !t.have {
		t.restart(s, at)
		return seqResult{}
	}
	switch {
	case s > t.hi:
		d := s - t.hi
		if d >= seqWindow {
			t.bits = [seqWindow / 64]uint64{}
		} else {
			for k := t.hi + 1; k < s; k++ {
				t.clear(k)
			}
		}
		t.set(s)
		t.hi, t.hiAt = s, at
		return seqResult{missing: d - 1}
	case s == t.hi:
		// The event the client had, sent again (an inclusive replay): a repeat, also
		// at a connection's start.
		return seqResult{dup: true}
	case t.hi-s >= seqWindow:
		return seqResult{outOfOrder: true}
	case t.isSet(s):
		return seqResult{dup: true}
	default:
		t.set(s)
		return seqResult{outOfOrder: true}
	}
}

// opaqueWindowSize is how many recent opaque ids a stream remembers (as 64-bit
// hashes: 256 bytes).
const opaqueWindowSize = 32

// opaqueWindow remembers the hashes of a stream's most recent opaque ids.
type opaqueWindow struct {
	h    [opaqueWindowSize]uint64
	n    int // filled entries, up to opaqueWindowSize
	next int
}

// observeOpaque records a non-numeric id and reports whether it is one of the
// stream's recent ones: opaque ids have no order, so repeats are all that can be
// checked without publish-driven marks.
func (t *seqTracker) observeOpaque(id string) (dup bool) {
	if t.opaque == nil {
		t.opaque = &opaqueWindow{}
	}
	w := t.opaque
	h := fnv64(id)
	for i := 0; i < w.n; i++ {
		if w.h[i] == h {
			return true
		}
	}
	w.h[w.next] = h
	w.next = (w.next + 1) % opaqueWindowSize
	w.n = min(w.n+1, opaqueWindowSize)
	return false
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// parseSeq returns the event id as a sequence number, or -1 when it is not a plain
// non-negative decimal number.
func parseSeq(id string) int64 {
	if id == "" || id[0] < '0' || id[0] > '9' {
		return -1
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// senderWindow bounds how many earlier senders one connection remembers.
const senderWindow = 4

// senderTracker detects two senders pushing into one connection: an event whose
// sender was seen earlier in the connection before a different sender appeared
// (A, B, A flags the second A; a plain switch A -> B flags nothing). It remembers the
// current sender and the last senderWindow senders it replaced.
type senderTracker struct {
	cur     string
	retired [senderWindow]string
	next    int
}

func (t *senderTracker) reset() { *t = senderTracker{} }

func (t *senderTracker) isRetired(s string) bool {
	for _, r := range t.retired {
		if r != "" && r == s {
			return true
		}
	}
	return false
}

// observe records an event from sender s and reports whether it is a duplicate sender.
func (t *senderTracker) observe(s string) bool {
	if s == "" {
		return false
	}
	if s == t.cur {
		return t.isRetired(s)
	}
	if t.cur != "" && !t.isRetired(t.cur) {
		t.retired[t.next] = t.cur
		t.next = (t.next + 1) % senderWindow
	}
	// Clone: s points into the event's data, which must not stay alive for as long as
	// the sender stays current.
	t.cur = strings.Clone(s)
	return t.isRetired(s)
}

// dataFields is what the runner reads from an event's JSON data.
type dataFields struct {
	sent      int64 // send time, unix ns; valid when hasSent
	hasSent   bool
	sender    string // "" when absent
	hasSender bool
}

// scanData extracts the send-time and sender fields of a JSON object
// without decoding the rest: the runner does this for every event of 10,000 streams,
// so it allocates nothing in the common case (no escapes in the keys or the sender).
// Anything that is not a JSON object yields no fields.
//
// sentPath is the send time's JSON path ("sent_unix_ns", "meta.sent_at"): its first
// key is matched here, the rest looked up inside that key's value; unit says how the
// value is written.
func scanData(data, sentPath string, unit SentUnit, senderField string) dataFields {
	sentKey, sentRest, nested := strings.Cut(sentPath, ".")
	var f dataFields
	s := data
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return f
	}
	i++
	for {
		i = skipWS(s, i)
		if i >= len(s) {
			return dataFields{}
		}
		if s[i] == '}' {
			return f
		}
		if s[i] != '"' {
			return dataFields{}
		}
		kEnd, kEsc := scanString(s, i)
		if kEnd < 0 {
			return dataFields{}
		}
		key := s[i+1 : kEnd-1]
		if kEsc {
			key = unquoteJSON(s[i:kEnd])
		}
		i = skipWS(s, kEnd)
		if i >= len(s) || s[i] != ':' {
			return dataFields{}
		}
		i = skipWS(s, i+1)
		vEnd := scanValue(s, i)
		if vEnd < 0 {
			return dataFields{}
		}
		raw := s[i:vEnd]
		switch key {
		case sentKey:
			if nested {
				var ok bool
				if raw, ok = lookupJSON(raw, sentRest); !ok {
					break
				}
			}
			f.sent, f.hasSent = parseSent(raw, unit)
		case senderField:
			f.sender, f.hasSender = senderValue(raw)
		}
		i = skipWS(s, vEnd)
		if i >= len(s) {
			return dataFields{}
		}
		switch s[i] {
		case ',':
			i++
		case '}':
			return f
		default:
			return dataFields{}
		}
	}
}

func skipWS(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index just past the JSON string starting at s[i] == '"',
// or -1, and whether it contains escapes.
func scanString(s string, i int) (end int, escaped bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// scanValue returns the index just past the JSON value starting at s[i], or -1. It
// checks the nesting of objects and arrays, not the validity of what is inside.
func scanValue(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		end, _ := scanString(s, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				end, _ := scanString(s, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(s) {
			c := s[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

func unquoteJSON(raw string) string {
	var v string
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return ""
	}
	return v
}

// senderValue turns the raw JSON value of the sender field into an identifier:
// strings are unquoted, other values (numbers, objects) are used as written, null
// counts as absent.
func senderValue(raw string) (string, bool) {
	if raw == "" || raw == "null" {
		return "", false
	}
	if raw[0] == '"' {
		inner := raw[1 : len(raw)-1]
		if strings.IndexByte(inner, '\\') >= 0 {
			inner = unquoteJSON(raw)
		}
		return inner, true
	}
	return raw, true
}
