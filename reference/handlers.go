package reference

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBodyBytes is the largest progress callback or topic publish body accepted.
const maxBodyBytes = 64 << 10

// maxNameLen is the longest session id or topic name.
const maxNameLen = 128

// checkName validates a session id or topic name: 1-128 characters of [A-Za-z0-9._:-].
func checkName(what, s string) error {
	if s == "" || len(s) > maxNameLen {
		return fmt.Errorf("%s must be 1-%d characters of [A-Za-z0-9._:-], got %d characters", what, maxNameLen, len(s))
	}
	for i := range len(s) {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return fmt.Errorf("%s %s has a character outside [A-Za-z0-9._:-] at byte %d", what, quoteShort(s), i)
		}
	}
	return nil
}

// lastEventID returns the client's Last-Event-ID: the header, else the lastEventId query
// parameter (for clients that cannot set headers). An empty value counts as none.
func lastEventID(r *http.Request) (string, bool) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v, true
	}
	if v := r.URL.Query().Get("lastEventId"); v != "" {
		return v, true
	}
	return "", false
}

// unavailable answers 503 with a Retry-After of the reconnection time.
func (s *Server) unavailable(w http.ResponseWriter, reason string) {
	secs := int(math.Ceil(s.cfg.Retry.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	http.Error(w, reason, http.StatusServiceUnavailable)
}

// authorized checks the callback token, when one is configured.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.CallbackToken == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.CallbackToken)) == 1 {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sseharness"`)
	http.Error(w, "missing or wrong Authorization: Bearer token", http.StatusUnauthorized)
	return false
}

// readBody reads a body of at most maxBodyBytes, answering 400 itself when it cannot.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, fmt.Sprintf("body over %d KiB", maxBodyBytes>>10), http.StatusBadRequest)
		} else {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		}
		return nil, false
	}
	return body, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// admit runs what every stream request passes before it gets a stream: a valid name
// (else 400), HEAD answered with the headers alone, no new stream while shutting down
// (503). It reports whether the handler goes on.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, what, name string) bool {
	if err := checkName(what, name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	if r.Method == http.MethodHead {
		headOnly(w)
		return false
	}
	if s.shuttingDown() {
		s.unavailable(w, "server shutting down")
		return false
	}
	return true
}

// serveSessionEvents is GET /sessions/{id}/events.
func (s *Server) serveSessionEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.admit(w, r, "session id", id) {
		return
	}
	sess, err := s.sessions.acquire(id, time.Now(), true)
	if err != nil {
		s.unavailable(w, fmt.Sprintf("%v (max-sessions %d)", err, s.cfg.MaxSessions))
		return
	}
	defer func() { s.sessions.release(sess, time.Now()) }()

	select {
	case sess.connect <- struct{}{}:
	case <-r.Context().Done():
		return
	case <-s.shutdownCh:
		s.unavailable(w, "server shutting down")
		return
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			<-sess.connect
		}
	}
	defer unlock()

	lastID, hasLastID := s.policy.lastEventID(r)
	if !s.policy.takeover.replaceOld(s, r, sess) {
		if s.shuttingDown() {
			s.unavailable(w, "server shutting down")
		}
		return
	}

	st := s.newStream(r, w, s.policy.sessionHead())
	sn := &sender{
		srv:     s,
		id:      "s-" + strconv.FormatUint(s.nextSender.Add(1), 10),
		sess:    sess,
		st:      st,
		stopCh:  make(chan struct{}),
		stopped: make(chan struct{}),
		notify:  make(chan struct{}, 1),
	}
	sess.mu.Lock()
	start, ok := sess.attachLocked(sn, st, lastID, hasLastID)
	sess.mu.Unlock()
	if !ok {
		s.policy.finished(w)
		return
	}
	sn.start = start
	unlock()

	s.openStream(st)
	s.senders.add()
	reason := s.policy.sched.serve(s, r, sn)
	s.policy.gone.streamEnded(s, sn, reason)
	s.closeStream(st)
	sess.mu.Lock()
	if sess.stream == st {
		sess.stream = nil
	}
	sess.mu.Unlock()
	releaseStream(st)
}

// hold waits until the stream must end and returns why: the stream itself asked to
// (done, write error, replaced), the client left, the lifetime ran out, or the server
// shuts down. ping, when not nil, is called at every heartbeat.
func (s *Server) hold(r *http.Request, st *stream, ping func()) string {
	w := s.watch(r, st)
	defer w.stop()
	var pingC <-chan time.Time
	if ping != nil {
		var stopPing func()
		pingC, stopPing = s.policy.heartbeat()
		defer stopPing()
	}
	return s.waitEnd(st, w, pingC, ping)
}

// streamWatch is what ends a held stream from outside its writes: the stream's end, the
// client going away, its lifetime and fault cut-after (and the server's shutdown, which
// every holder watches). Its zero value never fires.
type streamWatch struct {
	end      <-chan struct{}
	gone     <-chan struct{}
	lifetime <-chan time.Time
	cut      <-chan time.Time
	stop     func() // stops the timers
}

// watch starts the timers of st, the stream of request r.
func (s *Server) watch(r *http.Request, st *stream) streamWatch {
	lifetime, stopLifetime := s.policy.lifetime()
	cut, stopCut := s.policy.cut()
	return streamWatch{
		end: st.endCh, gone: r.Context().Done(), lifetime: lifetime, cut: cut,
		stop: func() { stopLifetime(); stopCut() },
	}
}

// waitEnd waits until w or the server's shutdown ends st and returns why, calling ping
// at every tick of pingC.
func (s *Server) waitEnd(st *stream, w streamWatch, pingC <-chan time.Time, ping func()) string {
	for {
		select {
		case <-w.end:
		case <-w.gone:
			st.end(st.goneReason())
		case <-s.shutdownCh:
			st.end(ReasonShutdown)
		case <-w.lifetime:
			st.end(ReasonLifetime)
		case <-w.cut:
			st.end(ReasonCut)
		case <-pingC:
			ping()
			continue
		}
		return st.reason
	}
}

// releaseStream tells the stream's waiters (a replacing request) that its response is
// released; the handler returns next. A stream cut by fault cut-after panics with
// http.ErrAbortHandler, so that the connection is cut without the chunked terminator.
func releaseStream(st *stream) {
	close(st.closedCh)
	if st.reason == ReasonCut {
		panic(http.ErrAbortHandler)
	}
}

// closeStream releases a stream whose end was decided, and counts it.
func (s *Server) closeStream(st *stream) {
	var final []byte
	if st.reason == ReasonShutdown {
		final = []byte(": shutdown\n\n")
	}
	st.close(final)
	s.m.streamsOpen.Dec()
	s.m.streamsClosed.WithLabelValues(st.reason).Inc()
}

// stopSender stops sn, or drops it if it never ran.
func (s *Server) stopSender(sn *sender) {
	sn.stop()
	s.policy.sched.drop(sn)
}

// headOnly answers HEAD on a stream URL with the stream's headers and opens nothing.
func headOnly(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}

// progressRequest is the body of POST /sessions/{id}/progress.
type progressRequest struct {
	Progress *float64 `json:"progress"`
	Message  string   `json:"message"`
}

// callback runs what every callback (progress, publish) passes before its body is
// used: the token, a valid name in path value key (else 400) and a body within
// maxBodyBytes. It answers a failure itself; ok reports whether the handler goes on.
func (s *Server) callback(w http.ResponseWriter, r *http.Request, what, key string) (name string, body []byte, ok bool) {
	if !s.authorized(w, r) {
		return "", nil, false
	}
	name = r.PathValue(key)
	if err := checkName(what, name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return "", nil, false
	}
	body, ok = readBody(w, r)
	return name, body, ok
}

// serveProgress is POST /sessions/{id}/progress, the job's push callback.
func (s *Server) serveProgress(w http.ResponseWriter, r *http.Request) {
	id, body, ok := s.callback(w, r, "session id", "id")
	if !ok {
		return
	}
	var req progressRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "malformed JSON: "+strings.ReplaceAll(err.Error(), "\n", " "), http.StatusBadRequest)
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		http.Error(w, "malformed JSON: data after the object", http.StatusBadRequest)
		return
	}
	if req.Progress == nil {
		http.Error(w, `"progress" is missing`, http.StatusBadRequest)
		return
	}
	p := *req.Progress
	if p < 0 || p > 100 || p != math.Trunc(p) {
		http.Error(w, fmt.Sprintf(`"progress" must be a whole number from 0 to 100, got %v`, p), http.StatusBadRequest)
		return
	}
	now := time.Now()
	sess, err := s.sessions.acquire(id, now, false)
	switch {
	case errors.Is(err, errUnknownSession):
		http.Error(w, fmt.Sprintf("session %s: %v (max-early-sessions 0)", id, err), http.StatusNotFound)
		return
	case errors.Is(err, errTooManyEarly):
		s.unavailable(w, fmt.Sprintf("%v (max-early-sessions %d)", err, s.cfg.MaxEarlySessions))
		return
	case err != nil:
		s.unavailable(w, fmt.Sprintf("%v (max-sessions %d)", err, s.cfg.MaxSessions))
		return
	}
	defer func() { s.sessions.release(sess, time.Now()) }()
	seq, err := sess.progress(uint8(p), req.Message, now)
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	writeJSON(w, map[string]any{"session": id, "seq": seq})
}

// withCORS lets browser pages on any origin use the server, with credentials, and
// answers preflights (Last-Event-ID is not a CORS-safelisted header).
func withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
