package eventstream

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ruleMutations break one rule each in a copy of eventstream.go; the named rule test
// must then fail. They show that each TestPn can fail, not just pass.
var ruleMutations = []struct{ name, test, from, to string }{
	{"P1 E0 lower bound", "TestP1_", "if c == 0xE0 {\n\t\t\t\t\tp.lower = 0xA0", "if c == 0xE1 {\n\t\t\t\t\tp.lower = 0xA0"},
	{"P1 byte not reread", "TestP1_", "\t\t\tp.emit(utf8.RuneError)\n\t\t\tcontinue\n\t\t}\n\t\ti++", "\t\t\tp.emit(utf8.RuneError)\n\t\t\ti++\n\t\t\tcontinue\n\t\t}\n\t\ti++"},
	{"P2 every leading BOM", "TestP2_", "\t\tif cp == 0xFEFF {\n\t\t\treturn", "\t\tif cp == 0xFEFF {\n\t\t\tp.atStart = true\n\t\t\treturn"},
	{"P3 CRLF counts twice", "TestP3_", "\tp.skipLF = seg[end] == '\\r'", "\tp.skipLF = false"},
	{"P4 blank line ignored", "TestP4_", "\tif len(line) == 0 {\n\t\treturn p.dispatch(it), nil", "\tif len(line) == 0 && p.pos < 0 {\n\t\treturn p.dispatch(it), nil"},
	{"P5 empty comment is a field", "TestP5_", "\tif line[0] == ':' {", "\tif line[0] == ':' && len(line) > 1 {"},
	{"P6 all spaces removed", "TestP6_", "if len(value) > 0 && value[0] == ' ' {\n\t\t\tvalue = value[1:]", "for len(value) > 0 && value[0] == ' ' {\n\t\t\tvalue = value[1:]"},
	{"P7 colonless line ignored", "TestP7_", "\tname, value := line, line[len(line):]", "\tname, value := line, line[len(line):]\n\tif bytes.IndexByte(line, ':') < 0 {\n\t\treturn false, nil\n\t}"},
	{"P8 names case-folded", "TestP8_", "\tswitch string(name) {", "\tswitch string(bytes.ToLower(name)) {"},
	{"P9 every trailing LF removed", "TestP9_", "\tn := len(p.data) - 1 // without the trailing LF", "\tn := len(p.data) - 1 // without the trailing LF\n\tif n > 0 && p.data[n-1] == '\\n' {\n\t\tn--\n\t}"},
	{"P10 type kept by an empty dispatch", "TestP10_", "\t\tp.typ = p.typ[:0]\n\t\treturn false", "\t\treturn false"},
	{"P11 NUL ids accepted", "TestP11_", "\t\tif bytes.IndexByte(value, 0) < 0 {", "\t\tif true {"},
	{"P11 id committed only with an event", "TestP11_", "\tif p.idSet { // the last event ID string is set even when no event fires", "\tif p.idSet && n >= 0 {"},
	{"P12 spaces allowed in retry", "TestP12_", "\t\tif c < '0' || c > '9' {\n\t\t\treturn 0, false", "\t\tif c == ' ' {\n\t\t\tcontinue\n\t\t}\n\t\tif c < '0' || c > '9' {\n\t\t\treturn 0, false"},
	{"P13 EOF dispatches", "TestP13_", "\t\tif p.readErr != nil {\n\t\t\tp.err = p.readErr", "\t\tif p.readErr != nil {\n\t\t\tif len(p.data) > 0 {\n\t\t\t\tvar it Item\n\t\t\t\tp.dispatch(&it)\n\t\t\t\treturn it, nil\n\t\t\t}\n\t\t\tp.err = p.readErr"},
	{"P14 data limit off by one", "TestP14_", "\t\tif len(p.data)+len(value) > p.maxEvent {", "\t\tif len(p.data)+len(value) > p.maxEvent+1 {"},
	{"P14 partial line unchecked", "TestP14_", "\t\tif len(p.line) > p.maxLine {\n\t\t\treturn false, p.tooLarge", "\t\tif len(p.line) > p.maxLine && p.pos < 0 {\n\t\t\treturn false, p.tooLarge"},
	{"P15 seed ignored", "TestP15_", "\t\tlastID:   cfg.LastEventID,", "\t\tlastID:   \"\","},
}

// TestRuleTestsCatchMutations applies each mutation to a copy of the package and runs
// the rule's test there, expecting a failure. It compiles the package once per
// mutation (about a minute), so it runs only with EVENTSTREAM_MUTATIONS=1:
//
//	EVENTSTREAM_MUTATIONS=1 go test ./eventstream -run TestRuleTestsCatchMutations -v
//
// EVENTSTREAM_MUTATIONS_ONLY=P15 runs only the mutations whose name contains P15.
func TestRuleTestsCatchMutations(t *testing.T) {
	if os.Getenv("EVENTSTREAM_MUTATIONS") != "1" {
		t.Skip("set EVENTSTREAM_MUTATIONS=1 to run the mutation check (slow: one build per mutation)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go binary on PATH:", err)
	}
	src, err := os.ReadFile("eventstream.go")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	for _, f := range []string{"../go.mod", "../go.sum"} {
		copyFile(t, f, filepath.Join(mod, filepath.Base(f)))
	}
	pkg := filepath.Join(mod, "eventstream")
	files, _ := filepath.Glob("*.go")
	if err := os.MkdirAll(filepath.Join(pkg, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		copyFile(t, f, filepath.Join(pkg, f))
	}
	copyFile(t, "testdata/sse-parse-vectors.json", filepath.Join(pkg, "testdata", "sse-parse-vectors.json"))
	only := os.Getenv("EVENTSTREAM_MUTATIONS_ONLY") // a substring of the names to run, e.g. "P15"
	for _, m := range ruleMutations {
		if only != "" && !strings.Contains(m.name, only) {
			continue
		}
		if !strings.Contains(string(src), m.from) {
			t.Errorf("%s: the code to mutate is gone; update the mutation", m.name)
			continue
		}
		mutated := strings.Replace(string(src), m.from, m.to, 1)
		if err := os.WriteFile(filepath.Join(pkg, "eventstream.go"), []byte(mutated), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(goBin, "test", "-count=1", "-timeout=120s", "-run", m.test, "./eventstream")
		cmd.Dir = mod
		out, err := cmd.CombinedOutput()
		switch {
		case strings.Contains(string(out), "build failed") || strings.Contains(string(out), "setup failed"):
			t.Errorf("%s: mutated code does not build:\n%s", m.name, out)
		case err == nil:
			t.Errorf("%s: %s still passes with the rule broken", m.name, m.test)
		default:
			t.Logf("%s: %s fails as it should", m.name, m.test)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
