package conform

import (
	"fmt"
	"net/http"
	"time"
)

// Delivery thresholds.
const (
	// splitLimit: the bytes of one event arriving further apart than this were flushed
	// separately (one flush reaches a loopback or LAN reader within milliseconds; the
	// margin is for a busy machine).
	splitLimit = time.Second
	// headHoldLimit: a head later than this after the request was written, arriving with
	// the first body bytes, was held back until there was output.
	headHoldLimit = 2 * time.Second
	// togetherLimit: reads this close together count as arriving together.
	togetherLimit = 100 * time.Millisecond
	// keepAliveTarget is the spec's "a comment line every 15 seconds or so"; silences
	// up to keepAliveWarn pass as "or so", longer ones warn.
	keepAliveTarget = 15 * time.Second
	keepAliveWarn   = 20 * time.Second
)

// --- 7: incremental delivery ---------------------------------------------------------

func checkDelivery(o *observations) outcome {
	m := o.main
	if !m.gotResponse() {
		if m.TimedOut && m.Connected {
			return fail("connected, but %v: the head is held back with the output", describeErr(m.Err))
		}
		return na("no response (%s)", describeErr(m.Err))
	}
	if m.Status != http.StatusOK {
		return na("status %s, no stream", statusText(m.Status))
	}
	if m.ContentLength >= 0 {
		return fail("Content-Length: %d on the stream: the body is finite and intermediaries may buffer it whole", m.ContentLength)
	}
	if m.Encoding != "" && m.Encoding != "identity" && m.Encoding != "gzip" {
		return fail("Content-Encoding %q although the request accepted only gzip", m.Encoding)
	}
	if m.Total == 0 {
		if m.End == endEOF {
			return na("the body ended empty after %s (see check 11)", secs(m.watched()))
		}
		// Silence is not buffering: a server may have nothing to send. Keep-alive (8)
		// judges the silence; this check needs an event.
		return na("no body byte in the %s the body was read (%s): no event to judge; check 8 judges the silence", secs(m.watched()), endText(m))
	}
	if msg := splitEvent(m); msg != "" {
		return fail("%s", msg)
	}
	if m.Events == 0 {
		return na("%d bytes (%d comments) but no event in %s (%s): no event to judge", m.Total, m.Comments, secs(m.watched()), endText(m))
	}
	enc := ""
	if m.Encoding == "gzip" {
		enc = "; gzip-encoded, still incremental"
	}
	first := m.Chunks[0].At
	sent := m.Sent
	if sent.IsZero() || sent.After(m.HeadersAt) {
		sent = m.Start
	}
	hold := m.HeadersAt.Sub(sent) // from the request written: dial and TLS are not the server's doing
	if hold > headHoldLimit && first.Sub(m.HeadersAt) < togetherLimit {
		return warn("the head came %s after the request, together with the first bytes: headers wait for output%s", secs(hold), enc)
	}
	return pass("head %d ms after the request, first bytes %d ms after the head, %d events each in one flush%s",
		hold.Milliseconds(), first.Sub(m.HeadersAt).Milliseconds(), m.Events, enc)
}

// endText says how the read of a body ended, for messages.
func endText(e *exchange) string {
	switch e.End {
	case endEOF:
		return "then the server ended it"
	case endError:
		return "then it broke: " + describeErr(e.EndErr)
	case endLimit:
		return "then a size limit stopped the read (check 23)"
	case endStopped:
		return "the watch ended"
	}
	return "not read"
}

// splitEvent finds an event whose bytes arrived in reads further apart than
// splitLimit, or one left unterminated that long before the watch ended.
func splitEvent(m *exchange) string {
	blocks := scanBlocks(m.Body, scanLines(m.Body))
	for i, b := range blocks {
		if !b.hasField("data") {
			continue
		}
		t0, ok0 := m.arrival(b.Start)
		if !ok0 {
			continue
		}
		if !b.Terminated {
			// The last block of a body cut at maxBodyKept was cut by the harness.
			if i == len(blocks)-1 && m.End == endStopped && !m.Truncated && m.EndAt.Sub(t0) > splitLimit {
				return fmt.Sprintf("an event started at byte %d was still unterminated %s later when the watch ended: its blank line is held back", b.Start, secs(m.EndAt.Sub(t0)))
			}
			continue
		}
		t1, ok1 := m.arrival(b.End - 1)
		if ok1 && t1.Sub(t0) > splitLimit {
			return fmt.Sprintf("the event at byte %d arrived in pieces %s apart: it was not flushed with its terminating blank line", b.Start, secs(t1.Sub(t0)))
		}
	}
	return ""
}

// --- 8: keep-alive -------------------------------------------------------------------

func checkKeepAlive(o *observations) outcome {
	m := o.main
	if !m.gotResponse() || m.Status != http.StatusOK {
		return na("no stream (%s)", describeResponse(m))
	}
	last := m.LastByteAt
	if last.IsZero() {
		last = m.HeadersAt
	}
	trailing := m.EndAt.Sub(last)
	longest := max(m.LongestGap, trailing)
	what := fmt.Sprintf("%d comments, %d events", m.Comments, m.Events)
	switch m.End {
	case endEOF, endError:
		how := "ended"
		if m.End == endError {
			how = "broke (" + describeErr(m.EndErr) + ")"
		}
		return fail("the stream %s after %s, %s after its last byte: it was not kept open (%s)", how, secs(m.watched()), secs(trailing), what)
	case endLimit:
		if trailing < o.cfg.Idle && longest <= keepAliveWarn {
			return na("a size limit stopped the read after %s (check 23), too soon to judge keep-alive (%s)", secs(m.watched()), what)
		}
	}
	if trailing >= o.cfg.Idle {
		note := ""
		if o.cfg.Idle < keepAliveTarget {
			note = fmt.Sprintf("; --idle %v is shorter than the spec's ~15 s interval", o.cfg.Idle)
		}
		return fail("no byte for %s, the whole --idle window (%s): idle proxies drop such streams%s", secs(trailing), what, note)
	}
	if longest > keepAliveWarn {
		return warn("longest silence %s, over %s (%s)", secs(longest), secs(keepAliveWarn), what)
	}
	if m.Comments == 0 {
		return pass("longest silence %s over %s watched, all bytes from %d events: the stream was never idle, no keep-alive comment seen", secs(longest), secs(m.watched()), m.Events)
	}
	return pass("longest silence %s over %s watched (%s)", secs(longest), secs(m.watched()), what)
}
