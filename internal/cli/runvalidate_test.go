package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// TestRunValidateReportsEveryProblemAtOnce: a command line with several independent
// mistakes is refused with exit 2 in one line that names each of them, before anything
// starts.
func TestRunValidateReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "no", "dir", "r.json")
	args := []string{"run", "--target", "http://:18090", "--fault", "no-204", "--out-interval", "-1s",
		"--trace-limit", "0", "--start-at", "soon", "--workers", "999", "--out", missing,
		"--metrics-addr", "nohostport", "--max-concurrency", "0", "hold"}
	var out bytes.Buffer
	env, stderr := serveTestEnv(&out)
	start := time.Now()
	if code := Main(context.Background(), args, env); code != ExitUsage {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitUsage, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refused after %v, want at once", d)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "Run 'sseharness run -h'") {
		t.Fatalf("want one line of problems and the usage hint, got %q", stderr)
	}
	for _, want := range []string{
		"has a port but no host name",
		"--fault applies to the embedded reference server only",
		"--out-interval -1s",
		"--trace-limit 0",
		"--start-at:",
		"--workers 999",
		"--out " + missing + ": directory",
		`--metrics-addr "nohostport"`,
		"--max-concurrency 0",
	} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the problems lack %q:\n%s", want, lines[0])
		}
	}
	if n := strings.Count(lines[0], "http://:18090"); n != 1 {
		t.Errorf("the bad target is reported %d times, want once: %s", n, lines[0])
	}
	if out.Len() != 0 {
		t.Errorf("printed %q on stdout", out.String())
	}
}

// TestRunValidateResolvesThePlan: a good command line becomes the plan the run
// executes: the shard and capacity steps parsed by their flag types, the options of
// the target, and the result's configuration.
func TestRunValidateResolvesThePlan(t *testing.T) {
	env, stderr := serveTestEnv(&bytes.Buffer{})
	f, code, ok := parseRunFlags(env, []string{"--target", "http://127.0.0.1:1/", "--shard", "1/3",
		"--capacity-steps", "10, 20", "--hold", "2s", "--metrics-url", "none", "capacity", "hold"})
	if !ok {
		t.Fatalf("parse: exit %d, %s", code, stderr)
	}
	p, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if p.shard != (runner.Shard{Index: 1, Count: 3}) || p.embedded || p.compact != true {
		t.Errorf("shard %+v embedded %v compact %v", p.shard, p.embedded, p.compact)
	}
	if !slices.Equal(p.opts.CapacityConfig.Steps, []int{10, 20}) || !slices.Equal(p.cfg.CapacitySteps, []int{10, 20}) {
		t.Errorf("steps %v, in the result %v", p.opts.CapacityConfig.Steps, p.cfg.CapacitySteps)
	}
	if p.streams != 20 || p.workers != 1 {
		t.Errorf("streams %d workers %d, want 20 and 1", p.streams, p.workers)
	}
	if got := strings.Join(p.cfg.Scenarios, ","); got != "capacity,hold" || p.cfg.Hold != "2s" || p.cfg.MetricsURL != "none" {
		t.Errorf("result config scenarios %q hold %q metrics %q", got, p.cfg.Hold, p.cfg.MetricsURL)
	}
	o := p.forTarget("http://127.0.0.1:1/")
	if o.Target != "http://127.0.0.1:1/" || o.SixConnectionConfig.OrdinaryURL != "http://127.0.0.1:1/healthz" || o.MetricsURL != "" {
		t.Errorf("options for the target: %q %q %q", o.Target, o.SixConnectionConfig.OrdinaryURL, o.MetricsURL)
	}
}

// TestShardAndStepsFlags: the flag.Value types of --shard and --capacity-steps accept
// what they document, refuse the rest, and print what they hold.
func TestShardAndStepsFlags(t *testing.T) {
	var sh shardFlag
	for _, bad := range []string{"", "x", "1", "3/3", "-1/2", "0/0", "a/b", "1/2/3"} {
		if err := sh.Set(bad); err == nil {
			t.Errorf("--shard %q accepted as %v", bad, sh)
		}
	}
	if err := sh.Set("2/4"); err != nil || sh != (shardFlag{Index: 2, Count: 4}) || sh.String() != "2/4" {
		t.Errorf("--shard 2/4: %v, %+v, %q", err, sh, sh.String())
	}
	var st stepsFlag
	for _, bad := range []string{"x", "1,,2", "1;2", "1.5"} {
		if err := st.Set(bad); err == nil {
			t.Errorf("--capacity-steps %q accepted as %v", bad, st)
		}
	}
	if err := st.Set(" 5,10 ,20"); err != nil || st.String() != "5,10,20" {
		t.Errorf("--capacity-steps: %v, %q", err, st.String())
	}
	if err := st.Set(""); err != nil || st != nil {
		t.Errorf("--capacity-steps \"\" (the defaults): %v, %v", err, st)
	}
}

// TestRunServerArgsJudgedByServeFlags: a --server-arg serve does not know, with a value
// it cannot take, or making a configuration it refuses is a usage error (exit 2, one
// line) before any child server starts, not a scenario that could not run (exit 3).
func TestRunServerArgsJudgedByServeFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--server-arg=--no-such-flag=1"}, "--server-arg: flag provided but not defined: -no-such-flag"},
		{[]string{"--server-arg=--h2-max-streams=many"}, `invalid value "many" for flag -h2-max-streams`},
		{[]string{"--server-arg=--max-sessions=0"}, "max-sessions must be >= 1"},
		{[]string{"--server-arg", "--tick=-1s", "--server-arg", "--replay=-2"}, "replay must be >= 0"},
	} {
		args := append(append([]string{"run"}, tc.args...), "h2-stream-cap", "resume")
		if stderr := checkUsageError(t, args, tc.want); stderr != "" && strings.Count(stderr, tc.want) != 1 {
			t.Errorf("%v: want the problem once: %q", tc.args, stderr)
		}
	}
	// A flag serve takes is accepted: the check refuses only what serve would.
	env, _ := serveTestEnv(&bytes.Buffer{})
	f, _, ok := parseRunFlags(env, []string{"--server-arg=--h2-max-streams=100", "--server-arg=--tick=50ms", "h2-stream-cap"})
	if !ok {
		t.Fatal("parse failed")
	}
	if _, err := f.Validate(); err != nil {
		t.Errorf("good server args refused: %v", err)
	}
}
