package conform

import (
	"fmt"
	"net/http"
	"strings"
)

// --- 9: resume with Last-Event-ID ----------------------------------------------------

func checkResume(o *observations) outcome {
	if why := o.unusable(); why != "" {
		return na("%s", why)
	}
	// Both probes are judged and reported together: a server refusing the made-up id
	// must still be caught mishandling a real one, and the other way round.
	var fails, notes []string
	unknown := ""
	switch u := o.unknown; {
	case u == nil:
		unknown = "no unknown-id probe: " + o.noProbe
	case u.isStream():
		problem, note := o.unknownReplay.problem(u.watched())
		if problem != "" {
			fails = append(fails, problem)
		}
		unknown = fmt.Sprintf("unknown %s Last-Event-ID %q: %s", o.shape.kind, o.probeID, note)
	case u.gotResponse() && u.Status == http.StatusNoContent:
		notes = append(notes, fmt.Sprintf("the unknown Last-Event-ID %q got 204, which stops the client for good", o.probeID))
		unknown = "unknown id: 204"
	case u.gotResponse() && u.Status >= 400:
		fails = append(fails, fmt.Sprintf("the unknown %s Last-Event-ID %q answered %s: an unknown or expired id must fall back to the live stream", o.shape.kind, o.probeID, statusText(u.Status)))
	default:
		fails = append(fails, fmt.Sprintf("the unknown Last-Event-ID %q: %s", o.probeID, describeResponse(u)))
	}
	events := o.mainEvents()
	if o.resumeFrom < 0 {
		ids := 0
		for _, e := range events {
			if e.ID != "" {
				ids++
			}
		}
		msg := fmt.Sprintf("resume not verifiable: %d events, %d with an id, no two successive distinct ids", len(events), ids)
		switch {
		case len(fails) > 0:
			return fail("%s; %s", strings.Join(fails, "; "), msg)
		case len(notes) > 0:
			return warn("%s; %s", msg, strings.Join(notes, "; "))
		}
		if unknown != "" {
			msg += "; " + unknown
		}
		return na("%s", msg)
	}
	sent := events[o.resumeFrom].ID
	want := events[o.resumeFrom+1]
	r := o.resume
	v := judgeReplay(events, o.resumeFrom, r.events())
	switch {
	case !r.isStream():
		fails = append(fails, fmt.Sprintf("the reconnect with Last-Event-ID %q answered %s", sent, describeResponse(r)))
	case v.repeated != "":
		fails = append(fails, fmt.Sprintf("after Last-Event-ID %q the server resent event %q, which the client already had", sent, v.repeated))
	case !v.found && v.fresh > 0:
		fails = append(fails, fmt.Sprintf("after Last-Event-ID %q the server skipped event %q: the resumed stream went on with %s", sent, want.ID, v.firstID))
	case !v.found:
		fails = append(fails, fmt.Sprintf("after Last-Event-ID %q no event with an id arrived within %v (expected %q)", sent, o.cfg.Timeout, want.ID))
	case v.fresh > 0:
		notes = append(notes, fmt.Sprintf("%d newer event(s) came before the replay, so a drop then would lose it", v.fresh))
	}
	if len(fails) > 0 {
		return fail("%s", strings.Join(fails, "; "))
	}
	msg := fmt.Sprintf("Last-Event-ID %q: the stream resumed with %q, the next event; %s", sent, want.ID, unknown)
	if len(notes) > 0 {
		return warn("%s; %s", msg, strings.Join(notes, "; "))
	}
	return pass("%s", msg)
}

// --- 10: reconnect without Last-Event-ID -------------------------------------------

func checkIDReset(o *observations) outcome {
	if why := o.unusable(); why != "" {
		return na("%s", why)
	}
	reset := ""
	events := o.mainEvents()
	for i := 1; i < len(events); i++ {
		if events[i].ID == "" && events[i-1].ID != "" {
			reset = "; the stream itself reset its id"
			break
		}
	}
	if !o.noID.isStream() {
		return fail("reconnect without Last-Event-ID (as after an empty id) answered %s%s", describeResponse(o.noID), reset)
	}
	return pass("reconnect without Last-Event-ID accepted%s", reset)
}

// --- 11: reconnect after a clean close -----------------------------------------------

func checkReconnect(o *observations) outcome {
	if why := o.unusable(); why != "" {
		return na("%s", why)
	}
	all := o.streams()
	var once []string
	for _, e := range all {
		if e.endedAtOnce() {
			once = append(once, e.Label)
		}
	}
	// A retry of 0 turns bodies that end at once into a reconnect loop without delay.
	zero := false
	for _, e := range all {
		zero = zero || (len(e.Retries) > 0 && e.RetryMin == 0)
	}
	m := o.main
	atOnceFinding := func() (outcome, bool) {
		if zero && m.endedAtOnce() {
			return fail("the stream ended %s after its head and sets retry 0: browsers reconnect in a tight loop without any delay", secs(m.watched())), true
		}
		if len(once) < 2 {
			return outcome{}, false
		}
		return warn("%d of %d stream responses were 200 bodies that ended within %s of their head (%s): browsers reconnect in a loop at the reconnection time; end a finished stream with 204",
			len(once), len(all), secs(atOnce), strings.Join(once, ", ")), true
	}
	switch m.End {
	case endEOF, endError:
		how := "closed the stream"
		if m.End == endError {
			how = "broke the stream (" + describeErr(m.EndErr) + ", not a clean close)"
		}
		next := o.resume
		for _, e := range []*exchange{o.unknown, o.noID} {
			if next == nil {
				next = e
			}
		}
		if !next.isStream() {
			return fail("the server %s after %s, then answered the reconnect with %s", how, secs(m.watched()), describeResponse(next))
		}
		if f, ok := atOnceFinding(); ok {
			return f
		}
		return pass("the server %s after %s; the reconnect was accepted", how, secs(m.watched()))
	case endLimit:
		if f, ok := atOnceFinding(); ok {
			return f
		}
		return na("a size limit stopped the read after %s (check 23): no close to reconnect after", secs(m.watched()))
	}
	if f, ok := atOnceFinding(); ok {
		return f
	}
	return na("the server kept the stream open for the whole watch (%s): no clean close to reconnect after", secs(m.watched()))
}

// --- 12: stop with 204 ----------------------------------------------------------------

func checkStop(o *observations) outcome {
	if o.cfg.StopURL == "" {
		return na("no --stop-url: give the URL of a finished or unknown stream")
	}
	s := o.stop
	if !s.gotResponse() {
		return fail("stop URL: %s; an EventSource reconnects after a network error", describeErr(s.Err))
	}
	if s.Status == http.StatusNoContent {
		return pass("204 No Content: the EventSource stops")
	}
	if s.Status != http.StatusOK {
		return pass("%s: the EventSource fails the connection and stops (204 is the documented signal)", statusText(s.Status))
	}
	events := s.Events
	switch {
	case s.End == endEOF && s.Total == 0:
		return fail("200 with an empty body: the EventSource reconnects forever")
	case s.End == endEOF:
		return fail("200 with %d bytes (%d events), then the body ended: the EventSource reconnects forever", s.Total, events)
	}
	return fail("200 and the body stays open (%d events in %v): the stream is not finished", events, stopWindow)
}
