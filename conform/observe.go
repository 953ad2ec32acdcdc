package conform

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sseharness/sseharness/eventstream"
)

// Timing of the probes.
const (
	// watchSlack lengthens the main watch past Idle, so that a stream silent since its
	// first bytes shows a silence of at least Idle, not Idle minus the first read's delay.
	watchSlack = 500 * time.Millisecond
	// probeWindow is how long a short probe reads the body: long enough to see it end at
	// once or deliver its first bytes, short enough to keep the run brief.
	probeWindow = 500 * time.Millisecond
	// stopWindow is how long the stop URL's body is read when it is (wrongly) a 200.
	stopWindow = time.Second
	// freshLimit ends the resume read once this many events newer than the first
	// stream arrived without the expected one: the server went on live and skipped it.
	freshLimit = 3
)

// resumeSentinel seeds the parser of a resumed body: an event still carrying it had
// no id field of its own on that stream. It contains NUL, which no id field can.
const resumeSentinel = "\x00sseharness-no-id\x00"

// unknownID is the Last-Event-ID of the "unknown id" probe when the stream showed no
// id whose shape to follow.
const unknownID = "sseharness-conform-unknown-id-0"

// observations is everything the checks judge.
type observations struct {
	cfg Config

	main *exchange // the watched stream (GET Target)
	// watch is how long the main body was watched after its first byte (or, with none,
	// after its head).
	watch time.Duration

	stop      *exchange // GET StopURL; nil without StopURL
	preflight *exchange // OPTIONS Target with Origin and Last-Event-ID requested

	// resumeFrom is the index in the main stream's events whose ID was sent as
	// Last-Event-ID; -1 when the main stream gave no id to resume from.
	resumeFrom int
	resume     *exchange // GET ResumeURL with Last-Event-ID; nil when resumeFrom < 0
	// shape is what the main stream showed of its ids; probeID, of that shape, is the
	// unknown Last-Event-ID sent ("" when none exists: noProbe says why).
	shape   idShape
	probeID string
	noProbe string
	unknown *exchange // GET ResumeURL with Last-Event-ID probeID; nil without one
	// unknownReplay is what the unknown-id reply carried.
	unknownReplay *unknownReplay
	noID          *exchange // GET ResumeURL without Last-Event-ID, after the resume

	acceptNone *exchange // GET Target without Accept
	acceptAny  *exchange // GET Target with Accept: */*

	corsAnon   *exchange // GET Target with Origin
	corsCred   *exchange // GET Target with Origin and a cookie (withCredentials)
	corsResume *exchange // GET ResumeURL with Origin and Last-Event-ID

	bare *exchange // GET Target without the configured extra headers; nil without them

	// skipped says why the second phase did not run (the main stream gave no head).
	skipped string
}

// unusable says why the target's stream cannot be used for the checks that build on
// it (reconnects, CORS, Accept variants), or "" when it can. Those checks are then n/a:
// checks 1 and 2 already fail for it.
func (o *observations) unusable() string {
	if o.skipped != "" {
		return o.skipped
	}
	if !o.main.isStream() {
		return "the stream itself is not served (" + describeResponse(o.main) + "; see checks 1 and 2)"
	}
	return ""
}

// mainEvents returns the events of the main stream.
func (o *observations) mainEvents() []eventstream.Item {
	if !o.main.gotResponse() {
		return nil
	}
	return o.main.events()
}

// streams returns every exchange that asked for the stream, for checks that look at
// all responses (status, ended-at-once, retry values).
func (o *observations) streams() []*exchange {
	var out []*exchange
	for _, e := range []*exchange{o.main, o.resume, o.unknown, o.noID, o.acceptNone, o.acceptAny, o.corsAnon, o.corsCred, o.corsResume, o.bare} {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// observe runs the probes. Requests on the target run one after another, because a
// server may end a session's earlier stream when the same session connects again
// (the reference server does): a probe overlapping the watch would cut it short. The
// stop URL and the preflight touch no stream of the target and run alongside.
func observe(ctx context.Context, cfg Config) (*observations, error) {
	p := newProber(cfg)
	defer p.close()
	o := &observations{cfg: cfg, resumeFrom: -1, watch: cfg.Idle + watchSlack}
	if err := o.watchMain(ctx, p); err != nil {
		return nil, err
	}
	if !o.main.gotResponse() {
		if !o.main.Connected {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, cfg.Target, describeErr(o.main.Err))
		}
		o.skipped = fmt.Sprintf("the target gave no response head (%v)", describeErr(o.main.Err))
		return o, nil
	}
	o.probeResume(ctx, p)
	for _, s := range o.probes(ctx, p) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		*s.dst = s.fn()
	}
	return o, ctx.Err()
}

// watchMain watches the main stream, with the stop URL and the preflight alongside
// (they touch no stream of the target). It returns ctx's error, if any, once all three
// ended.
func (o *observations) watchMain(ctx context.Context, p *prober) error {
	cfg := o.cfg
	var g errgroup.Group
	g.SetLimit(3)
	if cfg.StopURL != "" {
		g.Go(func() error {
			o.stop = p.fetch(ctx, "stop", http.MethodGet, cfg.StopURL, nil, readPlan{HeaderTimeout: cfg.Timeout, Window: stopWindow})
			return ctx.Err()
		})
	}
	g.Go(func() error {
		o.preflight = p.fetch(ctx, "preflight", http.MethodOptions, cfg.Target, http.Header{
			"Origin":                         {cfg.Origin},
			"Access-Control-Request-Method":  {cfg.Method},
			"Access-Control-Request-Headers": {"last-event-id"},
			"Accept":                         {""},
			"Cache-Control":                  {""},
			"Accept-Encoding":                {""},
		}, readPlan{HeaderTimeout: cfg.Timeout})
		return ctx.Err()
	})
	g.Go(func() error {
		o.main = p.fetch(ctx, "main", http.MethodGet, cfg.Target, nil, readPlan{HeaderTimeout: cfg.Timeout, Window: o.watch, FromFirstByte: true})
		return ctx.Err()
	})
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// probeResume reconnects with the Last-Event-ID of a main stream event (when one has
// a known successor) and reads until the replay is judged, then works out the shape of
// the stream's ids and the unknown id to probe with.
func (o *observations) probeResume(ctx context.Context, p *prober) {
	cfg := o.cfg
	events := o.mainEvents()
	o.resumeFrom = resumePoint(events)
	if o.resumeFrom >= 0 {
		var v replayVerdict
		o.resume = p.fetch(ctx, "resume", http.MethodGet, cfg.ResumeURL,
			http.Header{"Last-Event-ID": {events[o.resumeFrom].ID}},
			readPlan{HeaderTimeout: cfg.Timeout, Window: cfg.Timeout, Seed: resumeSentinel, Until: func(_ *exchange, it eventstream.Item, _ time.Time) bool {
				return it.Kind == eventstream.KindEvent && v.add(events, o.resumeFrom, it)
			}})
	}
	o.shape = shapeOf(o.main.items(), o.main.IDEvents, o.main.watched())
	var ok bool
	o.probeID, ok, o.noProbe = o.shape.probeID()
	if !ok {
		o.probeID = ""
	}
}

// probe is one short request of the second phase and where its exchange goes.
type probe struct {
	dst *(*exchange)
	fn  func() *exchange
}

// probes are the second phase's requests, in the order they run.
func (o *observations) probes(ctx context.Context, p *prober) []probe {
	cfg := o.cfg
	// A probe has seen enough once an event arrived: the body neither ended at once
	// nor held its output back.
	short := readPlan{HeaderTimeout: cfg.Timeout, Window: probeWindow, Until: func(_ *exchange, it eventstream.Item, _ time.Time) bool {
		return it.Kind == eventstream.KindEvent
	}}
	get := func(name, url string, h http.Header) func() *exchange {
		return func() *exchange { return p.fetch(ctx, name, http.MethodGet, url, h, short) }
	}
	steps := []probe{
		{&o.unknown, func() *exchange { return o.probeUnknown(ctx, p) }},
		{&o.noID, get("no-id", cfg.ResumeURL, nil)},
		{&o.acceptNone, get("no-accept", cfg.Target, http.Header{"Accept": {""}})},
		{&o.acceptAny, get("accept-any", cfg.Target, http.Header{"Accept": {"*/*"}})},
		{&o.corsAnon, get("cors-anonymous", cfg.Target, http.Header{"Origin": {cfg.Origin}})},
		{&o.corsCred, get("cors-credentials", cfg.Target, http.Header{"Origin": {cfg.Origin}, "Cookie": {"sseharness-conform=1"}})},
		{&o.corsResume, get("cors-resume", cfg.ResumeURL, http.Header{"Origin": {cfg.Origin}, "Last-Event-ID": {o.corsResumeID()}})},
	}
	if len(cfg.Header) > 0 {
		h := http.Header{}
		for k := range cfg.Header {
			h[k] = []string{""}
		}
		steps = append(steps, probe{&o.bare, get("without-headers", cfg.Target, h)})
	}
	return steps
}

// probeUnknown reconnects with an id of the stream's shape that it never sent; nil
// when there is no such id.
func (o *observations) probeUnknown(ctx context.Context, p *prober) *exchange {
	if o.probeID == "" {
		return nil
	}
	u := newUnknownReplay(&o.shape, o.probeID)
	o.unknownReplay = u
	return p.fetch(ctx, "unknown-id", http.MethodGet, o.cfg.ResumeURL, http.Header{"Last-Event-ID": {o.probeID}},
		readPlan{HeaderTimeout: o.cfg.Timeout, Window: probeWindow, Until: func(ex *exchange, it eventstream.Item, at time.Time) bool {
			return u.feed(it, ex.HeadersAt, at)
		}})
}

// corsResumeID is the Last-Event-ID of the CORS reconnect: the resume's, else the
// unknown probe's, else a made-up one.
func (o *observations) corsResumeID() string {
	if o.resumeFrom >= 0 {
		return o.mainEvents()[o.resumeFrom].ID
	}
	return cmp.Or(o.probeID, unknownID)
}

// resumePoint picks the main stream event whose ID a reconnect sends: the latest one
// that is followed by an event with a different, non-empty ID, so that the event the
// server must replay first is known. -1 when there is none.
func resumePoint(events []eventstream.Item) int {
	for i := len(events) - 2; i >= 0; i-- {
		if events[i].ID != "" && events[i+1].ID != "" && events[i+1].ID != events[i].ID {
			return i
		}
	}
	return -1
}

// replayVerdict is the state of a resumed stream compared with the first one.
type replayVerdict struct {
	done     bool   // nothing more to learn: found, repeated or skipped
	found    bool   // the event after the resume point arrived
	repeated string // ID of an event the client already had, resent
	fresh    int    // events that are neither old nor the expected one, before it
	firstID  string // the first event on the resumed stream with an id of its own: "id" (type)
}

// judgeReplay compares the events of a resumed stream (parsed with resumeSentinel)
// with the first stream's events, resumed after index from: events[:from+1] are what
// the client already had, events[from+1] is what the server must send first.
func judgeReplay(events []eventstream.Item, from int, got []eventstream.Item) replayVerdict {
	var v replayVerdict
	for _, e := range got {
		if v.add(events, from, e) {
			break
		}
	}
	return v
}

// add judges the next event e of the resumed stream and reports v.done.
func (v *replayVerdict) add(events []eventstream.Item, from int, e eventstream.Item) bool {
	if v.done || !e.HasID || e.ID == resumeSentinel || e.ID == "" {
		return v.done // no id of its own (e.g. a greeting): not part of the replay
	}
	if v.firstID == "" {
		v.firstID = fmt.Sprintf("%q (%s)", e.ID, e.Type)
	}
	if from+1 < len(events) && sameEvent(events[from+1], e, events) {
		v.found, v.done = true, true
		return true
	}
	for _, h := range events[:from+1] {
		if sameEvent(h, e, events) {
			v.repeated, v.done = e.ID, true
			return true
		}
	}
	if e.ID == events[from].ID {
		// Another event that names the client's position: it moves the client
		// nowhere, so a drop right after it loses nothing.
		return false
	}
	v.fresh++
	v.done = v.fresh >= freshLimit
	return v.done
}

// sameEvent reports whether b is a resend of a. Servers re-encode replayed events
// (the reference server marks them and stamps a new send time), so identity is the
// id and the type; the data must match too only when the first stream used that id
// for more than one event.
func sameEvent(a, b eventstream.Item, all []eventstream.Item) bool {
	if a.ID != b.ID || a.Type != b.Type {
		return false
	}
	n := 0
	for _, e := range all {
		if e.ID == a.ID {
			n++
		}
	}
	return n == 1 || a.Data == b.Data
}

// describeErr shortens transport errors to what a user can act on.
func describeErr(err error) string {
	if err == nil {
		return "no error"
	}
	var dns *net.DNSError
	var op *net.OpError
	var cert *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cert):
		return "TLS certificate: " + cert.Err.Error() + " (--insecure accepts a self-signed test server)"
	case errors.As(err, &dns):
		return "DNS: " + dns.Error()
	case errors.As(err, &op) && op.Op == "dial":
		if msg := op.Err.Error(); strings.HasPrefix(msg, "connect:") {
			return msg
		}
		return "connect: " + op.Err.Error()
	}
	return err.Error()
}
