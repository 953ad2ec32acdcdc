package scenarios

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sseharness/sseharness/docker"
	"github.com/sseharness/sseharness/probe"
	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// A scenario is a declaration (issue 10): its Load (phases of streams), its Needs, and
// its Checks, each a report rule (CheckSpec.Rule) or a probe of a server figure that
// must settle (CheckSpec.Settles). The harness's interpreter (runDeclared) executes any
// declaration: it opens the phases in order, awaits what each declares, runs the
// scenario's hook if it has one, and then judges every declared check. A hook only
// drives load (drops connections, posts callbacks); it never computes a statistic or
// a verdict.

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
}

// NginxPath is the nginx of a phase: started from a configuration of docker/nginx
// (Conf, e.g. "idle-timeout.conf"), or from ProxyBufferingConfig.NginxConf when Conf is
// empty, with proxy_read_timeout set to ReadTimeout's threshold when that is set.
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

// Settle declares a check over a figure of the server under test that the load raised
// and that must come back to its value from before the load (plus the slack) within
// the check's threshold, after the load and the hook. Merged shards keep the worst
// excess (report.MergeMax): exact for shards that scraped one server.
type Settle struct {
	Metric ServerMetric
	// Slack is how far above the baseline still counts as back: Fixed plus PerStream
	// times the scenario's streams.
	Fixed, PerStream float64
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
}

// All is every source of every phase.
func (o Opened) All() []*runner.EventSource {
	var all []*runner.EventSource
	for _, p := range o.Phases {
		all = append(all, p...)
	}
	return all
}

// declared reports whether the scenario is a declaration for runDeclared (no run
// function of its own).
func (s *Scenario) declared() bool { return s.run == nil }

// runDeclared executes the scenario's declaration: baseline probes, phases, hook, and
// then every declared check.
func (h *Harness) runDeclared(ctx context.Context) error {
	if c := h.sc.HoldOf; c != nil && h.dur(c) <= 0 {
		return fmt.Errorf("%s: the %s threshold (the hold is %.1f of it) must be > 0", h.sc.Name, c.Name, h.sc.HoldTimes)
	}
	var probes []*CheckSpec // Settles and Delta: against the server's figures before the load
	for _, c := range h.sc.Checks {
		if c.Settles != nil || c.Delta != nil {
			probes = append(probes, c)
		}
	}
	base := probe.Sample{}
	if len(probes) > 0 {
		var ok bool
		if base, ok = h.Scrape(ctx); !ok {
			for _, c := range probes {
				h.notApplicable(c, "the target's metrics could not be read at --metrics-url: only the server can tell")
			}
			if len(probes) == len(h.sc.Checks) {
				return nil
			}
			probes = nil
		}
	}
	senders := h.watchSenders()
	marks := h.watchMarks()
	if h.sc.Publish {
		// Long enough for any declared wait; Finish stops the publisher.
		if _, err := h.preparePublish(h.declaredWaits()); err != nil {
			return err
		}
	}
	opened, total, err := h.openPhases(ctx)
	if err != nil {
		return err
	}
	for _, c := range probes {
		if v, ok := h.metric(ctx, h.metricName(c.probed())); ok && c.Settles != nil {
			h.note("server reported %.0f %s under the load", v, h.metricName(c.Settles.Metric))
		}
	}
	before := make(map[*runner.EventSource][2]int64) // opens and events before the hook
	for _, s := range opened.All() {
		before[s] = [2]int64{s.Opens(), s.Events()}
	}
	var after *Group
	if h.sc.HookWindow != "" {
		after = h.Window(h.sc.HookWindow, total)
		after.Open()
	}
	if h.sc.hook != nil {
		if err := h.sc.hook(ctx, h, opened); err != nil {
			return err
		}
	}
	hookEnd := time.Now()
	if marks != nil {
		WaitAll(ctx, opened.All(), h.longestSpan(opened), awaitDone)
	}
	for _, c := range h.sc.Checks {
		if c.Reach != nil && c.Reach.AfterOpening <= c.Reach.Phase {
			h.reach(ctx, c, opened.Phases[c.Reach.Phase], before, after)
		}
	}
	// What holds while the load is still there: streams open per session, server
	// figures against their baselines.
	for _, c := range h.sc.Checks {
		switch {
		case c.OpenPerSession:
			h.openPerSession(c, opened)
		case c.Delta != nil && probes != nil:
			h.delta(ctx, c, base, opened)
		}
	}
	if err := Sleep(ctx, h.holdFor()); err != nil {
		return err
	}
	h.Finish()
	if m := h.agg.Metrics(); m.Attempts > 0 && m.Streams == 0 {
		// Nothing opened anywhere: tell an unreachable or refusing target from one
		// that fails the checks.
		return notStarted(fmt.Sprintf("no stream opened (not opened: %s)", breakdownCounts(m.NotOpened)))
	}
	rhythm := h.markPrefix == "" && h.agg.Metrics().Latency.Count == 0
	switch {
	case rhythm && slices.ContainsFunc(h.sc.Checks, func(c *CheckSpec) bool { return c.RhythmRule != nil }):
		h.note("no send time and no publish endpoint: arrival rhythm compared (p99 gap between events and time to first event, each path against direct)")
	case slices.ContainsFunc(h.sc.Checks, func(c *CheckSpec) bool { return c.Rule != nil && usesDeliveryP99(*c.Rule) }):
		if note := h.latencyNote(); note != "" {
			h.note("%s", note)
		}
	}
	for i, px := range opened.Proxies {
		if px != nil && h.sc.Load[i].ThroughIdle != nil {
			h.note("the proxy of %s cut %d requests at its idle timeout", cmp.Or(h.sc.Load[i].Group, "the streams"), px.Stats().IdleTimeouts)
		}
	}
	for _, c := range probes {
		if c.Settles != nil {
			h.settle(ctx, c, base, total)
		}
	}
	for _, c := range h.sc.Checks {
		switch {
		case c.Rule != nil:
			r := *c.Rule
			if rhythm && c.RhythmRule != nil {
				r = *c.RhythmRule
			}
			if why := h.skippedIn(r); why != "" {
				h.notApplicable(c, why)
				continue
			}
			h.Judge(c, h.resolve(ruleAt(r, h.limitValue(c)*cmp.Or(c.Scale, 1))))
		case c.Delivery != 0:
			h.Judge(c, h.deliveryRule(c.Delivery, h.limitValue(c)))
		case c.Senders != nil:
			senders.judge(h, c, opened.Phases[c.Senders.Phase])
		case c.Span != nil:
			marks.judge(h, c, opened.Phases[c.Span.Phase], hookEnd)
		}
	}
	return nil
}

// openPhases opens every phase in order and awaits what it declares. It returns the
// sources by phase and how many streams were opened.
func (h *Harness) openPhases(ctx context.Context) (Opened, int, error) {
	var opened Opened
	var notes []string
	var longest time.Duration
	total, browsers, stream := 0, 0, 0
	for _, p := range h.sc.Load {
		base, why, err := h.phaseBase(ctx, p)
		if err != nil {
			return opened, 0, err
		}
		if why != "" {
			h.skipped(p.Group, why)
			opened.Phases = append(opened.Phases, nil)
			opened.Proxies = append(opened.Proxies, nil)
			continue
		}
		sessions := h.phaseSessions(p, opened, stream)
		n := len(sessions)
		per := 1
		if p.PerBrowser > 0 {
			per = min(n, p.PerBrowser)
		}
		nb := max(1, n/per)
		var g *Group
		if p.Group != "" {
			g = h.StreamGroup(p.Group, nb*per)
		}
		var px *proxy.Proxy
		if p.Through != nil {
			cfg := *p.Through
			cfg.Upstream, cfg.InsecureUpstream = h.opts.Target, cfg.InsecureUpstream || h.opts.Insecure
			if p.ThroughIdle != nil {
				cfg.IdleTimeout = h.dur(p.ThroughIdle)
			}
			var err error
			if px, err = proxy.Start(ctx, cfg); err != nil {
				return opened, 0, fmt.Errorf("start the proxy of phase %d: %w", len(opened.Phases), err)
			}
			h.closeAfter(px.Close)
		}
		var srcs []*runner.EventSource
		var brs []*runner.Browser
		for range nb {
			br := h.newBrowser(false)
			brs = append(brs, br)
			for range per {
				sess := sessions[len(srcs)]
				if g != nil {
					h.Join(g, stream)
				}
				h.sessions(stream, sess)
				u := h.streamURL(sess)
				switch {
				case px != nil:
					u = h.streamURLVia(px.URL(), sess)
				case base != "":
					u = h.streamURLVia(base, sess)
				}
				es, err := h.Open(ctx, br, stream, sess, u, func(c *runner.SourceConfig) { c.NoReconnect, c.ReadRate = p.NoReconnect, p.ReadRate })
				if err != nil {
					return opened, 0, err
				}
				srcs = append(srcs, es)
				stream++
			}
		}
		if h.sc.Publish {
			h.startPublish(ctx)
		}
		total += len(srcs)
		browsers += nb
		wait := startTimeout
		switch {
		case p.Within != nil:
			wait = h.dur(p.Within) + p.Slack
			longest = max(longest, wait) // the start gate is no hold
		case p.Wait > 0:
			wait = p.Wait
			longest = max(longest, wait)
		}
		each := "a browser each"
		if per > 1 {
			each = fmt.Sprintf("%d browsers of %d streams", nb, per)
		}
		if p.Until == Unawaited {
			notes = append(notes, fmt.Sprintf("%s: %d streams, %s", p.Describe, len(srcs), each))
		} else {
			notes = append(notes, fmt.Sprintf("%s: %d streams, %s, each awaited up to %s for %s", p.Describe, len(srcs), each, wait, p.goal()))
		}
		opened.Phases = append(opened.Phases, srcs)
		opened.Proxies = append(opened.Proxies, px)
		i := len(opened.Phases) - 1
		for _, c := range h.sc.Checks {
			if c.Reach != nil && c.Reach.AfterOpening == i && i > c.Reach.Phase {
				h.reach(ctx, c, opened.Phases[c.Reach.Phase], nil, nil)
			}
		}
		fetched := h.fetch(ctx, i, brs, srcs, per)
		missed, err := h.awaitPhase(ctx, p, srcs, wait)
		if ferr := fetched(); err == nil {
			err = ferr
		}
		if err != nil {
			return opened, 0, err
		}
		h.notePhase(p, srcs, missed, wait)
	}
	if hold := h.holdFor(); hold > 0 {
		longest = hold
		notes = append(notes, fmt.Sprintf("held %s", hold))
	}
	h.request(total, browsers, longest, strings.Join(notes, "; "))
	return opened, total, nil
}

// phaseBase starts the nginx of a phase with one and returns its URL, or why the
// phase is left out ("" and "" for a phase without nginx).
func (h *Harness) phaseBase(ctx context.Context, p Phase) (base, why string, err error) {
	if p.Nginx == nil {
		return "", "", nil
	}
	conf := h.opts.ProxyBufferingConfig.NginxConf
	if p.Nginx.Conf != "" {
		if conf, err = docker.NginxConf(p.Nginx.Conf); err != nil {
			return "", "", err
		}
	}
	if len(conf) == 0 {
		return "", "no nginx configuration given", nil
	}
	var read time.Duration
	if p.Nginx.ReadTimeout != nil {
		read = h.dur(p.Nginx.ReadTimeout)
	}
	url, stop, why, err := startNginx(ctx, h, conf, read)
	if err != nil || why != "" {
		return "", why, err
	}
	h.closeAfter(func() error { stop(); return nil })
	return url, "", nil
}

// skipped records that the phase of group was left out, and why.
func (h *Harness) skipped(group, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.skippedGroups == nil {
		h.skippedGroups = map[string]string{}
	}
	h.skippedGroups[group] = why
}

// skippedIn is why a group r reads was left out, "" when none was.
func (h *Harness) skippedIn(r report.Rule) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	groups := []string{r.Group}
	for _, t := range append(append([]report.Term(nil), r.Plus...), r.Minus...) {
		groups = append(groups, t.Group)
	}
	for _, g := range groups {
		if why, ok := h.skippedGroups[g]; ok && g != "" {
			return why
		}
	}
	for _, a := range r.And {
		for _, g := range append([]string{a.Group}, termGroups(a)...) {
			if why, ok := h.skippedGroups[g]; ok && g != "" {
				return why
			}
		}
	}
	return ""
}

func termGroups(r report.Rule) []string {
	var out []string
	for _, t := range append(append([]report.Term(nil), r.Plus...), r.Minus...) {
		out = append(out, t.Group)
	}
	return out
}

// phaseSessions is the session of each stream phase p opens, the first of them
// stream index next: new sessions, or for a reload the sessions of the phase it
// reopens (a burst's several times).
func (h *Harness) phaseSessions(p Phase, opened Opened, next int) []string {
	if r := p.Reopen; r != nil {
		var out []string
		for i, s := range opened.Phases[r.Phase] {
			k := 1
			if i < r.BurstSessions {
				k = r.Burst
			}
			sess := h.sessionOfStream(s.Stream())
			for range k {
				out = append(out, sess)
			}
		}
		return out
	}
	n := h.phaseStreams(p)
	out := make([]string, n)
	for i := range n {
		out[i] = h.Session(p.Tag, next+i)
	}
	return out
}

// phaseStreams is this process's stream count of phase p: its default, or with
// --streams that many in all, spread over the phases in proportion to their defaults
// (at least one each), or that many in each phase with StreamsEach; with a shard, its
// share.
func (h *Harness) phaseStreams(p Phase) int {
	n := p.Streams
	switch {
	case h.opts.Streams > 0 && h.sc.StreamsEach:
		n = h.opts.Streams
	case h.opts.Streams > 0:
		sum := 0
		for _, q := range h.sc.Load {
			sum += q.Streams
		}
		n = max(1, h.opts.Streams*p.Streams/sum)
	}
	return h.share(n)
}

// holdFor is how long a declared scenario holds its load after the hook: --hold when
// given, else its own Hold.
func (h *Harness) holdFor() time.Duration {
	hold := h.sc.Hold
	if h.sc.HoldOf != nil {
		hold = time.Duration(h.sc.HoldTimes * float64(h.dur(h.sc.HoldOf)))
	}
	if hold > 0 && h.opts.Hold > 0 {
		return h.opts.Hold
	}
	return hold
}

// awaitPhase waits until every source of p reached its milestone. Sources that did
// not are closed (and awaited) before the others, so that a slot they waited for,
// freed in the teardown, cannot admit them late and count them opened.
func (h *Harness) awaitPhase(ctx context.Context, p Phase, srcs []*runner.EventSource, wait time.Duration) ([]*runner.EventSource, error) {
	if p.Until == Unawaited {
		return nil, nil
	}
	cond := func(ctx context.Context, s *runner.EventSource) error { return s.WaitOpen(ctx) }
	switch p.Until {
	case UntilEvents:
		cond = awaitEvents(max(p.Events, 1))
	case UntilEventsOrEnd:
		cond = func(ctx context.Context, s *runner.EventSource) error {
			err := s.WaitEvents(ctx, max(p.Events, 1))
			select {
			case <-s.Done():
				return nil // it ended: what a burst's loser does
			default:
			}
			return err
		}
	}
	if p.Within == nil && p.Wait > 0 {
		return WaitAll(ctx, srcs, wait, cond), nil
	}
	if p.Within == nil {
		missed := WaitAll(ctx, srcs, wait, cond)
		if len(missed) < len(srcs) {
			return missed, nil
		}
		if err := h.unreachable(srcs); err != nil {
			return missed, err
		}
		return missed, notStarted(fmt.Sprintf("no stream got %s within %s", p.goal(), wait))
	}
	missed := WaitAll(ctx, srcs, wait, cond)
	for _, s := range missed {
		s.Close()
	}
	WaitAll(ctx, missed, 5*time.Second, awaitDone)
	if len(missed) == len(srcs) {
		return missed, h.unreachable(srcs)
	}
	return missed, nil
}

// fetch starts the Fetch checks of phase i: each browser of the phase requests the
// origin's ordinary URL once its first AfterOpen streams are open (or the check's
// threshold ran out), while the phase is awaited. The returned function waits for the
// requests and judges the checks; its error is a request that failed for another
// reason than its timeout.
func (h *Harness) fetch(ctx context.Context, i int, brs []*runner.Browser, srcs []*runner.EventSource, per int) func() error {
	var waits []func() error
	for _, c := range h.sc.Checks {
		if c.Fetch == nil || c.Fetch.Phase != i {
			continue
		}
		within := h.dur(c)
		results := make([]fetchResult, len(brs))
		var wg sync.WaitGroup
		for b, br := range brs {
			first := srcs[b*per : b*per+min(c.Fetch.AfterOpen, per)]
			wg.Go(func() {
				// The browser's first streams take their connections first, as a page
				// that opens its streams on load and fetches later does.
				WaitAll(ctx, first, within, func(ctx context.Context, s *runner.EventSource) error { return s.WaitOpen(ctx) })
				results[b] = h.fetchOnce(ctx, br, within+time.Second)
			})
		}
		waits = append(waits, func() error {
			wg.Wait()
			blocked := 0
			var worst time.Duration
			for _, r := range results {
				if r.err != nil && !errors.Is(r.err, context.DeadlineExceeded) {
					return fmt.Errorf("ordinary request to %s: %w", h.opts.SixConnectionConfig.OrdinaryURL, r.err)
				}
				if r.err != nil || r.waited > within {
					blocked++
				}
				worst = max(worst, r.waited)
			}
			h.offenders(c, blocked, len(results), fmt.Sprintf("%d of %d ordinary requests blocked; slowest %s", blocked, len(results), ms(worst)))
			return nil
		})
	}
	return func() error {
		var errs []error
		for _, w := range waits {
			errs = append(errs, w())
		}
		return errors.Join(errs...)
	}
}

type fetchResult struct {
	waited time.Duration
	err    error
}

// fetchOnce makes one ordinary request of browser br, bounded by timeout.
func (h *Harness) fetchOnce(ctx context.Context, br *runner.Browser, timeout time.Duration) fetchResult {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, h.opts.SixConnectionConfig.OrdinaryURL, nil)
	if err != nil {
		return fetchResult{err: err}
	}
	resp, _, err := br.DoWaited(rctx, req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return fetchResult{waited: time.Since(t0), err: err}
}

// notePhase says in the result's notes how many streams of p got there.
func (h *Harness) notePhase(p Phase, srcs, missed []*runner.EventSource, wait time.Duration) {
	if len(missed) == 0 {
		if p.Within != nil {
			h.note("all %d streams had %s within %s (%s)", len(srcs), p.goal(), wait, h.protocols())
		}
		return
	}
	why := ""
	if p.Missed != "" {
		why = ": " + p.Missed
	}
	h.note("%d of %d streams still waiting for %s after %s (%s)%s", len(missed), len(srcs), p.goal(), wait, h.protocols(), why)
}

// settle judges a Settles check: how far the server figure still was above its
// baseline (plus slack) when the check's threshold ran out, 0 when it came back.
func (h *Harness) settle(ctx context.Context, c *CheckSpec, base probe.Sample, streams int) {
	metric := h.metricName(c.Settles.Metric)
	b, ok := base.Value(metric)
	if !ok {
		h.notApplicable(c, "the target exposes no "+orNone(metric)+" metric")
		return
	}
	slack := c.Settles.Fixed + c.Settles.PerStream*float64(streams)
	within := h.dur(c)
	var last float64
	took, held, _ := h.AwaitMetric(ctx, metric, within, func(v float64) bool { last = v; return v <= b+slack })
	if held {
		h.excess(c, 0, fmt.Sprintf("%s back to %.0f (baseline %.0f) after %s", metric, last, b, ms(took)))
		return
	}
	h.excess(c, max(last-(b+slack), 1), fmt.Sprintf("%s still %.0f (baseline %.0f) %s after the load", metric, last, b, within))
}

// reach judges a Reach check: the streams of its phase that did not get there within
// the check's threshold plus its slack.
func (h *Harness) reach(ctx context.Context, c *CheckSpec, srcs []*runner.EventSource, before map[*runner.EventSource][2]int64, after *Group) {
	r := c.Reach
	wait := h.dur(c) + r.Slack
	if r.PlusRetry {
		wait += h.longestRetry(len(srcs))
	}
	start := time.Now()
	missed := WaitAll(ctx, srcs, wait, func(ctx context.Context, s *runner.EventSource) error {
		if r.Until == Ended {
			return awaitDone(ctx, s)
		}
		b := before[s]
		if err := s.WaitOpens(ctx, b[0]+1); err != nil {
			return err
		}
		return s.WaitEvents(ctx, b[1]+h.producedFor(s.Stream())+max(r.Events, 1))
	})
	took := time.Since(start)
	note := fmt.Sprintf("all %d streams %s within %s", len(srcs), r.Until, ms(took))
	if len(missed) > 0 {
		note = fmt.Sprintf("%d of %d streams not %s within %s", len(missed), len(srcs), r.Until, wait)
		if r.Missed != "" {
			note += ": " + r.Missed
		}
	}
	if r.PlusRetry {
		note += fmt.Sprintf(" (retry %s + %s)", h.longestRetry(len(srcs)), h.dur(c))
	}
	if after != nil {
		am := after.agg.Metrics()
		note += fmt.Sprintf("; %d reopened, slowest reconnect delay %s", am.Opens, fmtMS(am.ReconnectDelay.MaxMS))
	}
	h.offenders(c, len(missed), len(srcs), note)
}

// sessions records the session of a declared stream, for producedFor.
func (h *Harness) sessions(stream int, session string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessionOf == nil {
		h.sessionOf = map[int]string{}
	}
	h.sessionOf[stream] = session
}

// sessionOfStream is the session of a declared stream.
func (h *Harness) sessionOfStream(stream int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessionOf[stream]
}

// producedFor is how many events the run's progress callbacks produced for the session
// of a declared stream.
func (h *Harness) producedFor(stream int) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.produced[h.sessionOf[stream]]
}

// longestRetry is the longest reconnection time the target's retry fields set, or the
// default when fewer than streams retry fields came (some stream got none).
func (h *Harness) longestRetry(streams int) time.Duration {
	h.mu.Lock()
	d := h.maxRetry
	h.mu.Unlock()
	if h.agg.Metrics().RetryFields < int64(streams) {
		d = max(d, runner.DefaultRetry)
	}
	return d
}

// openPerSession judges an OpenPerSession check: the sessions with more than one
// stream open now, over every phase.
func (h *Harness) openPerSession(c *CheckSpec, opened Opened) {
	open := map[string]int{} // bounded by the sessions
	sessions := map[string]bool{}
	for _, s := range opened.All() {
		sess := h.sessionOfStream(s.Stream())
		sessions[sess] = true
		if s.IsOpen() {
			open[sess]++
		}
	}
	multi := 0
	for _, n := range open {
		if n > 1 {
			multi++
		}
	}
	h.count(c, multi, len(sessions), fmt.Sprintf("%d of %d sessions had more than one open stream", multi, len(sessions)))
}

// delta judges a Delta check: the server figure now against its baseline.
func (h *Harness) delta(ctx context.Context, c *CheckSpec, base probe.Sample, opened Opened) {
	name := h.metricName(c.Delta.Metric)
	b, ok := base.Value(name)
	now, nowOK := h.metric(ctx, name)
	if !ok || !nowOK {
		h.notApplicable(c, "the target exposes no "+orNone(name)+" metric")
		return
	}
	if !c.Delta.MinusOpenSessions {
		h.measured(c, now-b, fmt.Sprintf("%s rose by %.0f", name, now-b))
		return
	}
	open := map[string]bool{}
	for _, s := range opened.All() {
		if s.IsOpen() {
			open[h.sessionOfStream(s.Stream())] = true
		}
	}
	h.measured(c, now-b-float64(len(open)), fmt.Sprintf("%.0f %s (%.0f before) for %d sessions with an open stream", now, name, b, len(open)))
}

// senderWatch keeps, per stream, its first sender and whether another one fed it: a
// string and a flag per stream of the scenario (O(streams), never O(events)), read
// after Finish.
type senderWatch struct {
	mu    sync.Mutex
	first map[int]string
	multi map[int]bool
}

// watchSenders starts a senderWatch when a check of the scenario needs one.
func (h *Harness) watchSenders() *senderWatch {
	if !slices.ContainsFunc(h.sc.Checks, func(c *CheckSpec) bool { return c.Senders != nil }) {
		return nil
	}
	w := &senderWatch{first: map[int]string{}, multi: map[int]bool{}}
	h.observe(func(r runner.Record) {
		if r.Kind != runner.RecordEvent {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if r.Sender != "" {
			if f, ok := w.first[r.Stream]; !ok {
				w.first[r.Stream] = r.Sender
			} else if f != r.Sender {
				w.multi[r.Stream] = true
			}
		}
		if r.DuplicateSender {
			w.multi[r.Stream] = true
		}
	})
	return w
}

// judge counts the streams of srcs that more than one sender fed.
func (w *senderWatch) judge(h *Harness, c *CheckSpec, srcs []*runner.EventSource) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range srcs {
		if w.multi[s.Stream()] {
			n++
		}
	}
	h.count(c, n, len(srcs), fmt.Sprintf("%d of %d streams got events from more than one sender", n, len(srcs)))
}

// markWatch keeps, per stream, the times of the marks the scenario's Span checks name:
// a few times per stream (O(streams x marks), never O(events)), read after Finish.
type markWatch struct {
	mu    sync.Mutex
	marks []Mark
	at    map[int][]time.Time // stream -> time of each of marks (zero: not yet)
	event map[int]map[string]time.Time
}

// watchMarks starts a markWatch when a check of the scenario has a Span.
func (h *Harness) watchMarks() *markWatch {
	w := &markWatch{at: map[int][]time.Time{}, event: map[int]map[string]time.Time{}}
	for _, c := range h.sc.Checks {
		if c.Span != nil {
			w.marks = append(w.marks, c.Span.From, c.Span.To)
		}
	}
	if len(w.marks) == 0 {
		return nil
	}
	h.observe(w.add)
	return w
}

func (w *markWatch) add(r runner.Record) {
	if r.Kind != runner.RecordEvent && r.Kind != runner.RecordClosed {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	at := w.at[r.Stream]
	if at == nil {
		at = make([]time.Time, len(w.marks))
		w.at[r.Stream] = at
	}
	if r.Kind == runner.RecordEvent {
		ev := w.event[r.Stream]
		if ev == nil {
			ev = map[string]time.Time{}
			w.event[r.Stream] = ev
		}
		if _, ok := ev[r.EventType]; !ok && w.watched(r.EventType) {
			ev[r.EventType] = r.Time
		}
	}
	for i, m := range w.marks {
		if !at[i].IsZero() || m.Hook {
			continue
		}
		switch {
		case r.Kind == runner.RecordEvent && m.Close == "" && r.EventType == m.Event:
			at[i] = r.Time
		case r.Kind == runner.RecordClosed && m.Close != "" && r.Reason == m.Close:
			if _, ok := w.event[r.Stream][m.AfterOf]; m.AfterOf == "" || ok {
				at[i] = r.Time
			}
		}
	}
}

// watched reports whether a mark names event type t (for AfterOf).
func (w *markWatch) watched(t string) bool {
	for _, m := range w.marks {
		if m.AfterOf == t || (m.Close == "" && m.Event == t) {
			return true
		}
	}
	return false
}

// time is when stream reached m, zero when it did not.
func (w *markWatch) time(stream int, m Mark, hookEnd time.Time) time.Time {
	if m.Hook {
		return hookEnd
	}
	for i, x := range w.marks {
		if x == m {
			if at := w.at[stream]; at != nil {
				return at[i]
			}
			return time.Time{}
		}
	}
	return time.Time{}
}

// spanLimit is how long a Span check allows from From to To.
func (h *Harness) spanLimit(c *CheckSpec, streams int) time.Duration {
	d := h.dur(c)
	for _, p := range c.Span.Plus {
		d += h.dur(p)
	}
	if c.Span.PlusRetry {
		d += h.longestRetry(streams)
	}
	return d
}

// longestSpan bounds the wait for the phases' streams to end after the hook.
func (h *Harness) longestSpan(opened Opened) time.Duration {
	var d time.Duration
	for _, c := range h.sc.Checks {
		if c.Span != nil {
			d = max(d, h.spanLimit(c, len(opened.Phases[c.Span.Phase])))
		}
	}
	return d
}

// judge counts the streams of srcs that got to From but not to To within the limit.
func (w *markWatch) judge(h *Harness, c *CheckSpec, srcs []*runner.EventSource, hookEnd time.Time) {
	limit := h.spanLimit(c, len(srcs))
	w.mu.Lock()
	defer w.mu.Unlock()
	of, missed := 0, 0
	var slowest time.Duration
	for _, s := range srcs {
		from := w.time(s.Stream(), c.Span.From, hookEnd)
		if from.IsZero() {
			continue
		}
		of++
		to := w.time(s.Stream(), c.Span.To, hookEnd)
		if to.IsZero() || to.Sub(from) > limit {
			missed++
			continue
		}
		slowest = max(slowest, to.Sub(from))
	}
	h.offenders(c, missed, of, fmt.Sprintf("%d of %d streams without %s within %s of %s (slowest %s)", missed, of, c.Span.To, limit, c.Span.From, ms(slowest)))
}

// declaredWaits bounds how long a declared scenario can take: the start gate of every
// phase plus every threshold and slack it waits on.
func (h *Harness) declaredWaits() time.Duration {
	d := time.Duration(len(h.sc.Load))*startTimeout + runner.DefaultRetry
	for _, p := range h.sc.Load {
		d += p.Slack
	}
	d += h.holdFor()
	for _, c := range h.sc.Checks {
		if l := h.limit(c); l.isDur {
			d += l.d
		}
		if c.Reach != nil {
			d += c.Reach.Slack
		}
	}
	return d
}

// DeliveryP99, as a Rule's metric, is the p99 delivery latency: publish to delivery of
// the harness's marks when it published them, else from the events' send time; its
// evidence follows (marks, or events).
const DeliveryP99 = "delivery_p99"

// resolve is r with DeliveryP99 replaced, in r, its terms and its And rules.
func (h *Harness) resolve(r report.Rule) report.Rule {
	metric, needs := "latency_p99", []report.Evidence{report.EvidenceEvent}
	if h.markPrefix != "" {
		metric, needs = "mark_latency_p99", []report.Evidence{report.EvidenceMarks}
	}
	if r.Metric == DeliveryP99 {
		r.Metric, r.Needs = metric, needs
	}
	for _, terms := range []*[]report.Term{&r.Plus, &r.Minus} {
		out := slices.Clone(*terms)
		for i := range out {
			if out[i].Metric == DeliveryP99 {
				out[i].Metric = metric
			}
		}
		*terms = out
	}
	for i, a := range r.And {
		r.And[i] = h.resolve(a)
	}
	return r
}

// usesDeliveryP99 reports whether r reads DeliveryP99 anywhere.
func usesDeliveryP99(r report.Rule) bool {
	if r.Metric == DeliveryP99 {
		return true
	}
	for _, t := range append(slices.Clone(r.Plus), r.Minus...) {
		if t.Metric == DeliveryP99 {
			return true
		}
	}
	return slices.ContainsFunc(r.And, usesDeliveryP99)
}

// ruleAt is r with AtThreshold replaced by limit, in r and its And rules; r itself
// (part of an immutable declaration) is not changed.
func ruleAt(r report.Rule, limit float64) report.Rule {
	if r.Limit == AtThreshold {
		r.Limit = limit
	}
	if len(r.And) > 0 {
		and := make([]report.Rule, len(r.And))
		for i, a := range r.And {
			and[i] = ruleAt(a, limit)
		}
		r.And = and
	}
	return r
}

// checkOrder sorts a scenario's findings into the order its checks are declared in,
// whatever order the interpreter and the hook judged them in; a finding of an
// undeclared check goes last.
func (h *Harness) checkOrder(checks []report.Check) {
	idx := make(map[string]int, len(h.sc.Checks))
	for i, c := range h.sc.Checks {
		idx[c.Name] = i
	}
	pos := func(name string) int {
		if i, ok := idx[name]; ok {
			return i
		}
		return len(idx)
	}
	slices.SortStableFunc(checks, func(a, b report.Check) int { return cmp.Compare(pos(a.Name), pos(b.Name)) })
}

func orNone(name string) string {
	if name == "" {
		return "(none configured)"
	}
	return name
}
