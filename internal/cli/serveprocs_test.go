package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procsBinary is a running `sseharness serve --procs N` process and its children.
type procsBinary struct {
	*testProcess
	urls []string
	pids []int
}

var childLine = regexp.MustCompile(`process (\d+) of (\d+) \(pid (\d+)\) listening on (\S+)`)

// startProcs runs `serve --procs n` with args, reads its n URL lines and its children's
// pids (from stderr), and kills whatever is left at the end of the test.
func startProcs(t *testing.T, bin string, n int, args ...string) *procsBinary {
	t.Helper()
	p := &procsBinary{}
	var stdout io.Reader
	p.testProcess, stdout = startTestProcess(t, bin, append([]string{"serve", "--procs", strconv.Itoa(n)}, args...), func() {
		for _, pid := range p.pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	r := bufio.NewReader(stdout)
	for range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading URL line %d: %v; stderr: %s", len(p.urls)+1, err, p.stderr)
		}
		p.urls = append(p.urls, strings.TrimSpace(line))
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	// The pid lines are written right after the URLs; wait for all of them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := childLine.FindAllStringSubmatch(p.stderr.String(), -1)
		if len(m) == n {
			for i, l := range m {
				pid, _ := strconv.Atoi(l[3])
				p.pids = append(p.pids, pid)
				if l[1] != strconv.Itoa(i+1) || l[2] != strconv.Itoa(n) || l[4] != p.urls[i] {
					t.Fatalf("stderr line %q does not match URL line %q", l[0], p.urls[i])
				}
			}
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("stderr names %d of %d children: %s", len(m), n, p.stderr)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// await returns the parent's exit code, failing the test if it has not exited within d.
func (p *procsBinary) await(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(d):
		t.Fatalf("serve --procs still running after %v; stderr: %s", d, p.stderr)
		return -1
	}
}

// assertGone fails the test for every child process still alive. The parent has reaped
// its children before exiting, so a pid that still answers signal 0 was left behind.
func (p *procsBinary) assertGone(t *testing.T) {
	t.Helper()
	for i, pid := range p.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child %d (pid %d) still exists after the parent exited (kill 0: %v)", i+1, pid, err)
		}
	}
	for _, u := range p.urls {
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(u, "http://"), time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the parent exited", u)
		}
	}
}

// freePorts returns a port p such that p..p+n-1 are free on 127.0.0.1 just now. The
// candidates lie below Linux's ephemeral range (32768-60999 by default): there, the
// ports next to one that bind(0) gives (odd) are the ones connect() takes (even), and
// a test that holds many connections at once leaves no two consecutive ports free.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 200 {
		base := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base))
		if err != nil {
			continue
		}
		held := []net.Listener{ln}
		ok := true
		for i := 1; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0
}

func healthz(t *testing.T, url string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("%s/healthz: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s/healthz: status %d", url, resp.StatusCode)
	}
}

func TestServeProcsUsage(t *testing.T) {
	t.Parallel()
	cases := []usageCase{
		{[]string{"--procs", "0"}, "--procs must be >= 1, got 0"},
		{[]string{"--procs", "3", "--addr", "127.0.0.1:65534"}, "--procs 3 from port 65534 passes port 65535"},
		{[]string{"--procs", "-2", "--addr", "127.0.0.1:0"}, "--procs must be >= 1, got -2"},
	}
	for i, stderr := range checkServeUsageErrors(t, cases) {
		tc := cases[i]
		if first := strings.SplitN(stderr, "\n", 2)[0]; stderr != "" && !strings.Contains(first, tc.want) {
			t.Errorf("%v: first stderr line %q lacks %q", tc.args, first, tc.want)
		}
	}
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	if code := Main(context.Background(), []string{"serve", "-h"}, env); code != ExitOK {
		t.Fatalf("serve -h: exit %d", code)
	}
	for _, want := range []string{"-procs", "one URL per line", "PORT+N-1", "exit 3"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("serve -h lacks %q", want)
		}
	}
}

func TestServeProcsBinary(t *testing.T) {
	bin := binaryTest(t)

	t.Run("three servers on consecutive ports; SIGTERM stops all", func(t *testing.T) {
		t.Parallel()
		base := freePorts(t, 3)
		p := startProcs(t, bin, 3, "--addr", fmt.Sprintf("127.0.0.1:%d", base), "--tick", "100ms")
		seen := map[int]bool{}
		for i, u := range p.urls {
			if want := fmt.Sprintf("http://127.0.0.1:%d", base+i); u != want {
				t.Fatalf("URL line %d is %q, want %q", i+1, u, want)
			}
			healthz(t, u)
			seen[p.pids[i]] = true
		}
		if len(seen) != 3 {
			t.Fatalf("child pids %v are not three processes", p.pids)
		}
		// Each one is a whole server: a session stream gets its connected event.
		for _, u := range p.urls {
			openRaw(t, u, 2)
		}
		t0 := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.await(t, 20*time.Second); code != ExitOK {
			t.Fatalf("exit %d after SIGTERM, want 0; stderr: %s", code, p.stderr)
		}
		if took := time.Since(t0); took > 5*time.Second {
			t.Fatalf("exited %v after SIGTERM, want within 5s", took)
		}
		p.assertGone(t)
		if !strings.HasSuffix(p.stderr.String(), "sseharness serve: shut down\n") {
			t.Fatalf("stderr does not end with the shutdown line: %s", p.stderr)
		}
	})

	t.Run("a killed child fails the parent with exit 3 and its stderr", func(t *testing.T) {
		t.Parallel()
		p := startProcs(t, bin, 3, "--addr", "127.0.0.1:0")
		for _, u := range p.urls {
			healthz(t, u)
		}
		if err := syscall.Kill(p.pids[1], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := p.await(t, 20*time.Second); code != ExitHarness {
			t.Fatalf("exit %d after a child was killed, want %d; stderr: %s", code, ExitHarness, p.stderr)
		}
		p.assertGone(t)
		msg := p.stderr.String()
		i := strings.Index(msg, fmt.Sprintf("process 2 of 3 (pid %d, %s) exited unexpectedly (signal: killed)", p.pids[1], p.urls[1]))
		if i < 0 {
			t.Fatalf("stderr does not say which child died and how: %s", msg)
		}
		// The dead child's own stderr follows.
		if !strings.Contains(msg[i:], "sseharness serve: listening on "+p.urls[1]) {
			t.Fatalf("stderr lacks the dead child's own output: %s", msg)
		}
	})

	t.Run("a port in use is a one-line error naming it", func(t *testing.T) {
		t.Parallel()
		base := freePorts(t, 3)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+1))
		if err != nil {
			t.Skipf("port %d taken meanwhile: %v", base+1, err)
		}
		defer ln.Close()
		cmd := exec.Command(bin, "serve", "--procs", "3", "--addr", fmt.Sprintf("127.0.0.1:%d", base))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitHarness {
			t.Fatalf("exit %v, want %d; stderr: %s", err, ExitHarness, stderr.String())
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "\n") || !strings.Contains(msg, fmt.Sprintf("port %d (process 2 of 3) is not free", base+1)) {
			t.Fatalf("not one line naming port %d: %q", base+1, msg)
		}
		if stdout.Len() != 0 {
			t.Fatalf("printed %q on stdout", stdout.String())
		}
	})
}
