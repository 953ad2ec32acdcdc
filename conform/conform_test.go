package conform

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// testIdle keeps each run short; the servers' keep-alive (150 ms) is well inside it.
const testIdle = time.Second

// runConform runs the checks against base+"/s/<test name>" and returns the findings by id.
func runConform(t *testing.T, base string, mod func(*Config)) map[int]Finding {
	t.Helper()
	cfg := Config{
		Target:  base + "/s/" + strings.ReplaceAll(t.Name(), "/", "_"),
		StopURL: base + "/done",
		Idle:    testIdle,
		Timeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Findings) != 22 {
		t.Fatalf("got %d findings, want 22", len(res.Findings))
	}
	out := map[int]Finding{}
	for i, f := range res.Findings {
		if f.ID != i+1 {
			t.Fatalf("finding %d has id %d", i, f.ID)
		}
		if f.Seen == "" || f.Spec == "" || f.Name == "" || f.Level == "" {
			t.Fatalf("finding %d incomplete: %+v", f.ID, f)
		}
		out[f.ID] = f
	}
	return out
}

// failing returns the ids of failed checks, sorted.
func failing(fs map[int]Finding) []int {
	var ids []int
	for id, f := range fs {
		if f.Verdict == Fail {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

func dump(fs map[int]Finding) string {
	var b strings.Builder
	for id := 1; id <= 22; id++ {
		f := fs[id]
		fmt.Fprintf(&b, "  %2d %-22s %-8s %-4s %s\n", id, f.Name, f.Level, f.Verdict, f.Seen)
	}
	return b.String()
}

// TestGoodServerFailsNothing: a server that breaks no rule gets no fail, over HTTP/1.1
// and over h2 (TLS, --insecure).
func TestGoodServerFailsNothing(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			t.Parallel()
			base := startTestServer(t, goodOpts(), h2)
			fs := runConform(t, base, func(c *Config) { c.Insecure = h2 })
			t.Log("\n" + dump(fs))
			if ids := failing(fs); len(ids) > 0 {
				t.Fatalf("failed checks %v on a correct server:\n%s", ids, dump(fs))
			}
			for _, id := range []int{1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22} {
				if fs[id].Verdict != Pass {
					t.Errorf("check %d: %s, want pass\n%s", id, fs[id].Verdict, dump(fs))
				}
			}
			want20 := Warn
			if h2 {
				want20 = Pass
			}
			if fs[20].Verdict != want20 {
				t.Errorf("check 20 (protocol): %s (%s), want %s", fs[20].Verdict, fs[20].Seen, want20)
			}
			if fs[5].Verdict != NA || fs[11].Verdict != NA {
				t.Errorf("checks 5 and 11 need a server close and must be n/a here:\n%s", dump(fs))
			}
		})
	}
}
