package scenarios_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// knee is the highest rate of request-capacity's steps, in order, up to which every
// step's goodput (from the merged-exact group figures) reached target; 0 for none.
func knee(t *testing.T, s report.ScenarioResult, target float64) float64 {
	t.Helper()
	k := 0.0
	for _, g := range s.Groups {
		rate, ok := strings.CutPrefix(g.Name, "rate-")
		if !ok || g.Metrics.Requests == nil {
			continue
		}
		gp, ok := g.Metrics.Requests.Goodput()
		if !ok || gp < target {
			break
		}
		r, err := strconv.ParseFloat(rate, 64)
		if err != nil {
			t.Fatalf("group %s: %v", g.Name, err)
		}
		k = r
	}
	return k
}

// TestRequestCapacityKneeFallsWithGenSlots: with only two generations at once the
// goodput knee is at a lower rate than against the plain reference server.
func TestRequestCapacityKneeFallsWithGenSlots(t *testing.T) {
	args := []string{"--rate", "2,4,8,16", "--duration", "3s", "request-capacity"}
	code, out, plain := run(t, 2*time.Minute, args...)
	if code != 0 {
		t.Fatalf("plain: exit %d\n%s", code, out)
	}
	code, out, slots := run(t, 2*time.Minute, append([]string{"--fault", "gen-slots=2"}, args...)...)
	if code != 0 {
		t.Fatalf("gen-slots=2: exit %d, want 0 (the first step is sustained)\n%s", code, out)
	}
	kp := knee(t, scenario(t, plain, "request-capacity"), 0.9)
	ks := knee(t, scenario(t, slots, "request-capacity"), 0.9)
	t.Logf("knee %g/s plain, %g/s with gen-slots=2", kp, ks)
	if ks <= 0 || ks >= kp {
		t.Errorf("knee with gen-slots=2 is %g/s, plain %g/s: want a lower, non-zero knee", ks, kp)
	}
	if !strings.Contains(out, fmt.Sprintf("knee: %g requests/s", ks)) {
		t.Errorf("the compact output does not state the knee %g/s:\n%s", ks, out)
	}
}

// anthropicDouble answers POST /v1/messages like Anthropic's streaming Messages API:
// named events, text in content_block_delta's delta.text, the token count in
// message_delta's usage.output_tokens, the end at message_stop; with failEvery > 0,
// every failEvery-th request gets an error event instead of its end.
func anthropicDouble(t *testing.T, failEvery int) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
			http.Error(w, "want POST /v1/messages", http.StatusNotFound)
			return
		}
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		send := func(typ, data string) {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data)
			fl.Flush()
		}
		send("message_start", `{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":5,"output_tokens":1}}}`)
		send("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		for i := range 5 {
			time.Sleep(5 * time.Millisecond)
			send("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"w%d "}}`, i))
		}
		if failEvery > 0 && k%failEvery == 0 {
			send("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
			return
		}
		send("content_block_stop", `{"type":"content_block_stop","index":0}`)
		send("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}`)
		send("message_stop", `{"type":"message_stop"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRequestStreamAgainstAnAnthropicStyleAPI: the same scenario judges a target of
// another dialect by its flags: named terminal event, content and usage paths.
func TestRequestStreamAgainstAnAnthropicStyleAPI(t *testing.T) {
	args := func(url string) []string {
		return []string{"--target", url, "--metrics-url", "none", "--request-url", "{target}/v1/messages",
			"--body", `{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			"--end-event", "message_stop", "--content-path", "delta.text", "--usage-path", "usage.output_tokens",
			"--rate", "20", "--requests", "20", "request-stream"}
	}
	code, out, res := run(t, time.Minute, args(anthropicDouble(t, 0).URL)...)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	s := scenario(t, res, "request-stream")
	if r := s.Metrics.Requests; r == nil || r.Ends["terminated"] != 20 || r.ContentEvents != 100 || r.UsageTokens != 100 {
		t.Errorf("requests %+v: want 20 terminated with 5 content events and 5 tokens each", r)
	}
	code, out, res = run(t, time.Minute, args(anthropicDouble(t, 4).URL)...)
	if code != 1 {
		t.Fatalf("with error events: exit %d, want 1\n%s", code, out)
	}
	if c := check(t, scenario(t, res, "request-stream"), "no-error-events"); c.Verdict != report.VerdictFail || c.Measured != "5" {
		t.Errorf("no-error-events: %s (%s), want fail with 5", c.Verdict, c.Measured)
	}
	// The same API described in a target file: only the load stays on the command line.
	file := filepath.Join(t.TempDir(), "messages.yaml")
	doc := "target: " + anthropicDouble(t, 0).URL + `
metrics-url: none
request-url: "{target}/v1/messages"
method: POST
body: '{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
end-event: message_stop
content-path: delta.text
usage-path: usage.output_tokens
`
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, res = run(t, time.Minute, "--target-file", file, "--rate", "20", "--requests", "20", "request-stream")
	if code != 0 {
		t.Fatalf("from a target file: exit %d, want 0\n%s", code, out)
	}
	if r := scenario(t, res, "request-stream").Metrics.Requests; r == nil || r.Ends["terminated"] != 20 || r.ContentEvents != 100 || r.UsageTokens != 100 {
		t.Errorf("from a target file: requests %+v: want 20 terminated with 5 content events and 5 tokens each", r)
	}
}
