package conform

import (
	"context"
	"fmt"
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
// gzip bomb, and reads the child's peak RSS from the kernel (wait4's ru_maxrss, the
// VmHWM of the exited process): each stays under 64 MB, and each fails exactly the
// checks it breaks.
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
		err := cmd.Run()
		r := run{stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.rss = ru.Maxrss << 10 // KiB on Linux
		}
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			r.err = err
		} else {
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
