package scenarios_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// TestSIGKILLMidHoldKeepsResultAndKillsChild: a run against the embedded reference
// server killed with SIGKILL in the middle of its hold leaves a valid result file
// marked incomplete with what it measured, and no reference server behind it.
func TestSIGKILLMidHoldKeepsResultAndKillsChild(t *testing.T) {
	out := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command(binary, "run", "--streams", "3", "--hold", "5m", "--out", out, "--out-interval", "300ms", "hold")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var children []int
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no partial result with events within 60s\n%s", buf.String())
		}
		time.Sleep(100 * time.Millisecond) // polling interval
		r, err := report.Load(out)
		if err != nil || len(r.Scenarios) != 1 || r.Scenarios[0].Metrics.Events == 0 {
			continue
		}
		if children = childPIDs(cmd.Process.Pid); len(children) > 0 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	res, err := report.Load(out)
	if err != nil {
		t.Fatalf("result file after SIGKILL: %v", err)
	}
	if !res.Incomplete || res.Scenarios[0].Metrics.Streams != 3 || res.Scenarios[0].Metrics.Events == 0 || res.Verdict == report.VerdictPass {
		t.Errorf("partial result: incomplete %v verdict %s metrics %+v", res.Incomplete, res.Verdict, res.Scenarios[0].Metrics)
	}
	deadline = time.Now().Add(10 * time.Second)
	for _, pid := range children {
		for alive(pid) {
			if time.Now().After(deadline) {
				_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
				t.Fatalf("reference child %d outlived the killed run", pid)
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
	}
}

// childPIDs lists the children of pid (Linux /proc).
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// alive reports whether pid runs (a zombie waiting to be reaped does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}
