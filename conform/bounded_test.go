//go:build linux

package conform

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

// maxConformRSS is issue 12's bound on conform's memory, whatever the target sends.
const maxConformRSS = 64 << 20

// TestHostileTargetsStayBounded runs the real CLI (built without the race detector, in
// a child process of its own) against an endless line, a flood of tiny events and a
// gzip bomb, and reads the child's peak RSS (VmHWM) once its checks are done: each
// stays under 64 MB, and each fails exactly the checks it breaks.
//
// The child writes its report to stdout only after the checks ran, and that pipe is
// shrunk to one page, so the child waits in that write, alive, while VmHWM is read.
// (wait4's ru_maxrss is no measure here: Linux carries the parent's high-water mark
// into a child forked with a shared address space, as os/exec does.)
func TestHostileTargetsStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and floods it for seconds")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sseharness")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sseharness/sseharness").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cases := []struct {
		name string
		opts func(*srvOpts)
		want []int
	}{
		{"endless-line", func(o *srvOpts) { o.endlessLine = true }, []int{23}},
		{"flood-of-tiny-events", func(o *srvOpts) { o.flood = true }, nil},
		{"gzip-bomb", func(o *srvOpts) { o.gzipBomb = true }, []int{23}},
	}
	type run struct {
		rss    int64
		code   int
		res    *report.Result
		err    error
		stderr string
	}
	runs := make([]run, len(cases))
	bases := make([]string, len(cases))
	for i, tc := range cases {
		opts := goodOpts()
		tc.opts(&opts)
		bases[i] = startTestServer(t, opts, false)
	}
	concurrently(len(cases), func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		file := filepath.Join(dir, cases[i].name+".json")
		cmd := exec.CommandContext(ctx, bin, "conform", "--target", bases[i]+"/s/"+cases[i].name, "--stop-url", bases[i]+"/done",
			"--idle", "4s", "--timeout", "5s", "--out", file)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		var r run
		r.rss, r.err = peakRSSAtOutput(cmd)
		r.stderr, r.code = stderr.String(), cmd.ProcessState.ExitCode()
		if r.err == nil {
			r.res, r.err = report.Load(file)
		}
		runs[i] = r
	})
	afterBytes := regexp.MustCompile(`after (\d+) bytes`)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runs[i]
			if r.err != nil {
				t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.stderr)
			}
			t.Logf("peak RSS %.1f MB", float64(r.rss)/(1<<20))
			if r.rss == 0 || r.rss >= maxConformRSS {
				t.Errorf("peak RSS %d bytes, want under %d", r.rss, maxConformRSS)
			}
			checks := r.res.Scenarios[0].Checks
			var failed []int
			var table strings.Builder
			for _, c := range checks {
				fmt.Fprintf(&table, "  %-24s %-8s %-5s %s\n", c.Name, c.Level, c.Verdict, c.Measured)
				if c.Verdict == report.VerdictFail {
					id, _ := strconv.Atoi(strings.Fields(c.Name)[0])
					failed = append(failed, id)
				}
			}
			sort.Ints(failed)
			want := append([]int(nil), tc.want...)
			if fmt.Sprint(failed) != fmt.Sprint(want) {
				t.Errorf("failed checks %v, want %v", failed, want)
			}
			if len(want) > 0 {
				seen := checks[22].Measured
				m := afterBytes.FindStringSubmatch(seen)
				if m == nil {
					t.Errorf("check 23 does not say where the read stopped: %q", seen)
				} else if n, _ := strconv.ParseInt(m[1], 10, 64); n > 2<<20 {
					t.Errorf("the read stopped after %d bytes, want about the 1 MiB limit: %q", n, seen)
				}
			}
			if t.Failed() {
				t.Logf("\n%s", table.String())
			}
		})
	}
}

// peakRSSAtOutput runs cmd with stdout on a one-page pipe, reads the child's VmHWM when
// its first output byte arrives (the child is then blocked writing the rest), drains
// the output and waits. A non-zero exit is not an error: conform exits 1 on a failed
// MUST check.
func peakRSSAtOutput(cmd *exec.Cmd) (int64, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	const fSetPipeSz = 1031 // F_SETPIPE_SZ
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), fSetPipeSz, 4096); errno != 0 {
		w.Close()
		return 0, fmt.Errorf("F_SETPIPE_SZ: %v", errno)
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, err
	}
	w.Close()
	_ = r.SetReadDeadline(time.Now().Add(90 * time.Second))
	first := make([]byte, 1)
	_, readErr := io.ReadFull(r, first)
	var rss int64
	status, statusErr := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	_ = r.SetReadDeadline(time.Time{})
	rest, _ := io.ReadAll(r)
	waitErr := cmd.Wait()
	if readErr != nil {
		return 0, fmt.Errorf("no output from the child: %v (wait: %v)", readErr, waitErr)
	}
	if len(rest) < 4096 {
		return 0, fmt.Errorf("output of %d bytes fits the pipe: the child was not held alive for the measure", len(rest)+1)
	}
	if statusErr != nil {
		return 0, statusErr
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %v", v, err)
			}
			rss = kb << 10
		}
	}
	if rss == 0 {
		return 0, fmt.Errorf("no VmHWM in /proc/%d/status", cmd.Process.Pid)
	}
	if _, exit := waitErr.(*exec.ExitError); waitErr != nil && !exit {
		return 0, waitErr
	}
	return rss, nil
}
