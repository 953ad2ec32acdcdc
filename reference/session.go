package reference

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// eventKind is the `event:` type of a session event.
type eventKind uint8

const (
	kindTick eventKind = iota + 1
	kindProgress
	kindDone
)

func (k eventKind) String() string {
	switch k {
	case kindTick:
		return "tick"
	case kindProgress:
		return "progress"
	case kindDone:
		return "done"
	}
	return "unknown"
}

// logEntry is one retained event, kept small: a session may retain thousands.
type logEntry struct {
	produced int64 // unix ns when the event was produced
	kind     eventKind
	progress uint8
}

// item is an event on its way to a stream.
type item struct {
	seq uint64
	logEntry
	message string
}

// eventLog retains a session's last max events, in seq order with no gaps, for replay.
// It is not safe for concurrent use; the session's mu guards it.
type eventLog struct {
	max      int
	entries  []logEntry // ring, grown on demand up to max
	head, n  int
	first    uint64            // seq of entries[head] when n > 0
	messages map[uint64]string // progress and done messages by seq
}

func (l *eventLog) add(it item) {
	if l.max == 0 {
		return
	}
	if l.n == 0 {
		l.first = it.seq
	}
	if l.n == len(l.entries) && l.n < l.max {
		grown := make([]logEntry, min(l.max, max(16, 2*len(l.entries))))
		for i := range l.n {
			grown[i] = l.entries[(l.head+i)%len(l.entries)]
		}
		l.entries, l.head = grown, 0
	}
	if l.n == l.max { // full: drop the oldest
		delete(l.messages, l.first)
		l.head = (l.head + 1) % len(l.entries)
		l.first++
		l.n--
	}
	l.entries[(l.head+l.n)%len(l.entries)] = it.logEntry
	l.n++
	if it.message != "" {
		if l.messages == nil {
			l.messages = make(map[uint64]string)
		}
		l.messages[it.seq] = it.message
	}
}

// firstSeq is the oldest retained seq, or cur+1 when nothing is retained.
func (l *eventLog) firstSeq(cur uint64) uint64 {
	if l.n == 0 {
		return cur + 1
	}
	return l.first
}

// after returns the retained events with seq > n, oldest first.
func (l *eventLog) after(n uint64) []item {
	if l.n == 0 || n >= l.first+uint64(l.n)-1 {
		return nil
	}
	skip := 0
	if n >= l.first {
		skip = int(n - l.first + 1)
	}
	out := make([]item, 0, l.n-skip)
	for i := skip; i < l.n; i++ {
		seq := l.first + uint64(i)
		out = append(out, item{seq: seq, logEntry: l.entries[(l.head+i)%len(l.entries)], message: l.messages[seq]})
	}
	return out
}

// clear forgets every retained event.
func (l *eventLog) clear() {
	l.entries, l.head, l.n, l.messages = nil, 0, 0, nil
}

// session is one client-chosen session id: its sequence, retained events, and the
// stream and sender currently serving it.
type session struct {
	id string
	// connect is a one-slot lock serialising stream opens of this session, so that a
	// replacement finishes before the next connection looks at the session.
	connect chan struct{}
	refs    int // requests using the session; guarded by sessionStore.mu
	// early: made by a progress callback and no stream has opened it yet; such sessions
	// count against the early cap, not MaxSessions. Guarded by sessionStore.mu.
	early bool

	mu         sync.Mutex
	seq        uint64 // last seq produced
	log        eventLog
	sender     *sender // the sender that receives newly produced events
	stream     *stream // the newest open stream
	running    int     // senders of this session currently running
	done       bool
	doneSeq    uint64
	lastActive time.Time
}

// startPoint is where a new stream of a session begins.
type startPoint struct {
	from   uint64 // the last seq before the stream's first event: the connected event's id
	replay []item // retained events to send before live ones
	lost   string // a comment saying events were lost; "" when none were
}

// resumesBefore reports whether a Last-Event-ID names an event before seq.
func resumesBefore(lastID string, has bool, seq uint64) bool {
	if !has {
		return false
	}
	n, err := strconv.ParseUint(lastID, 10, 64)
	return err == nil && n < seq
}

// attachLocked makes sn and st the session's sender and stream and returns where the
// stream starts. ok is false when the session is done and the client has seen its done
// event (or gave no id): it must get the stop answer. Every event produced before this
// call is in the returned replay (when asked for) and every later one goes to sn's
// queue, so the two meet with no gap and no duplicate. s.mu must be held.
func (s *session) attachLocked(sn *sender, st *stream, lastID string, has bool) (sp startPoint, ok bool) {
	if s.done && !resumesBefore(lastID, has, s.doneSeq) {
		return startPoint{}, false
	}
	cur := s.seq
	sp.from = cur
	if has {
		n, err := strconv.ParseUint(lastID, 10, 64)
		first := s.log.firstSeq(cur)
		switch {
		case err != nil:
			sp.lost = fmt.Sprintf("events may have been lost: Last-Event-ID %s is not an id of this session; continuing live after %d", quoteShort(lastID), cur)
		case n > cur:
			// The session was forgotten or the server restarted: nothing after n exists
			// here. Continue numbering after n so that the client's ids keep increasing.
			sp.lost = fmt.Sprintf("events may have been lost: Last-Event-ID %d is ahead of this session's last id %d (forgotten or restarted); continuing after %d", n, cur, n)
			s.seq = n
			s.log.clear()
			sp.from = n
		case n+1 < first:
			sp.lost = fmt.Sprintf("events lost: ids %d-%d are no longer retained; replaying the %d retained after them", n+1, first-1, cur+1-first)
			sp.from = first - 1
			sp.replay = s.log.after(first - 1)
		default:
			sp.from = n
			sp.replay = s.log.after(n)
		}
	}
	s.sender, s.stream = sn, st
	sn.queue = nil
	return sp, true
}

// produceLocked assigns the next seq to an event and retains it; with toSender it also
// queues it to the attached sender, if any, which it returns so that the caller can
// wake it after unlocking. s.mu must be held.
func (s *session) produceLocked(e logEntry, message string, toSender bool) (item, *sender) {
	s.seq++
	it := item{seq: s.seq, logEntry: e, message: message}
	s.log.add(it)
	if e.kind == kindDone {
		s.done, s.doneSeq = true, it.seq
	}
	if !toSender || s.sender == nil {
		return it, nil
	}
	s.sender.queue = append(s.sender.queue, it)
	return it, s.sender
}

var errSessionDone = errors.New("the session's job already finished")

// progress records a progress callback; 100 produces the done event.
func (s *session) progress(p uint8, message string, now time.Time) (uint64, error) {
	kind := kindProgress
	if p == 100 {
		kind = kindDone
	}
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return 0, errSessionDone
	}
	it, sn := s.produceLocked(logEntry{produced: now.UnixNano(), kind: kind, progress: p}, message, true)
	s.lastActive = now
	s.mu.Unlock()
	if sn != nil {
		sn.wake()
	}
	return it.seq, nil
}

// sessionStore holds the sessions by id and forgets idle ones. Sessions that only
// progress callbacks have touched (early) are held apart, under maxEarly and earlyTTL,
// so that callbacks for ids nobody opens cannot fill the room streams need.
type sessionStore struct {
	max      int
	ttl      time.Duration
	maxEarly int
	earlyTTL time.Duration
	replay   int
	m        *metrics

	mu       sync.Mutex
	sessions map[string]*session
	early    int // sessions with early set
}

var (
	errTooManySessions = errors.New("too many sessions")
	errTooManyEarly    = errors.New("too many sessions created by progress callbacks before any stream opened them")
	errUnknownSession  = errors.New("no stream has opened this session and early progress is off")
)

// acquire returns the session with id, creating it if there is room, and pins it until
// release. A stream (byStream) makes or turns a session into a full one, counted
// against max; a callback makes an early one, counted against maxEarly.
func (ss *sessionStore) acquire(id string, now time.Time, byStream bool) (*session, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	full := len(ss.sessions) - ss.early
	s, ok := ss.sessions[id]
	switch {
	case ok && byStream && s.early:
		if full >= ss.max {
			return nil, errTooManySessions
		}
		s.early = false
		ss.early--
	case ok:
	case byStream && full >= ss.max:
		return nil, errTooManySessions
	case !byStream && ss.maxEarly == 0:
		return nil, errUnknownSession
	case !byStream && ss.early >= ss.maxEarly:
		return nil, errTooManyEarly
	default:
		s = &session{id: id, connect: make(chan struct{}, 1), log: eventLog{max: ss.replay}, lastActive: now, early: !byStream}
		if s.early {
			ss.early++
		}
		ss.sessions[id] = s
		ss.m.sessionsActive.Set(float64(len(ss.sessions)))
	}
	s.refs++
	return s, nil
}

func (ss *sessionStore) release(s *session, now time.Time) {
	ss.mu.Lock()
	s.refs--
	ss.mu.Unlock()
	s.mu.Lock()
	s.lastActive = now
	s.mu.Unlock()
}

// sweep forgets sessions that nobody uses, with no stream and no running sender, idle
// for the TTL (earlyTTL for an early one). A finished session is kept as long, to
// answer 204.
func (ss *sessionStore) sweep(now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, s := range ss.sessions {
		if s.refs > 0 {
			continue
		}
		ttl := ss.ttl
		if s.early {
			ttl = min(ss.earlyTTL, ss.ttl)
		}
		s.mu.Lock()
		idle := s.running == 0 && s.sender == nil && s.stream == nil && now.Sub(s.lastActive) >= ttl
		s.mu.Unlock()
		if idle {
			delete(ss.sessions, id)
			if s.early {
				ss.early--
			}
		}
	}
	ss.m.sessionsActive.Set(float64(len(ss.sessions)))
}

// interruptStreams ends every session's open stream with reason, interrupting a write
// in progress: a sender blocked writing to a client that stopped reading sees the
// shutdown only once its write returns.
func (ss *sessionStore) interruptStreams(reason string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.sessions {
		s.mu.Lock()
		st := s.stream
		s.mu.Unlock()
		if st != nil {
			st.interrupt(reason)
		}
	}
}

// quoteShort quotes s for a one-line message, cut to 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
