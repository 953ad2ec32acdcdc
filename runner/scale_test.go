package runner

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The memory test runs the SSE server in a child process (this test binary again,
// with helperServerEnv set), so that the runner's memory is measured alone: in one
// process both ends of every stream would count.
const (
	memTestEnv      = "SSEHARNESS_MEMTEST"        // number of streams; unset: skip
	helperServerEnv = "SSEHARNESS_HELPER_SERVER"  // set in the child only
	helperTickEnv   = "SSEHARNESS_HELPER_TICK_MS" // tick interval of the child
	// memEncodingEnv makes the child compress every stream in this coding (gzip,
	// deflate, br, zstd), to measure what a compressed stream costs the runner.
	memEncodingEnv = "SSEHARNESS_MEMTEST_ENCODING"
)

// TestHelperTickServer is not a test: it is the child process of TestMemoryPerStream.
// It serves one event per tick per stream, with an increasing id, a send time and a
// sender, and prints its address on stdout.
func TestHelperTickServer(t *testing.T) {
	if os.Getenv(helperServerEnv) == "" {
		t.Skip("child process of TestMemoryPerStream")
	}
	if _, err := RaiseFDLimit(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	tick := time.Second
	if ms, err := strconv.Atoi(os.Getenv(helperTickEnv)); err == nil && ms > 0 {
		tick = time.Duration(ms) * time.Millisecond
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	var encoder func(io.Writer) flushWriter
	coding := os.Getenv(memEncodingEnv)
	for _, c := range codings {
		if c.header == coding {
			encoder = c.new
			break
		}
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		var out io.Writer = w
		var enc flushWriter
		if encoder != nil && strings.Contains(r.Header.Get("Accept-Encoding"), coding) {
			w.Header().Set("Content-Encoding", coding)
			enc = encoder(w)
			out = enc
			defer enc.Close()
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for id := 1; ; id++ {
			select {
			case <-r.Context().Done():
				return
			case <-tk.C:
			}
			fmt.Fprintf(out, "id: %d\ndata: {\"seq\":%d,\"sender\":\"helper\",\"sent_unix_ns\":%d}\n\n", id, id, time.Now().UnixNano())
			if enc != nil {
				enc.Flush()
			}
			w.(http.Flusher).Flush()
		}
	})}
	go func() {
		// The parent closes our stdin when it is done (or dies).
		bufio.NewReader(os.Stdin).ReadString('\n')
		srv.Close()
	}()
	srv.Serve(ln)
}

// startHelperServer starts the child server and returns its base URL.
func startHelperServer(t *testing.T, tick time.Duration) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTickServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperServerEnv+"=1", helperTickEnv+"="+strconv.Itoa(int(tick/time.Millisecond)))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper server: %v", err)
	}
	return "http://" + strings.TrimSpace(line)
}

// rssBytes reads the process's resident set size from /proc.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// TestMemoryPerStream holds N streams (env SSEHARNESS_MEMTEST=N) against a server in
// a child process at one event per second per stream, checks that every stream gets
// every tick, and reports the runner's resident memory per stream. It fails above
// the 16 KB per stream budget.
//
//	SSEHARNESS_MEMTEST=10000 go test -run TestMemoryPerStream -v ./runner
func TestMemoryPerStream(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(memTestEnv))
	if n <= 0 {
		t.Skipf("set %s=N to hold N streams and measure memory per stream", memTestEnv)
	}
	limit, err := RaiseFDLimit()
	if err != nil {
		t.Fatal(err)
	}
	if err := limit.CheckStreams(n); err != nil {
		t.Fatal(err)
	}
	target := startHelperServer(t, time.Second)
	sampleHeapIfAsked()

	settle()
	before := rssBytes(t)
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)

	var encoded, maxLatency atomic.Int64
	ramp := time.Duration(n) * time.Second / 2000 // 2,000 new streams per second
	cfg := Config{Target: target, Streams: n, Ramp: ramp, Hold: time.Hour, Drain: 10 * time.Second}
	run, openedIn := startScaleRun(t, loopConfig(cfg), func(s *scaleRun, r Record) {
		switch r.Kind {
		case RecordHeaders:
			if r.ContentEncoding != "" {
				encoded.Add(1)
			}
		case RecordEvent:
			s.eventInOrder(r)
			if int64(r.Latency) > maxLatency.Load() {
				maxLatency.Store(int64(r.Latency))
			}
		}
	})

	// Hold a few ticks, then count each stream's events over a window.
	const window = 5
	short := run.holdWindow(2*time.Second, window*time.Second)
	settle()
	after := rssBytes(t)
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	writeHeapProfileIfAsked()
	perRSS := float64(after-before) / float64(n)
	perHeap := float64((ms1.HeapInuse+ms1.StackInuse)-(ms0.HeapInuse+ms0.StackInuse)) / float64(n)
	t.Logf("%d streams open in %v (ramp %v); %d events; max latency %v; errors %d",
		n, openedIn.Round(time.Millisecond), ramp, run.events.Load(), time.Duration(maxLatency.Load()).Round(time.Millisecond), run.errs.Load())
	t.Logf("runner RSS %.1f MB -> %.1f MB: %.1f KB per stream (Go heap+stacks %.1f KB per stream; stacks %.1f KB)",
		float64(before)/1e6, float64(after)/1e6, perRSS/1024, perHeap/1024, float64(ms1.StackInuse-ms0.StackInuse)/float64(n)/1024)
	if short > 0 {
		t.Errorf("%d of %d streams missed ticks in a %d s window", short, n, window)
	}
	if run.errs.Load() > 0 {
		t.Errorf("%d errors or lost/duplicated ids", run.errs.Load())
	}
	coding := os.Getenv(memEncodingEnv)
	if coding != "" {
		t.Logf("%d of %d streams were %s-encoded", encoded.Load(), n, coding)
		if encoded.Load() != int64(n) {
			t.Errorf("%d of %d streams %s-encoded", encoded.Load(), n, coding)
		}
	}
	// The budget is that of an uncompressed stream: a decoder's window is extra.
	if coding == "" && perRSS > 16*1024 {
		t.Errorf("%.1f KB RSS per stream, over the 16 KB budget", perRSS/1024)
	}
}
