package cli

import (
	"bytes"
	"context"
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
	index  int // 1-based
	addr   string
	cmd    *exec.Cmd
	stdout *firstLineWriter
	stderr *tailbuf.Buffer
	done   chan struct{} // closed when the process has exited and been reaped
	err    error         // the exit status, valid once done is closed
}

// serveProcs runs `serve --procs n`: n children `serve` processes of this executable with
// the flags fs was given, on consecutive ports from addr's, supervised until ctx ends or
// one of them dies.
func serveProcs(ctx context.Context, env *Env, fs *flag.FlagSet, addr string, n int) int {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError(env, "serve", "--addr %q: %v", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return usageError(env, "serve", "--addr %q: the port must be a number 0..65535 with --procs", addr)
	}
	var problems []string
	if n < 1 {
		problems = append(problems, fmt.Sprintf("--procs must be >= 1, got %d", n))
	}
	if port != 0 && port+n-1 > 65535 {
		problems = append(problems, fmt.Sprintf("--procs %d from port %d passes port 65535", n, port))
	}
	if len(problems) > 0 {
		return usageError(env, "serve", "%s", strings.Join(problems, "; "))
	}
	addrs := make([]string, n)
	for i := range addrs {
		p := 0
		if port != 0 {
			p = port + i
		}
		addrs[i] = net.JoinHostPort(host, strconv.Itoa(p))
	}
	// Every port is tried before any process starts, so a port in use is one line
	// naming it rather than a half-started set. (Another program may still take a port
	// between this test and the child's listen: the child's failure reports that.)
	if port != 0 {
		for i, a := range addrs {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				return harnessError(env, "serve", fmt.Errorf("port %d (process %d of %d) is not free: %v", port+i, i+1, n, err))
			}
			ln.Close()
		}
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

	children := make([]*serveChild, 0, n)
	exited := make(chan *serveChild, n)
	for i, a := range addrs {
		c := &serveChild{
			index:  i + 1,
			addr:   a,
			stdout: newFirstLineWriter(),
			stderr: tailbuf.New(serveProcsStderrTail),
			done:   make(chan struct{}),
		}
		c.cmd = exec.Command(exe, append(append([]string{"serve"}, childArgs...), "--addr="+a)...)
		c.cmd.Stdout = c.stdout
		c.cmd.Stderr = c.stderr
		c.cmd.SysProcAttr = childProcAttr()
		if err := c.cmd.Start(); err != nil {
			stopChildren(children)
			return harnessError(env, "serve", fmt.Errorf("starting process %d of %d: %w", i+1, n, err))
		}
		children = append(children, c)
		go func() {
			c.err = c.cmd.Wait()
			close(c.done)
			exited <- c
		}()
	}

	// Wait for every URL; a child that exits first, or is too slow, fails the whole set.
	startDeadline := time.NewTimer(serveProcsStartTimeout)
	defer startDeadline.Stop()
	for _, c := range children {
		select {
		case <-c.stdout.ready:
		case <-c.done:
			stopChildren(children)
			return harnessError(env, "serve", fmt.Errorf("process %d of %d (%s) did not start: %s; %s", c.index, n, c.addr, c.err, oneLineText(tailText(c.stderr))))
		case <-startDeadline.C:
			stopChildren(children)
			return harnessError(env, "serve", fmt.Errorf("process %d of %d (%s) printed no URL within %s", c.index, n, c.addr, serveProcsStartTimeout))
		case <-ctx.Done():
			stopChildren(children)
			fmt.Fprintln(env.Stderr, "sseharness serve: shut down")
			return ExitOK
		}
	}
	for _, c := range children {
		fmt.Fprintln(env.Stdout, c.stdout.line())
	}
	for _, c := range children {
		fmt.Fprintf(env.Stderr, "sseharness serve: process %d of %d (pid %d) listening on %s\n", c.index, n, c.cmd.Process.Pid, c.stdout.line())
	}
	fmt.Fprintf(env.Stderr, "sseharness serve: %d processes running; SIGINT/SIGTERM to stop\n", n)

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

// stopChildren sends SIGTERM to every child still running, waits for all of them (killing
// those still there after serveProcsStopTimeout) and returns the first child that did
// not end with exit 0 after the signal, if any.
func stopChildren(children []*serveChild) *serveChild {
	for _, c := range children {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.NewTimer(serveProcsStopTimeout)
	defer deadline.Stop()
	var failed *serveChild
	for _, c := range children {
		select {
		case <-c.done:
		case <-deadline.C:
			for _, k := range children {
				_ = k.cmd.Process.Kill()
			}
			<-c.done
		}
		if c.err != nil && failed == nil {
			failed = c
		}
	}
	return failed
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
