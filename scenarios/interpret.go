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

	"github.com/sseharness/sseharness/probe"
	"github.com/sseharness/sseharness/proxy"
	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// The interpreter of declared scenarios (declare.go): runDeclared executes any
// declaration, in this order: the server's baselines, the phases (each opened, then
// awaited), the hook, the checks that hold while the load is there, the hold, Finish,
// and then every other declared check.

// runDeclared executes the scenario's declaration: baseline probes, phases, hook, and
// then every declared check.
func (h *Harness) runDeclared(ctx context.Context) error {
	if c := h.sc.HoldOf; c != nil && h.dur(c) <= 0 {
		return fmt.Errorf("%s: the %s threshold (the hold is %.1f of it) must be > 0", h.sc.Name, c.Name, h.sc.HoldTimes)
	}
	if h.sc.staged() {
		return h.runStaged(ctx)
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
	if err := h.holdLoad(ctx, opened); err != nil {
		return err
	}
	h.Finish()
	return h.judgeDeclared(ctx, afterLoad{opened: opened, probes: probes, base: base, total: total, senders: senders, marks: marks, hookEnd: hookEnd})
}

// afterLoad is what runDeclared hands to judgeDeclared once the load has ended.
type afterLoad struct {
	opened  Opened
	probes  []*CheckSpec // nil when the baseline could not be scraped
	base    probe.Sample
	total   int
	senders *senderWatch
	marks   *markWatch
	hookEnd time.Time
}

// judgeDeclared judges every declared check over what the ended load left: the
// aggregate, the server's settled figures, the senders and marks watched.
func (h *Harness) judgeDeclared(ctx context.Context, a afterLoad) error {
	opened, probes, base, total, senders, marks, hookEnd := a.opened, a.probes, a.base, a.total, a.senders, a.marks, a.hookEnd
	if m := h.agg.Metrics(); m.Attempts > 0 && m.Streams == 0 && opened.ramped == nil {
		// Nothing opened anywhere: tell an unreachable or refusing target from one
		// that fails the checks. (A ramped phase's rules say so themselves, with the
		// classes of the streams that did not open.)
		return notStarted(fmt.Sprintf("no stream opened (not opened: %s)", breakdownCounts(m.NotOpened)))
	}
	rhythm := h.markPrefix == "" && h.agg.Metrics().Latency.Count == 0
	switch {
	case rhythm && slices.ContainsFunc(h.sc.Checks, func(c *CheckSpec) bool { return c.RhythmRule != nil }):
		h.note("no send time and no publish endpoint: arrival rhythm compared (p99 gap between events and time to first event, each path against direct)")
	case slices.ContainsFunc(h.sc.Checks, func(c *CheckSpec) bool { return c.Steps || c.Rule != nil && usesDeliveryP99(*c.Rule) }):
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
		case c.Steps:
			h.judgeSteps(c)
		case c.RateSteps != nil:
			h.judgeRateSteps(c)
		case c.Held != nil:
			h.judgeHeld(c, opened.ramped)
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
		if p.Requests != nil {
			return opened, 0, h.runRequestPhase(ctx, p) // the only phase (validateRequests)
		}
		if p.Ramp != nil { // the load engine's streams (interpret_hold.go)
			rl, note, err := h.openRamped(ctx, p)
			if err != nil {
				return opened, 0, err
			}
			opened.ramped, total, browsers, notes = rl, total+rl.mine, browsers+rl.mine, append(notes, note)
			opened.Phases, opened.Proxies = append(opened.Phases, nil), append(opened.Proxies, nil)
			continue
		}
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
		px, err := h.phaseProxy(ctx, p, len(opened.Phases))
		if err != nil {
			return opened, 0, err
		}
		srcs, brs, err := h.openPhaseStreams(ctx, p, phaseStreams{sessions: sessions, browsers: nb, per: per, group: g, proxy: px, base: base}, &stream)
		if err != nil {
			return opened, 0, err
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

// phaseProxy starts the built-in proxy a phase goes through (nil without one); it is
// closed when the scenario ends.
func (h *Harness) phaseProxy(ctx context.Context, p Phase, index int) (*proxy.Proxy, error) {
	if p.Through == nil {
		return nil, nil
	}
	cfg := *p.Through
	cfg.Upstream, cfg.InsecureUpstream = h.opts.Target, cfg.InsecureUpstream || h.opts.Insecure
	if p.ThroughIdle != nil {
		cfg.IdleTimeout = h.dur(p.ThroughIdle)
	}
	px, err := proxy.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start the proxy of phase %d: %w", index, err)
	}
	h.closeAfter(px.Close)
	return px, nil
}

// phaseStreams is how one phase's streams are laid out: its sessions over browsers of
// per streams each, joined to group (if any), through proxy or base (if any).
type phaseStreams struct {
	sessions      []string
	browsers, per int
	group         *Group
	proxy         *proxy.Proxy
	base          string
}

// openPhaseStreams opens a phase's streams, numbering them from *stream on.
func (h *Harness) openPhaseStreams(ctx context.Context, p Phase, l phaseStreams, stream *int) ([]*runner.EventSource, []*runner.Browser, error) {
	var srcs []*runner.EventSource
	var brs []*runner.Browser
	for range l.browsers {
		br := h.newBrowser(false)
		brs = append(brs, br)
		for range l.per {
			sess := l.sessions[len(srcs)]
			if l.group != nil {
				h.Join(l.group, *stream)
			}
			h.sessions(*stream, sess)
			u := h.streamURL(sess)
			switch {
			case l.proxy != nil:
				u = h.streamURLVia(l.proxy.URL(), sess)
			case l.base != "":
				u = h.streamURLVia(l.base, sess)
			}
			es, err := h.Open(ctx, br, *stream, sess, u, func(c *runner.SourceConfig) {
				c.NoReconnect, c.ReadRate, c.RecvBuffer = p.NoReconnect, p.ReadRate, p.RecvBuffer
			})
			if err != nil {
				return nil, nil, err
			}
			srcs = append(srcs, es)
			*stream++
		}
	}
	return srcs, brs, nil
}

// phaseBase starts the nginx of a phase with one and returns its URL, or why the
// phase is left out ("" and "" for a phase without nginx).
func (h *Harness) phaseBase(ctx context.Context, p Phase) (base, why string, err error) {
	if p.Nginx == nil {
		return "", "", nil
	}
	conf := h.opts.ProxyBufferingConfig.NginxConf
	if p.Nginx.Conf != "" {
		if conf, err = proxy.NginxConf(p.Nginx.Conf); err != nil {
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
	d := h.coll.longestRetryField()
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
	h.observe(func(r *runner.Record) {
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

func (w *markWatch) add(r *runner.Record) {
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
