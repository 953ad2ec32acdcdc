package reference

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config configures a Server. Start from DefaultConfig: several fields give a zero value
// a meaning of its own (Tick 0 = no ticks, Replay 0 = nothing retained).
type Config struct {
	// Addr is the TCP address to listen on (default "127.0.0.1:8080"; port 0 picks a free one).
	Addr string
	// Tick is the interval between `event: tick` events of an open session stream
	// (default 1s; 0 = no ticks).
	Tick time.Duration
	// Retry is the reconnection time sent as the stream's first field (default 5s).
	Retry time.Duration
	// Heartbeat is the interval of `: ping` comments on an open stream (default 15s).
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a stream; it is also the TCP user timeout of every
	// accepted connection, so a peer that stops reading is dropped by the kernel (default 10s).
	WriteTimeout time.Duration
	// MaxLifetime ends a stream after this long; the client reconnects (default 30m).
	MaxLifetime time.Duration
	// Replay is the number of events retained per session and per topic for Last-Event-ID
	// resumption (default 1000; 0 = none retained).
	Replay int
	// MaxSessions is how many sessions (and, separately, topics) the server holds at once;
	// a request that would create one more is answered 503 (default 100000). Sessions
	// only callbacks have touched do not count (see MaxEarlySessions).
	MaxSessions int
	// SessionTTL is how long a session without an open stream or running sender is kept
	// (for resumption, and to answer 204 once done) before it is forgotten (default 5m).
	SessionTTL time.Duration
	// MaxEarlySessions is how many sessions progress callbacks may create before any
	// stream opened them (early progress: a job that reports before its page connects).
	// They are held apart from MaxSessions, so callbacks for ids nobody opens cannot keep
	// streams out; one more is answered 503. 0 = early progress off: a callback for a
	// session no stream opened is 404 (default 1000).
	MaxEarlySessions int
	// EarlySessionTTL is how long a session made by a callback waits for its first
	// stream before it is forgotten (at most SessionTTL; default 1m). Once a stream
	// opened it, it is an ordinary session under SessionTTL.
	EarlySessionTTL time.Duration
	// TLS serves HTTPS with HTTP/2, using CertFile/KeyFile when set, else an in-memory
	// self-signed certificate for 127.0.0.1, ::1 and localhost (default false).
	TLS bool
	// CertFile and KeyFile are a PEM certificate and key; setting them implies TLS.
	CertFile, KeyFile string
	// H2MaxStreams is the SETTINGS_MAX_CONCURRENT_STREAMS advertised over HTTP/2 (with
	// TLS): how many streams one connection may have open at once; a client queues the
	// rest. Many servers, proxies and CDNs advertise about 100 (default 1000, generous).
	H2MaxStreams int
	// CallbackToken, when set, is required as `Authorization: Bearer <token>` on progress
	// callbacks and topic publishes (default "": no authentication).
	CallbackToken string
	// FirstTokenDelay is how long POST /v1/chat/completions waits, once a generation
	// starts, before its first token (default 20ms; 0 = none).
	FirstTokenDelay time.Duration
	// TokenInterval is the time between two tokens of a chat completion (default 5ms;
	// 0 = as fast as the connection takes them).
	TokenInterval time.Duration
	// Faults are the deliberate bugs to reproduce (default none).
	Faults Faults
}

// DefaultConfig returns the documented defaults, the same as `sseharness serve` without flags.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:8080",
		Tick:         time.Second,
		Retry:        5 * time.Second,
		Heartbeat:    15 * time.Second,
		WriteTimeout: 10 * time.Second,
		MaxLifetime:  30 * time.Minute,
		Replay:       1000,
		MaxSessions:  100000,
		SessionTTL:   5 * time.Minute,
		// Callback-made sessions: a small cap and a short wait of their own.
		MaxEarlySessions: 1000,
		EarlySessionTTL:  time.Minute,
		H2MaxStreams:     1000,

		FirstTokenDelay: 20 * time.Millisecond,
		TokenInterval:   5 * time.Millisecond,
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr %q: want host:port", c.Addr)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("addr %q: port must be a number from 0 to 65535", c.Addr)
	}
	if c.Tick < 0 {
		bad("tick must be >= 0 (0 = no ticks), got %v", c.Tick)
	}
	if c.Retry < time.Millisecond {
		bad("retry must be at least 1ms, got %v", c.Retry)
	}
	if c.Heartbeat <= 0 {
		bad("heartbeat must be > 0, got %v", c.Heartbeat)
	}
	if c.WriteTimeout < time.Millisecond {
		bad("write-timeout must be at least 1ms, got %v", c.WriteTimeout)
	}
	if c.MaxLifetime <= 0 {
		bad("max-lifetime must be > 0 (use --fault no-lifetime to disable it), got %v", c.MaxLifetime)
	}
	if c.Replay < 0 {
		bad("replay must be >= 0, got %d", c.Replay)
	}
	if c.MaxSessions < 1 {
		bad("max-sessions must be >= 1, got %d", c.MaxSessions)
	}
	if c.SessionTTL <= 0 {
		bad("session-ttl must be > 0, got %v", c.SessionTTL)
	}
	if c.MaxEarlySessions < 0 {
		bad("max-early-sessions must be >= 0 (0 = early progress off), got %d", c.MaxEarlySessions)
	}
	if c.EarlySessionTTL <= 0 {
		bad("early-session-ttl must be > 0, got %v", c.EarlySessionTTL)
	}
	if c.H2MaxStreams < 1 {
		bad("h2-max-streams must be >= 1, got %d", c.H2MaxStreams)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("cert and key must be given together")
	}
	if c.Faults.CutAfter < 0 {
		bad("fault cut-after=D needs D > 0, got %v", c.Faults.CutAfter)
	}
	if c.Faults.Pool < 0 {
		bad("fault pool=N needs N >= 1, got %d", c.Faults.Pool)
	}
	if c.FirstTokenDelay < 0 || c.TokenInterval < 0 {
		bad("first-token-delay and token-interval must be >= 0, got %v and %v", c.FirstTokenDelay, c.TokenInterval)
	}
	if c.Faults.TokenBatch < 0 || c.Faults.GenSlots < 0 {
		bad("faults token-batch=N and gen-slots=N need N >= 1, got %d and %d", c.Faults.TokenBatch, c.Faults.GenSlots)
	}
	if c.Faults.StreamError < 0 || c.Faults.StreamError > 100 {
		bad("fault stream-error=P needs P in 1..100, got %d", c.Faults.StreamError)
	}
	return errors.Join(errs...)
}

// tlsEnabled reports whether the server speaks HTTPS.
func (c Config) tlsEnabled() bool { return c.TLS || c.CertFile != "" }

// Faults selects deliberate bugs, each reproducing one real defect so that a scenario can
// be shown to fail. The zero value is the correct server.
type Faults struct {
	// NoReplace: a same-id connection is stored over the old one without ending it; the old
	// sender keeps running and pushes into the new stream too.
	NoReplace bool
	// LeakOnDisconnect: a sender never notices its client is gone and keeps running.
	LeakOnDisconnect bool
	// NoFlush: no X-Accel-Buffering header; output is written only when a 2 KiB buffer fills.
	NoFlush bool
	// NoRetry: no retry field.
	NoRetry bool
	// NoReplay: Last-Event-ID is ignored.
	NoReplay bool
	// NoHeartbeat: no keep-alive comments, no write deadlines, no TCP user timeout.
	NoHeartbeat bool
	// No204: a finished session answers 200 with an empty event stream instead of 204.
	No204 bool
	// NoLifetime: streams have no maximum lifetime.
	NoLifetime bool
	// GzipBuffer: an event stream whose client accepts gzip is gzip-compressed and never
	// flushed: bytes leave only when the compressor's output fills the response buffer,
	// as gzip middleware that does not flush per event does. (The correct server does not
	// compress event streams.)
	GzipBuffer bool
	// LateHead: a session stream's status and headers are held, with the retry field and
	// the connected event, until the sender's next write (its first event or ping), as
	// frameworks that send the head only with the first write do: a quiet stream never
	// looks open. A chat completion's head is written only with its first token.
	LateHead bool
	// CutAfter > 0: every stream's connection is cut after CutAfter, mid-body and without
	// the chunked terminator (HTTP/2: RST_STREAM), as a framework's request or async
	// timeout does (reason cut).
	CutAfter time.Duration
	// Pool > 0: senders run on a fixed pool of Pool workers whose tasks never end, so
	// session Pool+1 never gets its first event.
	Pool int

	// Chat completion faults (POST /v1/chat/completions).
	//
	// TokenBatch > 1: tokens are written TokenBatch per chunk, so one chunk is not one token.
	TokenBatch int
	// NoDone: the stream ends without its terminal `data: [DONE]`.
	NoDone bool
	// StreamError > 0: that percentage of requests (every one whose number n, counting
	// from 1, makes floor(n*P/100) step up) gets an error event inside the 200 halfway
	// through and ends.
	StreamError int
	// GenSlots > 0: only GenSlots generations run at once; the rest queue (with their
	// response head sent), so time to first token grows with load.
	GenSlots int
}

// faultFlags maps each boolean fault's name to its field.
func (f *Faults) faultFlags() map[string]*bool {
	return map[string]*bool{
		"no-replace":         &f.NoReplace,
		"leak-on-disconnect": &f.LeakOnDisconnect,
		"no-flush":           &f.NoFlush,
		"no-retry":           &f.NoRetry,
		"no-replay":          &f.NoReplay,
		"no-heartbeat":       &f.NoHeartbeat,
		"no-204":             &f.No204,
		"no-lifetime":        &f.NoLifetime,
		"gzip-buffer":        &f.GzipBuffer,
		"late-head":          &f.LateHead,
		"no-done":            &f.NoDone,
	}
}

// KnownFaults lists the fault names ParseFaults accepts, those with a value last.
func KnownFaults() []string {
	var f Faults
	names := make([]string, 0, 14)
	for name := range f.faultFlags() {
		names = append(names, name)
	}
	sort.Strings(names)
	names = append(names, "cut-after=D", "pool=N")
	for _, nf := range f.numberFaults() {
		names = append(names, nf.name+"="+nf.unit)
	}
	return names
}

// numberFault is a fault with a number: name=N.
type numberFault struct {
	name, unit string
	min, max   int
	p          *int
}

// numberFaults lists the faults with a number besides pool=N, in KnownFaults order.
func (f *Faults) numberFaults() []numberFault {
	return []numberFault{
		{"token-batch", "N", 1, 1 << 20, &f.TokenBatch},
		{"stream-error", "P", 1, 100, &f.StreamError},
		{"gen-slots", "N", 1, 1 << 20, &f.GenSlots},
	}
}

// parseNumberFault parses name=N for the faults of numberFaults; ok is false when name
// is none of them.
func (f *Faults) parseNumberFault(name string) (ok bool, err error) {
	for _, nf := range f.numberFaults() {
		n, found := strings.CutPrefix(name, nf.name+"=")
		if !found {
			continue
		}
		v, err := strconv.Atoi(n)
		if err != nil || v < nf.min || v > nf.max {
			return true, fmt.Errorf("fault %q: %s=%s needs a whole number from %d to %d", name, nf.name, nf.unit, nf.min, nf.max)
		}
		*nf.p = v
		return true, nil
	}
	return false, nil
}

// ParseFaults parses a comma-separated fault list such as "no-replace,pool=10,cut-after=30s". The empty
// string is no fault. An unknown name is an error that lists the known ones.
func ParseFaults(s string) (Faults, error) {
	var f Faults
	flags := f.faultFlags()
	var errs []error
	for _, raw := range strings.Split(s, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		if n, ok := strings.CutPrefix(name, "pool="); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v < 1 {
				errs = append(errs, fmt.Errorf("fault %q: pool=N needs a whole number N >= 1", name))
				continue
			}
			f.Pool = v
			continue
		}
		if d, ok := strings.CutPrefix(name, "cut-after="); ok {
			v, err := time.ParseDuration(d)
			if err != nil || v <= 0 {
				errs = append(errs, fmt.Errorf("fault %q: cut-after=D needs a duration D > 0, such as 30s", name))
				continue
			}
			f.CutAfter = v
			continue
		}
		if ok, err := f.parseNumberFault(name); ok {
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		p, ok := flags[name]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown fault %q (known: %s)", name, strings.Join(KnownFaults(), ", ")))
			continue
		}
		*p = true
	}
	if err := errors.Join(errs...); err != nil {
		return Faults{}, err
	}
	return f, nil
}

// String returns the canonical comma-separated form, "" for none.
func (f Faults) String() string {
	var names []string
	for name, p := range f.faultFlags() {
		if *p {
			names = append(names, name)
		}
	}
	if f.CutAfter > 0 {
		names = append(names, "cut-after="+f.CutAfter.String())
	}
	sort.Strings(names)
	if f.Pool > 0 {
		names = append(names, "pool="+strconv.Itoa(f.Pool))
	}
	for _, nf := range f.numberFaults() {
		if *nf.p > 0 {
			names = append(names, nf.name+"="+strconv.Itoa(*nf.p))
		}
	}
	return strings.Join(names, ",")
}
