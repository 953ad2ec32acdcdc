package scenarios

import (
	"strings"
	"testing"
	"time"

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
				part := h.Streams(n)
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
		CapacitySteps:  []int{0},
		Thresholds:     map[string]string{"nope": "1", "first-event": "fast"},
		Shard:          runner.Shard{Index: 3, Count: 2},
	}
	err := o.Validate(All())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"http:// or https://", "{session}", "streams -1", "must not be negative", "capacity step 0", `"nope"`, "first-event=fast", "shard 3/2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestThresholdOverrides: a scenario's own override beats a check-wide one, which beats
// the default; the embedded default applies only against the embedded server.
func TestThresholdOverrides(t *testing.T) {
	sc := halfOpen()
	h := &Harness{sc: sc, opts: Options{}}
	if got := h.Dur("reaped-stopped-readers"); got != 30*time.Second {
		t.Errorf("default %v, want 30s", got)
	}
	h.opts.Embedded = true
	if got := h.Dur("reaped-stopped-readers"); got != 5*time.Second {
		t.Errorf("embedded default %v, want 5s", got)
	}
	h.opts.Thresholds = map[string]string{"reaped-stopped-readers": "7s"}
	if got := h.Dur("reaped-stopped-readers"); got != 7*time.Second {
		t.Errorf("check-wide override %v, want 7s", got)
	}
	h.opts.Thresholds["half-open/reaped-stopped-readers"] = "9s"
	if got := h.Dur("reaped-stopped-readers"); got != 9*time.Second {
		t.Errorf("scenario override %v, want 9s", got)
	}
	if l := (&Harness{sc: sameIDReconnect()}).Limit("one-sender"); l.isDur || l.n != 0 {
		t.Errorf("numeric default parsed as %+v", l)
	}
}
