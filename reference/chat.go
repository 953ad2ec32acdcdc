package reference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxChatTokens is the largest max_tokens accepted, so that one request stays bounded.
const maxChatTokens = 4096

// maxChatBody is the largest chat request body accepted: prompts can be long.
const maxChatBody = 1 << 20

// defaultChatTokens is max_tokens when a request leaves it out (OpenAI's old default).
const defaultChatTokens = 16

// chatRequest is the subset of an OpenAI chat completion request the server reads;
// other fields (temperature, ...) are accepted and ignored.
type chatRequest struct {
	Model     *string           `json:"model"`
	Messages  []json.RawMessage `json:"messages"`
	Stream    *bool             `json:"stream"`
	MaxTokens *int              `json:"max_tokens"`
}

// chatMessage is what each message must have.
type chatMessage struct {
	Role *string `json:"role"`
}

// chatState is the chat endpoint's share of a Server.
type chatState struct {
	requests atomic.Uint64 // chat requests accepted, numbered from 1
}

// chatPolicy is what the chat faults change in a generation. Its functions and slots are
// safe for concurrent use.
type chatPolicy struct {
	// openHead runs before a generation waits for its slot: it sends the head, or
	// leaves it to the first chunk (late-head: leaveChatHead). false: the client is gone.
	openHead func(g *generation) bool
	// slots admits generations; gen-slots=N: a chatSlotLimit of N.
	slots genSlots
	// chunk is the number of tokens per content chunk: 1; token-batch=N: N.
	chunk int
	// plan says how request n (from 1) of tokens tokens ends: after how many tokens, and
	// with what. no-done: allTokens(endWithoutDone); stream-error=P: failSome.
	plan func(n uint64, tokens int) (emit int, end chatEnd)
}

// newChatPolicy chooses the chat policy f asks for.
func newChatPolicy(f Faults) chatPolicy {
	c := chatPolicy{
		openHead: (*generation).flushHead,
		slots:    unlimitedSlots{},
		chunk:    1,
		plan:     allTokens(endWithDone),
	}
	if f.LateHead {
		c.openHead = leaveChatHead
	}
	if f.GenSlots > 0 {
		c.slots = make(chatSlotLimit, f.GenSlots)
	}
	if f.TokenBatch > 0 {
		c.chunk = f.TokenBatch
	}
	if f.NoDone {
		c.plan = allTokens(endWithoutDone)
	}
	if f.StreamError > 0 {
		c.plan = failSome(f.StreamError, c.plan)
	}
	return c
}

// leaveChatHead is fault late-head for a chat completion: the head is written only with
// the first chunk, so a client sees nothing while the generation queues or thinks.
func leaveChatHead(*generation) bool { return true }

// genSlots admits generations. acquire blocks until the generation may run, or until
// ctx is done or shutdown closed (ok false); release, called once, frees its place.
type genSlots interface {
	acquire(ctx context.Context, shutdown <-chan struct{}) (release func(), ok bool)
}

var (
	_ genSlots = unlimitedSlots{}
	_ genSlots = chatSlotLimit(nil)
)

// unlimitedSlots is the correct server: every generation starts at once.
type unlimitedSlots struct{}

func (unlimitedSlots) acquire(context.Context, <-chan struct{}) (func(), bool) {
	return func() {}, true
}

// chatSlotLimit is fault gen-slots=N: a token per running generation, so the rest queue
// (with their head sent) and time to first token grows with load.
type chatSlotLimit chan struct{}

func (l chatSlotLimit) acquire(ctx context.Context, shutdown <-chan struct{}) (func(), bool) {
	select {
	case l <- struct{}{}:
		return func() { <-l }, true
	case <-ctx.Done():
		return nil, false
	case <-shutdown:
		return nil, false
	}
}

// chatEnd writes the end of a generation's stream.
type chatEnd func(g *generation)

// allTokens is the correct plan: every token, then end.
func allTokens(end chatEnd) func(n uint64, tokens int) (int, chatEnd) {
	return func(_ uint64, tokens int) (int, chatEnd) { return tokens, end }
}

// failSome is fault stream-error=P over plan: the requests failsAt picks end halfway
// through with an error event inside the 200 (failMidway); the others follow plan.
func failSome(percent int, plan func(n uint64, tokens int) (int, chatEnd)) func(n uint64, tokens int) (int, chatEnd) {
	return func(n uint64, tokens int) (int, chatEnd) {
		if failsAt(n, percent) {
			return tokens / 2, failMidway
		}
		return plan(n, tokens)
	}
}

// endWithDone is the correct end: the usage chunk, then `data: [DONE]`.
func endWithDone(g *generation) {
	g.buf.Reset()
	g.chunk(false, "", "length", g.tokens)
	g.buf.WriteString("data: [DONE]\n\n")
	g.send()
}

// endWithoutDone is fault no-done: the usage chunk, and the stream ends without its
// terminal `data: [DONE]`.
func endWithoutDone(g *generation) {
	g.buf.Reset()
	g.chunk(false, "", "length", g.tokens)
	g.send()
}

// failMidway is fault stream-error's end: an error event, and the stream ends.
func failMidway(g *generation) {
	g.buf.Reset()
	g.buf.WriteString(`data: {"error":{"message":"generation failed (fault stream-error)","type":"server_error","param":null,"code":"stream_error"}}` + "\n\n")
	g.send()
}

// chatError answers status with an OpenAI-style error body holding a one-line message.
func chatError(w http.ResponseWriter, status int, typ, format string, args ...any) {
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil},
	})
}

// parseChatRequest validates a request body and returns the model and token count.
func parseChatRequest(body []byte) (model string, tokens int, err error) {
	var req chatRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return "", 0, fmt.Errorf("body is not a JSON object: %v", err)
	}
	if dec.More() {
		return "", 0, fmt.Errorf("body has data after its JSON object")
	}
	switch {
	case req.Model == nil || *req.Model == "":
		return "", 0, fmt.Errorf("missing required field model")
	case len(req.Messages) == 0:
		return "", 0, fmt.Errorf("missing required field messages (a non-empty array)")
	case req.Stream == nil || !*req.Stream:
		return "", 0, fmt.Errorf("only streaming is supported: set \"stream\": true")
	}
	for i, raw := range req.Messages {
		var m chatMessage
		if json.Unmarshal(raw, &m) != nil || m.Role == nil || *m.Role == "" {
			return "", 0, fmt.Errorf("messages[%d] must be an object with a role", i)
		}
	}
	tokens = defaultChatTokens
	if req.MaxTokens != nil {
		tokens = *req.MaxTokens
		if tokens < 1 || tokens > maxChatTokens {
			return "", 0, fmt.Errorf("max_tokens must be from 1 to %d, got %d", maxChatTokens, tokens)
		}
	}
	return *req.Model, tokens, nil
}

// serveChatCompletions is POST /v1/chat/completions: a streaming chat completion of
// max_tokens tokens, one chunk each, then a usage chunk and `data: [DONE]`.
func (s *Server) serveChatCompletions(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChatBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			chatError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body over %d KiB", maxChatBody>>10)
		} else {
			chatError(w, http.StatusBadRequest, "invalid_request_error", "reading body: %v", err)
		}
		return
	}
	model, tokens, err := parseChatRequest(body)
	if err != nil {
		chatError(w, http.StatusBadRequest, "invalid_request_error", "%v", err)
		return
	}
	if s.shuttingDown() {
		s.unavailable(w, "server shutting down")
		return
	}
	n := s.chat.requests.Add(1)
	emit, end := s.policy.chat.plan(n, tokens)
	g := &generation{
		srv: s, w: w, rc: http.NewResponseController(w), r: r,
		id:     "chatcmpl-" + strconv.FormatUint(n, 10),
		model:  model,
		tokens: tokens,
		emit:   emit,
		end:    end,
	}
	g.run()
}

// failsAt reports whether request n (from 1) is one of the percent that fault
// stream-error=P fails: exactly floor(n*P/100) of the first n requests fail.
func failsAt(n uint64, percent int) bool {
	p := uint64(percent)
	return p > 0 && n*p/100 > (n-1)*p/100
}

// generation is one streaming chat completion in progress.
type generation struct {
	srv    *Server
	w      http.ResponseWriter
	rc     *http.ResponseController
	r      *http.Request
	id     string
	model  string
	tokens int     // max_tokens
	emit   int     // tokens written before end (fewer than tokens under stream-error)
	end    chatEnd // what the stream ends with

	headSent bool
	created  int64
	buf      bytes.Buffer
}

// run streams the generation: the head, a slot, g.emit tokens in chunks of the chat
// policy's size, then g.end. It returns early when the client goes or the server shuts
// down.
func (g *generation) run() {
	c := g.srv.policy.chat
	g.created = time.Now().Unix()
	h := g.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if !c.openHead(g) {
		return
	}
	release, ok := c.slots.acquire(g.r.Context(), g.srv.shutdownCh)
	if !ok {
		return
	}
	defer release()
	start := time.Now().Add(g.srv.cfg.FirstTokenDelay)
	var pending strings.Builder
	first := true
	for i := range g.emit {
		if !g.waitUntil(start.Add(time.Duration(i) * g.srv.cfg.TokenInterval)) {
			return
		}
		pending.WriteString(tokenText(i))
		if (i+1)%c.chunk != 0 && i+1 < g.tokens {
			continue
		}
		g.buf.Reset()
		g.chunk(first, pending.String(), "", 0)
		first = false
		pending.Reset()
		if !g.send() {
			return
		}
	}
	g.end(g)
}

// tokenText is the content of token i: a short word and a space.
func tokenText(i int) string {
	return "tok" + strconv.Itoa(i) + " "
}

// chunk appends one `data:` chunk: content (the first one with the role), or, when
// finish is set, the final chunk with the usage.
func (g *generation) chunk(first bool, content, finish string, usage int) {
	type delta struct {
		Role    string `json:"role,omitempty"`
		Content string `json:"content,omitempty"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Delta        delta   `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	}
	type usageField struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	c := struct {
		ID      string      `json:"id"`
		Object  string      `json:"object"`
		Created int64       `json:"created"`
		Model   string      `json:"model"`
		Choices []choice    `json:"choices"`
		Usage   *usageField `json:"usage,omitempty"`
	}{ID: g.id, Object: "chat.completion.chunk", Created: g.created, Model: g.model}
	ch := choice{Delta: delta{Content: content}}
	if first {
		ch.Delta.Role = "assistant"
	}
	if finish != "" {
		ch.FinishReason = &finish
		c.Usage = &usageField{CompletionTokens: usage, TotalTokens: usage}
	}
	c.Choices = []choice{ch}
	js, err := json.Marshal(c)
	if err != nil { // only strings and numbers
		panic(err)
	}
	g.buf.WriteString("data: ")
	g.buf.Write(js)
	g.buf.WriteString("\n\n")
}

// flushHead writes the response head now.
func (g *generation) flushHead() bool {
	g.headSent = true
	g.w.WriteHeader(http.StatusOK)
	return g.rc.Flush() == nil
}

// send writes and flushes g.buf (with the head first, under fault late-head); false
// means the client is gone.
func (g *generation) send() bool {
	if wt := g.srv.cfg.WriteTimeout; wt > 0 {
		_ = g.rc.SetWriteDeadline(time.Now().Add(wt))
	}
	if !g.headSent {
		g.headSent = true
		g.w.WriteHeader(http.StatusOK)
	}
	if _, err := g.w.Write(g.buf.Bytes()); err != nil {
		return false
	}
	return g.rc.Flush() == nil
}

// waitUntil waits for t; false when the client went away or the server shuts down.
func (g *generation) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return g.r.Context().Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-g.r.Context().Done():
		return false
	case <-g.srv.shutdownCh:
		return false
	}
}
