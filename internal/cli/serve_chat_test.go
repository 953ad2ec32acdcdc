package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeChatCompletionsWithTokenFlags(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	if code := Main(context.Background(), []string{"serve", "--token-interval", "-1ms"}, env); code != ExitUsage {
		t.Fatalf("--token-interval -1ms: exit %d, want %d", code, ExitUsage)
	}
	if !strings.Contains(stderr.String(), "token-interval") {
		t.Fatalf("error does not name the flag: %q", stderr)
	}

	pr, pw := io.Pipe()
	env, stderr = serveTestEnv(pw)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	exit := make(chan int, 1)
	go func() {
		exit <- Main(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--first-token-delay", "1ms", "--token-interval", "1ms"}, env)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("nothing printed; stderr: %s", stderr)
	}
	url := lines.Text()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	resp, err := http.Post(url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":3}`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if n := strings.Count(string(body), `"delta":{"content"`) + strings.Count(string(body), `"delta":{"role":"assistant","content"`); n != 3 || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("%d content chunks, body:\n%s", n, body)
	}
	cancel()
	select {
	case code := <-exit:
		if code != ExitOK {
			t.Fatalf("exit %d; stderr: %s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}
