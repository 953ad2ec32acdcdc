package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveTestEnv is an Env whose stdout is a pipe (to read the URL line) and whose stderr
// is captured.
func serveTestEnv(stdout io.Writer) (*Env, *serveTestBuffer) {
	stderr := &serveTestBuffer{}
	return &Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Getenv: func(string) string { return "" }}, stderr
}

type serveTestBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *serveTestBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *serveTestBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestServeUsageErrorsExit2WithOneLine(t *testing.T) {
	t.Parallel()
	checkServeUsageErrors(t, []usageCase{
		{[]string{"--fault", "nonsense"}, "known: gzip-buffer, late-head, leak-on-disconnect, no-204, no-done, no-flush, no-heartbeat, no-lifetime, no-replace, no-replay, no-retry, cut-after=D, pool=N, token-batch=N, stream-error=P, gen-slots=N"},
		{[]string{"--fault", "pool=0"}, "pool=N"},
		{[]string{"--fault", "cut-after=soon"}, "cut-after=D needs a duration"},
		{[]string{"--h2-max-streams", "0", "--max-early-sessions", "-1"}, "max-early-sessions must be >= 0 (0 = early progress off), got -1; h2-max-streams must be >= 1"},
		{[]string{"--tick", "-1s", "--replay", "-1"}, "tick must be >= 0"},
		{[]string{"--cert", "c.pem"}, "cert and key"},
		{[]string{"--addr", "nohost"}, "addr"},
		{[]string{"--tick", "soon"}, "invalid value"},
		{[]string{"extra"}, "unexpected argument"},
	})
}

func TestServeHelpNamesEveryFlagWithDefault(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	if code := Main(context.Background(), []string{"serve", "-h"}, env); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	help := stderr.String() + out.String()
	for _, f := range []string{"-addr", "127.0.0.1:8080", "-tick", "1s", "-retry", "5s", "-heartbeat", "15s", "-write-timeout", "10s",
		"-max-lifetime", "30m0s", "-replay", "1000", "-max-sessions", "100000", "-max-early-sessions", "-early-session-ttl", "1m0s", "-h2-max-streams", "-tls", "-cert", "-key", "-callback-token", "-fault", "pool=N", "gzip-buffer", "late-head", "cut-after=D",
		"-first-token-delay", "20ms", "-token-interval", "5ms", "/v1/chat/completions"} {
		if !strings.Contains(help, f) {
			t.Errorf("help lacks %q", f)
		}
	}
}

func TestServeListenFailureIsHarnessError(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	// 192.0.2.1 (TEST-NET-1) is no local address: bind fails.
	code := Main(context.Background(), []string{"serve", "--addr", "192.0.2.1:0"}, env)
	if code != ExitHarness {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitHarness, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n != 0 {
		t.Fatalf("error is not one line: %q", stderr)
	}
}

func TestServePrintsURLFirstAndStopsOnCancel(t *testing.T) {
	t.Parallel()
	s := serveInProcess(t, "--tick", "20ms")
	url := s.url
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("first line %q is not the URL listened on", url)
	}
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	s.stop(t)
}

// Issue 12: 100 junk callbacks for ids nobody opens do not fill --max-sessions 100.
func TestServeJunkCallbacksDoNotStarveStreams(t *testing.T) {
	t.Parallel()
	url := serveInProcess(t, "--max-sessions", "100", "--tick", "0").url
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for i := range 100 {
		resp, err := hc.Post(fmt.Sprintf("%s/sessions/junk-%d/progress", url, i), "application/json", strings.NewReader(`{"progress":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	for i := range 100 {
		req, _ := http.NewRequestWithContext(sctx, http.MethodGet, fmt.Sprintf("%s/sessions/real-%d/events", url, i), nil)
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() // held open: all 100 must fit at once
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d after 100 junk callbacks: status %d, want 200", i, resp.StatusCode)
		}
	}
}

// serveBinary is a running `sseharness serve` process.
type serveBinary struct {
	*testProcess
	url string
	// scrape reads /metrics over one kept-alive connection, so that every sample
	// counts the same scrape goroutines: a connection per scrape leaves the last
	// one's goroutine behind for a moment, which only later samples would count.
	scrape *http.Client
}

// buildBinary builds the sseharness binary once for a test and its subtests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sseharness")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/sseharness/sseharness").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs `sseharness serve` with args, reads the URL from its first line and
// kills it at the end of the test if it still runs.
func startBinary(t *testing.T, bin string, args ...string) *serveBinary {
	t.Helper()
	p, stdout := startTestProcess(t, bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), nil)
	s := &serveBinary{testProcess: p, scrape: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(s.scrape.CloseIdleConnections)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL line: %v; stderr: %s", err, s.stderr)
	}
	s.url = strings.TrimSpace(line)
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return s
}

// metric reads one unlabelled sample from /metrics.
func (s *serveBinary) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := s.scrape.Get(s.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	// Read to the end, so that the connection is kept for the next scrape.
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func (s *serveBinary) awaitMetric(t *testing.T, name string, d time.Duration, cond func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := s.metric(t, name)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s = %v", d, name, v)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// openRaw opens n session streams on raw connections and waits for each one's connected
// event; no goroutine per stream, so the test holds thousands cheaply.
func openRaw(t *testing.T, url string, n int) []net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(url, "http://")
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /sessions/raw-%d/events HTTP/1.1\r\nHost: test\r\n\r\n", i)
	}
	buf := make([]byte, 4096)
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var got []byte
		for !bytes.Contains(got, []byte("event: connected")) {
			k, err := c.Read(buf)
			if err != nil {
				t.Fatalf("stream %d: %v after %q", i, err, got)
			}
			got = append(got, buf[:k]...)
		}
	}
	return conns
}

func TestServeBinary(t *testing.T) {
	bin := binaryTest(t)

	t.Run("SIGTERM with 1000 open streams exits within 5s", func(t *testing.T) {
		t.Parallel()
		s := startBinary(t, bin, "--tick", "1s", "--max-sessions", "2000")
		conns := openRaw(t, s.url, 1000)
		s.awaitMetric(t, "sseref_streams_open", 10*time.Second, func(v float64) bool { return v == 1000 })
		t0 := time.Now()
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-s.exited:
			s.exited <- err // for the cleanup
			took := time.Since(t0)
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, s.stderr)
			}
			if took > 5*time.Second {
				t.Fatalf("exited %v after SIGTERM, want within 5s", took)
			}
			t.Logf("exited %v after SIGTERM with 1000 open streams", took.Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Fatalf("still running 10s after SIGTERM; stderr: %s", s.stderr)
		}
		// Every stream got the final comment and then its end.
		for i, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := io.ReadAll(c)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("stream %d: %v", i, err)
			}
			if !bytes.Contains(rest, []byte(": shutdown\n\n")) {
				t.Fatalf("stream %d ended without ': shutdown': ...%q", i, tail(rest, 80))
			}
		}
	})

	t.Run("goroutines and senders return to baseline within 2s after clients leave", func(t *testing.T) {
		t.Parallel()
		s := startBinary(t, bin, "--tick", "50ms")
		// The runtime counts its finalizer and cleanup goroutines while they run, so an
		// idle process's count moves by one: the baseline is the highest of a few
		// samples of the idle server.
		base := s.metric(t, "go_goroutines")
		for range 4 {
			time.Sleep(20 * time.Millisecond) // sampling interval
			base = max(base, s.metric(t, "go_goroutines"))
		}
		conns := openRaw(t, s.url, 200)
		s.awaitMetric(t, "sseref_senders_active", 5*time.Second, func(v float64) bool { return v == 200 })
		peak := s.metric(t, "go_goroutines")
		for _, c := range conns {
			c.Close()
		}
		t0 := time.Now()
		s.awaitMetric(t, "sseref_senders_active", 2*time.Second, func(v float64) bool { return v == 0 })
		got := s.awaitMetric(t, "go_goroutines", 2*time.Second-time.Since(t0), func(v float64) bool { return v <= base })
		t.Logf("go_goroutines: baseline %v, with 200 streams %v, %v after %v", base, peak, got, time.Since(t0).Round(time.Millisecond))
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// run --fault is judged by the same parser as serve's, new faults included, on one line.
func TestValidateFaultsKnowsEveryFault(t *testing.T) {
	t.Parallel()
	if err := validateFaults("gzip-buffer,late-head,cut-after=30s,pool=2,no-flush"); err != nil {
		t.Fatalf("valid fault list refused: %v", err)
	}
	err := validateFaults("cut-after=never,typo")
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "cut-after=D") || !strings.Contains(err.Error(), `"typo"`) {
		t.Fatalf("bad list: %v; want one line naming both problems", err)
	}
}
