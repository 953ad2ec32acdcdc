// Package tailbuf keeps the end of a child process's output, for error messages that
// quote it without holding all of it.
package tailbuf

import (
	"strings"
	"sync"
)

// Buffer keeps the last Max bytes written to it. It is safe for concurrent use (a
// child's stderr is written by os/exec's copier while the parent reads it).
type Buffer struct {
	mu  sync.Mutex
	max int
	b   []byte
	cut bool
}

// New returns a buffer that keeps the last max bytes.
func New(max int) *Buffer { return &Buffer{max: max} }

// Write keeps the end of what was written; it never fails.
func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// String is what is kept, as written.
func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Cut reports whether earlier output was dropped.
func (t *Buffer) Cut() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cut
}

// LastLines is the last k non-empty lines joined with " | ", for one-line errors;
// "(no output)" when there is none.
func (t *Buffer) LastLines(k int) string {
	var lines []string
	for _, l := range strings.Split(t.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	if len(lines) > k {
		lines = lines[len(lines)-k:]
	}
	return strings.Join(lines, " | ")
}
