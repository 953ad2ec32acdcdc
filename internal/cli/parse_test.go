package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runParseCmd runs `sseharness parse args...` through Main with stdin as input.
func runParseCmd(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &Env{Stdin: stdin, Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	code = Main(context.Background(), append([]string{"parse"}, args...), env)
	return code, out.String(), errOut.String()
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseSample exercises BOM, CRLF and lone CR, comments, unknown fields, id
// persistence, a NUL id, retry, HTML-significant characters and an unfinished block.
const parseSample = "\xEF\xBB\xBFretry: 2500\r\n: hello\r\nid: 1\r\nevent: tick\r\ndata: {\"seq\":1}\r\n\r\n" +
	"data: <b>&\rdata: caf\xC3\xA9\xFF\r\rid: x\x00\nfoo: bar\ndata\n\nretry: 12x\nid:9\ndata: lost"

const parseSampleOut = `{"retry":2500}
{"type":"tick","data":"{\"seq\":1}","id":"1"}
{"type":"message","data":"<b>&\ncafé` + "\uFFFD" + `","id":"1"}
{"type":"message","data":"","id":"1"}
`

func TestParseCommandSample(t *testing.T) {
	path := writeTemp(t, "capture.sse", parseSample)
	code, out, errOut := runParseCmd(t, nil, path)
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if out != parseSampleOut {
		t.Errorf("output:\n%s\nwant:\n%s", out, parseSampleOut)
	}
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not JSON: %s", i+1, line)
		}
	}
}

func TestParseCommandComments(t *testing.T) {
	code, out, _ := runParseCmd(t, strings.NewReader(": ping\n:\ndata:x\n\n"), "--comments")
	want := `{"comment":" ping"}` + "\n" + `{"comment":""}` + "\n" + `{"type":"message","data":"x","id":""}` + "\n"
	if code != ExitOK || out != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
}

func TestParseCommandLastEventIDSeeds(t *testing.T) {
	in := "data:a\n\nid:\ndata:b\n\n"
	code, out, _ := runParseCmd(t, strings.NewReader(in), "--last-event-id", "41")
	want := `{"type":"message","data":"a","id":"41"}` + "\n" + `{"type":"message","data":"b","id":""}` + "\n"
	if code != ExitOK || out != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
	// Without the flag the first event has no id.
	_, out, _ = runParseCmd(t, strings.NewReader(in))
	if !strings.HasPrefix(out, `{"type":"message","data":"a","id":""}`) {
		t.Errorf("no --last-event-id: %s", out)
	}
}

func TestParseCommandStdin(t *testing.T) {
	want := `{"type":"message","data":"x","id":""}` + "\n"
	for _, args := range [][]string{nil, {"-"}} {
		code, out, errOut := runParseCmd(t, strings.NewReader("data: x\n\n"), args...)
		if code != ExitOK || out != want || errOut != "" {
			t.Errorf("args %q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

func TestParseCommandEmptyInputIsOK(t *testing.T) {
	code, out, errOut := runParseCmd(t, strings.NewReader(""))
	if code != ExitOK || out != "" || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runParseCmd(t, nil, writeTemp(t, "empty", ""))
	if code != ExitOK || out != "" {
		t.Errorf("empty file: exit %d, stdout %q", code, out)
	}
}

func TestParseCommandUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"a", "b"},
		{"--max-size", "0"},
		{"--max-size", "-5"},
		{"--max-size", "lots"},
	} {
		code, out, errOut := runParseCmd(t, strings.NewReader("data:x\n\n"), args...)
		if code != ExitUsage || out != "" || errOut == "" {
			t.Errorf("args %q: exit %d (want %d), stdout %q, stderr %q", args, code, ExitUsage, out, errOut)
		}
	}
}

func TestParseCommandHelpNamesEveryFlag(t *testing.T) {
	code, _, errOut := runParseCmd(t, nil, "-h")
	if code != ExitOK {
		t.Fatalf("-h: exit %d", code)
	}
	for _, s := range []string{"-last-event-id", "-max-size", "(default 1048576)", "-comments", "FILE|-"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("help lacks %q:\n%s", s, errOut)
		}
	}
}

func TestParseCommandUnreadableInput(t *testing.T) {
	code, out, errOut := runParseCmd(t, nil, filepath.Join(t.TempDir(), "missing.sse"))
	if code != ExitHarness || out != "" || !strings.Contains(errOut, "missing.sse") {
		t.Errorf("missing file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = runParseCmd(t, nil, t.TempDir())
	if code != ExitHarness || !strings.Contains(errOut, "is a directory") {
		t.Errorf("directory: exit %d, stderr %q", code, errOut)
	}
	// A read error after some events: those events are still written.
	in := io.MultiReader(strings.NewReader("data:1\n\n"), iotestErrReader{})
	code, out, errOut = runParseCmd(t, in)
	if code != ExitHarness || out != `{"type":"message","data":"1","id":""}`+"\n" || !strings.Contains(errOut, "connection reset") {
		t.Errorf("read error: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// iotestErrReader fails every read as a dropped connection does.
type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) {
	return 0, errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer")
}

func TestParseCommandLimitExceeded(t *testing.T) {
	in := "data:ok\n\ndata:" + strings.Repeat("x", 20) + "\n\ndata:never\n\n"
	code, out, errOut := runParseCmd(t, strings.NewReader(in), "--max-size", "16")
	if code != ExitHarness {
		t.Errorf("exit %d, want %d", code, ExitHarness)
	}
	if out != `{"type":"message","data":"ok","id":""}`+"\n" {
		t.Errorf("stdout %q: want the event before the limit only", out)
	}
	if !strings.Contains(errOut, "line longer than 16 bytes") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("stderr %q: want one line naming the limit", errOut)
	}
	// Within the limit the same bytes parse fine.
	if code, _, _ := runParseCmd(t, strings.NewReader(in), "--max-size", "25"); code != ExitOK {
		t.Errorf("--max-size 25: exit %d", code)
	}
}

func TestParseCommandInterrupted(t *testing.T) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	env := &Env{Stdin: pr, Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"parse"}, env) }()
	if _, err := pw.Write([]byte("data:1\n\n")); err != nil { // returns once the parser has read it
		t.Fatal(err)
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitHarness || !strings.Contains(errOut.String(), "interrupted") {
			t.Errorf("exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("parse did not return after its context ended while stdin blocked")
	}
}

// TestParseCommandVectors runs every shared parse vector through the command.
func TestParseCommandVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "eventstream", "testdata", "sse-parse-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf struct {
		Vectors []struct {
			Name           string `json:"name"`
			StreamB64      string `json:"stream_b64"`
			InitialID      string `json:"initial_last_event_id"`
			ExpectedEvents []struct {
				Type        string `json:"type"`
				Data        string `json:"data"`
				LastEventID string `json:"lastEventId"`
			} `json:"expected_events"`
			ExpectedRetryMS *int64 `json:"expected_reconnection_time_ms"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	for _, v := range vf.Vectors {
		body, err := base64.StdEncoding.DecodeString(v.StreamB64)
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runParseCmd(t, bytes.NewReader(body), "--last-event-id", v.InitialID)
		if code != ExitOK {
			t.Errorf("%s: exit %d, stderr %q", v.Name, code, errOut)
			continue
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		for _, e := range v.ExpectedEvents {
			_ = enc.Encode(parsedEvent{Type: e.Type, Data: e.Data, ID: e.LastEventID})
		}
		var events []string
		var lastRetry *int64
		for _, line := range strings.SplitAfter(out, "\n") {
			var r parsedRetry
			if strings.HasPrefix(line, `{"retry":`) && json.Unmarshal([]byte(line), &r) == nil {
				lastRetry = &r.Retry
				continue
			}
			events = append(events, line)
		}
		if got := strings.Join(events, ""); got != want.String() {
			t.Errorf("%s: events\n%s\nwant\n%s", v.Name, got, want.String())
		}
		if (lastRetry == nil) != (v.ExpectedRetryMS == nil) || (lastRetry != nil && *lastRetry != *v.ExpectedRetryMS) {
			t.Errorf("%s: retry %v, want %v", v.Name, lastRetry, v.ExpectedRetryMS)
		}
	}
}
