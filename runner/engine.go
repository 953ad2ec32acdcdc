package runner

import (
	"context"
	"crypto/x509"
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
	cfg     Config
	plan    Plan
	out     chan<- Record
	start   time.Time
	rootCAs *x509.CertPool
	srcs    *SourceAddrs
	targets []string

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
}

// Run runs the load described by cfg and blocks until every stream has ended and
// every record has been sent on out. Run never closes out; the caller does, after Run
// returns, and must keep reading out until then. Run returns an error only when cfg
// is invalid; a cancelled ctx (Ctrl-C) stops the load early and still returns nil.
func Run(ctx context.Context, cfg Config, out chan<- Record) error {
	l, err := Start(ctx, cfg, out)
	if err != nil {
		return err
	}
	l.Wait()
	return nil
}

// StartOptions are knobs of Start that are not part of the load shape.
type StartOptions struct {
	// RootCAs, when set, replaces the system roots for TLS targets (tests).
	RootCAs *x509.CertPool
	// SourceAddrs, when set, binds every connection of the load's browsers to the
	// next of its source addresses (round-robin; share one across the loads of a run
	// for an even spread). Nil: the system picks the source address.
	SourceAddrs *SourceAddrs
	// Targets, when it holds more than one base URL, replaces Config.Target per stream:
	// each session is pinned to one of them (PinTarget), so that its reconnections reach
	// the same server. Nil: Config.Target for every stream.
	Targets []string
}

// Start validates cfg and starts the load in the background; see Load for its
// lifetime. out has the same rules as for Run.
func Start(ctx context.Context, cfg Config, out chan<- Record) (*Load, error) {
	return StartWith(ctx, cfg, out, StartOptions{})
}

// StartWith is Start with options.
func StartWith(ctx context.Context, cfg Config, out chan<- Record, opts StartOptions) (*Load, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := cfg.Resolved()
	l := &Load{
		cfg:      r,
		plan:     r.Plan(),
		out:      out,
		start:    time.Now(),
		rootCAs:  opts.RootCAs,
		srcs:     opts.SourceAddrs,
		targets:  opts.Targets,
		sources:  make([]*EventSource, r.Streams),
		browsers: make(map[int]*Browser),
		stopCh:   make(chan struct{}),
		done:     make(chan struct{}),
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
	l.plan.ShardStreams(func(i int) bool {
		at := l.start.Add(l.plan.StartAt(i))
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-l.hardCtx.Done():
				return false
			case <-l.stopCh:
				return false
			}
		}
		return l.startStream(i, at)
	})
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
		b = NewBrowser(BrowserConfig{
			ID:              bi,
			MaxConnsPerHost: l.cfg.MaxConnsPerHost,
			DisableHTTP2:    l.cfg.DisableHTTP2,
			Insecure:        l.cfg.Insecure,
			RootCAs:         l.rootCAs,
			DialTimeout:     l.cfg.DialTimeout,
			SourceAddrs:     l.srcs,
		})
		l.browsers[bi] = b
	}
	url := l.cfg.StreamURL(i)
	if len(l.targets) > 1 {
		pinned := l.cfg
		pinned.Target = PinTarget(l.targets, l.cfg.Session(i))
		url = pinned.StreamURL(i)
	}
	sc := SourceConfig{
		URL:             url,
		Stream:          i,
		Session:         l.cfg.Session(i),
		Header:          l.cfg.Header,
		Method:          l.cfg.Method,
		Body:            l.cfg.Body,
		AcceptEncoding:  l.cfg.AcceptEncoding,
		MaxDecodedRatio: l.cfg.MaxDecodedRatio,
		Retry:           l.cfg.Retry,
		Jitter:          l.cfg.Jitter,
		MinReconnect:    l.cfg.MinReconnect,
		MaxBackoff:      l.cfg.MaxBackoff,
		NoReconnect:     l.cfg.NoReconnect,
		RecvBuffer:      l.cfg.RecvBuffer,
		HeaderTimeout:   l.cfg.HeaderTimeout,
		MaxEventSize:    l.cfg.MaxEventSize,
		MaxLineSize:     l.cfg.MaxLineSize,
		SentField:       l.cfg.SentField,
		SentUnit:        l.cfg.SentUnit,
		SenderField:     l.cfg.SenderField,
		MarkPrefix:      l.cfg.MarkPrefix,
		Scheduled:       scheduled,
		EventLoops:      l.loops,
	}
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
				l.out <- op
				l.out <- er
				l.out <- cl
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
