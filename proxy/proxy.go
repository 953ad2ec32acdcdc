// Package proxy is a reverse proxy for Server-Sent Events that buffers responses the way
// nginx does with its stock `proxy_buffering on`, and that can cut or black-hole its
// connections on demand (the proxy-buffering, reconnect-storm and half-open scenarios).
// nginx.go starts a real nginx from the configs in docker/nginx/ for the same scenarios.
//
// What is imitated, measured against nginx 1.22 on loopback with its stock proxy settings
// (proxy_http_version 1.0, proxy_buffer_size and proxy_buffers of one 4 KiB page):
//   - the response, headers included, is held until the buffer fills; then the whole buffer
//     is sent and flushed; what remains is sent when the upstream ends. nginx sends the
//     response headers together with the first buffer, not before (a client sees the
//     stream "open" only when 4 KiB have accumulated), and so does this proxy;
//   - an upstream `X-Accel-Buffering: no` turns buffering off for that response: headers
//     and every read are passed on and flushed at once; `X-Accel-Buffering: yes` turns it
//     on even when Config.NoBuffering is set; X-Accel-* headers are not passed to the
//     client (nginx's proxy_hide_header default);
//   - one upstream connection per request (nginx's stock HTTP/1.0 upstream, no keep-alive);
//   - a client that goes away aborts the upstream request (proxy_ignore_client_abort off).
//   - with Config.IdleTimeout, proxy_read_timeout: an upstream silent that long gets its
//     request cut (504 before the head; after it the client's response ends abruptly,
//     without the chunked terminator, which is what nginx 1.22 was measured doing with
//     docker/nginx/idle-timeout.conf).
//
// nginx's count differs by the upstream's header bytes (its first buffer holds the
// upstream's status line and headers too, so the first batch carries ~4000 body bytes);
// this proxy counts body bytes only, so every batch is exactly Config.BufferSize.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBufferSize is the stock nginx buffer on x86-64 Linux: one memory page.
const DefaultBufferSize = 4096

// maxBufferSize bounds Config.BufferSize: each open stream holds one buffer.
const maxBufferSize = 64 << 20

// Config configures a Proxy. The zero value is not usable: Upstream is required.
type Config struct {
	// Listen is the TCP address to listen on. Default "127.0.0.1:0": a free loopback port
	// (Proxy.URL tells which).
	Listen string
	// Upstream is the base URL requests are forwarded to, http or https. A request for
	// /a/b?q is sent to Upstream's path joined with /a/b, with the query kept.
	Upstream string
	// BufferSize is how many response body bytes are held before they are sent to the
	// client in one batch. 0 means DefaultBufferSize (4 KiB).
	BufferSize int
	// NoBuffering passes every upstream read on at once, as nginx's `proxy_buffering off`.
	// An upstream `X-Accel-Buffering: yes` still buffers that response.
	NoBuffering bool
	// InsecureUpstream skips TLS certificate verification towards an https Upstream
	// (for the reference server's self-signed certificate).
	InsecureUpstream bool
	// IdleTimeout, when > 0, cuts a request whose upstream sent no byte for that long
	// while the proxy waited for it (time a slow client holds up a send does not count),
	// as nginx's proxy_read_timeout (and a load balancer's idle timeout) does: before the
	// response head the client gets 504; after it, the client's response is cut mid-body
	// (no chunked terminator), as nginx does. Heartbeats shorter than it keep a quiet
	// stream alive. Default 0: no idle timeout.
	IdleTimeout time.Duration
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen address %q: want host:port", c.Listen))
		}
	}
	if c.Upstream == "" {
		errs = append(errs, errors.New("upstream URL is required"))
	} else if u, err := url.Parse(c.Upstream); err != nil {
		errs = append(errs, fmt.Errorf("upstream URL %q: %v", c.Upstream, err))
	} else {
		if u.Scheme != "http" && u.Scheme != "https" {
			errs = append(errs, fmt.Errorf("upstream URL %q: scheme must be http or https", c.Upstream))
		}
		if u.Host == "" {
			errs = append(errs, fmt.Errorf("upstream URL %q: no host", c.Upstream))
		}
		if u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("upstream URL %q: must not carry a query or fragment", c.Upstream))
		}
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle timeout %v: must not be negative (0 = none)", c.IdleTimeout))
	}
	if c.BufferSize < 0 || c.BufferSize > maxBufferSize {
		errs = append(errs, fmt.Errorf("buffer size %d: want 0 (default %d) to %d bytes", c.BufferSize, DefaultBufferSize, maxBufferSize))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	return c
}

// Stats is a snapshot of what a Proxy holds open.
type Stats struct {
	ClientConns   int   // client TCP connections open now
	UpstreamConns int   // upstream TCP connections open now
	Streams       int   // requests being proxied now (headers received, response not finished)
	Requests      int64 // requests received since start
	Cut           int64 // connections closed by CutAll since start
	Discarded     int64 // upstream response bytes dropped by the blackhole since start
	IdleTimeouts  int64 // requests cut by IdleTimeout since start
}

// Proxy is a running reverse proxy. Its methods are safe for concurrent use.
type Proxy struct {
	cfg       Config
	upstream  *url.URL
	ln        net.Listener
	srv       *http.Server
	transport *http.Transport

	// ctx is the parent of every upstream request; cancel ends them all at Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu            sync.Mutex
	closed        bool
	clientConns   map[net.Conn]struct{}
	upstreamConns map[*trackedConn]struct{}
	streams       int
	requests      int64
	cut           int64
	discarded     int64
	idleTimeouts  int64
	// blackholeOff is nil while the blackhole is off; while on, it is a channel closed
	// when the blackhole is switched off, so waiters learn of it.
	blackholeOff chan struct{}

	work      sync.WaitGroup // handlers and their watchers, counted only while !closed
	serveDone chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// Start validates cfg, listens and serves until ctx is done or Close is called.
func Start(ctx context.Context, cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	up, _ := url.Parse(cfg.Upstream) // validated above
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen on %s: %w", cfg.Listen, err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		cfg:           cfg,
		upstream:      up,
		ln:            ln,
		ctx:           pctx,
		cancel:        cancel,
		clientConns:   make(map[net.Conn]struct{}),
		upstreamConns: make(map[*trackedConn]struct{}),
		serveDone:     make(chan struct{}),
		done:          make(chan struct{}),
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	p.transport = &http.Transport{
		Proxy: nil, // never route through an HTTP_PROXY from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return p.trackUpstream(c), nil
		},
		DisableKeepAlives:  true,
		DisableCompression: true, // pass Accept-Encoding and the body through untouched
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: cfg.InsecureUpstream},
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		ConnState:         p.connState,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(p.serveDone)
		_ = p.srv.Serve(ln) // returns when Close closes the listener
	}()
	stopWhenDone(ctx, p.done, func() { _ = p.Close() })
	return p, nil
}

// stopWhenDone calls stop once ctx ends, unless done is closed first.
func stopWhenDone(ctx context.Context, done <-chan struct{}, stop func()) {
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
}

// URL is the proxy's base URL, e.g. http://127.0.0.1:43567.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Done is closed once the proxy has shut down and every goroutine it started has ended.
func (p *Proxy) Done() <-chan struct{} { return p.done }

// Close stops the proxy: it closes the listener and every client and upstream connection,
// and waits for every request it was serving to end. It never blocks on a client or an
// upstream. Calling it again returns at once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		_ = p.srv.Close()
		p.closeUpstreams()
		<-p.serveDone
		p.work.Wait()
		p.transport.CloseIdleConnections()
		close(p.done)
	})
	return nil
}

// CutAll closes every open client and upstream connection at once, as a proxy that
// crashes or restarts does: clients see their streams end mid-body (no final chunk) and
// the upstream sees its connections closed. The proxy keeps accepting new connections,
// so clients may reconnect at once: the reconnect storm. It returns how many connections
// it closed.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	conns := make([]io.Closer, 0, len(p.clientConns)+len(p.upstreamConns))
	for c := range p.clientConns {
		conns = append(conns, c)
	}
	for c := range p.upstreamConns {
		conns = append(conns, c.Conn)
	}
	p.cut += int64(len(conns))
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

// Blackhole switches black-hole mode on or off. While on, the proxy keeps reading every
// upstream response and discards what it reads: nothing (headers included, for streams
// not yet started) reaches the clients, no connection is closed, and a client that goes
// away is not told to the upstream, so the server sees its writes succeed: a proxy that
// silently drops the traffic (half-open clients). An upstream that ends its response
// while the blackhole is on leaves the client connection open until the blackhole is
// switched off. Data read before the blackhole went on is kept and sent later.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && p.blackholeOff == nil:
		p.blackholeOff = make(chan struct{})
	case !on && p.blackholeOff != nil:
		close(p.blackholeOff)
		p.blackholeOff = nil
	}
}

// discard counts n bytes read while the blackhole is on; it reports false when the
// blackhole is off and the bytes must be forwarded.
func (p *Proxy) discard(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blackholeOff == nil {
		return false
	}
	p.discarded += int64(n)
	return true
}

// blackholed reports whether the blackhole is on and, if so, a channel closed when it
// goes off.
func (p *Proxy) blackholed() (chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackholeOff, p.blackholeOff != nil
}

// Stats returns what the proxy holds open now.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{
		ClientConns:   len(p.clientConns),
		UpstreamConns: len(p.upstreamConns),
		Streams:       p.streams,
		Requests:      p.requests,
		Cut:           p.cut,
		Discarded:     p.discarded,
		IdleTimeouts:  p.idleTimeouts,
	}
}

func (p *Proxy) connState(c net.Conn, s http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch s {
	case http.StateNew:
		p.clientConns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(p.clientConns, c)
	}
}

// trackedConn is an upstream connection that CutAll and Close can reach.
type trackedConn struct {
	net.Conn
	p    *Proxy
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.p.mu.Lock()
		delete(c.p.upstreamConns, c)
		c.p.mu.Unlock()
	})
	return c.Conn.Close()
}

func (p *Proxy) trackUpstream(c net.Conn) net.Conn {
	t := &trackedConn{Conn: c, p: p}
	p.mu.Lock()
	p.upstreamConns[t] = struct{}{}
	p.mu.Unlock()
	return t
}

func (p *Proxy) closeUpstreams() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.upstreamConns))
	for c := range p.upstreamConns {
		conns = append(conns, c.Conn)
	}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// beginWork registers a goroutine with Close's wait; false once the proxy is closing.
func (p *Proxy) beginWork() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.work.Add(1)
	return true
}

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1, never forwarded.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

func (p *Proxy) target(in *url.URL) string {
	u := *p.upstream
	u.Path = strings.TrimSuffix(p.upstream.Path, "/") + in.Path
	u.RawPath = ""
	if in.RawPath != "" {
		u.RawPath = strings.TrimSuffix(p.upstream.EscapedPath(), "/") + in.RawPath
	}
	u.RawQuery = in.RawQuery
	return u.String()
}

// ServeHTTP forwards one request. It is the proxy's http.Handler; it blocks for as long as
// the upstream response lasts.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.beginWork() {
		http.Error(w, "proxy shutting down", http.StatusServiceUnavailable)
		return
	}
	defer p.work.Done()
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()

	upCtx, upCancel := context.WithCancel(p.ctx)
	defer upCancel()
	handlerDone := make(chan struct{})
	defer close(handlerDone)
	// A goroutine only once the client has gone: 10,000 idle streams cost none.
	stopWatch := context.AfterFunc(r.Context(), func() {
		if !p.beginWork() {
			upCancel()
			return
		}
		defer p.work.Done()
		p.propagateClientGone(handlerDone, upCancel)
	})
	defer stopWatch()

	out, err := http.NewRequestWithContext(upCtx, r.Method, p.target(r.URL), r.Body)
	if err != nil {
		http.Error(w, "bad request target", http.StatusBadRequest)
		return
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	out.ContentLength = r.ContentLength
	out.Header = r.Header.Clone()
	removeHopHeaders(out.Header)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := out.Header.Get("X-Forwarded-For"); prior != "" {
			host = prior + ", " + host
		}
		out.Header.Set("X-Forwarded-For", host)
	}

	idle := p.startIdleTimer(upCancel)
	defer idle.disarm()
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		if idle.fired() {
			http.Error(w, fmt.Sprintf("gateway timeout: the upstream sent nothing for %v", p.cfg.IdleTimeout), http.StatusGatewayTimeout)
			return
		}
		if upCtx.Err() != nil {
			return // the client left or the proxy is closing: nobody to answer
		}
		http.Error(w, "bad gateway: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	p.mu.Lock()
	p.streams++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.streams--
		p.mu.Unlock()
	}()
	idle.disarm()
	p.relay(w, r, resp, idle)
}

// idleTimer is Config.IdleTimeout for one request: it cancels the upstream request
// once the proxy has waited that long for the upstream's next bytes. As nginx's read
// timer it runs only while the proxy waits for the upstream (from the request to the
// head, and in each read), not while a slow client holds up a send. A nil idleTimer
// (no timeout) does nothing.
type idleTimer struct {
	p       *Proxy
	d       time.Duration
	t       *time.Timer
	expired atomic.Bool
}

func (p *Proxy) startIdleTimer(cancelUpstream context.CancelFunc) *idleTimer {
	if p.cfg.IdleTimeout <= 0 {
		return nil
	}
	it := &idleTimer{p: p, d: p.cfg.IdleTimeout}
	it.t = time.AfterFunc(it.d, func() {
		if it.expired.CompareAndSwap(false, true) {
			p.mu.Lock()
			p.idleTimeouts++
			p.mu.Unlock()
			cancelUpstream()
		}
	})
	return it
}

// arm starts a full timeout: the proxy waits for the upstream.
func (it *idleTimer) arm() {
	if it != nil && !it.expired.Load() {
		it.t.Reset(it.d)
	}
}

// disarm stops the timeout: the upstream answered.
func (it *idleTimer) disarm() {
	if it != nil {
		it.t.Stop()
	}
}

func (it *idleTimer) fired() bool { return it != nil && it.expired.Load() }

// propagateClientGone runs once the client has gone away: it cancels the upstream
// request, except while the blackhole is on (a network that drops traffic drops the
// client's FIN too), in which case it waits for the blackhole to go off or the response
// to end.
func (p *Proxy) propagateClientGone(handlerDone <-chan struct{}, cancelUpstream context.CancelFunc) {
	for {
		off, on := p.blackholed()
		if !on {
			cancelUpstream()
			return
		}
		select {
		case <-off:
		case <-handlerDone:
			return
		}
	}
}

// relay copies resp to w, buffered or passed through as resp's X-Accel-Buffering and the
// configuration say.
func (p *Proxy) relay(w http.ResponseWriter, r *http.Request, resp *http.Response, idle *idleTimer) {
	buffered := !p.cfg.NoBuffering
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("X-Accel-Buffering"))) {
	case "no":
		buffered = false
	case "yes":
		buffered = true
	}
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = append([]string(nil), vs...)
	}
	removeHopHeaders(h)
	for k := range h {
		if strings.HasPrefix(k, "X-Accel-") {
			delete(h, k)
		}
	}

	rc := http.NewResponseController(w)
	headerSent := false
	send := func(b []byte) error {
		if !headerSent {
			w.WriteHeader(resp.StatusCode)
			headerSent = true
		}
		if len(b) > 0 {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return rc.Flush()
	}

	// Unbuffered, nginx too reads at most one buffer (proxy_buffer_size) at a time.
	size := p.cfg.BufferSize
	if !buffered {
		if _, on := p.blackholed(); !on {
			if send(nil) != nil {
				return
			}
		}
	}
	buf := make([]byte, size)
	pending := 0 // bytes held in buf[:pending]
	for {
		idle.arm()
		n, err := resp.Body.Read(buf[pending:])
		idle.disarm()
		if n > 0 && !p.discard(n) {
			pending += n
			if !buffered || pending == len(buf) {
				if send(buf[:pending]) != nil {
					return // client gone: the deferred cancel ends the upstream request
				}
				pending = 0
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			if !p.awaitBlackholeOff(r.Context()) {
				return
			}
			_ = send(buf[:pending])
			return
		}
		// The upstream broke off (or was cut, or was silent past the idle timeout):
		// end the client's response just as abruptly, after what was already read, as
		// nginx does.
		if _, on := p.blackholed(); !on && pending > 0 {
			_ = send(buf[:pending])
		}
		panic(http.ErrAbortHandler)
	}
}

// awaitBlackholeOff blocks while the blackhole is on, so that the end of a response is
// not forwarded either. It reports false when the client or the proxy went away first.
func (p *Proxy) awaitBlackholeOff(clientCtx context.Context) bool {
	for {
		off, on := p.blackholed()
		if !on {
			return true
		}
		select {
		case <-off:
		case <-clientCtx.Done():
			return false
		case <-p.ctx.Done():
			return false
		}
	}
}
