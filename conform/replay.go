package conform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sseharness/sseharness/eventstream"
)

// Judging what a server sends for a Last-Event-ID it cannot know.
const (
	// floodMin is how many events a reply to an unknown id must carry, at a rate far
	// above the stream's own, to count as a replay flood even when none of them were
	// seen on the first stream.
	floodMin = 50
	// floodRate is how many times the first stream's event rate that takes.
	floodRate = 10
	// maxProbeEvents ends the unknown-id read: enough to count a flood.
	maxProbeEvents = 100_000
)

// idKind is the shape of the ids a target sends.
type idKind uint8

const (
	idNone     idKind = iota // no event with an id of its own
	idNumeric                // decimal numbers: "17"
	idPrefixed               // one fixed prefix and a decimal number: "s1:17", "evt-17"
	idOpaque                 // anything else: UUIDs, hashes, tokens
)

func (k idKind) String() string {
	switch k {
	case idNumeric:
		return "numeric"
	case idPrefixed:
		return "prefix:N"
	case idOpaque:
		return "opaque"
	}
	return "none"
}

var (
	numericID  = regexp.MustCompile(`^[0-9]{1,18}$`)
	prefixedID = regexp.MustCompile(`^(.*[^0-9])([0-9]{1,18})$`)
)

// idShape is what the first stream showed of its ids, and of what it normally sends.
type idShape struct {
	kind       idKind
	prefix     string // idPrefixed
	minN, maxN uint64 // idNumeric, idPrefixed: the smallest and largest number seen
	// consecutive: each id's number is the previous one's plus 1, so a gap in numbers
	// counts events.
	consecutive bool
	ids         []string
	seen        map[string]bool
	types       map[string]bool // event types of the first stream
	comments    map[string]bool // comment texts of the first stream
	rate        float64         // events with an id per second on the first stream
}

// shapeOf classifies the ids of the first stream's kept items; withID events with an
// id of their own came in watched.
func shapeOf(items []eventstream.Item, withID int64, watched time.Duration) idShape {
	s := idShape{seen: map[string]bool{}, types: map[string]bool{}, comments: map[string]bool{}}
	for _, it := range items {
		switch it.Kind {
		case eventstream.KindComment:
			if len(s.comments) < 64 {
				s.comments[it.Comment] = true
			}
		case eventstream.KindEvent:
			s.types[it.Type] = true
			if it.HasID && it.ID != "" && !s.seen[it.ID] {
				s.seen[it.ID] = true
				s.ids = append(s.ids, it.ID)
			}
		}
	}
	if len(s.ids) == 0 {
		return s
	}
	if watched > 0 {
		s.rate = float64(max(withID, int64(len(s.ids)))) / watched.Seconds()
	}
	s.kind = idNumeric
	for _, id := range s.ids {
		if !numericID.MatchString(id) {
			s.kind = idPrefixed
			break
		}
	}
	if s.kind == idPrefixed {
		for i, id := range s.ids {
			m := prefixedID.FindStringSubmatch(id)
			if m == nil || (i > 0 && m[1] != s.prefix) {
				s.kind = idOpaque
				break
			}
			s.prefix = m[1]
		}
	}
	if s.kind == idOpaque {
		return s
	}
	s.minN = ^uint64(0)
	s.consecutive = true
	var prev uint64
	for i, id := range s.ids {
		n, _ := s.number(id)
		s.minN, s.maxN = min(s.minN, n), max(s.maxN, n)
		s.consecutive = s.consecutive && (i == 0 || n == prev+1)
		prev = n
	}
	return s
}

// number returns the number of an id of a numeric or prefixed shape.
func (s idShape) number(id string) (uint64, bool) {
	if s.kind == idPrefixed {
		rest, ok := strings.CutPrefix(id, s.prefix)
		if !ok || !numericID.MatchString(rest) {
			return 0, false
		}
		id = rest
	} else if !numericID.MatchString(id) {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 10, 64)
	return n, err == nil
}

// probeID returns the Last-Event-ID of the unknown-id probe, of the same shape as the
// target's own ids: a number (after the prefix) older than any seen, or a made-up value
// of the opaque ids' shape. ok is false when no such id exists (the smallest id seen is
// 0); why says so.
func (s idShape) probeID() (id string, ok bool, why string) {
	switch s.kind {
	case idNone:
		return unknownID, true, ""
	case idOpaque:
		return madeUpID(s.ids, s.seen), true, ""
	}
	if s.minN == 0 {
		return "", false, fmt.Sprintf("no %s id older than the first one seen (%q) exists", s.kind, s.ids[0])
	}
	n := uint64(1)
	if s.minN == 1 {
		n = 0
	}
	return s.prefix + strconv.FormatUint(n, 10), true, ""
}

// madeUpID returns a value of the shape of ids that none of them is: each letter or
// digit at a position where the ids differ is rotated within its class (hex digits
// stay hex), positions where all ids agree (fixed characters, such as a UUID's
// version) are kept.
func madeUpID(ids []string, seen map[string]bool) string {
	tmpl := []byte(ids[0])
	vary := make([]bool, len(tmpl))
	same := 0
	for _, id := range ids[1:] {
		if len(id) != len(tmpl) {
			continue
		}
		same++
		for i := range tmpl {
			if id[i] != tmpl[i] {
				vary[i] = true
			}
		}
	}
	anyVary := false
	for _, v := range vary {
		anyVary = anyVary || v
	}
	hexLower, hexUpper := true, true
	for _, id := range ids {
		for _, c := range []byte(id) {
			hexLower = hexLower && !(c >= 'g' && c <= 'z')
			hexUpper = hexUpper && !(c >= 'G' && c <= 'Z')
		}
	}
	rotate := func(c byte, by int) byte {
		switch {
		case c >= '0' && c <= '9':
			return '0' + byte((int(c-'0')+by)%10)
		case c >= 'a' && c <= 'z' && hexLower:
			return 'a' + byte((int(c-'a')+by)%6)
		case c >= 'a' && c <= 'z':
			return 'a' + byte((int(c-'a')+by)%26)
		case c >= 'A' && c <= 'Z' && hexUpper:
			return 'A' + byte((int(c-'A')+by)%6)
		case c >= 'A' && c <= 'Z':
			return 'A' + byte((int(c-'A')+by)%26)
		}
		return c
	}
	for by := 1; by < 10; by++ {
		out := make([]byte, len(tmpl))
		for i, c := range tmpl {
			if same > 0 && anyVary && !vary[i] {
				out[i] = c
				continue
			}
			out[i] = rotate(c, by)
		}
		if s := string(out); !seen[s] {
			return s
		}
	}
	return ids[0] + "0"
}

// unknownReplay accumulates what a reply to the unknown-id probe carried. feed is
// called with each item in order; it is not safe for concurrent use.
type unknownReplay struct {
	shape *idShape
	probe string

	events    int    // events with an id of their own
	old       int    // of those: already on the first stream (opaque) or at most its newest number
	lastOld   int    // 1-based position, among events, of the last old one
	firstID   string // the first event's id
	firstOld  bool
	firstN    uint64
	marker    string // an item the first stream never sent, before the first event with an id
	lastOldAt time.Duration
	lastAt    time.Duration
}

func newUnknownReplay(shape *idShape, probe string) *unknownReplay {
	return &unknownReplay{shape: shape, probe: probe}
}

// feed takes the next item of the reply, which arrived at. It returns true when nothing
// more is to be learnt.
func (u *unknownReplay) feed(it eventstream.Item, head, at time.Time) bool {
	s := u.shape
	if u.events == 0 && u.marker == "" {
		switch {
		case it.Kind == eventstream.KindComment && !s.comments[it.Comment]:
			u.marker = fmt.Sprintf("comment %q", shorten(it.Comment))
		case it.Kind == eventstream.KindEvent && !it.HasID && !s.types[it.Type]:
			u.marker = fmt.Sprintf("event %q", it.Type)
		}
	}
	if it.Kind != eventstream.KindEvent || !it.HasID || it.ID == "" {
		return false
	}
	u.events++
	u.lastAt = at.Sub(head)
	old := s.seen[it.ID]
	n, numbered := s.number(it.ID)
	if s.kind == idNumeric || s.kind == idPrefixed {
		old = numbered && n <= s.maxN
	}
	if u.events == 1 {
		u.firstID, u.firstOld, u.firstN = it.ID, old, n
	}
	if old {
		u.old++
		u.lastOld, u.lastOldAt = u.events, at.Sub(head)
	}
	if s.kind == idNumeric || s.kind == idPrefixed {
		// The first event tells whether the server went live or replayed; a replay
		// is counted until the first event past the first stream's newest.
		return !u.firstOld || !old || u.events >= maxProbeEvents
	}
	return u.events >= maxProbeEvents
}

// problem returns the finding about the reply, or "" when the server fell back to the
// live stream, replayed exactly from the probe's id, or marked the gap; note says
// what it did in that case.
func (u *unknownReplay) problem(window time.Duration) (problem, note string) {
	s := u.shape
	if u.events == 0 {
		return "", "no event with an id in " + secs(window)
	}
	flood := ""
	if u.events >= floodMin && float64(u.events) > floodRate*s.rate*max(u.lastAt.Seconds(), 0.1) {
		flood = fmt.Sprintf("a flood of %d events in %s (the stream's own rate is %.1f/s)", u.events, secs(u.lastAt), s.rate)
	}
	marked := ""
	if u.marker != "" {
		marked = " after a gap marker (" + u.marker + ")"
	}
	switch s.kind {
	case idNumeric, idPrefixed:
		probeN, _ := s.number(u.probe)
		if !u.firstOld {
			if flood != "" && u.marker == "" {
				return fmt.Sprintf("for the unknown Last-Event-ID %q the server sent %s, no gap marker", u.probe, flood), ""
			}
			return "", fmt.Sprintf("went live with %q%s", u.firstID, marked)
		}
		if u.firstN <= probeN {
			return fmt.Sprintf("for Last-Event-ID %q the server replayed from %q, at or before that id: %d old events resent", u.probe, u.firstID, u.old), ""
		}
		if u.firstN == probeN+1 {
			return "", fmt.Sprintf("replayed %d events from %q, right after it (the server still has them)", u.old, u.firstID)
		}
		skipped := fmt.Sprintf("the events with ids %s%d..%s%d", s.prefix, probeN+1, s.prefix, u.firstN-1)
		if s.consecutive {
			skipped = fmt.Sprintf("%d event(s) (%s%d..%s%d)", u.firstN-probeN-1, s.prefix, probeN+1, s.prefix, u.firstN-1)
		}
		if u.marker != "" {
			return "", fmt.Sprintf("replayed %d retained events from %q%s: a visible gap (%s)", u.old, u.firstID, marked, skipped)
		}
		msg := fmt.Sprintf("silent gap: for the too-old Last-Event-ID %q the server replayed %d old event(s) from %q within %s with no gap marker, so %s are skipped unnoticed",
			u.probe, u.old, u.firstID, secs(u.lastOldAt), skipped)
		if flood != "" {
			msg += "; " + flood
		}
		return msg, ""
	}
	if u.old > 0 {
		if u.marker != "" {
			return "", fmt.Sprintf("replayed %d events%s", u.lastOld, marked)
		}
		return fmt.Sprintf("replay flood: for the made-up Last-Event-ID %q the server replayed %d events (%d of them already sent on the first stream) within %s, with no gap marker: it cannot know that id",
			u.probe, u.lastOld, u.old, secs(u.lastOldAt)), ""
	}
	if flood != "" && u.marker == "" {
		return fmt.Sprintf("for the made-up Last-Event-ID %q the server sent %s, no gap marker", u.probe, flood), ""
	}
	return "", fmt.Sprintf("went live with %q%s", u.firstID, marked)
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
