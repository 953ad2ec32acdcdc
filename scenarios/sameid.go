package scenarios

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// same-id-reconnect: a page reload opens a session's stream again while the old one is
// still open. The server must end the old stream and leave exactly one sender pushing.
func sameIDReconnect() *Scenario {
	ck := sameIDChecks{
		oldStreamEnded:         &CheckSpec{Name: "old-stream-ended", Default: "2s", Means: "old stream ended within"},
		oneStreamPerSession:    &CheckSpec{Name: "one-stream-per-session", Default: "0", Means: "sessions with more than one open stream"},
		oneSender:              &CheckSpec{Name: "one-sender", Default: "0", Means: "new streams fed by more than one sender"},
		noDuplicateIds:         &CheckSpec{Name: "no-duplicate-ids", Default: "0", Means: "duplicated ids on new streams"},
		serverDuplicateSenders: &CheckSpec{Name: "server-duplicate-senders", Default: "0", Means: "increase of the server's duplicate-sender counter"},
		serverSenders:          &CheckSpec{Name: "server-senders", Default: "0", Means: "server senders beyond open sessions"},
	}
	return &Scenario{
		Name:    "same-id-reconnect",
		Proves:  "a same-id reconnect (page reload, also several at once) ends the old stream and leaves exactly one sender per session",
		Catches: []string{"no-replace"},
		Checks:  ck.all(),
		Needs:   []Capability{NeedSessions},
		run:     func(ctx context.Context, h *Harness) error { return runSameID(ctx, h, ck) },
	}
}

// sameIDChecks are SameID's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type sameIDChecks struct{ oldStreamEnded, oneStreamPerSession, oneSender, noDuplicateIds, serverDuplicateSenders, serverSenders *CheckSpec }

func (c sameIDChecks) all() []*CheckSpec {
	return []*CheckSpec{c.oldStreamEnded, c.oneStreamPerSession, c.oneSender, c.noDuplicateIds, c.serverDuplicateSenders, c.serverSenders}
}

func runSameID(ctx context.Context, h *Harness, ck sameIDChecks) error {
	sessions := h.streams(10)
	burst := 5         // concurrent reloads of one session
	burstSessions := 3 // sessions reloaded that way
	if burstSessions > sessions {
		burstSessions = sessions
	}
	endWithin := h.dur(ck.oldStreamEnded)
	h.request(sessions*2+burstSessions*(burst-1), 0, 3*time.Second,
		fmt.Sprintf("%d sessions open, then reopen with the same id; %d of them %d times at once", sessions, burstSessions, burst))

	dupBase, dupOK := h.metric(ctx, h.opts.DuplicateSendersMetric)
	sendersBase, sendersBaseOK := h.metric(ctx, h.opts.SendersMetric)

	// Per stream: whether its events came from more than one sender (the first sender
	// and a flag: bounded whatever the server sends). Ids repeated on the new streams
	// come from their group's aggregate.
	var mu sync.Mutex
	firstSender := map[int]string{}
	multi := map[int]bool{}
	h.observe(func(r runner.Record) {
		if r.Kind != runner.RecordEvent {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Sender != "" {
			if f, ok := firstSender[r.Stream]; !ok {
				firstSender[r.Stream] = r.Sender
			} else if f != r.Sender {
				multi[r.Stream] = true
			}
		}
		if r.DuplicateSender {
			multi[r.Stream] = true
		}
	})
	reloads := h.StreamGroup("reloaded", sessions+burstSessions*(burst-1))

	noReconnect := func(c *runner.SourceConfig) { c.NoReconnect = true }
	old, err := h.OpenSessions(ctx, "", sessions, noReconnect)
	if err != nil {
		return err
	}
	if _, err := h.AwaitStarted(ctx, old, 2); err != nil {
		return err
	}

	// The reload: one new stream per session; the burst sessions get several at once.
	stream := sessions
	reopened := make([][]*runner.EventSource, sessions)
	reloadAt := time.Now()
	var openErr error
	for i := range sessions {
		k := 1
		if i < burstSessions {
			k = burst
		}
		for range k {
			h.Join(reloads, stream)
			es, err := h.openSession(ctx, stream, h.Session("", i), noReconnect)
			if err != nil {
				openErr = err
				break
			}
			reopened[i] = append(reopened[i], es)
			stream++
		}
	}
	if openErr != nil {
		return openErr
	}

	// Old streams must end soon after the reload.
	notEnded := WaitAll(ctx, old, endWithin, awaitDone)
	endTook := time.Since(reloadAt)

	// Let the surviving streams run for a few events, then judge.
	var survivors []*runner.EventSource
	for i := range sessions {
		survivors = append(survivors, reopened[i]...)
	}
	WaitAll(ctx, survivors, 5*time.Second, func(ctx context.Context, s *runner.EventSource) error {
		// Losers of a burst end; the winner gets events.
		select {
		case <-s.Done():
			return nil
		default:
		}
		return s.WaitEvents(ctx, 3)
	})
	multiOpen := 0
	for i := range sessions {
		open := 0
		if old[i].IsOpen() {
			open++
		}
		for _, s := range reopened[i] {
			if s.IsOpen() {
				open++
			}
		}
		if open > 1 {
			multiOpen++
		}
	}
	sendersNow, sendersOK := h.metric(ctx, h.opts.SendersMetric)
	openNow := 0
	for _, s := range survivors {
		if s.IsOpen() {
			openNow++
		}
	}
	dupNow, dupNowOK := h.metric(ctx, h.opts.DuplicateSendersMetric)
	h.Finish()

	note := fmt.Sprintf("all %d old streams ended within %s", sessions, ms(endTook))
	if len(notEnded) > 0 {
		note = fmt.Sprintf("%d of %d old streams still open %s after the reload: the server kept the replaced stream open", len(notEnded), sessions, endWithin)
	}
	h.offenders(ck.oldStreamEnded, len(notEnded), sessions, note)
	h.count(ck.oneStreamPerSession, multiOpen, sessions, fmt.Sprintf("%d of %d sessions had more than one open stream", multiOpen, sessions))

	multiSender := 0
	for _, s := range survivors {
		if multi[s.Stream()] {
			multiSender++
		}
	}
	h.count(ck.oneSender, multiSender, len(survivors), fmt.Sprintf("%d of %d new streams got events from more than one sender", multiSender, len(survivors)))
	h.Judge(ck.noDuplicateIds, report.Rule{Metric: "duplicate_ids", Group: reloads.Name(), Op: "<=", Limit: h.limitValue(ck.noDuplicateIds),
		Needs: []report.Evidence{report.EvidenceEvent}})

	if dupOK && dupNowOK {
		inc := dupNow - dupBase
		h.measured(ck.serverDuplicateSenders, inc, fmt.Sprintf("%s rose by %.0f", h.opts.DuplicateSendersMetric, inc))
	} else {
		h.notApplicable(ck.serverDuplicateSenders, "the target exposes no "+orNone(h.opts.DuplicateSendersMetric)+" metric")
	}
	if sendersOK && sendersBaseOK {
		extra := sendersNow - sendersBase - float64(openNow)
		h.measured(ck.serverSenders, extra, fmt.Sprintf("%.0f senders (%.0f before) for %d open streams", sendersNow, sendersBase, openNow))
	} else {
		h.notApplicable(ck.serverSenders, "the target exposes no "+orNone(h.opts.SendersMetric)+" metric")
	}
	return nil
}

func orNone(name string) string {
	if name == "" {
		return "(none configured)"
	}
	return name
}
