package reference

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// shutdownGrace bounds ListenAndServe's graceful shutdown before connections are cut.
const shutdownGrace = 3 * time.Second

// Server is the reference SSE server. Its methods are safe for concurrent use. A Server
// runs background goroutines from New on; Shutdown (or ListenAndServe returning) stops
// them.
type Server struct {
	cfg       Config
	policy    policies // what the faults change, chosen by New
	m         *metrics
	sessions  *sessionStore
	topics    *topicStore
	chat      *chatState
	handler   http.Handler
	tlsConfig *tls.Config // nil without TLS

	shutdownOnce sync.Once
	shutdownCh   chan struct{} // closed when shutdown begins

	bg         sync.WaitGroup // janitor and pool workers, all started by New
	senders    tracker        // senders started (or queued) and not yet finished
	nextSender atomic.Uint64
}

// New validates cfg and returns a Server ready to serve. It loads or makes the TLS
// certificate when TLS is on.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newMetrics()
	s := &Server{
		cfg:        cfg,
		m:          m,
		sessions:   &sessionStore{max: cfg.MaxSessions, ttl: cfg.SessionTTL, maxEarly: cfg.MaxEarlySessions, earlyTTL: cfg.EarlySessionTTL, replay: cfg.Replay, m: m, sessions: map[string]*session{}},
		topics:     &topicStore{max: cfg.MaxSessions, ttl: cfg.SessionTTL, replay: cfg.Replay, m: m, topics: map[string]*topic{}},
		chat:       &chatState{},
		shutdownCh: make(chan struct{}),
	}
	if cfg.tlsEnabled() {
		tc, err := serverTLSConfig(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		s.tlsConfig = tc
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sessions/{id}/events", s.serveSessionEvents)
	mux.HandleFunc("POST /sessions/{id}/progress", s.serveProgress)
	mux.HandleFunc("GET /topics/{name}/events", s.serveTopicEvents)
	mux.HandleFunc("POST /topics/{name}", s.servePublish)
	mux.HandleFunc("POST /v1/chat/completions", s.serveChatCompletions)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.handler = withCORS(mux)

	s.policy = newPolicies(cfg, m, s.bg.Go, s.shutdownCh)
	s.bg.Go(s.janitor)
	return s, nil
}

// Config returns the configuration the server runs with.
func (s *Server) Config() Config { return s.cfg }

// Handler returns the server's HTTP handler, e.g. for httptest.NewServer. Streams served
// through it end when Shutdown is called; call Shutdown before closing such a server.
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on cfg.Addr, calls ready with the URL it listens on (e.g.
// "http://127.0.0.1:43123", "https://..." with TLS), and serves until ctx is cancelled.
// Then it shuts down gracefully: it stops accepting, ends every open stream with a final
// `: shutdown` comment and returns within a few seconds, cutting what is left. An error
// means it could not listen or serve.
func (s *Server) ListenAndServe(ctx context.Context, ready func(url string)) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	l := &userTimeoutListener{TCPListener: ln.(*net.TCPListener), timeout: s.policy.userTimeout}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnContext:       connContext,
		// Per-connection errors (TLS handshakes of probing clients) are not worth a log line.
		ErrorLog: log.New(io.Discard, "", 0),
		HTTP2:    &http.HTTP2Config{MaxConcurrentStreams: s.cfg.H2MaxStreams},
	}
	hs.RegisterOnShutdown(s.beginShutdown)
	scheme := "http"
	if s.tlsConfig != nil {
		hs.TLSConfig = s.tlsConfig.Clone()
		scheme = "https"
	}
	serveErr := make(chan error, 1)
	go func() {
		if s.tlsConfig != nil {
			serveErr <- hs.ServeTLS(l, "", "")
		} else {
			serveErr <- hs.Serve(l)
		}
	}()
	if ready != nil {
		ready(scheme + "://" + advertisedHostPort(s.cfg.Addr, l.Addr()))
	}
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if hs.Shutdown(sctx) != nil {
		_ = hs.Close()
	}
	bctx, bcancel := context.WithTimeout(context.Background(), time.Second)
	defer bcancel()
	_ = s.Shutdown(bctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Shutdown ends every open stream (reason shutdown) and stops the server's goroutines,
// waiting for them until ctx is done. New requests get 503 from then on. Calling it
// again is harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	s.topics.shutdown(ctx)
	bgDone := make(chan struct{})
	go func() {
		s.bg.Wait()
		close(bgDone)
	}()
	for _, ch := range []<-chan struct{}{bgDone, s.senders.idle()} {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *Server) beginShutdown() {
	s.shutdownOnce.Do(func() {
		close(s.shutdownCh)
		s.policy.sched.shutdown()
		s.sessions.interruptStreams(ReasonShutdown)
	})
}

func (s *Server) shuttingDown() bool { return isClosed(s.shutdownCh) }

// janitor forgets idle sessions and topics.
func (s *Server) janitor() {
	every := min(max(min(s.cfg.SessionTTL, s.cfg.EarlySessionTTL)/4, 10*time.Millisecond), 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.shutdownCh:
			return
		case now := <-t.C:
			s.sessions.sweep(now)
			s.topics.sweep(now)
		}
	}
}

// advertisedHostPort is the listening address as a client can dial it: an unspecified
// host (every interface) becomes the loopback address of its family.
func advertisedHostPort(configured string, addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if host, _, err := net.SplitHostPort(configured); err == nil && host != "" {
			if h := net.ParseIP(host); h != nil && h.To4() == nil {
				ip = net.IPv6loopback
			}
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}
