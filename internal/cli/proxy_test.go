package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxyTestBuffer is a concurrency-safe writer for a command's stderr.
type proxyTestBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *proxyTestBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *proxyTestBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func proxyTestEnv(stdout io.Writer) (*Env, *proxyTestBuffer) {
	stderr := &proxyTestBuffer{}
	return &Env{
		Stdin:  strings.NewReader(""),
		Stdout: stdout,
		Stderr: stderr,
		Getenv: func(string) string { return "" },
	}, stderr
}

func TestProxyCommandUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no upstream", []string{"proxy"}, "upstream URL is required"},
		{"bad buffer", []string{"proxy", "--upstream", "http://127.0.0.1:1", "--buffer", "many"}, "invalid value"},
		{"zero buffer", []string{"proxy", "--upstream", "http://127.0.0.1:1", "--buffer", "0"}, "--buffer must be at least 1"},
		{"negative buffer", []string{"proxy", "--upstream", "http://127.0.0.1:1", "--buffer", "-5"}, "buffer size -5"},
		{"bad scheme", []string{"proxy", "--upstream", "ws://127.0.0.1:1"}, "scheme must be http or https"},
		{"bad addr", []string{"proxy", "--upstream", "http://127.0.0.1:1", "--addr", "nowhere"}, "listen address"},
		{"stray argument", []string{"proxy", "--upstream", "http://127.0.0.1:1", "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"proxy", "--bogus"}, "flag provided but not defined"},
		{"negative idle timeout", []string{"proxy", "--upstream", "http://127.0.0.1:1", "--idle-timeout", "-1s"}, "idle timeout -1s: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			env, stderr := proxyTestEnv(&out)
			if code := Main(context.Background(), tc.args, env); code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q does not say %q", stderr, tc.want)
			}
			if strings.Contains(stderr.String(), "goroutine ") {
				t.Fatalf("stderr holds a stack trace: %s", stderr)
			}
		})
	}
}

func TestProxyCommandHelp(t *testing.T) {
	var out bytes.Buffer
	env, stderr := proxyTestEnv(&out)
	if code := Main(context.Background(), []string{"proxy", "-h"}, env); code != ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	help := out.String() + stderr.String()
	for _, want := range []string{"-addr", "127.0.0.1:8081", "-upstream", "-buffer", "4096", "-no-buffering", "-insecure", "X-Accel-Buffering", "-idle-timeout", "proxy_read_timeout"} {
		if !strings.Contains(help, want) {
			t.Errorf("help does not mention %q:\n%s", want, help)
		}
	}
}

func TestProxyCommandServesUntilCancelled(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: "+r.URL.Path+"\n\n")
	}))
	t.Cleanup(up.Close)

	pr, pw := io.Pipe()
	env, stderr := proxyTestEnv(pw)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	exit := make(chan int, 1)
	go func() {
		exit <- Main(ctx, []string{"proxy", "--addr", "127.0.0.1:0", "--upstream", up.URL, "--buffer", "16"}, env)
		pw.Close()
	}()

	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no URL printed; stderr: %s", stderr)
	}
	url := lines.Text()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q is not the proxy's URL", url)
	}
	resp, err := http.Get(url + "/sessions/s1/events")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "data: /sessions/s1/events\n\n" {
		t.Fatalf("through the proxy got %q", body)
	}

	cancel()
	select {
	case code := <-exit:
		if code != ExitOK {
			t.Fatalf("exit %d after cancel, want 0; stderr: %s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("proxy command did not return after its context ended")
	}
}

func TestProxyCommandListenFailureIsHarnessError(t *testing.T) {
	var out bytes.Buffer
	env, stderr := proxyTestEnv(&out)
	code := Main(context.Background(), []string{"proxy", "--upstream", "http://127.0.0.1:1", "--addr", "192.0.2.1:0"}, env)
	if code != ExitHarness {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitHarness, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n != 0 {
		t.Fatalf("error is not one line: %q", stderr)
	}
}

// --idle-timeout reaches the proxy: an upstream silent past it gets the client a 504.
func TestProxyCommandIdleTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(func() {
		up.CloseClientConnections()
		up.Close()
	})
	pr, pw := io.Pipe()
	env, stderr := proxyTestEnv(pw)
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- Main(ctx, []string{"proxy", "--addr", "127.0.0.1:0", "--upstream", up.URL, "--idle-timeout", "200ms"}, env)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-exit
	})
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no URL printed; stderr: %s", stderr)
	}
	url := lines.Text()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Get(url + "/sessions/s/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("mute upstream through --idle-timeout 200ms: status %d, want 504", resp.StatusCode)
	}
}
