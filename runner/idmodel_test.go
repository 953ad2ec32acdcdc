package runner

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// idSummary adds up the id classes of a run's event records.
type idSummary struct {
	events, missing, dups, ooo, resets, jumps, opaque int64
	// Of publish-driven marks (Record.Mark and what follows it).
	marked, markMissing, markDups, markOOO int64
}

// runIDs runs a source on url until it ends for good and summarises its events' ids.
func runIDs(t *testing.T, url string) (idSummary, *recorder) {
	t.Helper()
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: url, Retry: time.Millisecond}, rec.ch)
	waitDone(t, es, 20*time.Second, rec)
	return summarizeIDs(rec.all()), rec
}

func summarizeIDs(recs []Record) idSummary {
	var s idSummary
	one := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	for _, r := range recs {
		if r.Kind != RecordEvent {
			continue
		}
		s.events++
		s.missing += r.Missing
		s.dups += one(r.Duplicate)
		s.ooo += one(r.OutOfOrder)
		s.resets += one(r.IDReset)
		s.jumps += one(r.IDJump)
		s.opaque += one(r.Opaque)
		s.marked += one(r.Mark >= 0)
		s.markMissing += r.MarkMissing
		s.markDups += one(r.MarkDuplicate)
		s.markOOO += one(r.MarkOutOfOrder)
	}
	return s
}

// TestIDsRestartingPerConnection: a double whose ids restart with every connection
// (a per-connection counter, as some libraries number events) shows id resets, not
// missing or duplicated ids.
func TestIDsRestartingPerConnection(t *testing.T) {
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) > 3 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHeaders(w)
		for id := 1; id <= 20; id++ {
			writeEvent(w, "id: %d\ndata: {}\n\n", id)
		}
	})
	s, _ := runIDs(t, srv.URL)
	if s.events != 60 || s.resets != 2 || s.missing != 0 || s.dups != 0 || s.ooo != 0 || s.jumps != 0 {
		t.Errorf("%+v; want 60 events, 2 resets and nothing else", s)
	}
}

// TestGreetingThenLiveCounter: each connection starts with a greeting id 0, then the
// server's live counter in the thousands: an id jump per connection and a reset per
// reconnect, never thousands of missing ids.
func TestGreetingThenLiveCounter(t *testing.T) {
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := int(hits.Add(1))
		if n > 3 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streamHeaders(w)
		writeEvent(w, "id: 0\ndata: {\"hello\":true}\n\n")
		for i := range 5 {
			writeEvent(w, "id: %d\ndata: {}\n\n", 7000+n*10+i)
		}
	})
	s, rec := runIDs(t, srv.URL)
	if s.events != 18 || s.jumps != 3 || s.resets != 2 || s.missing != 0 || s.dups != 0 || s.ooo != 0 {
		t.Errorf("%+v; want 18 events, 3 jumps, 2 resets and nothing else", s)
	}
	for _, r := range rec.kind(RecordEvent) {
		if r.IDJump && r.Jumped < 7000 {
			t.Errorf("jump to id %s skipped %d ids, want the distance from 0", r.EventID, r.Jumped)
		}
	}
}

// TestOpaqueIDsCheckedForRepeats: ids such as "1795656668:4" are not counted as
// numbers; a repeated one (here replayed inclusively after a resume) is a duplicate.
func TestOpaqueIDsCheckedForRepeats(t *testing.T) {
	srv := resumeServer(t, "id: 1795656668:1\ndata: {}\n\nid: 1795656668:2\ndata: {}\n\nid: 1795656668:3\ndata: {}\n\n",
		// The event the client had, sent again, then new ones.
		"id: 1795656668:3\ndata: {}\n\nid: urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66\ndata: {}\n\nid: 1795656668:4\ndata: {}\n\n")
	s, rec := runIDs(t, srv.URL)
	if s.events != 6 || s.opaque != 6 || s.dups != 1 || s.missing != 0 || s.resets != 0 {
		t.Errorf("%+v; want 6 opaque events, 1 duplicate", s)
	}
	ev := rec.kind(RecordEvent)
	if len(ev) == 6 && (!ev[3].Duplicate || ev[3].Seq != -1 || ev[3].EventID != "1795656668:3") {
		t.Errorf("replayed event: %+v", ev[3])
	}
	if rc := rec.kind(RecordReconnect); len(rc) == 0 || rc[0].LastEventID != "1795656668:3" {
		t.Errorf("reconnects %+v, want Last-Event-ID 1795656668:3", rc)
	}
}
