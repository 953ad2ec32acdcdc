package cli

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gone reports whether pid no longer runs: no such process, or a zombie nobody has
// reaped yet (an orphan's reaper may be slow, or absent in a container).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	return strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// A parent killed with SIGKILL cannot stop its children itself: the kernel's
// parent-death signal (SIGTERM) does.
func TestServeProcsChildrenDieWithAKilledParent(t *testing.T) {
	bin := binaryTest(t)
	p := startProcs(t, bin, 2, "--addr", "127.0.0.1:0")
	for _, u := range p.urls {
		healthz(t, u)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.await(t, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for i, pid := range p.pids {
		for !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("child %d (pid %d) still runs 10s after its parent was killed", i+1, pid)
			}
			time.Sleep(20 * time.Millisecond) // polling interval
		}
	}
}
