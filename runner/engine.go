package runner

import (
	"context"
	"sync"
	"time"
)

// Load is a running load: the streams of one shard of a Config, opened on the Plan's
// schedule. Its methods are safe for concurrent use.
//
// Lifetime: streams open over the ramp and stay for the hold. When the hold ends (or
// Stop is called) no more streams open and every open one is closed by the client
// (Closed reason stopped). Streams still running Drain later are cancelled (reason
// cancelled). When the context passed to Start ends (Ctrl-C) the same happens at
// once, with reason cancelled. In every case all records are sent before Wait
// returns.
type Load struct {
	cfg   Config
	plan  Plan
	out   Sink
	start time.Time

	hardCtx    context.Context
	hardCancel context.CancelFunc

	mu       sync.Mutex
	stopping bool
	sources  []*EventSource // by stream index; nil when not started or not in shard
	browsers map[int]*Browser
	stopCh   chan struct{}
	stopOnce sync.Once

	streams sync.WaitGroup
	done    chan struct{}
	loops   *EventLoops // nil with Config.GoroutineReaders
	tls     *tlsConfigs // the browsers' shared tls.Configs
	records *recordPool // the sources' item records
}

// Start validates cfg and starts the load in the background; see Load for its
// lifetime. It is the runner's one entry point: Wait (or Done) blocks until every
// stream has ended and every record has been put into out (by Sink's rules; a Chan's
// reader must keep reading until then). Start returns an error only when cfg is
// invalid; a cancelled ctx (Ctrl-C) stops the load early.
func Start(ctx context.Context, cfg Config, out Sink) (*Load, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := cfg.Resolved()
	l := &Load{
		cfg:      r,
		plan:     r.Plan(),
		out:      out,
		start:    time.Now(),
		sources:  make([]*EventSource, r.Streams),
		browsers: make(map[int]*Browser),
		stopCh:   make(chan struct{}),
		done:     make(chan struct{}),
		tls:      newTLSConfigs(),
		records:  newRecordPool(),
	}
	if !r.GoroutineReaders {
		// Without epoll (not Linux) every stream keeps its goroutine.
		l.loops, _ = NewEventLoops(0)
	}
	// Streams run under a context of their own: the caller's ending starts the drain
	// instead of cutting the streams at once, so their last records are still sent.
	l.hardCtx, l.hardCancel = context.WithCancel(context.WithoutCancel(ctx))
	opened := make(chan struct{})
	go l.open(opened)
	go l.supervise(ctx, opened)
	return l, nil
}

// Config returns the resolved config the load runs with.
func (l *Load) Config() Config { return l.cfg }

// Started returns when the load started: the origin of Plan.StartAt.
func (l *Load) Started() time.Time { return l.start }

// Source returns the EventSource of stream i, or nil when it has not started yet or
// belongs to another shard. Scenarios use it to act on single streams.
func (l *Load) Source(i int) *EventSource {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < 0 || i >= len(l.sources) {
		return nil
	}
	return l.sources[i]
}

// Browser returns browser b of this shard, or nil when none of its streams started.
func (l *Load) Browser(b int) *Browser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.browsers[b]
}

// Stop ends the hold now: no more streams open, open ones are closed (reason stopped)
// and the drain starts. It does not wait; see Wait.
func (l *Load) Stop() { l.stopOnce.Do(func() { close(l.stopCh) }) }

// Done is closed when every stream has ended and every record has been sent.
func (l *Load) Done() <-chan struct{} { return l.done }

// Wait blocks until Done.
func (l *Load) Wait() { <-l.done }

// open starts the shard's streams on schedule until the plan's end or a stop.
func (l *Load) open(opened chan<- struct{}) {
	defer close(opened)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for i := range l.plan.ShardStreams() {
		at := l.start.Add(l.plan.StartAt(i))
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-l.hardCtx.Done():
				return
			case <-l.stopCh:
				return
			}
		}
		if !l.startStream(i, at) {
			return
		}
	}
}

// startStream creates and runs stream i; false means the load is stopping.
func (l *Load) startStream(i int, scheduled time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return false
	}
	bi := l.plan.Browser(i)
	b := l.browsers[bi]
	if b == nil {
		bc := l.cfg.browser(bi)
		bc.tlsShared = l.tls
		b = NewBrowser(bc)
		l.browsers[bi] = b
	}
	sc := l.cfg.source()
	sc.URL, sc.Stream, sc.Session = l.cfg.StreamURL(i), i, l.cfg.Session(i)
	sc.Scheduled, sc.EventLoops, sc.records = scheduled, l.loops, l.records
	if l.plan.Slow(i) {
		sc.ReadRate = l.cfg.ReadRate
	}
	es, err := b.NewEventSource(sc, l.out)
	if err != nil {
		// Validate checked the template; a URL that still fails is reported as the
		// stream's error rather than dropped.
		l.streams.Add(1)
		go func() {
			defer l.streams.Done()
			now := time.Now()
			base := Record{Stream: i, Browser: bi, Session: sc.Session, Time: now}
			op, er, cl := base, base, base
			op.Kind, op.Scheduled = RecordOpened, scheduled
			er.Kind, er.Class, er.Err = RecordError, ErrProtocol, err.Error()
			cl.Kind, cl.Reason = RecordClosed, CloseBadStatus
			if l.out != nil {
				l.out.Put(&op)
				l.out.Put(&er)
				l.out.Put(&cl)
			}
		}()
		return true
	}
	l.sources[i] = es
	l.streams.Add(1)
	// The source's own goroutine is the stream's only one: no wrapper goroutine, its
	// end is signalled through onEnd.
	var churn *time.Timer
	if at, ok := l.plan.LeaveAt(i); ok {
		churn = time.AfterFunc(time.Until(l.start.Add(at)), func() { es.Leave(l.plan.ChurnDelay, false) })
	}
	es.onEnd = func() {
		if churn != nil {
			churn.Stop()
		}
		l.streams.Done()
	}
	go es.run()
	return true
}

// supervise ends the load: at the end of the hold, on Stop or when ctx ends it stops
// the streams, waits the drain grace, then cancels what is left.
func (l *Load) supervise(ctx context.Context, opened <-chan struct{}) {
	finished := make(chan struct{})
	go func() {
		<-opened
		l.streams.Wait()
		close(finished)
	}()
	hold := time.NewTimer(time.Until(l.start.Add(l.plan.StopAt())))
	defer hold.Stop()
	reason := CloseStopped
	select {
	case <-hold.C:
	case <-l.stopCh:
	case <-ctx.Done():
		reason = CloseCancelled
	case <-finished:
	}
	l.stopAll(reason)
	grace := time.NewTimer(l.cfg.Drain)
	defer grace.Stop()
	select {
	case <-finished:
	case <-grace.C:
		l.stopAll(CloseCancelled)
		l.hardCancel()
		<-finished
	}
	l.hardCancel()
	l.mu.Lock()
	browsers := l.browsers
	l.mu.Unlock()
	for _, b := range browsers {
		b.Close()
	}
	if l.loops != nil {
		l.loops.Close()
	}
	close(l.done)
}

func (l *Load) stopAll(reason CloseReason) {
	l.mu.Lock()
	l.stopping = true
	sources := make([]*EventSource, 0, len(l.sources))
	for _, es := range l.sources {
		if es != nil {
			sources = append(sources, es)
		}
	}
	l.mu.Unlock()
	l.Stop()
	for _, es := range sources {
		es.stop(reason)
	}
}
