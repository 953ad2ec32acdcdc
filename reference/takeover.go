package reference

import (
	"net/http"
	"time"
)

// takeover is how a new stream of a session deals with the session's earlier stream and
// sender, and so where an earlier sender writes (fault no-replace changes it). Its
// methods are safe for concurrent use.
type takeover interface {
	// replaceOld runs before the new stream attaches, with the session's connect slot
	// held; it may block until the earlier stream and sender are gone. false means the
	// new request must give up: it or the server went away.
	replaceOld(s *Server, r *http.Request, sess *session) bool
	// target is the stream sn writes to; nil means nowhere.
	target(sn *sender) *stream
	// detachedTick is a tick of sn after another sender attached to its session; false
	// stops sn.
	detachedTick(sn *sender) bool
}

var (
	_ takeover = replaceEarlier{}
	_ takeover = keepEarlier{}
)

// replaceEarlier is the correct takeover: the earlier stream ends (reason replaced) and
// its sender stops before the new one starts; a sender writes only to its own stream.
type replaceEarlier struct{}

// replaceOld ends the session's earlier stream, stops its sender and waits until both
// are gone.
func (replaceEarlier) replaceOld(s *Server, r *http.Request, sess *session) bool {
	sess.mu.Lock()
	old, oldSt := sess.sender, sess.stream
	sess.mu.Unlock()
	var waits []<-chan struct{}
	if oldSt != nil {
		oldSt.interrupt(ReasonReplaced)
		waits = append(waits, oldSt.closedCh)
	}
	if old != nil {
		old.st.interrupt(ReasonReplaced)
		s.stopSender(old)
		waits = append(waits, old.stopped, old.st.closedCh)
	}
	for _, ch := range waits {
		select {
		case <-ch:
		case <-r.Context().Done():
			return false
		case <-s.shutdownCh:
			return false
		}
	}
	return true
}

func (replaceEarlier) target(sn *sender) *stream { return sn.st }

// detachedTick stops sn: a replaced sender has nothing left to do.
func (replaceEarlier) detachedTick(*sender) bool { return false }

// keepEarlier is fault no-replace: a same-id connection is stored over the old one
// without ending it; the old sender keeps running and pushes into the session's newest
// stream too.
type keepEarlier struct{}

func (keepEarlier) replaceOld(*Server, *http.Request, *session) bool { return true }

// target is whatever stream the session stores now.
func (keepEarlier) target(sn *sender) *stream {
	sn.sess.mu.Lock()
	defer sn.sess.mu.Unlock()
	return sn.sess.stream
}

// detachedTick produces a tick and writes it straight into the session's newest stream.
func (keepEarlier) detachedTick(sn *sender) bool {
	sn.sess.mu.Lock()
	it, _ := sn.sess.produceLocked(logEntry{produced: time.Now().UnixNano(), kind: kindTick}, "", false)
	sn.sess.mu.Unlock()
	sn.buf.Reset()
	sn.encodeItem(it, false)
	return sn.write(1, 0)
}
