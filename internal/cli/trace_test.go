package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// traceRun runs a 5-stream hold against a correct double with --trace and returns the
// decoded lines and stderr.
func traceRun(t *testing.T, extra ...string) ([]traceLine, string) {
	t.Helper()
	srv := httptest.NewServer(timedEvents())
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "trace.jsonl")
	var stdout bytes.Buffer
	env, stderr := serveTestEnv(&stdout)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"run", "--target", srv.URL, "--stream-url", "{target}/x?s={session}",
		"--progress-url", "none", "--metrics-url", "none", "--streams", "5", "--hold", "1s",
		"--out", filepath.Join(dir, "r.json"), "--trace", path}, extra...)
	if code := Main(ctx, append(args, "hold"), env); code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []traceLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var l traceLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %d %q: %v", len(lines)+1, sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines, stderr.String()
}

func TestTraceOneLinePerAttempt(t *testing.T) {
	t.Parallel()
	lines, _ := traceRun(t)
	if len(lines) != 5 {
		t.Fatalf("%d lines for 5 streams: %+v", len(lines), lines)
	}
	streams := map[int]bool{}
	for _, l := range lines {
		streams[l.Stream] = true
		first, _ := strconv.Atoi(l.FirstID)
		last, _ := strconv.Atoi(l.LastID)
		if l.Scenario != "hold" || l.Session == "" || l.Status != 200 || l.Proto != "HTTP/1.1" ||
			l.Events < 2 || first < 1 || last-first+1 != int(l.Events) || l.Reason != "stopped" ||
			l.Error != "" || !l.Close.After(l.Open) {
			t.Errorf("line %+v", l)
		}
	}
	if len(streams) != 5 {
		t.Errorf("streams traced: %v", streams)
	}
}

func TestTraceLimit(t *testing.T) {
	t.Parallel()
	lines, stderr := traceRun(t, "--trace-limit", "3")
	if len(lines) != 3 {
		t.Fatalf("%d lines with --trace-limit 3", len(lines))
	}
	if !strings.Contains(stderr, "3 attempts written") || !strings.Contains(stderr, "2 more beyond --trace-limit 3") {
		t.Errorf("stderr does not say what was left out:\n%s", stderr)
	}
}
