package runner

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http/httputil"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkedOf encodes body in chunks of the given sizes with the standard library's
// chunked writer.
func chunkedOf(body string, sizes []int) string {
	var buf bytes.Buffer
	w := httputil.NewChunkedWriter(&buf)
	for len(body) > 0 {
		n := len(body)
		if len(sizes) > 0 {
			n = min(sizes[0], n)
			sizes = sizes[1:]
		}
		w.Write([]byte(body[:n]))
		body = body[n:]
	}
	w.Close()
	buf.WriteString("\r\n")
	return buf.String()
}

// splitReader returns the bytes of s in reads of random sizes.
type splitReader struct {
	s   string
	rnd *rand.Rand
}

func (r *splitReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := min(1+r.rnd.IntN(len(r.s)), len(p))
	copy(p, r.s[:n])
	r.s = r.s[n:]
	return n, nil
}

func readBody(t *testing.T, br *bodyReader, bufSize int) (string, error) {
	t.Helper()
	var out bytes.Buffer
	buf := make([]byte, bufSize)
	for i := 0; i < 1e6; i++ {
		n, err := br.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String(), err
		}
	}
	t.Fatal("body never ended")
	return "", nil
}

func TestBodyReaderChunked(t *testing.T) {
	body := strings.Repeat("data: {\"sent_unix_ns\":1}\n\n", 40)
	rnd := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		var sizes []int
		for i := 0; i < 30; i++ {
			sizes = append(sizes, 1+rnd.IntN(90))
		}
		wire := chunkedOf(body, sizes)
		cut := rnd.IntN(len(wire)) // some bytes arrive with the head
		pending := []byte(wire[:cut])
		br := newBodyReader(&splitReader{s: wire[cut:], rnd: rnd}, nil, pending, true, -1)
		got, err := readBody(t, br, 1+rnd.IntN(300))
		if err != io.EOF || got != body {
			t.Fatalf("trial %d: err %v, body %d bytes (want %d)\nwire %q", trial, err, len(got), len(body), wire)
		}
	}
}

func TestBodyReaderChunkedForms(t *testing.T) {
	for _, tc := range []struct {
		name, wire, body string
		err              error
	}{
		{"extension and trailer", "5;name=val\r\nhello\r\n0\r\nTrailer: x\r\n\r\n", "hello", io.EOF},
		{"upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", io.EOF},
		{"bare LF size line", "3\nabc\r\n0\n\n", "abc", io.EOF},
		{"cut inside data", "5\r\nhel", "hel", io.ErrUnexpectedEOF},
		{"cut before last chunk", "3\r\nabc\r\n", "abc", io.ErrUnexpectedEOF},
		{"missing CRLF after data", "3\r\nabcX\r\n", "abc", errChunked},
		{"LF without CR after data", "3\r\nabcX\n0\r\n\r\n", "abc", errChunked},
		{"CR without LF after data", "3\r\nabc\rX0\r\n\r\n", "abc", errChunked},
		{"CR without LF after size", "3\rXabc\r\n0\r\n\r\n", "", errChunked},
		{"CR without LF ending the trailers", "3\r\nabc\r\n0\r\n\rX", "abc", errChunked},
		{"bad size", "zz\r\n", "", errChunked},
		{"empty size", "\r\n", "", errChunked},
		{"huge size", "ffffffffffffffffff\r\n", "", errChunked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(t, newBodyReader(iotest.OneByteReader(strings.NewReader(tc.wire)), nil, nil, true, -1), 64)
			if got != tc.body || !errors.Is(err, tc.err) {
				t.Errorf("body %q err %v, want %q %v", got, err, tc.body, tc.err)
			}
		})
	}
}

func TestBodyReaderLengthAndClose(t *testing.T) {
	got, err := readBody(t, newBodyReader(strings.NewReader("lo, world and more"), nil, []byte("hel"), false, 12), 5)
	if got != "hello, world" || err != io.EOF {
		t.Errorf("content-length body %q %v", got, err)
	}
	got, err = readBody(t, newBodyReader(strings.NewReader("lo"), nil, []byte("hel"), false, 12), 5)
	if got != "hello" || err != io.ErrUnexpectedEOF {
		t.Errorf("short content-length body %q %v", got, err)
	}
	got, err = readBody(t, newBodyReader(strings.NewReader("until close"), nil, nil, false, -1), 4)
	if got != "until close" || err != io.EOF {
		t.Errorf("close-delimited body %q %v", got, err)
	}
}

func FuzzBodyReaderChunked(f *testing.F) {
	f.Add("5\r\nhello\r\n0\r\n\r\n", 3)
	f.Add("1;x\r\na\r\n0\r\nT: v\r\n\r\n", 1)
	f.Fuzz(func(t *testing.T, wire string, size int) {
		if size <= 0 || size > 1<<12 {
			size = 7
		}
		br := newBodyReader(strings.NewReader(wire), nil, nil, true, -1)
		buf := make([]byte, size)
		total := 0
		for i := 0; i <= len(wire)+1; i++ {
			n, err := br.Read(buf)
			total += n
			if total > len(wire) {
				t.Fatalf("decoded %d bytes from %d", total, len(wire))
			}
			if err != nil {
				return
			}
		}
		t.Fatalf("no end after %d reads of a %d-byte body", len(wire)+2, len(wire))
	})
}
