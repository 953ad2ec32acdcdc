package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
	"github.com/sseharness/sseharness/runner"
)

// TestShardSharesAreDisjointAndComplete: for any stream count and shard count, the
// shards' shares add up to the whole, and no two shards make the same session id.
func TestShardSharesAreDisjointAndComplete(t *testing.T) {
	sc := starvation()
	for _, n := range []int{1, 2, 7, 30, 101} {
		for _, count := range []int{1, 2, 3, 4} {
			if n < count {
				continue
			}
			total := 0
			seen := map[string]int{}
			for i := range count {
				h := &Harness{sc: sc, opts: Options{RunID: "r", Shard: runner.Shard{Index: i, Count: count}}}
				part := h.streams(n)
				total += part
				for j := range part {
					id := h.Session("", j)
					if prev, dup := seen[id]; dup {
						t.Fatalf("n=%d count=%d: session %s made by shards %d and %d", n, count, id, prev, i)
					}
					seen[id] = i
				}
			}
			if total != n {
				t.Errorf("n=%d count=%d: shares add up to %d", n, count, total)
			}
		}
	}
}

// TestValidateReportsEveryProblem: one Validate call names every bad option.
func TestValidateReportsEveryProblem(t *testing.T) {
	o := Options{
		Target:         "ftp://x",
		StreamTemplate: "{target}/events",
		Streams:        -1,
		Hold:           -time.Second,
		CapacityConfig: CapacityConfig{Steps: []int{0}},
		Thresholds:     map[string]string{"nope": "1", "first-event": "fast"},
		Shard:          runner.Shard{Index: 3, Count: 2},
	}
	err := o.Validate(All())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"http:// or https://", "streams -1", "must not be negative", "capacity step 0", `"nope"`, "first-event=fast", "shard 3/2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestThresholdOverrides: a scenario's own override beats a check-wide one, which beats
// the default; the embedded default applies only against the embedded server. Each is
// parsed once, when the run is configured.
func TestThresholdOverrides(t *testing.T) {
	sc := halfOpen()
	spec, _ := sc.spec("reaped-stopped-readers")
	dur := func(o Options) time.Duration {
		t.Helper()
		lims, err := sc.limits(o)
		if err != nil {
			t.Fatal(err)
		}
		return lims[spec].d
	}
	if got := dur(Options{}); got != 30*time.Second {
		t.Errorf("default %v, want 30s", got)
	}
	if got := dur(Options{Embedded: true}); got != 5*time.Second {
		t.Errorf("embedded default %v, want 5s", got)
	}
	thr := map[string]string{"reaped-stopped-readers": "7s"}
	if got := dur(Options{Embedded: true, Thresholds: thr}); got != 7*time.Second {
		t.Errorf("check-wide override %v, want 7s", got)
	}
	thr["half-open/reaped-stopped-readers"] = "9s"
	if got := dur(Options{Thresholds: thr}); got != 9*time.Second {
		t.Errorf("scenario override %v, want 9s", got)
	}
	same := sameIDReconnect()
	lims, _ := same.limits(Options{})
	if c, _ := same.spec("one-sender"); lims[c].isDur || lims[c].n != 0 {
		t.Errorf("numeric default parsed as %+v", lims[c])
	}
	if _, err := sc.limits(Options{Thresholds: map[string]string{"reaped-stopped-readers": "soon", "reaped-blackholed": "later"}}); err == nil ||
		!strings.Contains(err.Error(), "soon") || !strings.Contains(err.Error(), "later") {
		t.Errorf("bad overrides: %v, want both reported", err)
	}
}

// TestScenariosAreValidDeclarations: every scenario's checks have unique names and
// defaults that parse; a check another scenario declares is refused, not a crash.
func TestScenariosAreValidDeclarations(t *testing.T) {
	for _, s := range All() {
		if err := s.Validate(); err != nil {
			t.Error(err)
		}
	}
	bad := &Scenario{Name: "bad", Checks: []*CheckSpec{{Name: "a", Default: "1s"}, {Name: "a", Default: "soon"}, {}}}
	err := bad.Validate()
	for _, want := range []string{"declared twice", `"soon"`, "without a name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	h := newHarness(halfOpen(), Options{Target: "http://127.0.0.1:1", StreamTemplate: "{target}/{session}"})
	defer h.Finish()
	other, _ := sameIDReconnect().spec("one-sender")
	h.offenders(other, 0, 1, "")
	if len(h.checks) != 1 || h.checks[0].Verdict != "fail" || !strings.Contains(h.checks[0].Detail, "not declared") {
		t.Errorf("undeclared check recorded as %+v", h.checks)
	}
}

// TestDeclarationsAreValidated: a declared scenario whose phase waits on a check it does
// not declare, whose check nothing judges, or that has no load is refused, every
// problem at once.
func TestDeclarationsAreValidated(t *testing.T) {
	foreign := &CheckSpec{Name: "x", Default: "1s", Rule: &report.Rule{Metric: "errors", Op: "<=", Limit: AtThreshold}}
	unjudged := &CheckSpec{Name: "y", Default: "0"}
	bad := &Scenario{Name: "bad", Checks: []*CheckSpec{unjudged},
		Load: []Phase{{Streams: 0, Within: foreign}}}
	err := bad.Validate()
	for _, want := range []string{"streams 0", "no milestone", "does not declare", "exactly one way to be judged"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err := (&Scenario{Name: "empty"}).Validate(); err == nil || !strings.Contains(err.Error(), "no load phase") {
		t.Errorf("a scenario with neither load nor run: %v", err)
	}
}

// TestRuleAtThreshold: AtThreshold becomes the check's threshold in the rule and in its
// And rules, and the declaration itself is left as it was.
func TestRuleAtThreshold(t *testing.T) {
	decl := report.Rule{Metric: "a", Op: "<=", Limit: AtThreshold, And: []report.Rule{{Metric: "b", Op: "<=", Limit: 0}, {Metric: "c", Op: "<=", Limit: AtThreshold}}}
	got := ruleAt(decl, 250)
	if got.Limit != 250 || got.And[0].Limit != 0 || got.And[1].Limit != 250 {
		t.Errorf("ruleAt: %+v", got)
	}
	if decl.Limit != AtThreshold || decl.And[1].Limit != AtThreshold {
		t.Errorf("the declaration changed: %+v", decl)
	}
}
