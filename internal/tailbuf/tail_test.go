package tailbuf

import (
	"fmt"
	"strings"
	"testing"
)

func TestBufferKeepsTheEnd(t *testing.T) {
	b := New(10)
	fmt.Fprint(b, "0123456789")
	if b.Cut() || b.String() != "0123456789" {
		t.Fatalf("at the limit: %q cut %v", b.String(), b.Cut())
	}
	fmt.Fprint(b, "abc")
	if !b.Cut() || b.String() != "3456789abc" {
		t.Fatalf("past the limit: %q cut %v", b.String(), b.Cut())
	}
	b.Write([]byte(strings.Repeat("x", 25)))
	if b.String() != strings.Repeat("x", 10) {
		t.Fatalf("one write past the limit: %q", b.String())
	}
}

func TestLastLines(t *testing.T) {
	b := New(100)
	if got := b.LastLines(3); got != "(no output)" {
		t.Errorf("empty: %q", got)
	}
	fmt.Fprint(b, "a\n\n b \nc\nd\n")
	if got := b.LastLines(3); got != "b | c | d" {
		t.Errorf("got %q", got)
	}
}

func TestBufferKeepsWholeLines(t *testing.T) {
	b := New(10)
	b.Write([]byte("0123456789"))
	b.Write([]byte("ab\ncd\n"))
	if got := b.String(); got != "6789ab\ncd\n" {
		t.Fatalf("tail %q", got)
	}
	if got := b.LastLines(1); got != "cd" {
		t.Fatalf("last line %q", got)
	}
}
