package runner

import (
	"errors"
	"io"
)

// bodyReader reads an HTTP/1.1 response body straight from the connection into the
// caller's buffer. The head is parsed by http.ReadResponse; the body is not read
// through net/http because its reader keeps a bufio.Reader, the Response and its
// header map alive (about 2.5 KB per stream) and adds six stack frames under every
// blocked read, which is what decides whether 10,000 idle goroutines fit in 4 KB
// stacks. Chunked transfer coding is removed in place: framing bytes are only ever
// dropped, so the decoded bytes fit where the raw bytes were.
type bodyReader struct {
	src     io.Reader   // the connection
	flow    *flowReader // the source's pause and read rate over src; nil: none
	pending []byte      // body bytes read along with the head
	err     error       // a read error held back until decoded bytes are returned

	mode      bodyMode
	remaining int64 // bodyLength: bytes left; bodyChunked: bytes left in the chunk
	state     chunkState
	digits    int // hex digits of the chunk size seen so far
}

type bodyMode uint8

const (
	bodyUntilClose bodyMode = iota // no length: the body ends with the connection
	bodyLength                     // Content-Length
	bodyChunked                    // Transfer-Encoding: chunked
)

type chunkState uint8

const (
	stSize        chunkState = iota // chunk-size hex digits
	stExt                           // chunk extension, up to LF
	stSizeLF                        // CR seen after the size line, LF expected
	stData                          // chunk-data, remaining bytes
	stDataCR                        // CR expected after chunk-data
	stDataLF                        // LF expected after chunk-data
	stTrailer                       // start of a trailer line (or the final CRLF)
	stTrailerLine                   // inside a trailer field line
	stTrailerLF                     // CR of the final empty line seen, LF expected
	stDone                          // last-chunk and trailers read: end of body
)

// maxChunkSize bounds one chunk's size (well past any real event-stream chunk) so the
// size never overflows.
const maxChunkSize = 1 << 40

var errChunked = errors.New("malformed chunked encoding")

func newBodyReader(src io.Reader, flow *flowReader, pending []byte, chunked bool, contentLength int64) *bodyReader {
	b := &bodyReader{src: src, flow: flow, pending: pending}
	switch {
	case chunked:
		b.mode = bodyChunked
	case contentLength >= 0:
		b.mode = bodyLength
		b.remaining = contentLength
	}
	return b
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if b.finished() {
			return 0, io.EOF
		}
		q := p
		if b.mode == bodyLength && int64(len(q)) > b.remaining {
			q = q[:b.remaining]
		}
		// The raw bytes: first those read with the head, then a held-back error, then
		// the connection (written out here rather than in a helper: this is the frame
		// every idle stream's goroutine is parked under).
		var n int
		var err error
		switch {
		case len(b.pending) > 0:
			n = copy(q, b.pending)
			if b.pending = b.pending[n:]; len(b.pending) == 0 {
				b.pending = nil
			}
		case b.err != nil:
			err, b.err = b.err, nil
		case b.flow != nil && b.flow.active():
			n, err = b.flow.slowRead(q)
		default:
			n, err = b.src.Read(q)
		}
		if n > 0 {
			switch b.mode {
			case bodyLength:
				b.remaining -= int64(n)
			case bodyChunked:
				var derr error
				if n, derr = b.decode(q[:n]); derr != nil {
					err, b.pending = derr, nil
				}
			}
		}
		if n > 0 {
			b.err = err // returned by the next call
			return n, nil
		}
		if err != nil {
			if err == io.EOF && b.finished() {
				return 0, io.EOF
			}
			if err == io.EOF && b.mode != bodyUntilClose {
				err = io.ErrUnexpectedEOF // the body was cut short
			}
			return 0, err
		}
		// Only framing in this read: read on.
	}
}

func (b *bodyReader) finished() bool {
	return b.mode == bodyChunked && b.state == stDone || b.mode == bodyLength && b.remaining == 0
}

// decode removes the chunked framing from buf in place and returns the number of
// body bytes now at its start.
func (b *bodyReader) decode(buf []byte) (int, error) {
	w := 0
	for i := 0; i < len(buf); {
		c := buf[i]
		switch b.state {
		case stSize:
			switch {
			case hexVal(c) >= 0:
				b.remaining = b.remaining<<4 | int64(hexVal(c))
				b.digits++
				if b.remaining > maxChunkSize {
					return w, errChunked
				}
			case b.digits == 0:
				return w, errChunked
			case c == ';' || c == ' ' || c == '\t':
				b.state = stExt
			case c == '\r':
				b.state = stSizeLF
			case c == '\n':
				b.endSizeLine()
			default:
				return w, errChunked
			}
			i++
		case stExt:
			if c == '\n' {
				b.endSizeLine()
			}
			i++
		case stSizeLF, stDataCR, stDataLF, stTrailerLF:
			if c != framingByte(b.state) {
				return w, errChunked
			}
			b.framingSeen()
			i++
		case stData:
			n := min(int64(len(buf)-i), b.remaining)
			copy(buf[w:], buf[i:i+int(n)])
			w += int(n)
			i += int(n)
			b.remaining -= n
			if b.remaining == 0 {
				b.state = stDataCR
			}
		case stTrailer:
			switch c {
			case '\r':
				b.state = stTrailerLF
			case '\n':
				b.state = stDone
			default:
				b.state = stTrailerLine
			}
			i++
		case stTrailerLine:
			if c == '\n' {
				b.state = stTrailer
			}
			i++
		case stDone:
			// Bytes after the body: the connection is not reused, so they are ignored.
			return w, nil
		}
	}
	return w, nil
}

// endSizeLine moves past a chunk-size line: to the chunk's data, or to the trailers
// after the last chunk.
// framingByte is the one byte a fixed framing state accepts: the CR after
// chunk-data, else an LF.
func framingByte(s chunkState) byte {
	if s == stDataCR {
		return '\r'
	}
	return '\n'
}

// framingSeen moves on from the byte framingByte asked for.
func (b *bodyReader) framingSeen() {
	switch b.state {
	case stSizeLF:
		b.endSizeLine()
	case stDataCR:
		b.state = stDataLF
	case stDataLF:
		b.state, b.digits, b.remaining = stSize, 0, 0
	case stTrailerLF:
		b.state = stDone
	}
}

func (b *bodyReader) endSizeLine() {
	if b.remaining == 0 {
		b.state = stTrailer
		return
	}
	b.state = stData
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
