package conform

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// bodies returns the exchanges whose bodies the content checks read: the watched
// stream and the resumed one.
func (o *observations) bodies() []*exchange {
	var out []*exchange
	for _, e := range []*exchange{o.main, o.resume} {
		if e.isStream() && e.Total > 0 {
			out = append(out, e)
		}
	}
	return out
}

// cutNote says when the analysed body is shorter than what was read.
func cutNote(e *exchange) string {
	if e.Truncated {
		return fmt.Sprintf(" (first %d of %d bytes analysed)", len(e.Body), e.Total)
	}
	return ""
}

// settled returns the part of e's body made of whole lines: when the harness stopped
// reading, the last line may be cut anywhere, and must not be judged.
func settled(e *exchange) []byte {
	if e.End == endEOF && !e.Truncated {
		return e.Body
	}
	lines := scanLines(e.Body)
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i].Terminated {
			return e.Body[:lines[i].Next]
		}
	}
	return nil
}

// --- 4: UTF-8 and BOM, on the raw bytes --------------------------------------------

func checkUTF8(o *observations) outcome {
	bs := o.bodies()
	if len(bs) == 0 {
		return na("no stream body bytes to check (%s)", describeResponse(o.main))
	}
	total := 0
	for _, e := range bs {
		if msg := utf8Problem(e.Body, e.End == endEOF && !e.Truncated); msg != "" {
			return fail("%s stream: %s", e.Label, msg)
		}
		total += len(e.Body)
	}
	return pass("%d bytes of valid UTF-8, no misplaced BOM", total)
}

// utf8Problem returns what is wrong with body as an event stream's encoding, or "".
// complete says the body ended here; otherwise a sequence cut by the end of the
// capture is not an error.
func utf8Problem(body []byte, complete bool) string {
	for i := 0; i < len(body); {
		r, n := utf8.DecodeRune(body[i:])
		if r == utf8.RuneError && n <= 1 {
			if !complete && !utf8.FullRune(body[i:]) {
				break
			}
			return fmt.Sprintf("invalid UTF-8 at byte %d (0x%02X); clients turn it into U+FFFD", i, body[i])
		}
		i += n
	}
	start := 0
	if hasBOM(body) {
		start = len(utf8BOM)
		if hasBOM(body[start:]) {
			return "two BOMs at the start; the second becomes part of the first field name, which is then ignored"
		}
	}
	for _, l := range scanLines(body) {
		if l.Start != start && hasBOM(body[l.Start:l.End]) {
			return fmt.Sprintf("BOM at the start of the line at byte %d; it becomes part of the field name, which is then ignored", l.Start)
		}
	}
	return ""
}

// --- 5: line grammar at the end of a body ------------------------------------------

func checkGrammar(o *observations) outcome {
	var ended []*exchange
	all := o.streams()
	if o.stop != nil {
		all = append(all, o.stop)
	}
	for _, e := range all {
		if e.gotResponse() && e.Status == 200 && e.End == endEOF && !e.Truncated {
			ended = append(ended, e)
		}
	}
	for _, e := range ended {
		lines := scanLines(e.Body)
		blocks := scanBlocks(e.Body, lines)
		if len(blocks) == 0 || blocks[len(blocks)-1].Terminated {
			continue
		}
		last := blocks[len(blocks)-1]
		if len(last.Fields) > 0 {
			return fail("%s stream ended with an unterminated block (%d bytes from byte %d): clients discard it", e.Label, len(e.Body)-last.Start, last.Start)
		}
		if len(lines) > 0 && !lines[len(lines)-1].Terminated {
			return warn("%s stream ended inside a comment line without CR/LF", e.Label)
		}
	}
	if len(ended) == 0 {
		n := 0
		if o.main.gotResponse() {
			n = len(scanLines(o.main.Body))
		}
		return na("no stream body ended during the run (%d lines seen, all CR/LF-terminated but the last pending one); an unterminated final block shows only when the server ends a stream", n)
	}
	return pass("%d bodies ended, each after a blank line", len(ended))
}

// --- 6: field values clients honour ------------------------------------------------

func checkFieldValues(o *observations) outcome {
	bs := o.bodies()
	if len(bs) == 0 {
		return na("no stream body bytes to check (%s)", describeResponse(o.main))
	}
	var fields, dataless int
	var example string
	for _, e := range bs {
		body := settled(e)
		for _, b := range scanBlocks(body, scanLines(body)) {
			fields += len(b.Fields)
			for _, f := range b.Fields {
				switch string(f.Name) {
				case "retry":
					if !allDigits(f.Value) {
						return fail("%s stream: retry %q is not only ASCII digits; clients ignore it%s", e.Label, f.Value, cutNote(e))
					}
				case "id":
					if bytes.IndexByte(f.Value, 0) >= 0 {
						return fail("%s stream: id %q contains NUL; clients ignore it%s", e.Label, f.Value, cutNote(e))
					}
				}
			}
			if b.Terminated && !b.hasField("data") && (b.hasField("event") || b.hasField("id")) {
				dataless++
				if example == "" {
					example = fmt.Sprintf("block at byte %d of the %s stream", b.Start, e.Label)
				}
			}
		}
	}
	if fields == 0 {
		return na("no field lines seen (comments only)")
	}
	if dataless > 0 {
		return warn("%d block(s) with event/id but no data (first: %s): they never reach listeners", dataless, example)
	}
	return pass("%d fields: retry values digits only, no NUL in ids", fields)
}

func allDigits(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// --- 22: reconnection time -------------------------------------------------------

// maxTimer is 2^31-1 ms: browsers keep timer delays in 32 bits, so larger values
// overflow (to an immediate reconnect) or get clamped.
const maxTimer = time.Duration(math.MaxInt32) * time.Millisecond

func checkRetry(o *observations) outcome {
	bs := o.bodies()
	if len(bs) == 0 {
		return na("no stream body bytes to check (%s)", describeResponse(o.main))
	}
	var seen []string
	var worst outcome
	for _, e := range bs {
		for _, r := range e.Retries {
			if v := fmt.Sprint(r.Milliseconds()); !slices.Contains(seen, v) {
				seen = append(seen, v)
			}
			switch {
			case r == 0:
				worst = fail("retry 0: clients reconnect at once, in a loop, whenever the stream ends")
			case r < time.Second && worst.Verdict != Fail:
				worst = warn("retry %d ms: below 1000 ms, many clients reconnecting together make a storm", r.Milliseconds())
			case r > maxTimer && worst.Verdict != Fail:
				worst = warn("retry %d ms: above 2^31-1 ms, browsers' 32-bit timers overflow or clamp it", r.Milliseconds())
			}
		}
	}
	if worst.Verdict != "" {
		return worst
	}
	if len(seen) == 0 {
		return warn("no retry field: clients fall back to their own default reconnection time")
	}
	return pass("retry %s ms", strings.Join(seen, ", "))
}

// --- 23: size limits ---------------------------------------------------------------

func checkSizeLimits(o *observations) outcome {
	all := o.streams()
	if o.stop != nil {
		all = append(all, o.stop)
	}
	var read, wire int64
	var bodies int
	for _, e := range all {
		if !e.gotResponse() || e.Total == 0 {
			continue
		}
		if e.End == endLimit {
			return fail("%s stream: %v, after %d bytes in %s; the read was stopped there: a client keeps buffering such a line, event or body without bound",
				e.Label, e.EndErr, e.Total, secs(e.watched()))
		}
		bodies++
		read += e.Total
		wire += e.Wire
	}
	if bodies == 0 {
		return na("no body bytes read (%s)", describeResponse(o.main))
	}
	return pass("%d bytes in %d bodies (%d on the wire): no line or event over %d bytes, no gzip expansion over %d:1", read, bodies, wire, maxLineSize, maxGzipRatio)
}
