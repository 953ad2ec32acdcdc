package runner

import (
	"cmp"
	"net/http"
	"time"
)

// Defaults applied to zero fields, each in one place below: Config.Resolved for the
// load's own fields, SourceConfig.resolved and BrowserConfig.resolved for what every
// stream and browser has (Config.Resolved reads those back for its copies).
const (
	DefaultStreamTemplate   = "{target}/sessions/{session}/events"
	DefaultProgressTemplate = "{target}/sessions/{session}/progress"
	DefaultStreams          = 10
	DefaultMaxConnsPerHost  = 6 // what browsers allow per origin over HTTP/1.1
	DefaultHold             = 10 * time.Second
	DefaultDrain            = 5 * time.Second
	DefaultChurnDelay       = time.Second
	DefaultRetry            = 3 * time.Second // the usual browser reconnection time
	DefaultMinReconnect     = 100 * time.Millisecond
	DefaultMaxBackoff       = 30 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultHeaderTimeout    = 30 * time.Second
	DefaultSentField        = "sent_unix_ns"
	DefaultSenderField      = "sender"
	DefaultSessionPrefix    = "s-"
	DefaultUserAgent        = "sseharness"
)

// Resolved returns c with every zero field set to its default.
func (c Config) Resolved() Config {
	c.StreamTemplate = cmp.Or(c.StreamTemplate, DefaultStreamTemplate)
	c.ProgressTemplate = cmp.Or(c.ProgressTemplate, DefaultProgressTemplate)
	c.Streams = cmp.Or(c.Streams, DefaultStreams)
	switch {
	case c.StreamsPerBrowser == 0 && c.Browsers > 0:
		c.StreamsPerBrowser = ceilDiv(c.Streams, c.Browsers)
	case c.StreamsPerBrowser == 0:
		c.StreamsPerBrowser = 1
	}
	if c.Browsers == 0 && c.StreamsPerBrowser > 0 {
		c.Browsers = ceilDiv(c.Streams, c.StreamsPerBrowser)
	}
	c.Hold = cmp.Or(c.Hold, DefaultHold)
	c.Drain = cmp.Or(c.Drain, DefaultDrain)
	c.ChurnDelay = cmp.Or(c.ChurnDelay, DefaultChurnDelay)
	c.SessionPrefix = cmp.Or(c.SessionPrefix, DefaultSessionPrefix)
	c.Shard.Count = cmp.Or(c.Shard.Count, 1)

	// A negative value stays as it is for Validate to report.
	b := c.browser(0).resolved()
	c.MaxConnsPerHost = keepNegative(c.MaxConnsPerHost, b.MaxConnsPerHost)
	c.DialTimeout = keepNegative(c.DialTimeout, b.DialTimeout)
	s := c.source().resolved()
	c.Method, c.AcceptEncoding = s.Method, s.AcceptEncoding
	c.MaxDecodedRatio = keepNegative(c.MaxDecodedRatio, s.MaxDecodedRatio)
	c.Retry = keepNegative(c.Retry, s.Retry)
	c.MinReconnect = keepNegative(c.MinReconnect, s.MinReconnect)
	c.MaxBackoff = keepNegative(c.MaxBackoff, s.MaxBackoff)
	c.HeaderTimeout = keepNegative(c.HeaderTimeout, s.HeaderTimeout)
	c.SentField, c.SentUnit, c.SenderField = s.SentField, s.SentUnit, s.SenderField
	return c
}

// keepNegative is resolved, or v when v is negative.
func keepNegative[T int | time.Duration](v, resolved T) T {
	if v < 0 {
		return v
	}
	return resolved
}

// resolved returns c with the defaults of its zero (or negative) fields.
func (c SourceConfig) resolved() SourceConfig {
	c.Method = cmp.Or(c.Method, http.MethodGet)
	c.AcceptEncoding = cmp.Or(c.AcceptEncoding, DefaultAcceptEncoding)
	c.MaxDecodedRatio = positiveOr(c.MaxDecodedRatio, DefaultMaxDecodedRatio)
	c.Retry = positiveOr(c.Retry, DefaultRetry)
	c.MinReconnect = positiveOr(c.MinReconnect, DefaultMinReconnect)
	c.MaxBackoff = positiveOr(c.MaxBackoff, DefaultMaxBackoff)
	c.HeaderTimeout = positiveOr(c.HeaderTimeout, DefaultHeaderTimeout)
	c.SentField = cmp.Or(c.SentField, DefaultSentField)
	c.SentUnit = resolveSentUnit(c.SentUnit, c.SentField)
	c.SenderField = cmp.Or(c.SenderField, DefaultSenderField)
	return c
}

// resolved returns c with the defaults of its zero (or negative) fields.
func (c BrowserConfig) resolved() BrowserConfig {
	c.MaxConnsPerHost = positiveOr(c.MaxConnsPerHost, DefaultMaxConnsPerHost)
	c.DialTimeout = positiveOr(c.DialTimeout, DefaultDialTimeout)
	c.UserAgent = cmp.Or(c.UserAgent, DefaultUserAgent)
	return c
}

func positiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func ceilDiv(a, b int) int {
	if b <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// source is what every stream's SourceConfig takes from c, before the stream's own
// fields (URL, Stream, Session, Scheduled, ReadRate, EventLoops).
func (c Config) source() SourceConfig {
	return SourceConfig{
		Header:          c.Header,
		Method:          c.Method,
		Body:            c.Body,
		AcceptEncoding:  c.AcceptEncoding,
		MaxDecodedRatio: c.MaxDecodedRatio,
		Retry:           c.Retry,
		Jitter:          c.Jitter,
		MinReconnect:    c.MinReconnect,
		MaxBackoff:      c.MaxBackoff,
		NoReconnect:     c.NoReconnect,
		RecvBuffer:      c.RecvBuffer,
		HeaderTimeout:   c.HeaderTimeout,
		MaxEventSize:    c.MaxEventSize,
		MaxLineSize:     c.MaxLineSize,
		SentField:       c.SentField,
		SentUnit:        c.SentUnit,
		SenderField:     c.SenderField,
		MarkPrefix:      c.MarkPrefix,
	}
}

// browser is the BrowserConfig of c's browser id.
func (c Config) browser(id int) BrowserConfig {
	return BrowserConfig{
		ID:              id,
		MaxConnsPerHost: c.MaxConnsPerHost,
		DisableHTTP2:    c.DisableHTTP2,
		Insecure:        c.Insecure,
		RootCAs:         c.RootCAs,
		DialTimeout:     c.DialTimeout,
		SourceAddrs:     c.SourceAddrs,
	}
}
