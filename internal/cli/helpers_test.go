package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// checkUsageError runs args and wants exit 2 with a stderr that names each of want, in
// one line (and the usage hint), no stack trace, and nothing on stdout. It returns
// stderr, or "" after reporting an unexpected exit.
func checkUsageError(t *testing.T, args []string, want ...string) string {
	t.Helper()
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	if code := Main(context.Background(), args, env); code != ExitUsage {
		t.Errorf("%v: exit %d, want %d; stderr: %s", args, code, ExitUsage, stderr)
		return ""
	}
	for _, w := range want {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("%v: stderr %q lacks %q", args, stderr, w)
		}
	}
	if strings.Contains(stderr.String(), "goroutine ") || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 1 {
		t.Errorf("%v: not a one-line error: %q", args, stderr)
	}
	if out.Len() != 0 {
		t.Errorf("%v: printed %q on stdout", args, out.String())
	}
	return stderr.String()
}

// usageCase is arguments that must be a usage error naming want.
type usageCase struct {
	args []string
	want string
}

// checkServeUsageErrors runs `serve` with each case's arguments and checks it with
// checkUsageError; it returns each case's stderr ("" after an unexpected exit).
func checkServeUsageErrors(t *testing.T, cases []usageCase) []string {
	t.Helper()
	stderrs := make([]string, len(cases))
	for i, tc := range cases {
		stderrs[i] = checkUsageError(t, append([]string{"serve"}, tc.args...), tc.want)
	}
	return stderrs
}

// binaryTest marks a test that builds and runs the binary: skipped with -short,
// parallel, and given the binary.
func binaryTest(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	return buildBinary(t)
}

// testProcess is a process of the sseharness binary run by a test, with its stderr.
type testProcess struct {
	cmd    *exec.Cmd
	stderr *serveTestBuffer
	exited chan error // its exit status, once
}

// startTestProcess runs bin with args and returns it with its stdout. At the end of
// the test it is killed (and kill, if not nil, is called) and reaped.
func startTestProcess(t *testing.T, bin string, args []string, kill func()) (*testProcess, io.Reader) {
	t.Helper()
	p := &testProcess{cmd: exec.Command(bin, args...), stderr: &serveTestBuffer{}, exited: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if kill != nil {
			kill()
		}
		<-p.exited
	})
	return p, stdout
}

// inProcessServe is `sseharness serve` run by Main in the test's process.
type inProcessServe struct {
	url    string
	stderr *serveTestBuffer
	cancel context.CancelFunc
	exit   chan int
}

// serveInProcess runs `serve --addr 127.0.0.1:0` with args in the test's process and
// reads its URL from the first line; at the end of the test it is stopped, if stop was
// not called.
func serveInProcess(t *testing.T, args ...string) *inProcessServe {
	t.Helper()
	pr, pw := io.Pipe()
	env, stderr := serveTestEnv(pw)
	ctx, cancel := context.WithCancel(context.Background())
	s := &inProcessServe{stderr: stderr, cancel: cancel, exit: make(chan int, 1)}
	go func() {
		s.exit <- Main(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), env)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.exit:
		case <-time.After(10 * time.Second):
			t.Error("serve did not return after its context ended")
		}
	})
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("nothing printed; stderr: %s", stderr)
	}
	s.url = lines.Text()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return s
}

// stop ends serve and wants it to return 0 within 10 s.
func (s *inProcessServe) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.exit:
		s.exit <- code // for the cleanup
		if code != ExitOK {
			t.Fatalf("exit %d, want 0; stderr: %s", code, s.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
}

// tickEvents writes an event with a sequential id (from 1) and data(id) every 100 ms
// until the request ends or a write fails.
func tickEvents(w http.ResponseWriter, f http.Flusher, r *http.Request, data func(id int) string) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 1; ; i++ {
		if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", i, data(i)); err != nil {
			return
		}
		f.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// sentNow is an event's data with its send time, as the reference server sends it.
func sentNow(int) string { return fmt.Sprintf(`{"sent_unix_ns":%d}`, time.Now().UnixNano()) }
