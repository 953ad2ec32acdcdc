package scenarios

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sseharness/sseharness/internal/tailbuf"
)

// ServerProcess is a `sseharness serve` child process: the embedded reference server a run
// starts when it has no --target, so that the server's figures (goroutines, memory) are its
// own and not mixed with the runner's.
type ServerProcess struct {
	// URL is the base URL the server printed as its first line, e.g. http://127.0.0.1:41234.
	URL string

	cmd    *exec.Cmd
	done   chan struct{}
	err    error // the process's exit error, valid once done is closed
	stderr *tailbuf.Buffer
}

// StartServer runs `exe serve --addr 127.0.0.1:0 args...`, waits for the URL it prints and
// for /healthz to answer, and returns the running process. The process is killed when ctx
// ends; call Stop to end it gracefully.
func StartServer(ctx context.Context, exe string, args []string) (*ServerProcess, error) {
	full := append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(exe, full...)
	cmd.SysProcAttr = childProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderrTail := tailbuf.New(4096)
	cmd.Stderr = stderrTail
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reference server: %w", err)
	}
	sp := &ServerProcess{cmd: cmd, done: make(chan struct{}), stderr: stderrTail}
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, err := br.ReadString('\n')
		if err == nil {
			lines <- strings.TrimSpace(line)
		}
		close(lines)
		// Keep draining so the child never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, br)
	}()
	go func() {
		sp.err = cmd.Wait()
		close(sp.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-sp.done:
		}
	}()

	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case line, ok := <-lines:
		if !ok || !strings.HasPrefix(line, "http") {
			sp.Kill()
			return nil, fmt.Errorf("reference server did not print its URL (first line %q): %s", line, strings.TrimSpace(stderrTail.String()))
		}
		sp.URL = strings.TrimRight(line, "/")
	case <-sp.done:
		return nil, fmt.Errorf("reference server exited at start (%v): %s", sp.err, strings.TrimSpace(stderrTail.String()))
	case <-timer.C:
		sp.Kill()
		return nil, errors.New("reference server did not start within 15s")
	}
	if err := sp.awaitHealthy(ctx, 10*time.Second); err != nil {
		sp.Kill()
		return nil, err
	}
	return sp, nil
}

func (s *ServerProcess) awaitHealthy(ctx context.Context, within time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: insecureTransport()}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reference server at %s did not answer /healthz within %s", s.URL, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return fmt.Errorf("reference server exited (%v): %s", s.err, strings.TrimSpace(s.stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for the process to exit; after grace it is killed.
// It returns an error when the server had to be killed or exited with an error.
func (s *ServerProcess) Stop(grace time.Duration) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.done:
		if s.err != nil {
			return fmt.Errorf("reference server exit: %v: %s", s.err, strings.TrimSpace(s.stderr.String()))
		}
		return nil
	case <-t.C:
		s.Kill()
		return fmt.Errorf("reference server ignored SIGTERM for %s and was killed", grace)
	}
}

// Kill ends the process at once and waits for it.
func (s *ServerProcess) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// insecureTransport is for the embedded server's self-signed certificate: its health
// check and nothing else.
func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // our own child
}
