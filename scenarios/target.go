package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// TargetDescription is what the scenarios know about a target beyond its URLs (issue
// 11): where an event's send time is, how to publish to it, how its streams are asked
// for. The zero value describes a target with the reference server's send-time field,
// no publish endpoint and browser-like requests.
type TargetDescription struct {
	// SentField is the JSON path of an event's send time in its data ("ts",
	// "meta.sent_at"); SentUnit how it is written (auto, ns, us, ms, s, rfc3339).
	// Default runner.DefaultSentField, in ns.
	SentField string
	SentUnit  runner.SentUnit
	// AcceptEncoding is the streams' Accept-Encoding (default Chromium's;
	// runner.AcceptIdentity turns compression off).
	AcceptEncoding string
	// MinReconnect is the shortest reconnection delay whatever the target's retry.
	// Default runner.DefaultMinReconnect.
	MinReconnect time.Duration
	// Method and Body are the stream requests' method (default GET) and body template
	// ({session} is replaced by the stream's session id): a target whose streams are
	// asked for with POST. A GET has no body.
	Method string
	Body   string
	// Publish is the target's publish endpoint; an empty URL means it has none. Each
	// scenario that publishes sets the Duration.
	Publish runner.PublishConfig
}

func (d TargetDescription) validate() error {
	var errs []error
	// The runner's own validation of the same fields, on a config that is valid
	// otherwise.
	load := runner.Config{Target: "http://127.0.0.1", SentField: d.SentField, SentUnit: d.SentUnit,
		AcceptEncoding: d.AcceptEncoding, MinReconnect: d.MinReconnect, Method: d.Method, Body: d.Body}
	if err := load.Validate(); err != nil {
		errs = append(errs, err)
	}
	if d.Publish.URL != "" {
		p := d.Publish
		p.Duration = time.Second // set by each scenario
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Capability is something a scenario needs from its target; without it the
// scenario's checks that need it are n/a, saying why.
type Capability string

// Capabilities a target may have.
const (
	// NeedSessions: the stream URL names a session ({session} in --stream-url), so
	// two streams of one session are a reload, not two subscribers of one feed.
	NeedSessions Capability = "sessions"
	// NeedCallback: a progress callback produces an event for a session on demand.
	NeedCallback Capability = "progress-callback"
	// NeedMetrics: the target's metrics can be read (--metrics-url).
	NeedMetrics Capability = "metrics"
	// NeedPublish: the harness can publish events itself (--publish-url).
	NeedPublish Capability = "publish"
)

// hasSessions reports whether the target has sessions: a {session} in its stream URL.
// Without one it is a broadcast feed, the same events for every subscriber.
func (h *Harness) hasSessions() bool { return strings.Contains(h.opts.StreamTemplate, "{session}") }

// hasPublish reports whether the harness can publish to the target.
func (h *Harness) hasPublish() bool { return h.opts.Publish.URL != "" }

// lacks says why the target lacks c ("" when it has it), for an n/a.
func (h *Harness) lacks(c Capability) string {
	switch c {
	case NeedSessions:
		if !h.hasSessions() {
			return fmt.Sprintf("the target is a broadcast feed (no {session} in --stream-url %s): it has no sessions, so a second stream is another subscriber, not a reload", h.opts.StreamTemplate)
		}
	case NeedCallback:
		if !h.HasCallback() {
			return "the target has no progress callback (--progress-url none)"
		}
	case NeedMetrics:
		if h.probe == nil {
			return "the target's metrics are not read (--metrics-url none)"
		}
	case NeedPublish:
		if !h.hasPublish() {
			return "the harness cannot publish to the target (no --publish-url)"
		}
	default:
		return fmt.Sprintf("unknown capability %q", string(c))
	}
	return ""
}

// lacking is why the target lacks any of the scenario's needs, "" when it has them all.
func (h *Harness) lacking() string {
	var why []string
	for _, c := range h.sc.Needs {
		if w := h.lacks(c); w != "" {
			why = append(why, w)
		}
	}
	return strings.Join(why, "; ")
}

// description is the target description and the publisher's mark prefix (empty
// without a publisher), which describeSource and describeLoad apply.
func (h *Harness) description() (TargetDescription, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opts.TargetDescription, h.markPrefix
}

// describeSource applies the target description to a source's config.
func (h *Harness) describeSource(c *runner.SourceConfig) {
	d, mark := h.description()
	c.SentField, c.SentUnit, c.AcceptEncoding, c.MinReconnect = d.SentField, d.SentUnit, d.AcceptEncoding, d.MinReconnect
	c.Method, c.Body, c.MarkPrefix = d.Method, d.Body, mark
}

// describeLoad applies the target description to a load's config.
func (h *Harness) describeLoad(c *runner.Config) {
	d, mark := h.description()
	c.SentField, c.SentUnit, c.AcceptEncoding, c.MinReconnect = d.SentField, d.SentUnit, d.AcceptEncoding, d.MinReconnect
	c.Method, c.Body, c.MarkPrefix = d.Method, d.Body, mark
}

// preparePublish makes the streams opened from now on look for the marks of a
// publisher that startPublish will run for d; ok is false when the target has no
// publish endpoint. Call it before opening the streams that should see the marks.
func (h *Harness) preparePublish(d time.Duration) (ok bool, err error) {
	if !h.hasPublish() {
		return false, nil
	}
	cfg := h.opts.Publish
	cfg.Duration = d
	cfg.Insecure = cfg.Insecure || h.opts.Insecure
	p, err := runner.NewPublisher(cfg)
	if err != nil {
		return false, fmt.Errorf("publish: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publisher = p
	h.markPrefix = p.Prefix()
	return true, nil
}

// startPublish starts the publisher preparePublish made: its Publish records go to
// the aggregate; Finish stops it.
func (h *Harness) startPublish(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.publisher == nil || h.finished || h.stopPublish != nil {
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	h.stopPublish = cancel
	p := h.publisher
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		p.Run(pctx, h.coll)
	}()
}

// latencyNote says where delivery latency came from, or why there was none.
func (h *Harness) latencyNote() string {
	m := h.agg.Metrics()
	field := h.opts.SentField
	if field == "" {
		field = runner.DefaultSentField
	}
	unit := string(h.opts.SentUnit)
	if unit == "" {
		unit = "ns"
		if field != runner.DefaultSentField {
			unit = "auto"
		}
	}
	var parts []string
	switch {
	case m.Latency.Count > 0:
		parts = append(parts, fmt.Sprintf("latency from the send time in field %q (%s) of %d of %d events", field, unit, m.Latency.Count, m.Events))
	case m.Events > 0:
		parts = append(parts, fmt.Sprintf("no send-time latency: none of the %d events had a field %q in its JSON data (--sent-field)", m.Events, field))
	}
	if m.MarkLatency.Count > 0 {
		parts = append(parts, fmt.Sprintf("publish-to-delivery latency from %d received marks of %d published", m.MarkEvents, m.Published))
	}
	return strings.Join(parts, "; ")
}
