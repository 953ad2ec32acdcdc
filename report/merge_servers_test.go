package report

import (
	"strings"
	"testing"
)

// TestMergeMaxSaysWhenShardsScrapedDifferentServers: a server figure merged by max is
// the one server's worst when every shard scraped the same metrics URL, and the merged
// note says so when they scraped different servers; counts merged by sum say nothing.
func TestMergeMaxSaysWhenShardsScrapedDifferentServers(t *testing.T) {
	shard := func(i int, metricsURL string) *Result {
		return &Result{Target: "http://127.0.0.1:1", HarnessVersion: "v", Shard: &Shard{Index: i, Count: 2},
			Config: map[string]any{"metrics_url": metricsURL},
			Scenarios: []ScenarioResult{{Name: "s", Measures: []Measure{
				{Name: "extra-senders", Value: float64(i + 1), Of: 1, Merge: MergeMax},
				{Name: "late", Value: 1, Of: 5, Merge: MergeSum},
			}}}}
	}
	for _, tc := range []struct {
		name       string
		urls       [2]string
		wantServer bool
	}{
		{"one server", [2]string{"http://127.0.0.1:9/metrics", "http://127.0.0.1:9/metrics"}, false},
		{"two servers", [2]string{"http://127.0.0.1:9/metrics", "http://127.0.0.2:9/metrics"}, true},
	} {
		merged, err := Merge([]*Result{shard(0, tc.urls[0]), shard(1, tc.urls[1])})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ms := merged.Scenarios[0].Measures
		if ms[0].Value != 2 || ms[1].Value != 2 || ms[1].Of != 10 {
			t.Errorf("%s: measures %+v, want max 2 and sum 2 of 10", tc.name, ms)
		}
		said := strings.Contains(ms[0].Note, "2 different servers") && strings.Contains(ms[0].Note, "127.0.0.2")
		if said != tc.wantServer {
			t.Errorf("%s: max note %q, want a note on different servers: %v", tc.name, ms[0].Note, tc.wantServer)
		}
		if strings.Contains(ms[1].Note, "servers") {
			t.Errorf("%s: a sum says %q", tc.name, ms[1].Note)
		}
	}
}
