package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sseharness/sseharness/internal/tailbuf"
)

const (
	// serveProcsStartTimeout bounds how long a child may take to print its URL.
	serveProcsStartTimeout = 30 * time.Second
	// serveProcsStopTimeout bounds how long a child may take to exit after SIGTERM
	// (the reference server itself returns within a few seconds); then it is killed.
	serveProcsStopTimeout = 15 * time.Second
	// serveProcsStderrTail is how much of a child's stderr is kept to report its death.
	serveProcsStderrTail = 64 << 10
)

// serveChild is one `serve` process started by `serve --procs`.
type serveChild struct {
	childProc     // done: the process has exited and been reaped
	index     int // 1-based
	addr      string
	stdout    *firstLineWriter
	stderr    *tailbuf.Buffer
	err       error // the exit status, valid once done is closed
}

// childProc is a child process of this executable and the channel closed once it has
// exited (and what it wrote was read).
type childProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (c *childProc) proc() *childProc { return c }

// stopProcs sends SIGTERM to every process still running and waits for all of them,
// killing every one still there after timeout.
func stopProcs[P interface{ proc() *childProc }](procs []P, timeout time.Duration) {
	for _, p := range procs {
		select {
		case <-p.proc().done:
		default:
			_ = p.proc().cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, p := range procs {
		select {
		case <-p.proc().done:
		case <-deadline.C:
			for _, k := range procs {
				_ = k.proc().cmd.Process.Kill()
			}
			<-p.proc().done
		}
	}
}

// serveProcs runs `serve --procs n`: n children `serve` processes of this executable with
// the flags fs was given, on consecutive ports from addr's, supervised until ctx ends or
// one of them dies.
func serveProcs(ctx context.Context, env *Env, fs *flag.FlagSet, addr string, n int) int {
	addrs, err := procsAddrs(addr, n)
	if err != nil {
		return usageError(env, "serve", "%v", err)
	}
	if err := checkPortsFree(addrs); err != nil {
		return harnessError(env, "serve", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return harnessError(env, "serve", fmt.Errorf("--procs: finding this executable: %w", err))
	}
	var childArgs []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "procs" && f.Name != "addr" {
			childArgs = append(childArgs, "--"+f.Name+"="+f.Value.String())
		}
	})
	exited := make(chan *serveChild, n)
	children, err := startServeChildren(exe, childArgs, addrs, exited)
	if err != nil {
		return harnessError(env, "serve", err)
	}
	if code, ok := awaitServeURLs(ctx, env, children); !ok {
		return code
	}
	select {
	case <-ctx.Done():
		if failed := stopChildren(children); failed != nil {
			fmt.Fprintf(env.Stderr, "sseharness serve: process %d of %d (%s) did not stop cleanly: %v; its stderr:\n%s", failed.index, n, failed.stdout.line(), failed.err, tailText(failed.stderr))
			return ExitHarness
		}
		fmt.Fprintln(env.Stderr, "sseharness serve: shut down")
		return ExitOK
	case c := <-exited:
		stopChildren(children)
		fmt.Fprintf(env.Stderr, "sseharness serve: process %d of %d (pid %d, %s) exited unexpectedly (%v); stopped the others. Its stderr:\n%s",
			c.index, n, c.cmd.Process.Pid, c.stdout.line(), exitText(c.err), tailText(c.stderr))
		return ExitHarness
	}
}

// procsAddrs are the listen addresses of n processes from addr: consecutive ports from
// addr's, or port 0 for each when addr's is 0. Its errors are usage errors.
func procsAddrs(addr string, n int) ([]string, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %v", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--addr %q: the port must be a number 0..65535 with --procs", addr)
	}
	var problems []string
	if n < 1 {
		problems = append(problems, fmt.Sprintf("--procs must be >= 1, got %d", n))
	}
	if port != 0 && port+n-1 > 65535 {
		problems = append(problems, fmt.Sprintf("--procs %d from port %d passes port 65535", n, port))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	addrs := make([]string, n)
	for i := range addrs {
		p := 0
		if port != 0 {
			p = port + i
		}
		addrs[i] = net.JoinHostPort(host, strconv.Itoa(p))
	}
	return addrs, nil
}

// checkPortsFree tries every fixed port before any process starts, so a port in use is
// one line naming it rather than a half-started set. (Another program may still take a
// port between this test and the child's listen: the child's failure reports that.)
func checkPortsFree(addrs []string) error {
	for i, a := range addrs {
		if _, port, _ := net.SplitHostPort(a); port == "0" {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			_, port, _ := net.SplitHostPort(a)
			return fmt.Errorf("port %s (process %d of %d) is not free: %v", port, i+1, len(addrs), err)
		}
		ln.Close()
	}
	return nil
}

// startServeChildren starts one `serve` child per address; each is sent on exited when
// it ends. A child that cannot start stops those started.
func startServeChildren(exe string, childArgs, addrs []string, exited chan<- *serveChild) ([]*serveChild, error) {
	children := make([]*serveChild, 0, len(addrs))
	for i, a := range addrs {
		c := &serveChild{
			index:     i + 1,
			addr:      a,
			stdout:    newFirstLineWriter(),
			stderr:    tailbuf.New(serveProcsStderrTail),
			childProc: childProc{done: make(chan struct{})},
		}
		c.cmd = exec.Command(exe, append(append([]string{"serve"}, childArgs...), "--addr="+a)...)
		c.cmd.Stdout = c.stdout
		c.cmd.Stderr = c.stderr
		c.cmd.SysProcAttr = childProcAttr()
		if err := c.cmd.Start(); err != nil {
			stopChildren(children)
			return nil, fmt.Errorf("starting process %d of %d: %w", i+1, len(addrs), err)
		}
		children = append(children, c)
		go func() {
			c.err = c.cmd.Wait()
			close(c.done)
			exited <- c
		}()
	}
	return children, nil
}

// awaitServeURLs waits for every child's URL and prints them, in port order; a child
// that exits first, or is too slow, fails the whole set (ok=false, with the exit code),
// and so does ctx ending (exit 0, the set stopped).
func awaitServeURLs(ctx context.Context, env *Env, children []*serveChild) (code int, ok bool) {
	n := len(children)
	startDeadline := time.NewTimer(serveProcsStartTimeout)
	defer startDeadline.Stop()
	for _, c := range children {
		select {
		case <-c.stdout.ready:
		case <-c.done:
			stopChildren(children)
			return harnessError(env, "serve", fmt.Errorf("process %d of %d (%s) did not start: %s; %s", c.index, n, c.addr, c.err, oneLineText(tailText(c.stderr)))), false
		case <-startDeadline.C:
			stopChildren(children)
			return harnessError(env, "serve", fmt.Errorf("process %d of %d (%s) printed no URL within %s", c.index, n, c.addr, serveProcsStartTimeout)), false
		case <-ctx.Done():
			stopChildren(children)
			fmt.Fprintln(env.Stderr, "sseharness serve: shut down")
			return ExitOK, false
		}
	}
	for _, c := range children {
		fmt.Fprintln(env.Stdout, c.stdout.line())
	}
	for _, c := range children {
		fmt.Fprintf(env.Stderr, "sseharness serve: process %d of %d (pid %d) listening on %s\n", c.index, n, c.cmd.Process.Pid, c.stdout.line())
	}
	fmt.Fprintf(env.Stderr, "sseharness serve: %d processes running; SIGINT/SIGTERM to stop\n", n)
	return 0, true
}

// stopChildren sends SIGTERM to every child still running, waits for all of them (killing
// those still there after serveProcsStopTimeout) and returns the first child that did
// not end with exit 0 after the signal, if any.
func stopChildren(children []*serveChild) *serveChild {
	stopProcs(children, serveProcsStopTimeout)
	for _, c := range children {
		if c.err != nil {
			return c
		}
	}
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// oneLineText joins a child's stderr lines with "; " for a one-line error.
func oneLineText(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "no output on stderr"
	}
	return strings.Join(strings.Split(s, "\n"), "; ")
}

// firstLineWriter keeps the first line written to it (at most 4 KiB) and discards the
// rest; ready is closed once that line is complete.
type firstLineWriter struct {
	mu    sync.Mutex
	buf   []byte
	done  bool
	ready chan struct{}
}

func newFirstLineWriter() *firstLineWriter { return &firstLineWriter{ready: make(chan struct{})} }

func (w *firstLineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	rest := p
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		rest = p[:i]
		w.done = true
	}
	w.buf = append(w.buf, rest[:min(len(rest), 4096-len(w.buf))]...)
	if w.done {
		close(w.ready)
	}
	return len(p), nil
}

// line is the first line, without its newline ("" until it is complete).
func (w *firstLineWriter) line() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		return ""
	}
	return strings.TrimSuffix(string(w.buf), "\r")
}

// tailText is a child's stderr tail for a message: "[...]" first when earlier output
// was dropped, a newline last.
func tailText(t *tailbuf.Buffer) string {
	s := t.String()
	if t.Cut() {
		s = "[...]" + s
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}
