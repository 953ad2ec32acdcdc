package scenarios

import (
	"fmt"
	"time"

	"github.com/sseharness/sseharness/probe"
	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// A scenario is a declaration (issue 10): its Load (phases of streams), its Needs, and
// its Checks, each judged in exactly one declared way: a report rule over the
// aggregates (CheckSpec.Rule, RhythmRule), ids delivered (Delivery), a server figure
// that must settle or not rise (Settles, Delta), or a count the harness takes over the
// streams of a phase (Reach, Fetch, Span, Senders, OpenPerSession), recorded as a
// mergeable measure. The interpreter (interpret.go) executes any declaration: it opens
// the phases in order, awaits what each declares, runs the scenario's hook if it has
// one, and judges every check. A hook only drives load (drops connections, posts
// callbacks); it never computes a statistic or a verdict.

// Phase is one group of streams of a scenario's load shape.
type Phase struct {
	// Group, when set, names the group the phase's streams fold into, for rules to
	// read by name (report.Rule.Group).
	Group string
	// Streams is the default stream count: --streams overrides it, and a shard runs its
	// share.
	Streams int
	// PerBrowser is how many streams share one simulated browser (0: a browser each).
	// The phase opens whole browsers: streams/PerBrowser of them, at least one.
	PerBrowser int
	// Tag is put into the phase's session ids, so that two phases never share a session.
	Tag string
	// NoReconnect makes the sources stay closed when their stream ends.
	NoReconnect bool
	// ReadRate, when > 0, makes the phase's clients read at most that many bytes per
	// second (slow consumers).
	ReadRate int64
	// Through, when set, is a proxy (proxy/) the harness starts in front of the target
	// for the phase's streams, with Upstream the target; the hook gets it (to cut
	// connections) and the harness closes it after the scenario.
	Through *proxy.Config
	// ThroughIdle, when set, gives the Through proxy that check's threshold as its idle
	// timeout (proxy.Config.IdleTimeout).
	ThroughIdle *CheckSpec
	// Nginx, when set, puts a real nginx in front of the target for the phase's
	// streams. Without nginx (or for an https target) the phase is left out, and every
	// check whose rule reads its group is n/a, saying why.
	Nginx *NginxPath
	// Until is what every stream of the phase must reach before the scenario goes on,
	// and Events, for UntilEvents, how many events.
	Until  Milestone
	Events int64
	// Within, when set, bounds the wait by that check's threshold plus Slack, a wait
	// long enough past the limit that a late stream is measured, not guessed. Without
	// it the wait is the start gate: up to 15 s, and a phase in which no stream got
	// there at all means the scenario's streams never started.
	Within *CheckSpec
	Slack  time.Duration
	// Wait, when Within is not set, bounds the wait instead of the start gate; a
	// phase in which no stream got there is then no error.
	Wait time.Duration
	// Reopen, when set, makes the phase a reload: it opens streams for the sessions of
	// an earlier phase instead of Streams new ones.
	Reopen *Reopen
	// Describe is the phase's load in words, for the result's requested load.
	Describe string
	// Missed is what it means when streams did not get there in time, in words, for
	// the result's notes.
	Missed string
	// Requests, when set, makes the phase request streams (declare_request.go) in
	// place of EventSources; it is then the scenario's only phase.
	Requests *RequestLoad
	// RecvBuffer, when > 0, is the socket receive buffer of the phase's clients, in
	// bytes (runner.SourceConfig.RecvBuffer): small, a client that stops reading fills
	// it at once and the server's writes block.
	RecvBuffer int
	// Settles, when set, makes the phase a stage (interpret_halfopen.go): these Settles
	// checks take their baselines just before it opens and are judged once it was
	// awaited and the hook ran, before the next stage opens. In a staged scenario
	// every phase is a stage.
	Settles []*CheckSpec
	// Ramp, when set, makes the phase the load engine's: its streams open over a ramp
	// and are held through a window (declare_hold.go).
	Ramp *Ramp
}

// NginxPath is the nginx of a phase: started from one of proxy/nginx's configurations
// (Conf, read by proxy.NginxConf, e.g. "idle-timeout.conf"), or from
// ProxyBufferingConfig.NginxConf when Conf is empty, with proxy_read_timeout set to
// ReadTimeout's threshold when that is set.
type NginxPath struct {
	Conf        string
	ReadTimeout *CheckSpec
}

// Reopen makes a phase open, for each session of phase Phase, one stream with the
// same session id while the first is still open (a page reload); the first
// BurstSessions sessions get Burst streams at once (several tabs reloading together).
type Reopen struct {
	Phase                int
	Burst, BurstSessions int
}

// Milestone is what a phase's streams must reach.
type Milestone int

// Milestones.
const (
	// UntilOpen: the response head arrived (status 200, text/event-stream).
	UntilOpen Milestone = iota + 1
	// UntilEvents: Phase.Events events arrived (at least one).
	UntilEvents
	// UntilEventsOrEnd: Phase.Events events arrived, or the stream ended (the loser of
	// a reload race).
	UntilEventsOrEnd
	// Unawaited: nothing; the next phase opens at once (a buffering path may deliver
	// nothing for a while, and the hold and the rules judge it).
	Unawaited
)

// goal is what the phase's streams await, in words.
func (p Phase) goal() string {
	switch p.Until {
	case UntilOpen:
		return "their response head"
	case Unawaited:
		return "nothing"
	}
	return plural(int(max(p.Events, 1)), "event", "events")
}

// AtThreshold, as a Limit in a CheckSpec's Rule (or in one of its And rules), stands
// for the check's threshold, known only once the run's overrides are parsed. Real
// limits are never negative, so it cannot be mistaken for one.
const AtThreshold = -1

// DeliveryP99, as a Rule's metric, is the p99 delivery latency: publish to delivery of
// the harness's marks when it published them, else from the events' send time; its
// evidence follows (marks, or events).
const DeliveryP99 = "delivery_p99"

// Settle declares a check over a figure of the server under test that the load raised
// and that must come back to its value from before the load (plus the slack) within
// the check's threshold, after the load and the hook. Merged shards keep the worst
// excess (report.MergeMax): exact for shards that scraped one server.
type Settle struct {
	Metric ServerMetric
	// Slack is how far above the baseline still counts as back: Fixed plus PerStream
	// times the scenario's streams.
	Fixed, PerStream float64
	// Missed, for a stage's check (Phase.Settles), is what a figure that did not come
	// back means, in words, for the measured text.
	Missed string
	// OffAtZero, for a stage's check, makes a threshold of 0 mean "not checked" (a
	// bound of the target the run was not told): the check is n/a with this reason,
	// and a stage whose checks are all n/a is not opened.
	OffAtZero string
}

// Reach declares a check over the streams of one phase after the hook: how many did
// not get to Until within the check's threshold plus Slack, counted from the hook's
// end. It passes at 0; counts over each shard's own streams add up in a merge.
type Reach struct {
	// Phase is the index of the phase in Scenario.Load.
	Phase int
	Until Arrival
	// Events, for Resumed, is how many events beyond those the hook produced for the
	// stream's session (its progress callbacks) it must get after the hook.
	Events int64
	Slack  time.Duration
	// Missed is what a stream that did not get there means, in words, for the note.
	Missed string
	// PlusRetry adds the longest reconnection time the target set (retry fields, or
	// the default when a stream got none) to the wait.
	PlusRetry bool
	// AfterOpening, when > Phase, judges the check as soon as that later phase is
	// open, before it is awaited (the old streams of a reload must end soon after it),
	// instead of after the hook.
	AfterOpening int
}

// Span declares a check over the streams of one phase: how many did not get from mark
// From to mark To within the check's threshold, plus the thresholds of the checks in
// Plus and, with PlusRetry, the longest reconnection time the target set. It counts
// only the streams that got to From (a stream that never got its done event is the
// done check's offender, not the next one's). After the hook the interpreter waits
// until every stream of the phase ended, or the longest span could have passed.
type Span struct {
	Phase     int
	From, To  Mark
	Plus      []*CheckSpec
	PlusRetry bool
}

// Mark is a point in a stream's life: the hook's end, its first event of a type, or
// the first close with a reason at or after its first event of a type (the end of the
// stream that carried the done event, not of an earlier one).
type Mark struct {
	Hook    bool
	Event   string
	Close   runner.CloseReason
	AfterOf string // for Close: the event type the close must follow ("": any time)
}

func (m Mark) String() string {
	switch {
	case m.Hook:
		return "the load's step"
	case m.Close != "" && m.AfterOf != "":
		return fmt.Sprintf("close %s after %s", m.Close, m.AfterOf)
	case m.Close != "":
		return "close " + string(m.Close)
	}
	return "event " + m.Event
}

// Delta declares a check over a figure of the server under test: how far it rose from
// its value before the load to its value once the phases were awaited and the hook
// ran, less the sessions with a stream still open then when MinusOpenSessions is set
// (a server's senders beyond its open sessions); at most the check's threshold. Merged shards keep the
// worst figure (report.MergeMax): exact for shards that scraped one server.
type Delta struct {
	Metric            ServerMetric
	MinusOpenSessions bool
}

// Senders declares a check over the streams of one phase: how many got events from
// more than one sender (the sender field of the events' data, or an id the runner saw
// two senders interleave); at most the check's threshold. The harness keeps a first
// sender and a flag per stream of the phase (bounded by its streams, never by events);
// the count, summed over shards, is the measure.
type Senders struct {
	Phase int
}

// Fetch declares a check over ordinary requests to the target's origin
// (SixConnectionConfig.OrdinaryURL) made while a phase is awaited: each browser of the phase makes
// one once its first AfterOpen streams are open, and the check counts the requests
// that did not complete within its threshold. Over HTTP/1.1 a browser has 6
// connections per origin, so streams beyond them and the request wait.
type Fetch struct {
	Phase     int
	AfterOpen int
}

// Arrival is what a Reach check's streams must get to after the hook.
type Arrival int

// Arrivals.
const (
	// Ended: the stream ended (the server closed it, or it was refused).
	Ended Arrival = iota + 1
	// Resumed: the stream opened again and got every event the hook produced for its
	// session plus Reach.Events.
	Resumed
)

func (a Arrival) String() string {
	if a == Ended {
		return "ended"
	}
	return "back with the events they missed"
}

// Delivery names a rule over the ids a scenario's streams got: from the harness's own
// marks when it published them (the truth, whatever the target's ids look like), else
// from the target's numeric ids.
type Delivery int

// Deliveries.
const (
	// LostIDs: ids (or marks) lost between those received.
	LostIDs Delivery = iota + 1
	// DuplicateIDs: ids (or marks) received twice.
	DuplicateIDs
	// LostOrDuplicateIDs: both, added.
	LostOrDuplicateIDs
	// OutOfOrderIDs: ids (or marks) that came after a later one.
	OutOfOrderIDs
)

// deliveryRule is the rule of a Delivery check, judged against limit.
func (h *Harness) deliveryRule(d Delivery, limit float64) report.Rule {
	lost, dup, late, lostNeeds, dupNeeds := h.deliveryRules()
	switch d {
	case LostIDs:
		return report.Rule{Metric: lost, Op: "<=", Limit: limit, Needs: lostNeeds}
	case DuplicateIDs:
		return report.Rule{Metric: dup, Op: "<=", Limit: limit, Needs: dupNeeds}
	case LostOrDuplicateIDs:
		return report.Rule{Metric: lost, Plus: []report.Term{{Metric: dup}}, Op: "<=", Limit: limit, Needs: lostNeeds}
	}
	return report.Rule{Metric: late, Op: "<=", Limit: limit, Needs: lostNeeds}
}

// ServerMetric names one of the target's metrics by its role; Options say what the
// target calls it.
type ServerMetric int

// Server metrics by role.
const (
	OpenStreamsMetric      ServerMetric = iota + 1 // Options.OpenStreamsMetric
	SendersMetric                                  // Options.SendersMetric
	GoroutinesMetric                               // the Go runtime's goroutines
	DuplicateSendersMetric                         // Options.DuplicateSendersMetric
)

func (h *Harness) metricName(m ServerMetric) string {
	switch m {
	case OpenStreamsMetric:
		return h.opts.OpenStreamsMetric
	case SendersMetric:
		return h.opts.SendersMetric
	case GoroutinesMetric:
		return probe.MetricGoroutines
	case DuplicateSendersMetric:
		return h.opts.DuplicateSendersMetric
	}
	return ""
}

// Opened is what the phases opened, for a hook.
type Opened struct {
	// Phases are the sources of each phase, in declaration order.
	Phases [][]*runner.EventSource
	// Proxies are the proxies of the phases with Through set, by phase (nil for a
	// phase opened directly).
	Proxies []*proxy.Proxy
	// ramped is the phase with Ramp set while it runs (nil without one); its Phases
	// entry is nil, since the load engine keeps no EventSource per stream.
	ramped *rampedLoad
}

// All is every source of every phase.
func (o Opened) All() []*runner.EventSource {
	var all []*runner.EventSource
	for _, p := range o.Phases {
		all = append(all, p...)
	}
	return all
}
