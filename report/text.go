package report

import (
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Table renders r for a terminal: the run, a verdict table, then per scenario its checks,
// load, counts, durations and server figures.
func Table(w io.Writer, r *Result) error {
	ew := &errWriter{w: w}
	for _, l := range headerLines(r) {
		ew.printf("%s\n", l)
	}
	ew.printf("\n")
	if err := writeTerminalTable(ew, verdictTable(r)); err != nil {
		return err
	}
	for i := range r.Scenarios {
		sec := scenarioSection(&r.Scenarios[i])
		ew.printf("\n== %s\n", sec.title)
		for _, l := range sec.lines {
			ew.printf("%s\n", l)
		}
		for _, t := range sec.tables {
			ew.printf("\n")
			if err := writeTerminalTable(ew, t); err != nil {
				return err
			}
		}
	}
	return ew.err
}

// maxCellWidth is the widest a terminal table cell gets before it wraps.
const maxCellWidth = 56

func writeTerminalTable(ew *errWriter, t textTable) error {
	ew.printf("%s\n", t.title)
	tbl := tablewriter.NewTable(ew,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		// Long cells (measured values, details, spec citations) wrap at word boundaries
		// so that a table stays readable in an ordinary terminal.
		tablewriter.WithRowAutoWrap(tw.WrapNormal),
		tablewriter.WithRowMaxWidth(maxCellWidth),
	)
	tbl.Header(toAny(t.header)...)
	for _, row := range t.rows {
		if err := tbl.Append(toAny(row)...); err != nil {
			return err
		}
	}
	if err := tbl.Render(); err != nil {
		return err
	}
	return ew.err
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		// A cell is one line; newlines in details would break the grid.
		out[i] = strings.ReplaceAll(s, "\n", " ")
	}
	return out
}

// Markdown renders r as GitHub-flavoured markdown, for job summaries and pull requests.
func Markdown(w io.Writer, r *Result) error {
	ew := &errWriter{w: w}
	ew.printf("# sseharness result\n\n")
	for _, l := range headerLines(r) {
		ew.printf("%s  \n", mdEscape(l))
	}
	writeMarkdownTable(ew, "##", verdictTable(r))
	for i := range r.Scenarios {
		sec := scenarioSection(&r.Scenarios[i])
		ew.printf("\n## %s\n\n", mdEscape(sec.title))
		for _, l := range sec.lines {
			ew.printf("%s  \n", mdEscape(l))
		}
		for _, t := range sec.tables {
			writeMarkdownTable(ew, "###", t)
		}
	}
	return ew.err
}

func writeMarkdownTable(ew *errWriter, level string, t textTable) {
	ew.printf("\n%s %s\n\n", level, mdEscape(t.title))
	row := func(cells []string) {
		ew.printf("|")
		for _, c := range cells {
			ew.printf(" %s |", mdEscape(c))
		}
		ew.printf("\n")
	}
	row(t.header)
	ew.printf("|")
	for range t.header {
		ew.printf(" --- |")
	}
	ew.printf("\n")
	for _, r := range t.rows {
		row(r)
	}
}

// mdEscape keeps text literal inside a markdown table cell: pipes, backslashes, code
// and emphasis marks are escaped, and '<' and '&' where they could start a tag or an
// entity (so "<= 4" stays readable in the source).
func mdEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		next := byte(0)
		if i+1 < len(s) {
			next = s[i+1]
		}
		isWord := next == '#' || next == '/' || next == '!' || next == '?' ||
			(next|0x20 >= 'a' && next|0x20 <= 'z')
		switch {
		case c == '\\' || c == '|' || c == '`' || c == '*':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '<' && isWord:
			b.WriteString("&lt;")
		case c == '&' && isWord:
			b.WriteString("&amp;")
		case c == '\r' && next == '\n':
		case c == '\r' || c == '\n':
			b.WriteString("<br>")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
