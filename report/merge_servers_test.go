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

// TestMergedServerFiguresAddUpDifferentServers: shards that scraped one server merge
// its figures once (the first shard's); shards that scraped different servers add each
// server's figures up, per stream over all streams, and the note names the servers. A
// metric one server lacks is not made up.
func TestMergedServerFiguresAddUpDifferentServers(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	shard := func(i int, metricsURL string, rssBase, rssPeak float64, withOpen bool) *Result {
		ms := []ServerMetric{{Name: "process_resident_memory_bytes", Baseline: f(rssBase), Peak: f(rssPeak), AfterDrain: f(rssBase)}}
		if withOpen {
			ms = append(ms, ServerMetric{Name: "open_streams", Baseline: f(0), Peak: f(50), AfterDrain: f(0)})
		}
		return &Result{Target: "http://127.0.0.1:1", HarnessVersion: "v", Shard: &Shard{Index: i, Count: 2},
			Config:    map[string]any{"metrics_url": metricsURL},
			Scenarios: []ScenarioResult{{Name: "s", Metrics: Metrics{Streams: 50}, Server: ServerFigures{Metrics: ms}}}}
	}
	metric := func(sf ServerFigures, name string) *ServerMetric {
		for i := range sf.Metrics {
			if sf.Metrics[i].Name == name {
				return &sf.Metrics[i]
			}
		}
		return nil
	}

	one, err := Merge([]*Result{shard(0, "http://127.0.0.1:9/metrics", 1000, 6000, true), shard(1, "http://127.0.0.1:9/metrics", 1000, 6000, true)})
	if err != nil {
		t.Fatal(err)
	}
	sv := one.Scenarios[0].Server
	if m := metric(sv, "process_resident_memory_bytes"); m == nil || *m.Peak != 6000 || *m.PerStream != 50 || !strings.Contains(sv.Note, "same server") {
		t.Errorf("one server: %+v, note %q: want its own peak 6000, 50 per stream of 100", m, sv.Note)
	}

	two, err := Merge([]*Result{shard(0, "http://127.0.0.1:9/metrics", 1000, 6000, true), shard(1, "http://127.0.0.2:9/metrics", 2000, 4000, false)})
	if err != nil {
		t.Fatal(err)
	}
	sv = two.Scenarios[0].Server
	m := metric(sv, "process_resident_memory_bytes")
	if m == nil || *m.Baseline != 3000 || *m.Peak != 10000 || *m.PerStream != 70 {
		t.Errorf("two servers: %+v, want baseline 3000, peak 10000, 70 per stream of 100", m)
	}
	if o := metric(sv, "open_streams"); o == nil || o.Peak != nil || o.PerStream != nil {
		t.Errorf("open_streams, which one server lacks: %+v, want no figures", o)
	}
	if !strings.Contains(sv.Note, "2 different servers") || !strings.Contains(sv.Note, "127.0.0.2") {
		t.Errorf("note %q: want the two servers named", sv.Note)
	}
}
