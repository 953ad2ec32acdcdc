package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
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

	srv := serveInProcess(t, "--first-token-delay", "1ms", "--token-interval", "1ms")
	url := srv.url
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
	srv.stop(t)
}
