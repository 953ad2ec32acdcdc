package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

func targetFlagSet(t *testing.T) (*flag.FlagSet, *targetFlags, *string, *headerFlag) {
	t.Helper()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	stream := fs.String("stream-url", defaultStreamTemplate, "")
	var headers headerFlag
	fs.Var(&headers, "header", "")
	tf := addTargetFlags(fs)
	for _, k := range targetFileKeys { // run's other flags a target file may set
		if fs.Lookup(k) == nil {
			fs.String(k, "", "")
		}
	}
	return fs, tf, stream, &headers
}

// TestTargetFileSetsFlagsAndFlagsWin: every key is the flag of the same name; a flag
// given on the command line wins over the file.
func TestTargetFileSetsFlagsAndFlagsWin(t *testing.T) {
	fs, tf, stream, headers := targetFlagSet(t)
	if err := fs.Parse([]string{"--sent-unit", "ns"}); err != nil {
		t.Fatal(err)
	}
	doc := `
stream-url: "{target}/feed"
header:
  - "Authorization: Bearer x"
sent-field: meta.sent_at
sent-unit: ms
publish-url: "{target}/publish"
publish-header:
  X-Hub: one
publish-rate: 300/m
min-reconnect: 250ms
accept-encoding: identity
`
	if err := applyTargetFile(fs, "t.yaml", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	d := tf.description("http://127.0.0.1:9")
	if auth := http.Header(*headers).Get("Authorization"); *stream != "{target}/feed" || auth != "Bearer x" {
		t.Errorf("stream %q, header %q", *stream, auth)
	}
	if d.SentField != "meta.sent_at" || d.SentUnit != runner.SentUnit("ns") {
		t.Errorf("sent field %q unit %q: want meta.sent_at and the flag's ns", d.SentField, d.SentUnit)
	}
	if d.Publish.URL != "http://127.0.0.1:9/publish" || d.Publish.Rate != 5 || d.Publish.Header.Get("X-Hub") != "one" {
		t.Errorf("publish %+v", d.Publish)
	}
	if d.MinReconnect != 250*time.Millisecond || d.AcceptEncoding != "identity" {
		t.Errorf("min reconnect %v, accept encoding %q", d.MinReconnect, d.AcceptEncoding)
	}
}

// TestTargetFileRejectsEveryProblemWithItsLine: unknown keys, a key twice and a bad
// value are reported at once, each with its line.
func TestTargetFileRejectsEveryProblemWithItsLine(t *testing.T) {
	fs, _, _, _ := targetFlagSet(t)
	doc := "stream-url: \"{target}/x\"\nstrem-url: y\npublish-rate: fast\nstream-url: z\n"
	err := applyTargetFile(fs, "t.yaml", []byte(doc))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`line 2: unknown key "strem-url"`, `line 3: publish-rate "fast"`, "line 4: stream-url given twice (first on line 1)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "map[") {
		t.Errorf("error shows Go map syntax: %v", err)
	}
}

// TestRunTargetFileErrorsAreUsage: through Main, a bad target file or a bad sent unit
// is exit 2 with one line.
func TestRunTargetFileErrorsAreUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(bad, []byte("target: http://127.0.0.1:1\nsent-fild: ts\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"run", "--target-file", bad, "hold"},
		{"run", "--target", "http://127.0.0.1:1", "--sent-unit", "minutes", "hold"},
		{"run", "--target", "http://127.0.0.1:1", "--publish-url", "ftp://x", "hold"},
	} {
		var stdout bytes.Buffer
		env, stderr := serveTestEnv(&stdout)
		code := Main(context.Background(), args, env)
		if code != ExitUsage || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 with one line", args, code, stderr.String())
		}
	}
}

// TestRunTargetFileDescribesABroadcastFeed: a target file alone describes a broadcast
// feed with a ts field; the result records the description.
func TestRunTargetFileDescribesABroadcastFeed(t *testing.T) {
	t.Parallel()
	srv := newFeed(t, feedOpts{tick: 100 * time.Millisecond})
	dir := t.TempDir()
	file := filepath.Join(dir, "feed.yaml")
	doc := "target: " + srv.URL + "\nstream-url: \"{target}/events\"\nprogress-url: none\nmetrics-url: none\nsent-field: ts\nsent-unit: ms\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "r.json")
	var stdout bytes.Buffer
	env, stderr := serveTestEnv(&stdout)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := Main(ctx, []string{"run", "--target-file", file, "--streams", "3", "--hold", "1s", "--out", out, "hold"}, env)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	res, err := report.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scenarios[0].Metrics.Latency.Count == 0 {
		t.Errorf("no latency from ts")
	}
}
