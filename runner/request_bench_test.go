package runner

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sseharness/sseharness/reference"
)

// The benchmarks run the reference chat endpoint in a child process (this test binary
// again, with helperChatEnv set), so that the CPU measured is the runner's alone.
const (
	helperChatEnv = "SSEHARNESS_HELPER_CHAT" // "<first-token-delay>,<token-interval>" in the child only
)

// TestHelperChatServer is not a test: it is the child process of the request-stream
// benchmarks. It serves the reference server and prints its URL on stdout.
func TestHelperChatServer(t *testing.T) {
	spec := os.Getenv(helperChatEnv)
	if spec == "" {
		t.Skip("child process of the request-stream benchmarks")
	}
	first, interval, _ := strings.Cut(spec, ",")
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	var err error
	if cfg.FirstTokenDelay, err = time.ParseDuration(first); err != nil {
		t.Fatal(err)
	}
	if cfg.TokenInterval, err = time.ParseDuration(interval); err != nil {
		t.Fatal(err)
	}
	srv, err := reference.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// The parent closes our stdin when it is done (or dies).
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	_ = srv.ListenAndServe(ctx, func(url string) { fmt.Println(url) })
}

func startHelperChat(b *testing.B, firstToken, interval time.Duration) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChatServer$", "-test.count=1", "-test.bench=^$")
	cmd.Env = append(os.Environ(), helperChatEnv+"="+firstToken.String()+","+interval.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("helper chat server: %v", err)
	}
	return strings.TrimSpace(line) + "/v1/chat/completions"
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRun runs cfg, draining the records, and returns the end records and the
// runner's CPU time.
func benchRun(b *testing.B, cfg RequestConfig) ([]RequestRecord, []RequestRecord, time.Duration, time.Duration) {
	b.Helper()
	sink := drainRequests(1024)
	cpu0, wall0 := cpuTime(), time.Now()
	if _, err := RunRequests(context.Background(), cfg, sink.ch); err != nil {
		b.Fatal(err)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	ends := sink.close()
	chunks := sink.chunks
	for _, e := range ends {
		if e.End != EndTerminated {
			b.Fatalf("request %d: %s %s", e.Request, e.End, e.Err)
		}
	}
	return ends, chunks, cpu, wall
}

// BenchmarkRequestStreamChunks measures the runner's CPU per received chunk, with
// the reference endpoint (in a child process) writing 256-token completions as fast
// as they are read, 16 at a time. One op is one request.
func BenchmarkRequestStreamChunks(b *testing.B) {
	u := startHelperChat(b, 0, 0)
	cfg := chatRequests(u, max(b.N, 2), 256, 1e6)
	cfg.MaxConcurrency = 16
	b.ResetTimer()
	ends, _, cpu, wall := benchRun(b, cfg)
	b.StopTimer()
	chunks := 0
	for _, e := range ends {
		chunks += e.Events
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(chunks)/1e3, "cpu-us/chunk")
	b.ReportMetric(float64(len(ends))/wall.Seconds(), "requests/s")
}

// BenchmarkRequestStreamAccuracy runs 20 requests/s (Poisson) of 64 tokens against a
// first-token delay of 50ms and a token interval of 10ms, and reports the runner's CPU
// per chunk and how far its median TTFT and inter-token gap are from the server's.
// One op is one request.
func BenchmarkRequestStreamAccuracy(b *testing.B) {
	const first, interval = 50 * time.Millisecond, 10 * time.Millisecond
	u := startHelperChat(b, first, interval)
	cfg := chatRequests(u, max(b.N, 20), 64, 20)
	cfg.Arrival = Arrival{Kind: ArrivalPoisson}
	b.ResetTimer()
	ends, chunks, cpu, _ := benchRun(b, cfg)
	b.StopTimer()
	var ttft, gaps []time.Duration
	events := 0
	for _, e := range ends {
		ttft = append(ttft, e.TTFT)
		events += e.Events
	}
	for _, c := range chunks {
		if c.TokenGap >= 0 {
			gaps = append(gaps, c.TokenGap)
		}
	}
	if len(ttft) == 0 || len(gaps) == 0 {
		b.Fatalf("%d TTFTs and %d token gaps measured", len(ttft), len(gaps))
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(events)/1e3, "cpu-us/chunk")
	b.ReportMetric(float64(median(ttft)-first)/1e6, "ttft-excess-ms")
	b.ReportMetric(float64(median(gaps)-interval)/1e6, "itl-excess-ms")
}

// BenchmarkRequestStreamFloor is BenchmarkRequestStreamAccuracy's load read by the
// least a Go client can do (net/http, each body read into a buffer and dropped, no
// parsing, no clock, no records): the CPU per chunk the runtime and kernel cost at
// this rate, against which the runner's own cost shows.
func BenchmarkRequestStreamFloor(b *testing.B) {
	u := startHelperChat(b, 50*time.Millisecond, 10*time.Millisecond)
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":64}`
	offsets := Schedule(Arrival{Kind: ArrivalPoisson}, 20, 0, max(b.N, 20), 0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	var bytesRead atomic.Int64
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	for _, off := range offsets {
		time.Sleep(time.Until(start.Add(off)))
		wg.Go(func() {
			resp, err := client.Post(u, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			defer resp.Body.Close()
			n, _ := io.Copy(io.Discard, resp.Body)
			bytesRead.Add(n)
		})
	}
	wg.Wait()
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if bytesRead.Load() == 0 {
		b.Fatal("nothing read")
	}
	// 64 content chunks, the usage chunk and [DONE] per request, as the runner counts.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(offsets)*66)/1e3, "cpu-us/chunk")
}
