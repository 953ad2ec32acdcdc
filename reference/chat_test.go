package reference_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

// chatConfig is a fast chat configuration: first token after 10ms, then one every 2ms.
func chatConfig(faults string) reference.Config {
	cfg := testConfig()
	cfg.FirstTokenDelay = 10 * time.Millisecond
	cfg.TokenInterval = 2 * time.Millisecond
	f, err := reference.ParseFaults(faults)
	if err != nil {
		panic(err)
	}
	cfg.Faults = f
	return cfg
}

// chatReply is what a client saw of one chat completion.
type chatReply struct {
	Status      int
	ContentType string
	Start       time.Time     // when the request was sent
	Head        time.Duration // request sent -> response head
	Data        []string      // data of each event, in order
	Arrived     []time.Duration
	Body        string // the whole body when the status is not 200
}

// content returns the content deltas of the chunks, and the usage of the final one.
func (c chatReply) content(t *testing.T) (contents []string, completionTokens int) {
	t.Helper()
	completionTokens = -1
	for _, d := range c.Data {
		if d == "[DONE]" {
			continue
		}
		var ch struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(d), &ch); err != nil {
			t.Fatalf("chunk %q: %v", d, err)
		}
		if ch.Object != "chat.completion.chunk" || len(ch.Choices) != 1 {
			t.Fatalf("chunk %q is not a chat.completion.chunk with one choice", d)
		}
		if ch.Usage != nil {
			completionTokens = ch.Usage.CompletionTokens
		}
		if ch.Choices[0].Delta.Content != "" {
			contents = append(contents, ch.Choices[0].Delta.Content)
		}
	}
	return contents, completionTokens
}

func (c chatReply) done() bool { return len(c.Data) > 0 && c.Data[len(c.Data)-1] == "[DONE]" }

const chatBody = `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}`

func chatBodyN(n int) string { return strings.Replace(chatBody, "%d", strconv.Itoa(n), 1) }

// chat posts body and reads the whole reply, with deadline wait.
func chat(t *testing.T, base, body string) chatReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	c := chatReply{Start: start, Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Head: time.Since(start)}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		c.Body = string(b)
		return c
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			c.Data = append(c.Data, d)
			c.Arrived = append(c.Arrived, time.Since(start))
		} else if line != "" {
			t.Fatalf("unexpected line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return c
}

func TestChatStreamsMaxTokensChunksThenDone(t *testing.T) {
	t.Parallel()
	base := startServer(t, chatConfig(""))
	c := chat(t, base, chatBodyN(3))
	if c.Status != 200 || c.ContentType != "text/event-stream; charset=utf-8" {
		t.Fatalf("status %d, content type %q", c.Status, c.ContentType)
	}
	contents, usage := c.content(t)
	if len(contents) != 3 || usage != 3 || !c.done() || len(c.Data) != 5 {
		t.Fatalf("contents %q, usage %d, data %q: want 3 content chunks, usage 3, a final chunk, [DONE]", contents, usage, c.Data)
	}
	if c.Arrived[0] < 10*time.Millisecond {
		t.Errorf("first token after %v, before the 10ms first-token delay", c.Arrived[0])
	}
	// Token i is due at first-token delay + i intervals (a late one makes the next gap
	// shorter, never the schedule earlier).
	if c.Arrived[2] < 14*time.Millisecond {
		t.Errorf("third token after %v, before 10ms + 2 x 2ms", c.Arrived[2])
	}
	// Without max_tokens: the default 16.
	c = chat(t, base, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	if contents, usage := c.content(t); len(contents) != 16 || usage != 16 {
		t.Fatalf("default max_tokens: %d chunks, usage %d, want 16", len(contents), usage)
	}
}

func TestChatRejectsBadRequestsWithOneLineJSONError(t *testing.T) {
	t.Parallel()
	base := startServer(t, chatConfig(""))
	for _, tc := range []struct{ body, want string }{
		{`{"model":`, "not a JSON object"},
		{`[1,2]`, "not a JSON object"},
		{`{"model":"m"} {}`, "after its JSON object"},
		{`{"messages":[{"role":"user"}],"stream":true}`, "model"},
		{`{"model":"m","stream":true}`, "messages"},
		{`{"model":"m","messages":[],"stream":true}`, "messages"},
		{`{"model":"m","messages":["x"],"stream":true}`, "messages[0]"},
		{`{"model":"m","messages":[{"role":"user"}]}`, "streaming"},
		{`{"model":"m","messages":[{"role":"user"}],"stream":false}`, "streaming"},
		{`{"model":"m","messages":[{"role":"user"}],"stream":true,"max_tokens":0}`, "max_tokens"},
		{`{"model":"m","messages":[{"role":"user"}],"stream":true,"max_tokens":100000}`, "max_tokens"},
		{`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<20) + `"}],"stream":true}`, "KiB"},
	} {
		c := chat(t, base, tc.body)
		wantStatus := http.StatusBadRequest
		if tc.want == "KiB" {
			wantStatus = http.StatusRequestEntityTooLarge
			tc.body = tc.body[:40] + "..."
		}
		if c.Status != wantStatus {
			t.Errorf("%s: status %d, want %d", tc.body, c.Status, wantStatus)
			continue
		}
		var e struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(c.Body), &e); err != nil || c.ContentType != "application/json" {
			t.Errorf("%s: body %q (%s) is not a JSON error: %v", tc.body, c.Body, c.ContentType, err)
			continue
		}
		if !strings.Contains(e.Error.Message, tc.want) || strings.Contains(e.Error.Message, "\n") || e.Error.Type != "invalid_request_error" {
			t.Errorf("%s: error %+v, want one line naming %q", tc.body, e.Error, tc.want)
		}
	}
}

func TestFaultTokenBatchWritesSeveralTokensPerChunk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault  string
		chunks int
	}{{"", 5}, {"token-batch=2", 3}} {
		base := startServer(t, chatConfig(tc.fault))
		c := chat(t, base, chatBodyN(5))
		contents, usage := c.content(t)
		if len(contents) != tc.chunks || usage != 5 || !c.done() {
			t.Errorf("fault %q: %d content chunks %q, usage %d, done %v; want %d chunks, usage 5, done", tc.fault, len(contents), contents, usage, c.done(), tc.chunks)
		}
		if got := strings.Join(contents, ""); got != "tok0 tok1 tok2 tok3 tok4 " {
			t.Errorf("fault %q: content %q, want the 5 tokens", tc.fault, got)
		}
	}
}

func TestFaultNoDoneEndsWithoutDone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault string
		done  bool
	}{{"", true}, {"no-done", false}} {
		c := chat(t, startServer(t, chatConfig(tc.fault)), chatBodyN(2))
		contents, usage := c.content(t)
		if c.done() != tc.done || len(contents) != 2 || usage != 2 {
			t.Errorf("fault %q: data %q: done %v, want %v (with 2 tokens and usage)", tc.fault, c.Data, c.done(), tc.done)
		}
	}
}

func TestFaultStreamErrorFailsExactlyThatShareInsideA200(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault string
		fails []bool
	}{
		{"", []bool{false, false, false, false}},
		{"stream-error=50", []bool{false, true, false, true}},
		{"stream-error=100", []bool{true, true, true, true}},
	} {
		base := startServer(t, chatConfig(tc.fault))
		for i, want := range tc.fails {
			c := chat(t, base, chatBodyN(4))
			if c.Status != 200 {
				t.Fatalf("fault %q request %d: status %d, want 200", tc.fault, i+1, c.Status)
			}
			last := c.Data[len(c.Data)-1]
			failed := strings.HasPrefix(last, `{"error":{`)
			if failed != want {
				t.Errorf("fault %q request %d: last data %q, failed %v, want %v", tc.fault, i+1, last, failed, want)
			}
			if failed && (len(c.Data) != 3 || c.done()) {
				t.Errorf("fault %q request %d: data %q, want 2 tokens then the error and the end", tc.fault, i+1, c.Data)
			}
		}
	}
}

func TestFaultGenSlotsQueuesGenerations(t *testing.T) {
	t.Parallel()
	// 3 requests at once, each 20 tokens 10ms apart (about 200ms of generation).
	for _, tc := range []struct {
		fault  string
		queued bool
	}{{"", false}, {"gen-slots=1", true}} {
		cfg := chatConfig(tc.fault)
		cfg.TokenInterval = 10 * time.Millisecond
		base := startServer(t, cfg)
		var wg sync.WaitGroup
		replies := make([]chatReply, 3)
		start := time.Now()
		for i := range replies {
			wg.Go(func() { replies[i] = chat(t, base, chatBodyN(20)) })
		}
		wg.Wait()
		// With one slot the generations run one after another: the last first token
		// comes after two whole generations (2 x (10ms + 19 x 10ms)).
		var lastFirst time.Duration
		firstDone := time.Hour
		for i, c := range replies {
			if !c.done() {
				t.Fatalf("fault %q: request %d did not finish: %q", tc.fault, i, c.Data)
			}
			at := c.Start.Sub(start)
			lastFirst = max(lastFirst, at+c.Arrived[0])
			firstDone = min(firstDone, at+c.Arrived[len(c.Arrived)-1])
		}
		if tc.queued && lastFirst < 400*time.Millisecond {
			t.Errorf("fault %q: last first token after %v, want after 2 generations (400ms)", tc.fault, lastFirst)
		}
		if !tc.queued && lastFirst >= firstDone {
			t.Errorf("fault %q: last first token after %v, not before the first generation ended (%v)", tc.fault, lastFirst, firstDone)
		}
	}
}

func TestFaultLateHeadSendsTheHeadWithTheFirstToken(t *testing.T) {
	t.Parallel()
	// Correct: the head comes at once, long before a first token due in 10 minutes.
	cfg := chatConfig("")
	cfg.FirstTokenDelay = 10 * time.Minute
	base := startServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(chatBodyN(1)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("correct server: no response head before the first token: %v", err)
	}
	resp.Body.Close()
	cancel()

	// late-head: the head waits for the first token (after 150ms).
	cfg = chatConfig("late-head")
	cfg.FirstTokenDelay = 150 * time.Millisecond
	c := chat(t, startServer(t, cfg), chatBodyN(2))
	if c.Status != 200 || !c.done() {
		t.Fatalf("late-head: status %d, data %q", c.Status, c.Data)
	}
	if c.Head < 150*time.Millisecond {
		t.Errorf("late-head: head after %v, want only with the first token (150ms)", c.Head)
	}
}

func TestParseChatFaults(t *testing.T) {
	t.Parallel()
	f, err := reference.ParseFaults("token-batch=4,no-done,stream-error=10,gen-slots=2,late-head")
	if err != nil || f.TokenBatch != 4 || !f.NoDone || f.StreamError != 10 || f.GenSlots != 2 || !f.LateHead {
		t.Fatalf("ParseFaults = %+v, %v", f, err)
	}
	if got := f.String(); got != "late-head,no-done,token-batch=4,stream-error=10,gen-slots=2" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []string{"token-batch=0", "stream-error=101", "stream-error=x", "gen-slots=-1"} {
		if _, err := reference.ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
	known := strings.Join(reference.KnownFaults(), ",")
	for _, want := range []string{"token-batch=N", "no-done", "stream-error=P", "gen-slots=N", "late-head"} {
		if !strings.Contains(known, want) {
			t.Errorf("KnownFaults %s lacks %s", known, want)
		}
	}
}

func TestChatStreamsEndAtShutdown(t *testing.T) {
	t.Parallel()
	// One generation waits for a first token due in 10 minutes, one queues behind it.
	cfg := chatConfig("gen-slots=1")
	cfg.FirstTokenDelay = 10 * time.Minute
	srv, err := reference.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	ended := make(chan error, 2)
	for range 2 {
		resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBodyN(1)))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			ended <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range 2 {
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("body: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("a chat stream did not end at shutdown")
		}
	}
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBodyN(1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after shutdown: status %d, want 503", resp.StatusCode)
	}
}
