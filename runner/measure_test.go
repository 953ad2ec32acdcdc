package runner

import (
	"fmt"
	"testing"
	"time"
)

func TestSeqTracker(t *testing.T) {
	// o is an event: id, time in ms, first of its connection; then what it should say.
	type o struct {
		seq   int64
		ms    int64
		first bool
		want  seqResult
	}
	ok := seqResult{}
	miss := func(n int64) seqResult { return seqResult{missing: n} }
	dup := seqResult{dup: true}
	ooo := seqResult{outOfOrder: true}
	reset := seqResult{reset: true}
	jump := func(n int64) seqResult { return seqResult{jump: true, jumped: n} }
	// steady is a run of ids 1..n, one per 10 ms (100 ids/s, known after a second).
	steady := func(n int64) []o {
		var out []o
		for id := int64(1); id <= n; id++ {
			out = append(out, o{id, id * 10, id == 1, ok})
		}
		return out
	}
	cat := func(parts ...[]o) []o {
		var out []o
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name string
		seed string
		obs  []o
	}{
		{"in order", "", []o{{1, 0, true, ok}, {2, 1, false, ok}, {3, 2, false, ok}}},
		{"gap", "", []o{{1, 0, true, ok}, {4, 1, false, miss(2)}, {5, 2, false, ok}}},
		{"duplicate of highest", "", []o{{1, 0, true, ok}, {2, 1, false, ok}, {2, 2, false, dup}}},
		{"duplicate below highest", "", []o{{1, 0, true, ok}, {2, 1, false, ok}, {3, 2, false, ok}, {2, 3, false, dup}}},
		{"late arrival fills a gap", "", []o{{1, 0, true, ok}, {3, 1, false, miss(1)}, {2, 2, false, ooo}, {2, 3, false, dup}}},
		{"seeded resume", "5", []o{{6, 0, true, ok}, {7, 1, false, ok}}},
		{"seeded resume with loss", "5", []o{{9, 0, true, miss(3)}}},
		{"seeded resume replays the seed", "5", []o{{5, 0, true, dup}, {6, 1, false, ok}}},
		{"resume replays from too early", "", cat(steady(5), []o{{3, 100, true, dup}, {4, 101, false, dup}, {5, 102, false, dup}, {6, 103, false, ok}})},
		{"per-connection counter resets", "", cat(steady(200), []o{{1, 3000, true, reset}, {2, 3010, false, ok}, {4, 3020, false, miss(1)}})},
		{"restarted server behind a seed", "500", []o{{1, 0, true, reset}, {2, 10, false, ok}}},
		{"going back mid-connection is out of order, not a reset", "", cat(steady(200), []o{{1, 2010, false, dup}, {150, 2020, false, dup}})},
		{"greeting id 0 then the live counter", "", []o{{0, 0, true, ok}, {5000, 200, false, jump(4999)}, {5001, 210, false, ok}, {5003, 220, false, miss(1)}}},
		{"greeting, live, next connection's greeting", "", []o{{0, 0, true, ok}, {5000, 200, false, jump(4999)}, {5001, 210, false, ok},
			{0, 5000, true, reset}, {5100, 5100, false, jump(5099)}}},
		{"loss the id rate explains is missing", "", cat(steady(200), []o{{200 + 2000, 2000 + 3000, true, miss(1999)}})},
		{"a jump the id rate cannot explain", "", cat(steady(200), []o{{200 + 50000, 2010, false, jump(49999)}})},
		{"beyond the window is out of order", "", cat(steady(200), []o{{200 + seqWindow + 10, 2000 + 2000, false, miss(seqWindow + 9)}, {150, 4010, false, ooo}})},
		{"beyond the window at a reconnect is a reset", "", cat(steady(200), []o{{200 + seqWindow + 10, 2000 + 2000, false, miss(seqWindow + 9)}, {150, 4010, true, reset}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			tr.seed(tc.seed, 0)
			for i, ev := range tc.obs {
				got := tr.observe(ev.seq, ev.ms*int64(time.Millisecond), ev.first)
				if got != ev.want {
					t.Errorf("event %d (id %d at %d ms, first %v): %+v, want %+v", i, ev.seq, ev.ms, ev.first, got, ev.want)
				}
			}
		})
	}
}

func TestSeqTrackerWindowWraps(t *testing.T) {
	// Ids far past the window size still detect a recent duplicate: the ring reuses
	// bits, and a bit cleared for a skipped id must not report an old id as seen.
	var tr seqTracker
	at := int64(0)
	for s := int64(0); s < 5*seqWindow; s += 3 {
		at += int64(time.Millisecond)
		if r := tr.observe(s, at, s == 0); r.dup || r.outOfOrder || r.jump || r.reset || (s > 0 && r.missing != 2) {
			t.Fatalf("id %d: %+v", s, r)
		}
	}
	last := int64(5*seqWindow - 1 - (5*seqWindow-1)%3)
	if r := tr.observe(last-3, at, false); !r.dup {
		t.Errorf("recent id %d not reported duplicate", last-3)
	}
	if r := tr.observe(last-4, at, false); r.dup || !r.outOfOrder {
		t.Errorf("skipped id %d: %+v, want out of order", last-4, r)
	}
}

func TestOpaqueIDs(t *testing.T) {
	var tr seqTracker
	for i, tc := range []struct {
		id  string
		dup bool
	}{
		{"1795656668:4", false}, {"1795656668:5", false}, {"1795656668:5", true},
		{"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", false}, {"1795656668:4", true},
	} {
		if got := tr.observeOpaque(tc.id); got != tc.dup {
			t.Errorf("opaque id %d %q: duplicate %v, want %v", i, tc.id, got, tc.dup)
		}
	}
	// The window is bounded: an id older than the last opaqueWindowSize is forgotten.
	var w seqTracker
	w.observeOpaque("first")
	for i := range opaqueWindowSize {
		w.observeOpaque(fmt.Sprintf("id-%d", i))
	}
	if w.observeOpaque("first") {
		t.Error("an id older than the window is still remembered")
	}
	if !w.observeOpaque(fmt.Sprintf("id-%d", opaqueWindowSize-1)) {
		t.Error("the most recent id is forgotten")
	}
}

func TestParseSeq(t *testing.T) {
	for id, want := range map[string]int64{"": -1, "0": 0, "42": 42, "-1": -1, "4a": -1, "abc": -1, "+3": -1,
		"99999999999999999999": -1, " 1": -1} {
		if got := parseSeq(id); got != want {
			t.Errorf("parseSeq(%q) = %d, want %d", id, got, want)
		}
	}
}

func TestSenderTracker(t *testing.T) {
	tests := []struct {
		name    string
		senders []string
		flags   []bool
	}{
		{"one sender", []string{"A", "A", "A"}, []bool{false, false, false}},
		{"plain switch", []string{"A", "A", "B", "B"}, []bool{false, false, false, false}},
		{"A B A", []string{"A", "B", "A"}, []bool{false, false, true}},
		{"interleaving keeps flagging", []string{"A", "B", "A", "A", "B"}, []bool{false, false, true, true, true}},
		{"switch chain without return", []string{"A", "B", "C", "D"}, []bool{false, false, false, false}},
		{"absent sender ignored", []string{"A", "", "A"}, []bool{false, false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st senderTracker
			for i, s := range tc.senders {
				if got := st.observe(s); got != tc.flags[i] {
					t.Errorf("event %d (sender %q): duplicate sender = %v, want %v", i, s, got, tc.flags[i])
				}
			}
		})
	}
}

func TestScanData(t *testing.T) {
	tests := []struct {
		data      string
		sent      int64
		hasSent   bool
		sender    string
		hasSender bool
	}{
		{`{"sent_unix_ns":1700000000000000000,"sender":"a1"}`, 1700000000000000000, true, "a1", true},
		{` { "seq" : 3 , "sender" : "b" , "sent_unix_ns" : 12 } `, 12, true, "b", true},
		{`{"nested":{"sent_unix_ns":5,"sender":"x"},"list":[1,{"a":"}"}],"sent_unix_ns":7}`, 7, true, "", false},
		{`{"sent_unix_ns":"123","sender":42}`, 123, true, "42", true},
		{`{"sent_unix_ns":1.5e3}`, 1500, true, "", false},
		{`{"sender":"esc\"aped","sent_unix_ns":1}`, 1, true, `esc"aped`, true},
		{`{"sen\u0064er":"k"}`, 0, false, "k", true},
		{`{"sender":null}`, 0, false, "", false},
		{`{"str":"a,b}\"c","sent_unix_ns":9}`, 9, true, "", false},
		{`plain text`, 0, false, "", false},
		{`[1,2]`, 0, false, "", false},
		{`{"sent_unix_ns":`, 0, false, "", false},
		{`{"sent_unix_ns":1 "sender":"a"}`, 0, false, "", false},
		{`{"sent_unix_ns":"nan"}`, 0, false, "", false},
		{``, 0, false, "", false},
	}
	for _, tc := range tests {
		f := scanData(tc.data, "sent_unix_ns", SentNanos, "sender")
		if f.sent != tc.sent || f.hasSent != tc.hasSent || f.sender != tc.sender || f.hasSender != tc.hasSender {
			t.Errorf("scanData(%s) = %+v, want sent=%d/%v sender=%q/%v", tc.data, f, tc.sent, tc.hasSent, tc.sender, tc.hasSender)
		}
	}
	if f := scanData(`{"t":5,"who":"z"}`, "t", SentNanos, "who"); f.sent != 5 || f.sender != "z" {
		t.Errorf("configured field names not used: %+v", f)
	}
}

func TestScanDataAllocations(t *testing.T) {
	data := `{"seq":12345,"sender":"sender-1","sent_unix_ns":1700000000123456789,"payload":"xxxxxxxxxxxxxxxx"}`
	allocs := testing.AllocsPerRun(100, func() {
		f := scanData(data, "sent_unix_ns", SentNanos, "sender")
		if !f.hasSent || !f.hasSender {
			t.Fatal("fields not found")
		}
	})
	if allocs != 0 {
		t.Errorf("scanData allocates %v times per event, want 0", allocs)
	}
}

func FuzzScanData(f *testing.F) {
	f.Add(`{"sent_unix_ns":1,"sender":"a"}`)
	f.Add(`{"a":[{"b":"}"}],"sender":"\u0041"}`)
	f.Add(`{"sender":"`)
	f.Fuzz(func(t *testing.T, data string) {
		scanData(data, "sent_unix_ns", SentNanos, "sender")
	})
}
