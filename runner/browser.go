package runner

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// BrowserConfig describes one simulated browser. The zero value is a browser with
// the usual limits and TLS verification on.
type BrowserConfig struct {
	// ID labels the browser's records (Record.Browser).
	ID int
	// MaxConnsPerHost is the HTTP/1.1 connection limit per origin. Default 6.
	MaxConnsPerHost int
	// DisableHTTP2 offers only http/1.1 in TLS ALPN.
	DisableHTTP2 bool
	// Insecure skips TLS certificate verification.
	Insecure bool
	// RootCAs, when set, replaces the system roots (tests with httptest certificates).
	RootCAs *x509.CertPool
	// DialTimeout bounds TCP connect plus TLS handshake. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// UserAgent is sent on every request. Default DefaultUserAgent.
	UserAgent string
	// SourceAddrs, when set, binds each new connection to its next source address
	// (round-robin, shared by the browsers of a run). Nil: the system's choice.
	SourceAddrs *SourceAddrs

	// tlsShared, when set, is the tls.Config cache the browsers of one Load share.
	tlsShared *tlsConfigs
}

// Browser is one simulated browser: it owns a connection pool per origin, which every
// EventSource and ordinary request of the browser shares. Over HTTP/1.1 (http://, or
// https:// without h2) at most MaxConnsPerHost connections are open per origin and
// further requests wait, first come first served; over HTTP/2 all requests share one
// connection up to the server's SETTINGS_MAX_CONCURRENT_STREAMS, and wait beyond it.
// A Browser is safe for concurrent use.
type Browser struct {
	cfg BrowserConfig

	mu sync.Mutex
	// Most browsers talk to one origin: its pool is kept apart, and the map is made
	// only for a second origin (a browser per stream makes every byte count).
	first  *originPool
	others map[string]*originPool
}

// NewBrowser returns a browser with no connections yet.
func NewBrowser(cfg BrowserConfig) *Browser {
	return &Browser{cfg: cfg.resolved()}
}

// ID returns the browser's index.
func (b *Browser) ID() int { return b.cfg.ID }

// BrowserStats is a snapshot of a browser's connection pools, summed over origins.
type BrowserStats struct {
	Active  int // HTTP/1.1 connections in use (including one being dialled)
	Waiting int // requests waiting for a free HTTP/1.1 connection
	H2Conns int // HTTP/2 connections dialled so far
}

// Stats returns a snapshot of the browser's pools.
func (b *Browser) Stats() BrowserStats {
	b.mu.Lock()
	pools := b.poolsLocked()
	b.mu.Unlock()
	var s BrowserStats
	for _, p := range pools {
		p.mu.Lock()
		s.Active += p.inUse
		s.Waiting += p.waiting
		s.H2Conns += p.h2Dialled
		p.mu.Unlock()
	}
	return s
}

// Close closes the browser's HTTP/2 connections (streams on them end with a network
// error). HTTP/1.1 connections belong to the requests using them and close with
// them. The browser stays usable: a later request dials again.
func (b *Browser) Close() {
	b.mu.Lock()
	pools := b.poolsLocked()
	b.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		cc := p.h2
		p.h2 = nil
		p.mode = modeUnknown
		p.mu.Unlock()
		if cc != nil {
			cc.Close()
		}
	}
}

// pool returns the pool for u's origin, creating it.
func (b *Browser) pool(u *url.URL) (*originPool, error) {
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.first; p != nil && p.scheme == u.Scheme && p.host == host && p.port == port {
		return p, nil
	}
	key := u.Scheme + "://" + net.JoinHostPort(host, port)
	if p := b.others[key]; p != nil {
		return p, nil
	}
	p := &originPool{b: b, scheme: u.Scheme, host: host, port: port, slots: semaphore.NewWeighted(int64(b.cfg.MaxConnsPerHost))}
	if u.Scheme == "http" || b.cfg.DisableHTTP2 {
		p.mode = modeH1
	}
	if b.first == nil {
		b.first = p
	} else {
		if b.others == nil {
			b.others = make(map[string]*originPool)
		}
		b.others[key] = p
	}
	return p, nil
}

func (b *Browser) poolsLocked() []*originPool {
	var pools []*originPool
	if b.first != nil {
		pools = append(pools, b.first)
	}
	for _, p := range b.others {
		pools = append(pools, p)
	}
	return pools
}

func (b *Browser) tlsConfig(host string) *tls.Config {
	if c := b.cfg.tlsShared.get(host); c != nil {
		return c
	}
	c := newTLSConfig(host, b.cfg.DisableHTTP2, b.cfg.Insecure, b.cfg.RootCAs)
	b.cfg.tlsShared.put(host, c)
	return c
}

func newTLSConfig(host string, disableH2, insecure bool, roots *x509.CertPool) *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if disableH2 {
		protos = []string{"http/1.1"}
	}
	return &tls.Config{
		ServerName:         host,
		NextProtos:         protos,
		InsecureSkipVerify: insecure, // opt-in only: self-signed targets
		RootCAs:            roots,
	}
}

// tlsConfigs holds the tls.Config of each host for the browsers of one Load, which
// all have the same TLS settings: crypto/tls keeps its Config with each connection
// (about 0.5 KB), and a Config may be shared once in use, since nothing modifies it.
// A few hosts are kept (the targets; redirects may name more, which get their own).
// A nil *tlsConfigs keeps nothing.
type tlsConfigs struct {
	mu     sync.Mutex
	byHost map[string]*tls.Config
}

const tlsConfigsMax = 64

func newTLSConfigs() *tlsConfigs { return &tlsConfigs{byHost: map[string]*tls.Config{}} }

func (t *tlsConfigs) get(host string) *tls.Config {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byHost[host]
}

func (t *tlsConfigs) put(host string, c *tls.Config) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byHost) < tlsConfigsMax {
		t.byHost[host] = c
	}
}

type protoMode uint8

const (
	modeUnknown protoMode = iota // https before the first handshake told h2 or not
	modeH1
	modeH2
)

// originPool is a browser's connections to one origin.
type originPool struct {
	b      *Browser
	scheme string
	host   string // for SNI
	port   string

	// slots are the HTTP/1.1 connection slots (MaxConnsPerHost), handed out in FIFO
	// order; inUse and waiting count them for Stats.
	slots *semaphore.Weighted

	mu      sync.Mutex
	inUse   int
	waiting int
	mode    protoMode
	probing chan struct{} // non-nil while a handshake decides the protocol
	h2      *h2Conn
	// h2Dialled counts HTTP/2 connections made, for tests and reports.
	h2Dialled int
}

// addr is the host:port to dial (made when dialling rather than kept per pool).
func (p *originPool) addr() string { return net.JoinHostPort(p.host, p.port) }

// lease is what acquire hands out: either an HTTP/1.1 connection of its own (which
// holds a pool slot until release) or the shared HTTP/2 connection.
type lease struct {
	pool  *originPool
	conn  net.Conn     // HTTP/1.1: the connection, TLS or not
	tcp   *net.TCPConn // HTTP/1.1: the TCP socket under conn (for RST)
	h2    *h2Conn
	slot  bool
	once  sync.Once
	wait  time.Duration // time spent waiting for a slot or for the protocol handshake
	dial  time.Duration // negative when no connection was dialled
	tlsHS time.Duration // negative without TLS or on reuse
}

// release gives back the slot of an HTTP/1.1 lease and closes its connection
// (connections are not kept alive: a stream's connection ends with it).
func (l *lease) release() {
	l.once.Do(func() {
		if l.conn != nil {
			l.conn.Close()
		}
		if l.slot {
			l.pool.releaseSlot()
		}
	})
}

// classedError is an error with its reporting class.
type classedError struct {
	class ErrorClass
	err   error
}

func (e *classedError) Error() string { return e.err.Error() }
func (e *classedError) Unwrap() error { return e.err }

func classify(class ErrorClass, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		class = ErrTimeout
	}
	return &classedError{class: class, err: err}
}

func errorClass(err error, fallback ErrorClass) ErrorClass {
	var ce *classedError
	if errors.As(err, &ce) {
		return ce.class
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return fallback
}

// acquireSlot waits for one of the pool's HTTP/1.1 connection slots, behind the
// requests already waiting.
func (p *originPool) acquireSlot(ctx context.Context) error {
	if !p.slots.TryAcquire(1) {
		p.mu.Lock()
		p.waiting++
		p.mu.Unlock()
		err := p.slots.Acquire(ctx, 1)
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
		if err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.inUse++
	p.mu.Unlock()
	return nil
}

// releaseSlot frees a slot for the first waiter.
func (p *originPool) releaseSlot() {
	p.mu.Lock()
	p.inUse--
	p.mu.Unlock()
	p.slots.Release(1)
}

// acquire returns a connection for one request. recvBuf (> 0) sets SO_RCVBUF on a
// connection dialled for it.
func (p *originPool) acquire(ctx context.Context, recvBuf int) (*lease, error) {
	start := time.Now()
	for {
		p.mu.Lock()
		if p.mode == modeH2 {
			if p.h2 != nil && p.h2.Err() == nil {
				cc := p.h2
				p.mu.Unlock()
				return &lease{pool: p, h2: cc, wait: time.Since(start), dial: -1, tlsHS: -1}, nil
			}
			// The shared connection died (GOAWAY, network): learn the protocol again.
			p.h2 = nil
			p.mode = modeUnknown
		}
		if p.mode == modeUnknown && p.probing != nil {
			ch := p.probing
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, classify(ErrDial, ctx.Err())
			}
		}
		probe := p.mode == modeUnknown
		var probeDone chan struct{}
		if probe {
			probeDone = make(chan struct{})
			p.probing = probeDone
		}
		p.mu.Unlock()
		return p.acquireConn(ctx, start, recvBuf, probeDone)
	}
}

// acquireConn takes an HTTP/1.1 slot and dials. When probeDone is set, this dial
// also decides the origin's protocol (https before the first handshake): an h2
// answer turns the connection into the shared HTTP/2 connection and frees the slot.
func (p *originPool) acquireConn(ctx context.Context, start time.Time, recvBuf int, probeDone chan struct{}) (*lease, error) {
	endProbe := func(mode protoMode, cc *h2Conn) {
		if probeDone == nil {
			return
		}
		p.mu.Lock()
		if mode != modeUnknown {
			p.mode = mode
		}
		if cc != nil {
			p.h2 = cc
			p.h2Dialled++
		}
		p.probing = nil
		p.mu.Unlock()
		close(probeDone)
	}
	if err := p.acquireSlot(ctx); err != nil {
		endProbe(modeUnknown, nil)
		return nil, classify(ErrDial, err)
	}
	waited := time.Since(start)
	conn, tcp, dial, tlsHS, proto, err := p.b.dial(ctx, p, recvBuf)
	if err != nil {
		p.releaseSlot()
		endProbe(modeUnknown, nil)
		return nil, err
	}
	if proto == "h2" {
		tc, ok := conn.(*tls.Conn)
		if !ok {
			conn.Close()
			p.releaseSlot()
			endProbe(modeUnknown, nil)
			return nil, classify(ErrProtocol, errors.New("h2 negotiated on a connection without TLS"))
		}
		cc, err := newH2Conn(ctx, tc, p.b.cfg.DialTimeout)
		p.releaseSlot()
		if err != nil {
			conn.Close()
			endProbe(modeUnknown, nil)
			return nil, classify(ErrProtocol, fmt.Errorf("http2 setup: %w", err))
		}
		endProbe(modeH2, cc)
		return &lease{pool: p, h2: cc, wait: waited, dial: dial, tlsHS: tlsHS}, nil
	}
	endProbe(modeH1, nil)
	return &lease{pool: p, conn: conn, tcp: tcp, slot: true, wait: waited, dial: dial, tlsHS: tlsHS}, nil
}

// dial opens a TCP connection (and TLS for https) and measures both steps.
func (b *Browser) dial(ctx context.Context, p *originPool, recvBuf int) (conn net.Conn, tcp *net.TCPConn, dial, tlsHS time.Duration, proto string, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	d := b.cfg.SourceAddrs.dialer(recvBuf)
	t0 := time.Now()
	c, err := d.DialContext(ctx, "tcp", p.addr())
	dial = time.Since(t0)
	if err != nil {
		return nil, nil, dial, -1, "", classifyDial(err, d.LocalAddr)
	}
	tcp, _ = c.(*net.TCPConn)
	if p.scheme != "https" {
		return c, tcp, dial, -1, "http/1.1", nil
	}
	// Over a loopConn, so that an HTTP/1.1 body can go to an event loop.
	tc := tls.Client(&loopConn{Conn: c, fd: -1}, b.tlsConfig(p.host))
	t1 := time.Now()
	err = tc.HandshakeContext(ctx)
	tlsHS = time.Since(t1)
	if err != nil {
		c.Close()
		return nil, nil, dial, tlsHS, "", classify(ErrTLS, err)
	}
	proto = tc.ConnectionState().NegotiatedProtocol
	if proto == "" {
		proto = "http/1.1"
	}
	return tc, tcp, dial, tlsHS, proto, nil
}

// Do sends an ordinary request through the browser's pool: over HTTP/1.1 it waits for
// a free connection like any request of a real browser. The response body must be
// closed; it holds the connection until then. Do may block until a slot frees up or
// ctx ends.
func (b *Browser) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	resp, _, err := b.DoWaited(ctx, req)
	return resp, err
}

// DoWaited is Do that also reports how long the request waited for a connection
// (an HTTP/1.1 slot, or an HTTP/2 stream under the server's limit).
func (b *Browser) DoWaited(ctx context.Context, req *http.Request) (*http.Response, time.Duration, error) {
	p, err := b.pool(req.URL)
	if err != nil {
		return nil, 0, err
	}
	l, err := p.acquire(ctx, 0)
	if err != nil {
		return nil, 0, err
	}
	waited := l.wait
	req = req.Clone(ctx)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", b.cfg.UserAgent)
	}
	if l.h2 != nil {
		resp, slotWait, err := l.h2.roundTrip(req)
		waited += slotWait
		if err != nil {
			return nil, waited, classify(ErrRead, err)
		}
		return resp, waited, nil
	}
	stop := context.AfterFunc(ctx, func() { l.conn.Close() })
	if err := req.Write(l.conn); err != nil {
		stop()
		l.release()
		return nil, waited, classify(ErrRead, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(l.conn), req)
	if err != nil {
		stop()
		l.release()
		return nil, waited, classify(ErrRead, err)
	}
	resp.Body = &leasedBody{ReadCloser: resp.Body, release: func() { stop(); l.release() }}
	return resp, waited, nil
}

// leasedBody gives the connection back to the pool when the body is closed.
type leasedBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *leasedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
