package runner

import (
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Content codings. DefaultAcceptEncoding is what Chromium's EventSource sends;
// AcceptIdentity asks for none and is what turns decoding off on the request side
// (a response in a supported coding is still decoded, as a browser does).
const (
	DefaultAcceptEncoding = "gzip, deflate, br, zstd"
	AcceptIdentity        = "identity"
)

// DefaultMaxDecodedRatio bounds how far a compressed body may expand: past this many
// decoded bytes per received byte (beyond the first decodeSlack decoded bytes) the
// body is a decompression bomb and the attempt fails with ErrTooLarge. Event streams
// compress by 3 to 50 times; deflate cannot pass 1032, brotli and zstd can reach
// millions.
const DefaultMaxDecodedRatio = 500

// decodeSlack is how many decoded bytes any body may have before the ratio counts.
const decodeSlack = 1 << 20

// zstdMaxWindow is the largest zstd window accepted: 8 MiB, the limit browsers and
// RFC 8878 set for HTTP, so a zstd stream's memory is bounded.
const zstdMaxWindow = 8 << 20

// Decoding errors. ErrDecodedTooLarge is a decompression bomb (CloseTooLarge,
// ErrTooLarge); the others are ErrDecode.
var (
	errDecodedTooLarge = errors.New("decompression bomb")
	errDecode          = errors.New("content decoding failed")
)

// decodeError marks an error of a content decoder (ErrDecode).
type decodeError struct {
	coding string
	err    error
}

func (e *decodeError) Error() string { return e.coding + ": " + e.err.Error() }
func (e *decodeError) Unwrap() error { return errDecode }

// compressedSource sits between the body and a decoder: it counts the received
// bytes for the bomb limit and gives the flate readers the io.ByteReader they want
// (without which they add a 4 KB bufio.Reader) through a small buffer.
type compressedSource struct {
	r    io.Reader
	buf  [512]byte
	i, n int
	err  error
	in   int64 // bytes received
	// upErr is the last error handed to the decoder: the connection's, not the data's.
	upErr error
}

func (s *compressedSource) fill() bool {
	if s.i < s.n {
		return true
	}
	if s.err != nil {
		return false
	}
	s.i = 0
	s.n, s.err = s.r.Read(s.buf[:])
	s.in += int64(s.n)
	return s.n > 0
}

func (s *compressedSource) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.i == s.n && s.err == nil && len(p) >= len(s.buf) {
		// Large reads (brotli, zstd) go straight through.
		n, err := s.r.Read(p)
		s.in += int64(n)
		if n > 0 {
			s.err = err
			return n, nil
		}
		s.upErr = err
		return 0, err
	}
	for !s.fill() {
		if s.err != nil {
			err := s.err
			s.err, s.upErr = nil, err
			return 0, err
		}
	}
	n := copy(p, s.buf[s.i:s.n])
	s.i += n
	return n, nil
}

func (s *compressedSource) ReadByte() (byte, error) {
	for !s.fill() {
		if s.err != nil {
			err := s.err
			s.err, s.upErr = nil, err
			return 0, err
		}
	}
	c := s.buf[s.i]
	s.i++
	return c, nil
}

// peek returns the next n bytes without consuming them (n <= len(buf)).
func (s *compressedSource) peek(n int) ([]byte, error) {
	if s.i > 0 {
		s.n = copy(s.buf[:], s.buf[s.i:s.n])
		s.i = 0
	}
	for s.n < n && s.err == nil {
		m, err := s.r.Read(s.buf[s.n:])
		s.n += m
		s.in += int64(m)
		s.err = err
	}
	if s.n < n {
		return s.buf[:s.n], s.err
	}
	return s.buf[:n], nil
}

// decodedBody is a response body with its content coding removed, incrementally:
// each Read returns what the decoder has once the bytes under it arrived (a flushed
// gzip block, a brotli metablock, a zstd block), so events arrive when they would
// uncompressed.
type decodedBody struct {
	src      *compressedSource
	dec      io.Reader
	coding   string
	out      int64
	maxRatio int64
}

func (d *decodedBody) Read(p []byte) (int, error) {
	n, err := d.dec.Read(p)
	d.out += int64(n)
	if d.out > decodeSlack && d.out > d.maxRatio*d.src.in {
		return n, fmt.Errorf("%w: %s body decoded to %d bytes from %d received, over %d times as many",
			errDecodedTooLarge, d.coding, d.out, d.src.in, d.maxRatio)
	}
	// The connection's errors come through the decoder unchanged; anything else is
	// the decoder's verdict on the data.
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF && err != d.src.upErr && !errors.Is(err, errDecode) &&
		!errors.Is(err, errDecodedTooLarge) {
		err = &decodeError{coding: d.coding, err: err}
	}
	return n, err
}

// newDecodedBody wraps body for the response's Content-Encoding; identity (or none)
// returns body itself, with no decoder state allocated. A list of codings is
// removed in reverse order, as it was applied.
func newDecodedBody(contentEncoding string, body io.Reader, maxRatio int64) (io.Reader, func(), error) {
	codings := strings.Split(contentEncoding, ",")
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for i := len(codings) - 1; i >= 0; i-- {
		c := strings.ToLower(strings.TrimSpace(codings[i]))
		if c == "" || c == AcceptIdentity {
			continue
		}
		src := &compressedSource{r: body}
		dec, closer, err := newDecoder(c, src)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if closer != nil {
			closers = append(closers, closer)
		}
		body = &decodedBody{src: src, dec: dec, coding: c, maxRatio: maxRatio}
	}
	if len(closers) == 0 {
		return body, nil, nil
	}
	return body, closeAll, nil
}

// errUnsupportedCoding is a Content-Encoding the runner cannot remove.
var errUnsupportedCoding = errors.New("unsupported content coding")

// newDecoder returns the decoder of one coding. Headers are read lazily, at the
// first Read, so that opening a stream never blocks on its body.
func newDecoder(coding string, src *compressedSource) (io.Reader, func(), error) {
	switch coding {
	case "gzip", "x-gzip":
		return &lazyReader{open: func() (io.Reader, error) {
			zr, err := gzip.NewReader(src)
			if err != nil {
				return nil, &decodeError{coding: coding, err: err}
			}
			return zr, nil
		}}, nil, nil
	case "deflate":
		return &lazyReader{open: func() (io.Reader, error) { return newDeflate(src) }}, nil, nil
	case "br":
		return brotli.NewReader(src), nil, nil
	case "zstd":
		var zr *zstd.Decoder
		lr := &lazyReader{open: func() (io.Reader, error) {
			var err error
			// Concurrency 1: decoded in the caller's goroutine, no goroutines of its own.
			zr, err = zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(zstdMaxWindow))
			if err != nil {
				return nil, &decodeError{coding: coding, err: err}
			}
			return zr, nil
		}}
		return lr, func() {
			if zr != nil {
				zr.Close()
			}
		}, nil
	}
	return nil, nil, fmt.Errorf("%w %q", errUnsupportedCoding, coding)
}

// newDeflate reads HTTP's deflate: zlib-wrapped as RFC 9110 says, or raw deflate as
// some servers send it (browsers accept both).
func newDeflate(src *compressedSource) (io.Reader, error) {
	h, err := src.peek(2)
	if err != nil && len(h) < 2 {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		zr, err := zlib.NewReader(src)
		if err != nil {
			return nil, &decodeError{coding: "deflate", err: err}
		}
		return zr, nil
	}
	return flate.NewReader(src), nil
}

// lazyReader opens its reader at the first Read.
type lazyReader struct {
	open func() (io.Reader, error)
	r    io.Reader
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil {
		r, err := l.open()
		if err != nil {
			return 0, err
		}
		l.r, l.open = r, nil
	}
	return l.r.Read(p)
}
