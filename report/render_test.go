package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run 'go test ./report -run Golden -update' to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- got ---\n%s", path, got)
	}
}

func render(t *testing.T, rr Renderer, r *Result) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := rr(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGoldenTable(t *testing.T) {
	golden(t, "result.table.txt", render(t, Table, fixtureResult(t)))
}

func TestGoldenMarkdown(t *testing.T) {
	golden(t, "result.md", render(t, Markdown, fixtureResult(t)))
}

func TestGoldenJUnit(t *testing.T) {
	golden(t, "result.junit.xml", render(t, JUnit, fixtureResult(t)))
}

// TestGoldenDetectsChange: the golden comparison is not vacuous; a changed measurement
// changes every rendering.
func TestGoldenDetectsChange(t *testing.T) {
	r := fixtureResult(t)
	for _, rr := range []Renderer{Table, Markdown, JUnit} {
		before := render(t, rr, r)
		r2 := fixtureResult(t)
		r2.Scenarios[1].Checks[1].Measured = "something else"
		if bytes.Equal(before, render(t, rr, r2)) {
			t.Fatal("a changed measurement rendered identically")
		}
	}
}

func TestTableContents(t *testing.T) {
	out := string(render(t, Table, fixtureResult(t)))
	for _, want := range []string{
		"verdict: FAIL",
		"same-id-reconnect", "duplicate-senders, old-stream-ended",
		"could not run: target unreachable",
		"delivery latency", "time to first event", "reconnect delay",
		"missing ids", "duplicate senders",
		"go_goroutines", "process_resident_memory_bytes",
		"n/a", // server figures of same-id-reconnect and TLS samples
		"per stream",
		"requested", "achieved", "start lag p99 / max",
		"errors            | 12 (read 12)",
	} {
		if !strings.Contains(out, want) && !strings.Contains(strings.ReplaceAll(out, "│", "|"), want) {
			t.Errorf("table output lacks %q", want)
		}
	}
}

func TestJUnitValidAndEscaped(t *testing.T) {
	r := fixtureResult(t)
	// Hostile text: markup, quotes, control characters and invalid UTF-8.
	r.Scenarios[1].Checks[1].Detail = "<b>\"x\" & 'y'</b>\x00\x1b]0;\xff"
	r.Scenarios[1].Name = "a<b>&c"
	out := render(t, JUnit, r)
	dec := xml.NewDecoder(bytes.NewReader(out))
	dec.Strict = true
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Errors   int      `xml:"errors,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
				Error   *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("JUnit output is not valid XML: %v", err)
	}
	if len(doc.Suites) != 4 || doc.Suites[1].Name != "a<b>&c" {
		t.Fatalf("suites %+v", doc.Suites)
	}
	if doc.Failures != 2 || doc.Errors != 1 || doc.Skipped != 3 || doc.Tests != 14 {
		t.Errorf("totals tests %d failures %d errors %d skipped %d", doc.Tests, doc.Failures, doc.Errors, doc.Skipped)
	}
	f := doc.Suites[1].Cases[1].Failure
	if f == nil || f.Message != "measured never (30 of 30 still open) vs threshold <= 1.00s" || !strings.Contains(f.Text, `<b>"x" & 'y'</b>`) {
		t.Errorf("failure %+v", f)
	}
	if doc.Suites[1].Cases[2].Skipped == nil || doc.Suites[2].Cases[0].Error == nil {
		t.Error("n/a check not skipped, or unrunnable scenario not an error")
	}
	// The SHOULD failure of the conformance scenario does not fail it.
	for _, c := range doc.Suites[3].Cases {
		if c.Failure != nil {
			t.Errorf("conform case %s is a failure", c.Name)
		}
	}
}

func TestMarkdownEscapes(t *testing.T) {
	r := fixtureResult(t)
	out := string(render(t, Markdown, r))
	if !strings.Contains(out, `the server kept both streams \| sending`) {
		t.Error("a pipe in a cell is not escaped")
	}
	if !strings.Contains(out, "conformance &lt;checklist>") || !strings.Contains(out, "| <= 4 |") || !strings.Contains(out, "4x per second & storm") {
		t.Error("angle brackets are not escaped")
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "|") {
			cells := regexp.MustCompile(`(^|[^\\])\|`).FindAllStringIndex(line, -1)
			if len(cells) < 2 {
				t.Errorf("bad table row %q", line)
			}
		}
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		w := f.n
		f.n = 0
		return w, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestRenderersReturnWriteErrors(t *testing.T) {
	r := fixtureResult(t)
	for _, format := range Formats() {
		rr, err := RendererFor(format)
		if err != nil {
			t.Fatal(err)
		}
		full := render(t, rr, r)
		for _, at := range []int{0, 10, len(full) / 2, len(full) - 1} {
			if err := rr(&failWriter{n: at}, r); err == nil {
				t.Errorf("%s: write error after %d of %d bytes not returned", format, at, len(full))
			}
		}
		if err := rr(io.Discard, r); err != nil {
			t.Errorf("%s: %v", format, err)
		}
	}
	if _, err := RendererFor("pdf"); err == nil || !strings.Contains(err.Error(), "table, markdown, junit, html") {
		t.Errorf("unknown format: %v", err)
	}
}

func TestGoldenCompact(t *testing.T) {
	golden(t, "result.compact.txt", render(t, Compact, fixtureResult(t)))
}

// TestCompactShowsFailuresInFull: a failed check's line says what was measured against
// what; passing checks and the full tables are absent.
func TestCompactShowsFailuresInFull(t *testing.T) {
	r := fixtureResult(t)
	out := string(render(t, Compact, r))
	for _, want := range []string{
		"same-id-reconnect", "FAIL old-stream-ended: measured never (30 of 30 still open) against <= 1.00s",
		"could not run: target unreachable", "latency p99 7.81ms", "verdict: FAIL (4 scenarios:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("compact output lacks %q\n%s", want, out)
		}
	}
	for _, not := range []string{"no-lost-ids", "Durations", "go_goroutines"} {
		if strings.Contains(out, not) {
			t.Errorf("compact output has %q\n%s", not, out)
		}
	}
	if n := strings.Count(out, "\n"); n > 3*len(r.Scenarios)+2 {
		t.Errorf("compact output is %d lines for %d scenarios", n, len(r.Scenarios))
	}
}

// TestIncompleteSaid: every text rendering of a partial result says so.
func TestIncompleteSaid(t *testing.T) {
	r := fixtureResult(t)
	r.Incomplete = true
	for _, rr := range []Renderer{Table, Compact, Markdown} {
		if out := render(t, rr, r); !bytes.Contains(out, []byte(IncompleteNote)) {
			t.Errorf("rendering lacks %q:\n%s", IncompleteNote, out)
		}
	}
	if out := render(t, Table, fixtureResult(t)); bytes.Contains(out, []byte("incomplete")) {
		t.Error("a complete result rendered as incomplete")
	}
}
