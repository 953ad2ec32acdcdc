package conform

import (
	"bytes"
	"time"
)

// utf8BOM is the byte order mark a body may start with.
const utf8BOM = "\xEF\xBB\xBF"

func hasBOM(b []byte) bool { return len(b) >= len(utf8BOM) && string(b[:len(utf8BOM)]) == utf8BOM }

// rawLine is one line of a raw body, located by byte offsets.
type rawLine struct {
	Start, End int  // the line's bytes, without terminator
	Next       int  // offset just past the terminator (== End when unterminated)
	Terminated bool // ended by CR, LF or CRLF; false only for a body's last line
}

// scanLines splits body into lines at CR, LF and CRLF (9.2.5), after a leading BOM.
// A CR that is the body's last byte ends its line: a client does not wait for an LF.
func scanLines(body []byte) []rawLine {
	var lines []rawLine
	i := 0
	if hasBOM(body) {
		i = len(utf8BOM)
	}
	for i < len(body) {
		j := i
		for j < len(body) && body[j] != '\r' && body[j] != '\n' {
			j++
		}
		if j == len(body) {
			lines = append(lines, rawLine{Start: i, End: j, Next: j})
			break
		}
		next := j + 1
		if body[j] == '\r' && next < len(body) && body[next] == '\n' {
			next++
		}
		lines = append(lines, rawLine{Start: i, End: j, Next: next, Terminated: true})
		i = next
	}
	return lines
}

// field is one field line of a block.
type field struct {
	Name, Value []byte
}

// splitField applies 9.2.6's field rule: name before the first colon, value after it
// with one leading space removed; a line without a colon is a name with no value.
func splitField(line []byte) field {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return field{Name: line}
	}
	v := line[colon+1:]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return field{Name: line[:colon], Value: v}
}

// rawBlock is a run of non-blank lines and the blank line that ends it.
type rawBlock struct {
	Start      int // offset of the first line
	End        int // offset just past the blank line's terminator, or of the last byte seen
	Fields     []field
	Comments   int
	Terminated bool // a blank line ended it
}

// hasField reports whether the block has a field with the given name.
func (b rawBlock) hasField(name string) bool {
	for _, f := range b.Fields {
		if string(f.Name) == name {
			return true
		}
	}
	return false
}

// scanBlocks groups lines into blocks. Blank lines with nothing before them (runs of
// blank lines) make no block. The last block is unterminated when the body does not
// end with a blank line; a trailing unterminated line belongs to it.
func scanBlocks(body []byte, lines []rawLine) []rawBlock {
	var blocks []rawBlock
	var cur *rawBlock
	for _, l := range lines {
		text := body[l.Start:l.End]
		if len(text) == 0 && l.Terminated {
			if cur != nil {
				cur.End, cur.Terminated = l.Next, true
				blocks = append(blocks, *cur)
				cur = nil
			}
			continue
		}
		if cur == nil {
			cur = &rawBlock{Start: l.Start}
		}
		cur.End = l.Next
		if text[0] == ':' {
			cur.Comments++
		} else {
			cur.Fields = append(cur.Fields, splitField(text))
		}
	}
	if cur != nil {
		blocks = append(blocks, *cur)
	}
	return blocks
}

// arrival returns when the byte at body offset off arrived, from the exchange's reads.
func (e *exchange) arrival(off int) (time.Time, bool) {
	for _, c := range e.Chunks {
		if int64(off) < c.Off+int64(c.N) {
			return c.At, int64(off) >= c.Off
		}
	}
	return time.Time{}, false
}
