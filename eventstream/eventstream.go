// Package eventstream parses text/event-stream bodies exactly as a browser's EventSource
// does (WHATWG HTML, 9.2.5 "Parsing an event stream" and 9.2.6 "Interpreting an event
// stream"), one Item at a time, with memory bounded by the configured limits.
//
// The parser is built for a load generator that holds thousands of streams at once: it
// owns one small read buffer, grows its line and data buffers only as far as the stream
// needs, gives back buffers enlarged by one long line or event, and reuses the strings
// of repeated event types and comments. Its results never depend on how the body is
// split across reads.
package eventstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// Defaults used by New for the zero values of Config.
const (
	DefaultMaxLineSize    = 1 << 20 // 1 MiB
	DefaultMaxEventSize   = 1 << 20 // 1 MiB
	DefaultReadBufferSize = 4 << 10 // 4 KiB
)

// maxSharedData is the largest event data that shares its allocation with a new id.
// The parser holds the id until the next one, and with it that data: small enough
// that 10,000 idle streams pin at most 2.5 MB this way.
const maxSharedData = 256

// keepBufferCap is the largest line or data buffer kept for reuse once its line or
// event is done: anything larger came from an unusually long line or event and is
// released, so one big event does not cost every stream that memory for its lifetime.
const keepBufferCap = 4 << 10

// ErrTooLarge is wrapped by the error Next returns when a line or an event's data
// passes Config.MaxLineSize or Config.MaxEventSize. The stream cannot continue: the
// parser never truncates silently.
var ErrTooLarge = errors.New("event stream size limit exceeded")

// Config sets the parser's limits. The zero value is ready to use.
type Config struct {
	// MaxLineSize is the largest line, in bytes after UTF-8 decoding and without its
	// line terminator. 0 means DefaultMaxLineSize (1 MiB).
	MaxLineSize int
	// MaxEventSize is the largest data an event may carry (its data lines joined with
	// LF), in bytes. 0 means DefaultMaxEventSize (1 MiB).
	MaxEventSize int
	// LastEventID seeds both the id buffer and the last event ID string, as the
	// Last-Event-ID a reconnecting EventSource sends. Default "".
	LastEventID string
	// ReadBufferSize is the size of the one read buffer. 0 means
	// DefaultReadBufferSize (4 KiB): small on purpose, a runner holds 10,000 parsers.
	ReadBufferSize int
}

// Validate reports every problem with c at once. New applies the defaults to any
// value that is not positive, so Validate is for rejecting a user's negative input.
func (c Config) Validate() error {
	var errs []error
	if c.MaxLineSize < 0 {
		errs = append(errs, fmt.Errorf("eventstream: MaxLineSize must be >= 0 (0 = %d), got %d", DefaultMaxLineSize, c.MaxLineSize))
	}
	if c.MaxEventSize < 0 {
		errs = append(errs, fmt.Errorf("eventstream: MaxEventSize must be >= 0 (0 = %d), got %d", DefaultMaxEventSize, c.MaxEventSize))
	}
	if c.ReadBufferSize < 0 {
		errs = append(errs, fmt.Errorf("eventstream: ReadBufferSize must be >= 0 (0 = %d), got %d", DefaultReadBufferSize, c.ReadBufferSize))
	}
	return errors.Join(errs...)
}

// Kind says which of Item's fields are meaningful.
type Kind uint8

// The kinds of Item.
const (
	KindEvent   Kind = iota + 1 // a blank line dispatched an event
	KindComment                 // a line starting with a colon (heartbeats)
	KindRetry                   // a valid retry field set the reconnection time
)

// String returns "event", "comment" or "retry".
func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindComment:
		return "comment"
	case KindRetry:
		return "retry"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Item is one thing the stream produced. Which fields are set depends on Kind; the
// others are zero, except Bytes, which every Item carries.
type Item struct {
	Kind Kind
	Type string // KindEvent: event type, "message" when none was set
	Data string // KindEvent
	ID   string // KindEvent: the last event ID string at dispatch
	// HasID (KindEvent) says the event's own block had an id field that was honoured
	// (one without U+0000). Without one, ID merely carries the previous event's id over,
	// as the spec's id buffer does: a consumer counting ids exactly once skips such
	// events rather than see the same id twice.
	HasID   bool
	Retry   time.Duration // KindRetry: the new reconnection time
	Comment string        // KindComment: text after the colon (leading space kept as sent)
	// Bytes counts the raw body bytes consumed since the previous Item (or the start
	// of the body), up to and including the line terminator of the line that produced
	// this Item. The LF of a CRLF pair ending that line counts toward the next Item,
	// since a lone CR already ends a line and the parser does not wait for the LF.
	Bytes int
}

// Parser reads one event stream body. It is not safe for concurrent use; Next blocks
// exactly as long as the underlying reader's Read does.
type Parser struct {
	rd       io.Reader
	maxLine  int
	maxEvent int

	buf        []byte // read buffer; unprocessed bytes are buf[r:w]
	r, w       int
	cr         int   // index in buf of the first CR in buf[r:w], or -1: most bodies have none
	valid      int   // buf[r:valid] is known valid UTF-8, checked once per read
	readErr    error // error of the last Read, returned once buf[r:w] is processed
	err        error // sticky result once the stream ended or failed
	emptyReads int   // consecutive (0, nil) reads

	// WHATWG UTF-8 decoder state (Encoding standard, "UTF-8 decoder").
	need, seen   uint8
	cp           rune
	lower, upper byte
	atStart      bool // no code point decoded yet: a first U+FEFF (BOM) is dropped
	skipLF       bool // the previous line ended at CR: a next LF completes that CRLF

	line []byte // current line when it spans reads or needed decoder repair
	data []byte // data buffer: each data value followed by LF
	typ  []byte // event type buffer

	// The last event ID buffer is lastID, the last event ID string, or idNext when
	// idSet: a new id is kept as bytes until dispatch, where it can share one allocation
	// with the event's data. (Between dispatches the buffer and the string differ only
	// by what idNext holds.)
	idNext []byte
	idSet  bool
	// idField: the block being built had an honoured id field (reported as HasID).
	idField bool
	lastID  string // last event ID string

	// Strings reused when the same event type or comment recurs (ticks, heartbeats).
	lastType    string
	lastComment string

	pos       int64 // body bytes consumed
	itemPos   int64 // pos at the end of the previous Item
	lineStart int64 // pos where the current line began
}

// New returns a parser reading the event stream body r with the limits of cfg (zero
// or negative values mean the defaults).
func New(r io.Reader, cfg Config) *Parser {
	size := cfg.ReadBufferSize
	if size <= 0 {
		size = DefaultReadBufferSize
	}
	p := &Parser{
		maxLine:  positiveOr(cfg.MaxLineSize, DefaultMaxLineSize),
		maxEvent: positiveOr(cfg.MaxEventSize, DefaultMaxEventSize),
		buf:      make([]byte, size),
		lastID:   cfg.LastEventID,
	}
	p.Reset(r)
	return p
}

func positiveOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Reset makes p parse a new body r, as an EventSource does when it reconnects: the
// last event ID string carries over and seeds the new stream's id buffer, while
// everything else about the previous body (a partial line or event, a sticky error,
// the byte counts) is dropped. Buffers are reused.
func (p *Parser) Reset(r io.Reader) {
	p.rd = r
	p.r, p.w, p.cr, p.valid = 0, 0, -1, 0
	p.readErr, p.err, p.emptyReads = nil, nil, 0
	p.need, p.seen, p.cp = 0, 0, 0
	p.lower, p.upper = 0x80, 0xBF
	p.atStart, p.skipLF = true, false
	p.idSet, p.idField = false, false
	p.pos, p.itemPos, p.lineStart = 0, 0, 0
	p.releaseBuffers()
}

// releaseBuffers empties the line, data, type and id buffers, giving back any that a
// long line or event enlarged: an unfinished 1 MiB event discarded at the end of a
// body must not stay allocated while the stream waits to reconnect.
func (p *Parser) releaseBuffers() {
	p.line = truncated(p.line)
	p.data = truncated(p.data)
	p.typ = truncated(p.typ)
	p.idNext = truncated(p.idNext)
}

// truncated returns b emptied, or nil when it is larger than worth keeping.
func truncated(b []byte) []byte {
	if cap(b) > keepBufferCap {
		return nil
	}
	return b[:0]
}

// empty is truncated in place: a buffer kept is only shortened, which, unlike storing
// a slice anew, costs no write barrier while the garbage collector runs.
func empty(b *[]byte) {
	if cap(*b) > keepBufferCap {
		*b = nil
		return
	}
	*b = (*b)[:0]
}

// LastEventID returns the last event ID string: what a reconnect sends as
// Last-Event-ID ("" means no header). It changes at every dispatch, even one that
// fires no event.
func (p *Parser) LastEventID() string { return p.lastID }

// Offset returns the number of body bytes consumed so far: the sum of the Bytes of the
// Items returned, plus, after io.EOF or a read error, the bytes of the discarded
// unfinished line or event. After a size-limit error it is where the offending line
// began, so that, like everything else, it does not depend on how reads split the body.
func (p *Parser) Offset() int64 { return p.pos }

// Next returns the next Item. At the end of the body it returns io.EOF (an unfinished
// line or event is discarded, as the spec says); past a size limit an error wrapping
// ErrTooLarge; a read error as the reader returned it. After an error every call
// returns the same error.
func (p *Parser) Next() (Item, error) {
	for p.err == nil {
		for p.r < p.w {
			var it Item
			ok, err := p.step(&it)
			if err != nil {
				p.err = err
				p.releaseBuffers()
				return Item{}, err
			}
			if ok {
				it.Bytes = int(p.pos - p.itemPos)
				p.itemPos = p.pos
				return it, nil
			}
		}
		if p.readErr != nil {
			p.err = p.readErr
			p.releaseBuffers()
			break
		}
		if p.rd == nil {
			// Push mode: every byte fed is used. The borrowed buffer is let go.
			p.buf, p.r, p.w, p.cr, p.valid = nil, 0, 0, -1, 0
			return Item{}, ErrPending
		}
		p.fill()
	}
	return Item{}, p.err
}

// ErrPending is returned by Next of a parser made by NewPush once it has used every
// byte fed to it: Feed more (or call EndBody), then call Next again. Unlike every
// other error of Next it is not sticky.
var ErrPending = errors.New("eventstream: more input needed")

// NewPush returns a parser that is fed the body with Feed and EndBody instead of
// reading it: for an event loop that reads many sockets into one buffer. It parses
// exactly as a parser made by New does; only where the bytes come from differs. It
// owns no read buffer. Reset(nil) readies it for a new body.
func NewPush(cfg Config) *Parser {
	p := &Parser{
		maxLine:  positiveOr(cfg.MaxLineSize, DefaultMaxLineSize),
		maxEvent: positiveOr(cfg.MaxEventSize, DefaultMaxEventSize),
		lastID:   cfg.LastEventID,
	}
	p.Reset(nil)
	return p
}

// Feed hands a push parser the next bytes of the body; the following Next calls
// parse them. b is borrowed, not copied: the caller must leave it unchanged until
// Next returns ErrPending (or an error). Feeding again before that keeps the bytes
// not yet used, in order.
func (p *Parser) Feed(b []byte) {
	if p.r < p.w {
		p.buf = append(p.buf[p.r:p.w:p.w], b...)
	} else {
		p.buf = b
	}
	p.r, p.w = 0, len(p.buf)
	p.scan()
}

// EndBody tells a push parser that the body ended after the bytes fed so far: with
// io.EOF for a clean end, or the read error. Next then returns it, as a parser made
// by New returns its reader's error (an unfinished line or event is discarded).
func (p *Parser) EndBody(err error) {
	if err == nil {
		err = io.EOF
	}
	p.readErr = err
}

// maxEmptyReads bounds a reader that keeps returning (0, nil), as bufio does.
const maxEmptyReads = 100

func (p *Parser) fill() {
	n, err := p.rd.Read(p.buf)
	if n < 0 || n > len(p.buf) {
		p.r, p.w, p.cr, p.valid = 0, 0, -1, 0
		p.readErr = fmt.Errorf("eventstream: reader returned invalid count %d from Read", n)
		return
	}
	p.r, p.w = 0, n
	p.scan()
	p.readErr = err
	if n == 0 && err == nil {
		p.emptyReads++
		if p.emptyReads >= maxEmptyReads {
			p.readErr = io.ErrNoProgress
		}
		return
	}
	p.emptyReads = 0
}

// scan looks over the bytes just read (or fed) once, for every line in them: where the
// first CR is, and how far they are valid UTF-8 (a sequence cut by the end of the bytes
// is left to the next scan).
func (p *Parser) scan() {
	b := p.buf[p.r:p.w]
	p.cr = bytes.IndexByte(b, '\r')
	if p.cr >= 0 {
		p.cr += p.r
	}
	p.valid = p.r + validPrefix(b)
}

// validPrefix returns the length of b, or of b without an unfinished last sequence, if
// that is valid UTF-8, and 0 otherwise (the lines are then checked one by one).
func validPrefix(b []byte) int {
	if utf8.Valid(b) {
		return len(b)
	}
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) && utf8.Valid(b[:i]) {
				return i
			}
			break
		}
	}
	return 0
}

// step consumes buffered bytes up to the end of one line (or of the buffer) and
// interprets a completed line. ok reports that the line produced *it.
func (p *Parser) step(it *Item) (ok bool, err error) {
	if p.skipLF {
		p.skipLF = false
		if p.buf[p.r] == '\n' {
			p.r++
			p.pos++
			p.lineStart = p.pos
			return false, nil
		}
	}
	seg := p.buf[p.r:p.w]
	end := bytes.IndexByte(seg, '\n')
	if p.cr >= 0 {
		if c := p.cr - p.r; end < 0 || c < end {
			end = c
		}
	}
	if end < 0 {
		p.appendDecoded(seg)
		p.r = p.w
		p.pos += int64(len(seg))
		if len(p.line) > p.maxLine {
			return false, p.tooLarge("line", p.maxLine)
		}
		return false, nil
	}
	var line []byte
	if len(p.line) == 0 && p.need == 0 && !p.atStart && (p.r+end <= p.valid || utf8.Valid(seg[:end])) {
		// The common case: the whole line is valid UTF-8 inside the read buffer and
		// is used in place.
		line = seg[:end]
	} else {
		p.appendDecoded(seg[:end])
		if p.need != 0 {
			// The terminator interrupts a multi-byte sequence: the decoder emits
			// U+FFFD and then reads the CR or LF as itself.
			p.resetDecoder()
			p.emit(utf8.RuneError)
		}
		line = p.line
	}
	p.atStart = false // the terminator was the first code point if nothing preceded it
	p.skipLF = seg[end] == '\r'
	p.r += end + 1
	p.pos += int64(end + 1)
	if p.cr >= 0 && p.cr < p.r {
		p.nextCR()
	}
	if len(line) > p.maxLine {
		return false, p.tooLarge("line", p.maxLine)
	}
	ok, err = p.interpret(line, it)
	p.lineStart = p.pos
	empty(&p.line)
	return ok, err
}

// nextCR finds the first CR at or after p.r, once the previous one was consumed.
func (p *Parser) nextCR() {
	p.cr = bytes.IndexByte(p.buf[p.r:p.w], '\r')
	if p.cr >= 0 {
		p.cr += p.r
	}
}

// tooLarge ends the stream at the line that broke a limit. It names where that line
// began, which unlike the current read position is the same however reads split.
func (p *Parser) tooLarge(what string, limit int) error {
	p.pos = p.lineStart
	return &tooLargeError{what: what, limit: limit, offset: p.lineStart}
}

type tooLargeError struct {
	what   string
	limit  int
	offset int64
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("event stream %s longer than %d bytes (in the line starting at body byte %d)", e.what, e.limit, e.offset)
}

func (e *tooLargeError) Unwrap() error { return ErrTooLarge }

// appendDecoded decodes b into p.line with the WHATWG UTF-8 decoder: one U+FFFD per
// maximal invalid subpart, sequences split across calls completed by the next call.
func (p *Parser) appendDecoded(b []byte) {
	if p.need == 0 && !p.atStart && utf8.Valid(b) {
		p.line = append(p.line, b...)
		return
	}
	for i := 0; i < len(b); {
		c := b[i]
		if p.need == 0 {
			i++
			switch {
			case c < 0x80:
				p.emit(rune(c))
			case c >= 0xC2 && c <= 0xDF:
				p.need, p.cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				p.narrow(c)
				p.need, p.cp = 2, rune(c&0x0F)
			case c >= 0xF0 && c <= 0xF4:
				p.narrow(c)
				p.need, p.cp = 3, rune(c&0x07)
			default:
				p.emit(utf8.RuneError)
			}
			continue
		}
		if c < p.lower || c > p.upper {
			// End of a maximal invalid subpart: one U+FFFD, and c is read again
			// as the start of what follows.
			p.resetDecoder()
			p.emit(utf8.RuneError)
			continue
		}
		i++
		p.lower, p.upper = 0x80, 0xBF
		p.cp = p.cp<<6 | rune(c&0x3F)
		p.seen++
		if p.seen == p.need {
			cp := p.cp
			p.resetDecoder()
			p.emit(cp)
		}
	}
}

// narrow sets the range the decoder allows for the byte after a three- or four-byte
// lead c, where it is narrower than 80..BF: after E0 (no overlong), ED (no surrogate),
// F0 (no overlong) and F4 (nothing above U+10FFFF).
func (p *Parser) narrow(c byte) {
	switch c {
	case 0xE0:
		p.lower = 0xA0
	case 0xED:
		p.upper = 0x9F
	case 0xF0:
		p.lower = 0x90
	case 0xF4:
		p.upper = 0x8F
	}
}

func (p *Parser) resetDecoder() {
	p.need, p.seen, p.cp = 0, 0, 0
	p.lower, p.upper = 0x80, 0xBF
}

// emit appends one decoded code point to the line, dropping a BOM that is the very
// first code point of the body (the UTF-8 decode algorithm's BOM sniffing).
func (p *Parser) emit(cp rune) {
	if p.atStart {
		p.atStart = false
		if cp == 0xFEFF {
			return
		}
	}
	if cp < utf8.RuneSelf {
		p.line = append(p.line, byte(cp))
		return
	}
	p.line = utf8.AppendRune(p.line, cp)
}

// interpret applies 9.2.6 to one complete line; ok reports that it filled *it.
func (p *Parser) interpret(line []byte, it *Item) (ok bool, err error) {
	if len(line) == 0 {
		return p.dispatch(it), nil
	}
	if line[0] == ':' {
		it.Kind, it.Comment = KindComment, reuse(&p.lastComment, line[1:])
		return true, nil
	}
	name, value := line, line[len(line):]
	if colon := colonAt(line); colon >= 0 {
		name, value = line[:colon], line[colon+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		p.typ = p.typ[:0]
		p.typ = append(p.typ, value...)
	case "data":
		if len(p.data)+len(value) > p.maxEvent {
			return false, p.tooLarge("event data", p.maxEvent)
		}
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.idField = true
			p.idSet = string(value) != p.lastID
			if p.idSet {
				p.idNext = p.idNext[:0]
				p.idNext = append(p.idNext, value...)
			}
		}
	case "retry":
		if d, ok := parseRetry(value); ok {
			it.Kind, it.Retry = KindRetry, d
			return true, nil
		}
	}
	return false, nil
}

// colonAt returns the index of the first colon in line: at once for the fields a server
// sends most (data, id, event), else by search.
func colonAt(line []byte) int {
	switch {
	case len(line) > 4 && line[4] == ':' && string(line[:4]) == "data":
		return 4
	case len(line) > 2 && line[2] == ':' && line[0] == 'i' && line[1] == 'd':
		return 2
	case len(line) > 5 && line[5] == ':' && string(line[:5]) == "event":
		return 5
	}
	return bytes.IndexByte(line, ':')
}

// dispatch implements "dispatch the event" for a blank line; ok reports that an event
// fired into *it. Buffers are emptied in place (see empty).
func (p *Parser) dispatch(it *Item) (ok bool) {
	n := len(p.data) - 1 // without the trailing LF
	if n >= 0 && p.idSet && n <= maxSharedData {
		// One allocation for data and new id: an event costs one string, not two.
		// The parser keeps the id, and with it this small data, alive until the
		// next id change.
		p.data = p.data[:n]
		p.data = append(p.data, p.idNext...)
		both := string(p.data)
		it.Data, p.lastID = both[:n], both[n:]
		p.idSet = false
	} else if n >= 0 {
		it.Data = string(p.data[:n])
	}
	if p.idSet { // the last event ID string is set even when no event fires
		p.lastID, p.idSet = string(p.idNext), false
	}
	empty(&p.idNext)
	hasID := p.idField
	p.idField = false
	if n < 0 {
		p.typ = p.typ[:0]
		return false
	}
	it.Kind = KindEvent
	if len(p.typ) > 0 {
		it.Type = reuse(&p.lastType, p.typ)
	} else {
		it.Type = "message"
	}
	it.ID = p.lastID
	it.HasID = hasID
	p.typ = p.typ[:0]
	empty(&p.data)
	return true
}

// reuse returns b as a string, reusing *last when it holds the same text and
// remembering short results in *last: repeated event types and heartbeat comments then
// cost no allocation, while a long one is not kept alive by the parser.
func reuse(last *string, b []byte) string {
	if string(b) == *last {
		return *last
	}
	s := string(b)
	if len(s) <= maxReusedString {
		*last = s
	}
	return s
}

// maxReusedString bounds the strings reuse keeps.
const maxReusedString = 256

// parseRetry accepts one or more ASCII digits, read in base ten as milliseconds.
// Values beyond time.Duration's range (about 292 years) saturate at its maximum.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const maxMS = math.MaxInt64 / int64(time.Millisecond)
	var ms int64
	saturated := false
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if !saturated {
			ms = ms*10 + int64(c-'0')
			if ms > maxMS {
				saturated = true
			}
		}
	}
	if saturated {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(ms) * time.Millisecond, true
}
