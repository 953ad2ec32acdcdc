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
	var notes []string
	if u := o.unknown; !u.isStream() {
		switch {
		case u.gotResponse() && u.Status >= 400:
			return fail("unknown Last-Event-ID %q answered %s: an unknown or expired id must fall back to the live stream", unknownID, statusText(u.Status))
		case u.gotResponse() && u.Status == http.StatusNoContent:
			notes = append(notes, "an unknown Last-Event-ID got 204, which stops the client for good")
		default:
			return fail("unknown Last-Event-ID %q: %s", unknownID, describeResponse(u))
		}
	}
	events := o.mainEvents()
	if o.resumeFrom < 0 {
		ids := 0
		for _, e := range events {
			if e.ID != "" {
				ids++
			}
		}
		msg := fmt.Sprintf("resume not verifiable: %d events, %d with an id, no two successive distinct ids (an unknown Last-Event-ID got %s)", len(events), ids, describeResponse(o.unknown))
		if len(notes) > 0 {
			return warn("%s; %s", msg, strings.Join(notes, "; "))
		}
		return na("%s", msg)
	}
	sent := events[o.resumeFrom].ID
	want := events[o.resumeFrom+1]
	r := o.resume
	if !r.isStream() {
		return fail("reconnect with Last-Event-ID %q answered %s", sent, describeResponse(r))
	}
	v := judgeReplay(events, o.resumeFrom, parseBody(r.Body, resumeSentinel).Events)
	switch {
	case v.repeated != "":
		return fail("after Last-Event-ID %q the server resent event %q, which the client already had", sent, v.repeated)
	case !v.found && v.fresh > 0:
		return fail("after Last-Event-ID %q the server skipped event %q: the resumed stream went on with %s", sent, want.ID, v.firstID)
	case !v.found:
		return fail("after Last-Event-ID %q no event with an id arrived within %v (expected %q)", sent, o.cfg.Timeout, want.ID)
	case v.fresh > 0:
		notes = append(notes, fmt.Sprintf("%d newer event(s) came before the replay, so a drop then would lose it", v.fresh))
	}
	msg := fmt.Sprintf("Last-Event-ID %q: the stream resumed with %q, the next event; unknown id: %s", sent, want.ID, describeResponse(o.unknown))
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
	m := o.main
	if m.End == endEOF {
		next := o.resume
		if next == nil {
			next = o.unknown
		}
		if !next.isStream() {
			return fail("the server closed the stream after %s, then answered the reconnect with %s", secs(m.EndAt.Sub(m.HeadersAt)), describeResponse(next))
		}
		if len(once) >= 2 {
			return warn("%d of %d stream responses were 200 bodies that ended at once (%s): browsers reconnect in a loop at the reconnection time; end a finished stream with 204", len(once), len(all), strings.Join(once, ", "))
		}
		return pass("the server closed the stream after %s; the reconnect was accepted", secs(m.EndAt.Sub(m.HeadersAt)))
	}
	if len(once) >= 2 {
		return warn("%d of %d stream responses were 200 bodies that ended at once (%s): browsers reconnect in a loop", len(once), len(all), strings.Join(once, ", "))
	}
	return na("the server kept the stream open for the whole watch (%s): no clean close to reconnect after", secs(m.EndAt.Sub(m.HeadersAt)))
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
	events := len(parseBody(s.Body, "").Events)
	switch {
	case s.End == endEOF && s.Total == 0:
		return fail("200 with an empty body: the EventSource reconnects forever")
	case s.End == endEOF:
		return fail("200 with %d bytes (%d events), then the body ended: the EventSource reconnects forever", s.Total, events)
	}
	return fail("200 and the body stays open (%d events in %v): the stream is not finished", events, stopWindow)
}
