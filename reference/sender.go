package reference

import (
	"bytes"
	"container/list"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// sender is the goroutine that writes a session stream's body: retry, the connected
// event, the replay, then ticks, queued progress events and pings, until stopped.
type sender struct {
	srv   *Server
	id    string // unique per sender, sent as "sender" in every event it writes
	sess  *session
	st    *stream // the stream it was started for
	start startPoint

	stopOnce sync.Once
	stopCh   chan struct{} // closed to stop the sender
	stopped  chan struct{} // closed once the sender has stopped (or will never run)
	notify   chan struct{} // one-slot wake-up: the queue has events
	queue    []item        // guarded by sess.mu

	buf bytes.Buffer // encoding scratch, used by the sender goroutine only

	poolElem  *list.Element // guarded by senderPool.mu
	poolState poolState     // guarded by senderPool.mu
}

type poolState uint8

const (
	poolNone poolState = iota
	poolQueued
	poolRunning
	poolCancelled
)

// eventData is the JSON data line of every event.
type eventData struct {
	Session        string  `json:"session"`
	Topic          string  `json:"topic,omitempty"`
	Seq            uint64  `json:"seq"`
	SentUnixNs     int64   `json:"sent_unix_ns"`
	ProducedUnixNs int64   `json:"produced_unix_ns,omitempty"`
	Sender         string  `json:"sender"`
	Replayed       bool    `json:"replayed,omitempty"`
	Progress       *uint8  `json:"progress,omitempty"`
	Message        *string `json:"message,omitempty"`
	Payload        *string `json:"payload,omitempty"`
	Lost           bool    `json:"lost,omitempty"`
	Replay         *int    `json:"replay,omitempty"`
}

// newEvent builds one event: id, type and a single line of JSON data.
func newEvent(id uint64, typ string, data *eventData) *sse.Message {
	js, err := json.Marshal(data)
	if err != nil { // eventData holds only strings and numbers
		panic(err)
	}
	m := &sse.Message{Type: sse.Type(typ)}
	if typ != "connected" {
		m.ID = sse.ID(strconv.FormatUint(id, 10))
	}
	m.AppendData(string(js))
	return m
}

// appendEvent encodes one event with go-sse's wire encoding.
func appendEvent(buf *bytes.Buffer, id uint64, typ string, data *eventData) {
	_, _ = newEvent(id, typ, data).WriteTo(buf)
}

// appendPreamble puts the start of a stream into buf: the retry field, the connected
// event with data d (its Seq the stream's starting point) and, when lost is not empty,
// the comment saying events were lost. Session and topic streams start alike.
func (s *Server) appendPreamble(buf *bytes.Buffer, d *eventData, lost string) {
	s.policy.retry(buf)
	d.Lost = lost != ""
	appendEvent(buf, d.Seq, "connected", d)
	if lost != "" {
		appendComment(buf, lost)
	}
}

// appendComment encodes a comment block.
func appendComment(buf *bytes.Buffer, text string) {
	var m sse.Message
	m.AppendComment(text)
	_, _ = m.WriteTo(buf)
}

func (sn *sender) wake() {
	select {
	case sn.notify <- struct{}{}:
	default:
	}
}

func (sn *sender) isStopped() bool { return isClosed(sn.stopCh) }

// isClosed reports whether ch is closed (none of ours is ever sent on).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// write sends the frame in sn.buf to the stream the takeover policy names (its own,
// unless fault no-replace). It returns false when the sender must stop.
func (sn *sender) write(events, replayed int) bool {
	st := sn.srv.policy.takeover.target(sn)
	if st == nil {
		return true
	}
	err := st.write(sn.buf.Bytes(), events, replayed)
	if err == nil || err == errStreamNotReady {
		return true
	}
	return sn.srv.policy.gone.writeFailed(sn, st, err)
}

// goneNotice is whether a sender notices that its stream's client is gone (fault
// leak-on-disconnect changes it). Its methods are safe for concurrent use.
type goneNotice interface {
	// writeFailed handles err, a failed write of sn into st; false stops sn.
	writeFailed(sn *sender, st *stream, err error) bool
	// streamEnded is called by the handler of sn's stream once it ended with reason.
	streamEnded(s *Server, sn *sender, reason string)
}

var (
	_ goneNotice = noticeGone{}
	_ goneNotice = ignoreGone{}
)

// noticeGone is the correct sender: a failed write ends the stream, and a sender whose
// own stream failed, or ended for any reason, stops.
type noticeGone struct{}

func (noticeGone) writeFailed(sn *sender, st *stream, err error) bool {
	if err != errStreamClosed {
		st.end(st.writeErrorReason(err))
	}
	return st != sn.st // a failure in another sender's stream (no-replace) is not ours
}

func (noticeGone) streamEnded(s *Server, sn *sender, _ string) { s.stopSender(sn) }

// ignoreGone is fault leak-on-disconnect: a sender never notices its client is gone and
// keeps running; only a stream the server ends on purpose stops it.
type ignoreGone struct{}

func (ignoreGone) writeFailed(*sender, *stream, error) bool { return true }

func (ignoreGone) streamEnded(s *Server, sn *sender, reason string) {
	if cleanEnd(reason) {
		s.stopSender(sn)
	}
}

// encodeItem puts one session event into sn.buf.
func (sn *sender) encodeItem(it item, replayed bool) {
	d := eventData{
		Session:        sn.sess.id,
		Seq:            it.seq,
		SentUnixNs:     time.Now().UnixNano(),
		ProducedUnixNs: it.produced,
		Sender:         sn.id,
		Replayed:       replayed,
	}
	if it.kind != kindTick {
		p, msg := it.progress, it.message
		d.Progress, d.Message = &p, &msg
	}
	appendEvent(&sn.buf, it.seq, it.kind.String(), &d)
}

// run is the sender's loop; it returns when stopped, when its stream failed, after
// writing the done event, or at server shutdown. w is what else ends the stream when the
// sender runs on the goroutine of the handler holding it (the inline scheduler); a sender
// on a goroutine of its own gets the zero streamWatch, whose channels never fire.
func (sn *sender) run(w streamWatch) {
	sn.count()
	defer sn.finish()
	if !sn.isStopped() && sn.sendStart() {
		sn.loop(w)
	}
}

// count counts sn running, and as a duplicate while another sender of its session runs.
func (sn *sender) count() {
	sn.sess.mu.Lock()
	sn.sess.running++
	dup := sn.sess.running > 1
	sn.sess.mu.Unlock()
	sn.srv.m.sendersActive.Inc()
	if dup {
		sn.srv.m.duplicateSenders.Inc()
	}
}

// sendStart writes the start of the stream: the preamble, then the replay. It returns
// false when the sender must stop.
func (sn *sender) sendStart() bool {
	sn.buf.Reset()
	nReplay := len(sn.start.replay)
	sn.srv.appendPreamble(&sn.buf, &eventData{
		Session: sn.sess.id, Seq: sn.start.from, SentUnixNs: time.Now().UnixNano(), Sender: sn.id, Replay: &nReplay,
	}, sn.start.lost)
	if !sn.write(1, 0) {
		return false
	}
	for _, it := range sn.start.replay {
		if sn.isStopped() || !sn.send(it, true) {
			return false
		}
	}
	sn.start.replay = nil
	return true
}

// send writes one session event, replayed or live. It returns false when the sender
// must stop: the write failed, or the event was the done event, which ends the stream.
func (sn *sender) send(it item, replayed bool) bool {
	sn.buf.Reset()
	sn.encodeItem(it, replayed)
	nReplayed := 0
	if replayed {
		nReplayed = 1
	}
	if !sn.write(1, nReplayed) {
		return false
	}
	if it.kind == kindDone {
		sn.st.end(ReasonDone)
		return false
	}
	return true
}

// loop sends ticks, queued events and pings until the sender must stop.
func (sn *sender) loop(w streamWatch) {
	s := sn.srv
	tickC, stopTick := s.policy.tick()
	defer stopTick()
	pingC, stopPing := s.policy.heartbeat()
	defer stopPing()
	for {
		select {
		case <-sn.stopCh:
			return
		case <-s.shutdownCh:
			sn.st.end(ReasonShutdown)
			return
		case <-w.end:
			return
		case <-w.gone:
			sn.st.end(sn.st.goneReason())
			return
		case <-w.lifetime:
			sn.st.end(ReasonLifetime)
			return
		case <-w.cut:
			sn.st.end(ReasonCut)
			return
		case <-pingC:
			sn.buf.Reset()
			appendComment(&sn.buf, "ping")
			if !sn.write(0, 0) {
				return
			}
		case <-tickC:
			if sn.isStopped() {
				return
			}
			if !sn.tick() {
				return
			}
		case <-sn.notify:
		}
		if !sn.drain() {
			return
		}
	}
}

// tick produces a tick event, which the attached sender queues like any other event. A
// sender no longer attached (only under fault no-replace) does what the takeover
// policy says.
func (sn *sender) tick() bool {
	sess := sn.sess
	sess.mu.Lock()
	if sess.sender != sn {
		sess.mu.Unlock()
		return sn.srv.policy.takeover.detachedTick(sn)
	}
	sess.produceLocked(logEntry{produced: time.Now().UnixNano(), kind: kindTick}, "", true)
	sess.mu.Unlock()
	return true // drained next
}

// drain writes the queued events in order. It returns false when the sender must stop.
func (sn *sender) drain() bool {
	for {
		sn.sess.mu.Lock()
		q := sn.queue
		sn.queue = nil
		sn.sess.mu.Unlock()
		if len(q) == 0 {
			return true
		}
		for _, it := range q {
			if sn.isStopped() || !sn.send(it, false) {
				return false
			}
		}
	}
}

// finish detaches a sender that ran.
func (sn *sender) finish() {
	sn.sess.mu.Lock()
	sn.sess.running--
	sn.detachLocked()
	sn.sess.mu.Unlock()
	sn.srv.m.sendersActive.Dec()
	close(sn.stopped)
	sn.srv.senders.done()
}

// finishUnstarted detaches a sender that never ran (cancelled in the pool queue).
func (sn *sender) finishUnstarted() {
	sn.sess.mu.Lock()
	sn.detachLocked()
	sn.sess.mu.Unlock()
	close(sn.stopped)
	sn.srv.senders.done()
}

func (sn *sender) detachLocked() {
	if sn.sess.sender == sn {
		sn.sess.sender = nil
		sn.queue = nil
	}
	sn.sess.lastActive = time.Now()
}

func (sn *sender) stop() {
	sn.stopOnce.Do(func() { close(sn.stopCh) })
}

// scheduler runs senders (faults leak-on-disconnect and pool=N change it). Its methods
// are safe for concurrent use.
type scheduler interface {
	// serve runs sn, now or later, and holds sn's stream, the one of request r, until the
	// stream ends; it returns why. It is called on the goroutine of r's handler. A sender
	// it will never run it finishes unstarted.
	serve(s *Server, r *http.Request, sn *sender) string
	// drop finishes sn unstarted if it has not started yet (sn was stopped).
	drop(sn *sender)
	// shutdown stops scheduling and finishes unstarted every sender that never ran.
	shutdown()
}

var (
	_ scheduler = inline{}
	_ scheduler = goroutines{}
	_ scheduler = (*senderPool)(nil)
)

// inline is the correct scheduler: a sender runs on the goroutine of the handler that
// holds its stream, one select serving the sender's wake-ups and the stream's ends, so
// that a session stream costs no goroutine beyond net/http's own. A sender then never
// outlives its stream's handler, as no correct sender does.
type inline struct{}

func (inline) serve(s *Server, r *http.Request, sn *sender) string {
	w := s.watch(r, sn.st)
	defer w.stop()
	sn.run(w)
	return s.waitEnd(sn.st, w, nil, nil)
}

func (inline) drop(*sender) {}
func (inline) shutdown()    {}

// goroutines is fault leak-on-disconnect's scheduler: every sender runs on a goroutine of
// its own, so that one that ignores its client's going away can outlive the stream.
type goroutines struct{}

func (goroutines) serve(s *Server, r *http.Request, sn *sender) string {
	go sn.run(streamWatch{})
	return s.hold(r, sn.st, nil)
}

func (goroutines) drop(*sender) {}
func (goroutines) shutdown()    {}

// senderPool is fault pool=N: a fixed set of workers, each taking one sender and, like a
// task that loops forever, never taking another.
type senderPool struct {
	m *metrics

	mu     sync.Mutex
	cond   *sync.Cond
	queue  list.List // of *sender
	closed bool
}

// newSenderPool starts workers pool workers with goBackground, which they run on until
// shutdown is closed.
func newSenderPool(workers int, m *metrics, goBackground func(func()), shutdown <-chan struct{}) *senderPool {
	p := &senderPool{m: m}
	p.cond = sync.NewCond(&p.mu)
	for range workers {
		goBackground(func() { p.worker(shutdown) })
	}
	return p
}

func (p *senderPool) serve(s *Server, r *http.Request, sn *sender) string {
	if !p.submit(sn) {
		sn.finishUnstarted() // shutting down
	}
	return s.hold(r, sn.st, nil)
}

func (p *senderPool) drop(sn *sender) {
	if p.cancel(sn) {
		sn.finishUnstarted()
	}
}

func (p *senderPool) shutdown() {
	for _, sn := range p.close() {
		sn.finishUnstarted()
	}
}

// submit queues sn for a worker; false when the pool is closed (shutdown).
func (p *senderPool) submit(sn *sender) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	sn.poolElem = p.queue.PushBack(sn)
	sn.poolState = poolQueued
	p.m.sendersWaiting.Inc()
	p.cond.Signal()
	p.mu.Unlock()
	return true
}

// take blocks until a sender is queued or the pool is closed (nil).
func (p *senderPool) take() *sender {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.queue.Len() == 0 && !p.closed {
		p.cond.Wait()
	}
	if p.closed {
		return nil
	}
	sn := p.queue.Remove(p.queue.Front()).(*sender)
	sn.poolElem, sn.poolState = nil, poolRunning
	p.m.sendersWaiting.Dec()
	return sn
}

// cancel removes a sender still waiting for a worker; false if it already runs (or
// never was queued).
func (p *senderPool) cancel(sn *sender) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sn.poolState != poolQueued {
		return false
	}
	p.queue.Remove(sn.poolElem)
	sn.poolElem, sn.poolState = nil, poolCancelled
	p.m.sendersWaiting.Dec()
	return true
}

// close wakes every worker to exit and returns the senders that never ran.
func (p *senderPool) close() []*sender {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var left []*sender
	for e := p.queue.Front(); e != nil; e = e.Next() {
		sn := e.Value.(*sender)
		sn.poolElem, sn.poolState = nil, poolCancelled
		left = append(left, sn)
		p.m.sendersWaiting.Dec()
	}
	p.queue.Init()
	p.cond.Broadcast()
	return left
}

// worker runs one sender, then holds on until shutdown: the modelled task never ends.
func (p *senderPool) worker(shutdown <-chan struct{}) {
	sn := p.take()
	if sn == nil {
		return
	}
	sn.run(streamWatch{})
	<-shutdown
}

// tracker counts running goroutines of one kind. Unlike a WaitGroup it may be added to
// while someone waits for zero (a request arriving during shutdown).
type tracker struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		for _, w := range t.waiters {
			close(w)
		}
		t.waiters = nil
	}
}

// idle returns a channel closed once the count is zero.
func (t *tracker) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan struct{})
	if t.n == 0 {
		close(ch)
	} else {
		t.waiters = append(t.waiters, ch)
	}
	return ch
}
