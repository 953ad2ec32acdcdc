package runner

import (
	"testing"
)

func TestSeqTracker(t *testing.T) {
	type obs struct {
		seq     int64
		missing int64
		dup     bool
		ooo     bool
	}
	tests := []struct {
		name string
		seed int64 // -1: none
		obs  []obs
	}{
		{"in order", -1, []obs{{1, 0, false, false}, {2, 0, false, false}, {3, 0, false, false}}},
		{"gap", -1, []obs{{1, 0, false, false}, {4, 2, false, false}, {5, 0, false, false}}},
		{"duplicate of highest", -1, []obs{{1, 0, false, false}, {2, 0, false, false}, {2, 0, true, false}}},
		{"duplicate below highest", -1, []obs{{1, 0, false, false}, {2, 0, false, false}, {3, 0, false, false}, {2, 0, true, false}}},
		{"late arrival fills a gap", -1, []obs{{1, 0, false, false}, {3, 1, false, false}, {2, 0, false, true}, {2, 0, true, false}}},
		{"seeded resume", 5, []obs{{6, 0, false, false}, {7, 0, false, false}}},
		{"seeded resume with loss", 5, []obs{{9, 3, false, false}}},
		{"seeded resume replays the seed", 5, []obs{{5, 0, true, false}, {6, 0, false, false}}},
		{"beyond the window is out of order", -1, []obs{{1, 0, false, false}, {1 + seqWindow + 10, seqWindow + 9, false, false}, {2, 0, false, true}}},
		{"big jump clears the window", -1, []obs{{1, 0, false, false}, {2, 0, false, false}, {2 + 3*seqWindow, 3*seqWindow - 1, false, false},
			{2 + 3*seqWindow - 2, 0, false, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			if tc.seed >= 0 {
				tr.seed(tc.seed)
			}
			for i, o := range tc.obs {
				m, d, ooo := tr.observe(o.seq)
				if m != o.missing || d != o.dup || ooo != o.ooo {
					t.Errorf("event %d (id %d): missing=%d dup=%v ooo=%v, want missing=%d dup=%v ooo=%v",
						i, o.seq, m, d, ooo, o.missing, o.dup, o.ooo)
				}
			}
		})
	}
}

func TestSeqTrackerWindowWraps(t *testing.T) {
	// Ids far past the window size still detect a recent duplicate: the ring reuses
	// bits, and a bit cleared for a skipped id must not report an old id as seen.
	var tr seqTracker
	for s := int64(0); s < 5*seqWindow; s += 3 {
		if m, d, o := tr.observe(s); d || o || (s > 0 && m != 2) {
			t.Fatalf("id %d: missing=%d dup=%v ooo=%v", s, m, d, o)
		}
	}
	last := int64(5*seqWindow - 1 - (5*seqWindow-1)%3)
	if _, d, _ := tr.observe(last - 3); !d {
		t.Errorf("recent id %d not reported duplicate", last-3)
	}
	if _, d, o := tr.observe(last - 4); d || !o {
		t.Errorf("skipped id %d: dup=%v ooo=%v, want out of order", last-4, d, o)
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
