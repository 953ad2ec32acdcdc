package reference

import (
	"bytes"
	"net/http"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

// policies are the Server's behaviours that a fault can change. New chooses them once
// from Config: the defaults are the correct server, and each fault in Config.Faults
// swaps one for the faulty type or function defined next to the seam it changes. The
// request paths call these and never read Config.Faults. Every field is set, and every
// one is safe for concurrent use (the per-stream ones are made per stream).
type policies struct {
	// lastEventID reads the client's resume point; no-replay: ignoreLastEventID.
	lastEventID func(r *http.Request) (id string, ok bool)
	// retry appends the stream's retry field; no-retry: noRetryField.
	retry func(buf *bytes.Buffer)
	// finished answers a request for a finished session; no-204: finishedEmpty200.
	finished func(w http.ResponseWriter)

	// newBody makes a stream's body writer: how bytes are flushed and encoded; no-flush:
	// newBufferedBody, gzip-buffer: gzipWhenAccepted over either.
	newBody newBodyFunc
	// sessionHead makes a session stream's head policy; late-head: a lateHead. (Topic
	// streams always send the head at once.)
	sessionHead func() headPolicy
	// writeDeadline arms each stream write's deadline; no-heartbeat: noWriteDeadline.
	writeDeadline func(rc *http.ResponseController)
	// userTimeout is the TCP user timeout of accepted connections; no-heartbeat: 0, the
	// kernel's default.
	userTimeout time.Duration

	// takeover is what a same-id connection does to the earlier stream and sender;
	// no-replace: keepEarlier.
	takeover takeover
	// gone is whether a sender notices its client left; leak-on-disconnect: ignoreGone.
	gone goneNotice
	// sched runs senders: inline, on the goroutine holding the stream; leak-on-disconnect:
	// goroutines, one each; pool=N: a senderPool of N workers.
	sched scheduler

	// chat is what the chat faults change in a chat completion.
	chat chatPolicy

	// heartbeat ticks `: ping` comments; no-heartbeat: never.
	heartbeat timerFunc
	// tick ticks `event: tick` of a session stream; Tick 0: never (not a fault).
	tick timerFunc
	// lifetime fires when a stream reached MaxLifetime; no-lifetime: never.
	lifetime timerFunc
	// cut fires when fault cut-after=D cuts a stream; never otherwise.
	cut timerFunc
}

// newPolicies chooses the policies cfg asks for. cfg is valid. A scheduler that needs
// goroutines of its own (pool=N) starts them with goBackground and stops them when
// shutdown is closed.
func newPolicies(cfg Config, m *metrics, goBackground func(func()), shutdown <-chan struct{}) policies {
	f := cfg.Faults
	p := policies{
		lastEventID: lastEventID,
		retry:       retryField(cfg.Retry),
		finished:    finishedNoContent,

		newBody:       newFlushedBody,
		sessionHead:   func() headPolicy { return headNow{} },
		writeDeadline: writeDeadline(cfg.WriteTimeout),
		userTimeout:   cfg.WriteTimeout,

		takeover: replaceEarlier{},
		gone:     noticeGone{},
		sched:    inline{},

		chat: newChatPolicy(f),

		heartbeat: every(cfg.Heartbeat),
		tick:      never,
		lifetime:  after(cfg.MaxLifetime),
		cut:       never,
	}
	if cfg.Tick > 0 {
		p.tick = every(cfg.Tick)
	}
	if f.NoReplay {
		p.lastEventID = ignoreLastEventID
	}
	if f.NoRetry {
		p.retry = noRetryField
	}
	if f.No204 {
		p.finished = finishedEmpty200
	}
	if f.NoReplace {
		p.takeover = keepEarlier{}
	}
	if f.LeakOnDisconnect {
		p.gone = ignoreGone{}
		p.sched = goroutines{}
	}
	if f.Pool > 0 {
		p.sched = newSenderPool(f.Pool, m, goBackground, shutdown)
	}
	if f.NoFlush {
		p.newBody = newBufferedBody
	}
	if f.GzipBuffer {
		p.newBody = gzipWhenAccepted(p.newBody)
	}
	if f.LateHead {
		p.sessionHead = func() headPolicy { return &lateHead{} }
	}
	if f.NoHeartbeat {
		p.heartbeat = never
		p.writeDeadline = noWriteDeadline
		p.userTimeout = 0
	}
	if f.NoLifetime {
		p.lifetime = never
	}
	if f.CutAfter > 0 {
		p.cut = after(f.CutAfter)
	}
	return p
}

// timerFunc starts a timer or a ticker and returns its channel and the function that
// stops it. The channel may be nil (never), which a select waits on forever.
type timerFunc func() (c <-chan time.Time, stop func())

// every ticks every d.
func every(d time.Duration) timerFunc {
	return func() (<-chan time.Time, func()) {
		t := time.NewTicker(d)
		return t.C, t.Stop
	}
}

// after fires once, d from now.
func after(d time.Duration) timerFunc {
	return func() (<-chan time.Time, func()) {
		t := time.NewTimer(d)
		return t.C, func() { t.Stop() }
	}
}

// never is the timer that does not fire: faults no-heartbeat and no-lifetime, and a
// stream without cut-after.
func never() (<-chan time.Time, func()) { return nil, func() {} }

// retryField is the correct stream start: a retry field of d.
func retryField(d time.Duration) func(buf *bytes.Buffer) {
	return func(buf *bytes.Buffer) {
		_, _ = (&sse.Message{Retry: d}).WriteTo(buf)
	}
}

// noRetryField is fault no-retry: the stream starts without a retry field.
func noRetryField(*bytes.Buffer) {}

// ignoreLastEventID is fault no-replay: every client is treated as a new one.
func ignoreLastEventID(*http.Request) (string, bool) { return "", false }

// finishedNoContent answers a finished session with 204, which tells an EventSource to
// stop reconnecting.
func finishedNoContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }

// finishedEmpty200 is fault no-204: an empty 200 event stream, which makes an
// EventSource reconnect forever.
func finishedEmpty200(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}
