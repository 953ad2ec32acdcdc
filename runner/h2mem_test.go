package runner

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The TLS memory test holds N streams over TLS against `sseharness serve --tls` in a
// child process and reports what they cost the runner. Opt-in:
//
//	SSEHARNESS_TLSMEMTEST=4000 SSEHARNESS_TLSMEMTEST_PROTO=h2 go test -run TestTLSMemoryPerStream -v ./runner
//
// SSEHARNESS_TLSMEMTEST_PROTO is h2 (default) or http/1.1; SSEHARNESS_TLSMEMTEST_PER_BROWSER
// sets the streams per browser (default 1: one connection per stream);
// SSEHARNESS_TLSMEMTEST_GOROUTINES=1 reads every body on its stream's goroutine
// instead of the event loops (HTTP/1.1) or the connection's reader (h2);
// SSEHARNESS_SERVE_BIN names a built sseharness binary (default: built from the module
// into a temporary folder); SSEHARNESS_MEMTEST_HEAPPROFILE writes a heap profile
// during the hold.
const (
	tlsMemTestEnv    = "SSEHARNESS_TLSMEMTEST"
	tlsMemProtoEnv   = "SSEHARNESS_TLSMEMTEST_PROTO"
	tlsMemPerBrowser = "SSEHARNESS_TLSMEMTEST_PER_BROWSER"
	tlsMemGoroutines = "SSEHARNESS_TLSMEMTEST_GOROUTINES" // 1: every body on its stream's goroutine (no event loops)
	serveBinEnv      = "SSEHARNESS_SERVE_BIN"
)

// startServeTLS starts `sseharness serve --tls` with one tick per second and returns
// its URL and process id.
func startServeTLS(t *testing.T) (string, int) {
	t.Helper()
	bin := os.Getenv(serveBinEnv)
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "sseharness")
		build := exec.Command("go", "build", "-o", bin, "..")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			t.Fatalf("go build: %v", err)
		}
	}
	cmd := exec.Command(bin, "serve", "--tls", "--addr", "127.0.0.1:0", "--tick", "1s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid
}

// procRSS reads a process's resident set size from /proc (0 when it cannot).
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestTLSMemoryPerStream holds N streams over TLS (h2 or HTTP/1.1) against serve --tls,
// checks that every stream gets its ticks, and reports the runner's RSS and goroutines
// per stream: during the hold minus before, over N.
func TestTLSMemoryPerStream(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(tlsMemTestEnv))
	if n <= 0 {
		t.Skipf("set %s=N to hold N TLS streams against serve --tls and measure memory per stream", tlsMemTestEnv)
	}
	proto := cmp.Or(os.Getenv(tlsMemProtoEnv), "h2")
	if proto != "h2" && proto != "http/1.1" {
		t.Fatalf("%s=%q: want h2 or http/1.1", tlsMemProtoEnv, proto)
	}
	perBrowser := 1
	if v := os.Getenv(tlsMemPerBrowser); v != "" {
		var err error
		if perBrowser, err = strconv.Atoi(v); err != nil || perBrowser < 1 {
			t.Fatalf("%s=%q: want a positive number", tlsMemPerBrowser, v)
		}
	}
	limit, err := RaiseFDLimit()
	if err != nil {
		t.Fatal(err)
	}
	if err := limit.CheckStreams(n); err != nil {
		t.Fatal(err)
	}
	target, serverPid := startServeTLS(t)
	sampleHeapIfAsked()

	settle()
	before := rssBytes(t)
	serverBefore := procRSS(serverPid)
	g0 := runtime.NumGoroutine()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)

	var wrongProto atomic.Int64
	wantProto := map[string]string{"h2": "HTTP/2.0", "http/1.1": "HTTP/1.1"}[proto]
	ramp := time.Duration(n) * time.Second / 1000 // TLS handshakes cost: 1,000 per second
	cfg := Config{Target: target, Streams: n, StreamsPerBrowser: perBrowser, Ramp: ramp, Hold: time.Hour,
		Drain: 10 * time.Second, Insecure: true, DisableHTTP2: proto == "http/1.1",
		GoroutineReaders: os.Getenv(tlsMemGoroutines) == "1"}
	run, openedIn := startScaleRun(t, cfg, func(s *scaleRun, r Record) {
		switch r.Kind {
		case RecordHeaders:
			if r.Proto != wantProto {
				wrongProto.Add(1)
			}
		case RecordEvent:
			if r.EventType == "tick" {
				s.event(r)
			}
		}
	})

	const window = 5
	short := run.holdWindow(2*time.Second, window*time.Second)
	rssLive := rssBytes(t)
	serverLive := procRSS(serverPid)
	settle()
	after := rssBytes(t)
	g1 := runtime.NumGoroutine()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	writeHeapProfileIfAsked()
	kb := func(b int64) float64 { return float64(b) / float64(n) / 1024 }
	t.Logf("%s, %d streams per browser: %d streams open in %v (ramp %v); %d ticks; errors %d",
		proto, perBrowser, n, openedIn.Round(time.Millisecond), ramp, run.events.Load(), run.errs.Load())
	t.Logf("runner RSS %.1f MB -> %.1f MB (%.1f MB before the GC): %.1f KB per stream (%.1f before the GC); Go heap+stacks %.1f KB, stacks %.1f KB; goroutines %.2f per stream",
		float64(before)/1e6, float64(after)/1e6, float64(rssLive)/1e6, kb(after-before), kb(rssLive-before),
		kb(int64(ms1.HeapInuse+ms1.StackInuse)-int64(ms0.HeapInuse+ms0.StackInuse)), kb(int64(ms1.StackInuse)-int64(ms0.StackInuse)),
		float64(g1-g0)/float64(n))
	if serverBefore > 0 && serverLive > 0 {
		t.Logf("server (serve --tls, another process) RSS %.1f MB -> %.1f MB: %.1f KB per stream", float64(serverBefore)/1e6, float64(serverLive)/1e6, kb(serverLive-serverBefore))
	}
	if short > 0 {
		t.Errorf("%d of %d streams missed ticks in a %d s window", short, n, window)
	}
	if run.errs.Load() > 0 || wrongProto.Load() > 0 {
		t.Errorf("%d errors, %d heads not over %s", run.errs.Load(), wrongProto.Load(), proto)
	}
}
