package reference

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// topic is one fan-out channel: a go-sse Joe of its own (so that ids, which are the
// topic's sequence numbers, never collide with another topic's in the replayer).
type topic struct {
	name   string
	joe    *sse.Joe
	sender string // the publisher identity sent as "sender"

	// mu orders publishes, so ids reach the replayer in order, and keeps them out while a
	// subscriber registers, so that it misses nothing between its start point and live.
	mu  sync.Mutex
	seq uint64

	refs       int       // guarded by topicStore.mu
	lastActive time.Time // guarded by topicStore.mu
}

// topicStore holds the topics by name and forgets idle ones.
type topicStore struct {
	max    int
	ttl    time.Duration
	replay int
	m      *metrics

	mu      sync.Mutex
	topics  map[string]*topic
	nextJoe uint64
	closed  bool
}

var errTooManyTopics = errors.New("too many topics")

// acquire returns the topic, creating it if there is room, pinned until release.
func (ts *topicStore) acquire(name string, now time.Time) (*topic, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return nil, errors.New("server shutting down")
	}
	t, ok := ts.topics[name]
	if !ok {
		if len(ts.topics) >= ts.max {
			return nil, errTooManyTopics
		}
		ts.nextJoe++
		t = &topic{name: name, sender: "t-" + strconv.FormatUint(ts.nextJoe, 10)}
		t.joe = &sse.Joe{Replayer: newTopicReplayer(ts.replay, name)}
		ts.topics[name] = t
		ts.m.topicsActive.Set(float64(len(ts.topics)))
	}
	t.refs++
	t.lastActive = now
	return t, nil
}

func (ts *topicStore) release(t *topic, now time.Time) {
	ts.mu.Lock()
	t.refs--
	t.lastActive = now
	ts.mu.Unlock()
}

// sweep forgets topics nobody used for the TTL.
func (ts *topicStore) sweep(now time.Time) {
	var gone []*topic
	ts.mu.Lock()
	for name, t := range ts.topics {
		if t.refs == 0 && now.Sub(t.lastActive) >= ts.ttl {
			delete(ts.topics, name)
			gone = append(gone, t)
		}
	}
	ts.m.topicsActive.Set(float64(len(ts.topics)))
	ts.mu.Unlock()
	for _, t := range gone {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = t.joe.Shutdown(ctx)
		cancel()
	}
}

// shutdown stops every topic's Joe, which ends its subscriptions.
func (ts *topicStore) shutdown(ctx context.Context) {
	ts.mu.Lock()
	ts.closed = true
	all := make([]*topic, 0, len(ts.topics))
	for _, t := range ts.topics {
		all = append(all, t)
	}
	ts.mu.Unlock()
	for _, t := range all {
		_ = t.joe.Shutdown(ctx)
	}
}

// topicReplayer is the go-sse Replayer of one topic: a FiniteReplayer holding the last
// replay events (plus one, so that a client whose last id is the one just before the
// retained window still finds it), which also tells the subscribing handler when Joe has
// registered its subscription. With replay 0 it retains nothing.
type topicReplayer struct {
	inner *sse.FiniteReplayer // nil: nothing retained
}

func newTopicReplayer(replay int, name string) *topicReplayer {
	r := &topicReplayer{}
	if replay > 0 {
		fr, err := sse.NewFiniteReplayer(replay+1, false)
		if err != nil { // only for a count below 2
			panic(err)
		}
		// A placeholder with id 0 lets a client that has seen nothing yet (whose stream
		// started at 0) resume from 0. It is never replayed: replay starts after the id found.
		if _, err := fr.Put(&sse.Message{ID: sse.ID("0")}, []string{name}); err != nil {
			panic(err)
		}
		r.inner = fr
	}
	return r
}

func (r *topicReplayer) Put(m *sse.Message, topics []string) (*sse.Message, error) {
	if r.inner == nil {
		return m, nil
	}
	return r.inner.Put(m, topics)
}

// Replay runs on Joe's goroutine when a subscription registers.
func (r *topicReplayer) Replay(sub sse.Subscription) error {
	tw, _ := sub.Client.(*topicWriter)
	if tw != nil {
		tw.replaying = true
		defer tw.registered()
	}
	if r.inner == nil || !sub.LastEventID.IsSet() {
		return nil
	}
	return r.inner.Replay(sub)
}

var _ sse.Replayer = (*topicReplayer)(nil)

// topicWriter is a topic stream as Joe's MessageWriter. Joe calls it from its own
// goroutine only.
type topicWriter struct {
	st        *stream
	buf       bytes.Buffer
	replaying bool          // set during Replay: sends are replays
	regOnce   sync.Once     // guards closing reg
	reg       chan struct{} // closed once Joe registered the subscription
}

func (tw *topicWriter) registered() {
	tw.replaying = false
	tw.regOnce.Do(func() { close(tw.reg) })
}

func (tw *topicWriter) Send(m *sse.Message) error {
	tw.buf.Reset()
	if _, err := m.WriteTo(&tw.buf); err != nil {
		return err
	}
	replayed := 0
	if tw.replaying {
		replayed = 1
	}
	return tw.st.write(tw.buf.Bytes(), 1, replayed)
}

// Flush is a no-op: every Send flushes (or, under fault no-flush, does not on purpose).
func (tw *topicWriter) Flush() error { return nil }

var _ sse.MessageWriter = (*topicWriter)(nil)

// acquireTopic acquires the topic name for a request, answering 503 itself when there
// is no room; the caller releases it.
func (s *Server) acquireTopic(w http.ResponseWriter, name string) (*topic, bool) {
	t, err := s.topics.acquire(name, time.Now())
	if err != nil {
		s.unavailable(w, fmt.Sprintf("%v (max-sessions %d)", err, s.cfg.MaxSessions))
		return nil, false
	}
	return t, true
}

// serveTopicEvents is GET /topics/{name}/events.
func (s *Server) serveTopicEvents(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.admit(w, r, "topic name", name) {
		return
	}
	t, ok := s.acquireTopic(w, name)
	if !ok {
		return
	}
	defer func() { s.topics.release(t, time.Now()) }()

	lastID, hasLastID := s.policy.lastEventID(r)
	st := s.newStream(r, w, headNow{})
	s.openStream(st)
	tw := &topicWriter{st: st, reg: make(chan struct{})}
	subCtx, cancelSub := context.WithCancel(context.Background())
	defer cancelSub()
	subDone := make(chan error, 1)

	t.mu.Lock()
	from, resumeID, lost := s.topicStart(t.seq, lastID, hasLastID)
	var buf bytes.Buffer
	s.appendPreamble(&buf, &eventData{
		Session: name, Topic: name, Seq: from, SentUnixNs: time.Now().UnixNano(), Sender: t.sender,
	}, lost)
	if err := st.write(buf.Bytes(), 1, 0); err != nil {
		st.end(st.writeErrorReason(err))
	}
	sub := sse.Subscription{Client: tw, LastEventID: resumeID, Topics: []string{name}}
	go func() { subDone <- t.joe.Subscribe(subCtx, sub) }()
	subscribed := true
	select {
	case <-tw.reg:
	case err := <-subDone:
		subscribed = false
		st.end(subscribeEndReason(st, err))
	case <-r.Context().Done(): // Joe is busy (a slow subscriber); this client left meanwhile
		st.end(st.goneReason())
	case <-s.shutdownCh:
		st.end(ReasonShutdown)
	}
	t.mu.Unlock()

	if subscribed {
		go func() {
			// Joe ends a subscription whose writes fail; that ends the stream too.
			select {
			case err := <-subDone:
				subDone <- err
				st.end(subscribeEndReason(st, err))
			case <-st.endCh:
			}
		}()
	}
	var ping bytes.Buffer
	appendComment(&ping, "ping")
	s.hold(r, st, func() {
		if err := st.write(ping.Bytes(), 0, 0); err != nil {
			st.end(st.writeErrorReason(err))
		}
	})
	s.closeStream(st)
	cancelSub()
	if subscribed {
		<-subDone
	}
	releaseStream(st)
}

// subscribeEndReason classifies why Joe ended a subscription.
func subscribeEndReason(st *stream, err error) string {
	switch {
	case errors.Is(err, sse.ErrProviderClosed):
		return ReasonShutdown
	case err == nil, errors.Is(err, errStreamClosed):
		return ReasonClientGone
	}
	return st.writeErrorReason(err)
}

// topicStart is where a topic stream starts: the connected event's seq, the id to hand
// Joe's replayer, and a lost-events comment. t.mu must be held. Unlike a session, a
// topic is shared, so an id ahead of it is not adopted, and an expired id gets only the
// live stream after the comment.
func (s *Server) topicStart(cur uint64, lastID string, has bool) (from uint64, resume sse.EventID, lost string) {
	if !has {
		return cur, sse.EventID{}, ""
	}
	n, err := strconv.ParseUint(lastID, 10, 64)
	oldest := uint64(0) // the oldest id the replayer can still resume after
	if cur > uint64(s.cfg.Replay) {
		oldest = cur - uint64(s.cfg.Replay)
	}
	switch {
	case err != nil:
		return cur, sse.EventID{}, fmt.Sprintf("events may have been lost: Last-Event-ID %s is not an id of this topic; continuing live after %d", quoteShort(lastID), cur)
	case n > cur:
		return cur, sse.EventID{}, fmt.Sprintf("events may have been lost: Last-Event-ID %d is ahead of this topic's last id %d; continuing live after %d", n, cur, cur)
	case n < oldest:
		return cur, sse.EventID{}, fmt.Sprintf("events lost: ids %d-%d are no longer retained; continuing live after %d", n+1, cur, cur)
	}
	return n, sse.ID(strconv.FormatUint(n, 10)), ""
}

// servePublish is POST /topics/{name}: the body is published to every subscriber.
func (s *Server) servePublish(w http.ResponseWriter, r *http.Request) {
	name, body, ok := s.callback(w, r, "topic name", "name")
	if !ok {
		return
	}
	t, ok := s.acquireTopic(w, name)
	if !ok {
		return
	}
	defer func() { s.topics.release(t, time.Now()) }()
	payload := string(body)
	t.mu.Lock()
	t.seq++
	seq := t.seq
	m := newEvent(seq, "message", &eventData{
		Session: name, Topic: name, Seq: seq, SentUnixNs: time.Now().UnixNano(), Sender: t.sender, Payload: &payload,
	})
	err := t.joe.Publish(m, []string{name})
	t.mu.Unlock()
	if err != nil {
		if errors.Is(err, sse.ErrProviderClosed) {
			s.unavailable(w, "server shutting down")
			return
		}
		http.Error(w, "publish: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]any{"topic": name, "seq": seq})
}
