package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRunRequestProgressShowsRequests: the live progress line of request-stream counts
// requests (started, completed, failed) and TTFT, not the event streams' counters, which
// a request run leaves at zero. The target is a chat-completion double that streams a
// few tokens slowly, so that the run lasts several progress ticks.
func TestRunRequestProgressShowsRequests(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			fl.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(150 * time.Millisecond):
			}
		}
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	env.StderrIsTerminal = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Main(ctx, []string{"run", "--target", srv.URL, "--metrics-url", "none", "--requests", "8", "--rate", "8", "request-stream"}, env)
	if code != ExitOK && code != ExitFailed {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out.String(), stderr)
	}
	var lines []string
	for _, l := range strings.Split(stderr.String(), "\r\033[K") {
		if strings.HasPrefix(l, "request-stream: ") && !strings.HasSuffix(l, "starting") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no progress line written: %q", stderr)
	}
	last := lines[len(lines)-1]
	t.Logf("last progress line: %s", last)
	for _, want := range []string{"requests ", " started (", " completed  ", " failed  ttft p99 "} {
		if !strings.Contains(last, want) {
			t.Errorf("progress line %q lacks %q", last, want)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "streams ") || strings.Contains(l, "open ") {
			t.Errorf("progress line shows stream counters: %q", l)
		}
	}
}
