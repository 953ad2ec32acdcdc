package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hub is a double of a pub/sub hub: POST /publish (form field data) broadcasts the
// data to every subscriber of GET /events, as JSON, under an opaque id. fault decides
// per published message (numbered by the hub from 0) what subscribers get.
type hub struct {
	mu    sync.Mutex
	subs  map[chan string]bool
	n     int
	held  string // swap: a message held back until the next one went out
	fault string // "", "drop1pct", "dup", "swap"
}

func newHub(t *testing.T, fault string) *httptest.Server {
	h := &hub{subs: map[chan string]bool{}, fault: fault}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form", http.StatusUnsupportedMediaType)
			return
		}
		data := r.FormValue("data")
		if data == "" {
			http.Error(w, "no data", http.StatusBadRequest)
			return
		}
		h.broadcast(data)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		ch := make(chan string, 1024)
		h.mu.Lock()
		h.subs[ch] = true
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
		}()
		streamHeaders(w)
		for {
			select {
			case ev := <-ch:
				writeEvent(w, "%s", ev)
			case <-r.Context().Done():
				return
			}
		}
	})
	return sseServer(t, mux.ServeHTTP)
}

func (h *hub) broadcast(data string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.n
	h.n++
	body, _ := json.Marshal(map[string]any{"text": data, "n": n})
	ev := fmt.Sprintf("id: urn:uuid:%08x-hub\ndata: %s\n\n", uint32(n)*2654435761, body)
	var out []string
	switch {
	case h.fault == "drop1pct" && n%100 == 37:
	case h.fault == "dup" && n == 50:
		out = []string{ev, ev}
	case h.fault == "swap" && n == 60:
		h.held = ev
	case h.fault == "swap" && n == 61:
		out = []string{ev, h.held}
	default:
		out = []string{ev}
	}
	for ch := range h.subs {
		for _, e := range out {
			ch <- e
		}
	}
}

// TestPublishDrivenMeasurement: marks published through a hub with opaque ids are
// found in every subscriber's events, with their latency; a hub that drops 1% of
// messages, repeats one or swaps two is caught for what it did.
func TestPublishDrivenMeasurement(t *testing.T) {
	const rate, marks = 200, 200
	for _, tc := range []struct {
		fault            string
		lost, dup, ooo   int64
		deliveredAtLeast int64
	}{
		{"", 0, 0, 0, marks},
		{"drop1pct", 2, 0, 0, marks - 2},
		{"dup", 0, 1, 0, marks + 1},
		{"swap", 0, 0, 1, marks},
	} {
		t.Run("fault="+tc.fault, func(t *testing.T) {
			srv := newHub(t, tc.fault)
			pub, err := NewPublisher(PublishConfig{URL: srv.URL + "/publish", Body: "data={payload}", Rate: rate,
				Duration: time.Duration(marks) * time.Second / rate})
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder(t)
			var sources []*EventSource
			for i := range 3 {
				sources = append(sources, startSource(t, NewBrowser(BrowserConfig{ID: i}),
					SourceConfig{URL: srv.URL + "/events", Stream: i, MarkPrefix: pub.Prefix()}, rec.ch))
			}
			for _, es := range sources {
				if err := es.WaitOpen(ctxTimeout(t, 10*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			if n := pub.Run(ctxTimeout(t, 30*time.Second), Chan(rec.ch)); n != marks {
				t.Fatalf("published %d marks, want %d", n, marks)
			}
			for _, es := range sources {
				if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), tc.deliveredAtLeast); err != nil {
					t.Fatalf("stream %d: %d events: %v", es.Stream(), es.Events(), err)
				}
			}
			rec.flush()
			perStream := map[int][]Record{}
			var published, ok int
			for _, r := range rec.all() {
				switch r.Kind {
				case RecordPublish:
					published++
					if r.Status == http.StatusNoContent && r.Err == "" && r.TTHeaders >= 0 && !r.Time.Before(r.Scheduled) {
						ok++
					}
				case RecordEvent:
					perStream[r.Stream] = append(perStream[r.Stream], r)
					if r.Mark >= 0 && (r.MarkLatency < 0 || r.MarkLatency > 10*time.Second) {
						t.Errorf("stream %d mark %d: latency %v", r.Stream, r.Mark, r.MarkLatency)
					}
				}
			}
			if published != marks || ok != marks {
				t.Errorf("%d publish records, %d of them answered 204 in time, want %d", published, ok, marks)
			}
			for i := range 3 {
				if len(perStream[i]) == 0 {
					t.Fatalf("stream %d: no events", i)
				}
				s := summarizeIDs(perStream[i])
				lost := s.markMissing - s.markOOO
				if s.marked != s.events || lost != tc.lost || s.markDups != tc.dup || s.markOOO != tc.ooo {
					t.Errorf("stream %d: %+v: lost %d, want %d marked events, lost %d, duplicated %d, reordered %d",
						i, s, lost, s.events, tc.lost, tc.dup, tc.ooo)
				}
				if s.opaque != s.events {
					t.Errorf("stream %d: %d of %d events with opaque ids", i, s.opaque, s.events)
				}
				// The repeated message repeats its opaque id too.
				if s.dups != tc.dup {
					t.Errorf("stream %d: %d id repeats, want %d", i, s.dups, tc.dup)
				}
			}
		})
	}
}

func TestPublisherPacing(t *testing.T) {
	var hits atomic.Int32
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	pub, err := NewPublisher(PublishConfig{URL: srv.URL, Rate: 50, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Record, 100)
	start := time.Now()
	n := pub.Run(context.Background(), Chan(out))
	took := time.Since(start)
	close(out)
	if n != 50 || hits.Load() != 50 {
		t.Errorf("%d marks sent, %d requests, want 50 in 1 s at 50/s", n, hits.Load())
	}
	if took > 3*time.Second {
		t.Errorf("publishing for 1 s took %v", took)
	}
	var prev time.Time
	var i int64
	for r := range out {
		if r.Mark != i || r.Status != 200 || r.Stream != -1 {
			t.Errorf("record %d: mark %d status %d stream %d", i, r.Mark, r.Status, r.Stream)
		}
		if i > 0 && r.Scheduled.Sub(prev) != 20*time.Millisecond {
			t.Errorf("mark %d due %v after the one before, want 20ms", i, r.Scheduled.Sub(prev))
		}
		prev = r.Scheduled
		i++
	}
	// Cancelled: stops at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pub2, _ := NewPublisher(PublishConfig{URL: srv.URL, Rate: 50, Duration: time.Hour})
	if n := pub2.Run(ctx, nil); n > 1 {
		t.Errorf("cancelled publisher sent %d marks", n)
	}
	if pub.Prefix() == pub2.Prefix() {
		t.Error("two publishers share a mark prefix")
	}
}

func TestExpandBody(t *testing.T) {
	const p = `a"b&c=d e\f/ü`
	tests := []struct {
		tmpl, ctype, want string
	}{
		{"{payload}", "text/plain", p},
		{"data={payload}", "application/x-www-form-urlencoded", "data=a%22b%26c%3Dd+e%5Cf%2F%C3%BC"},
		{"topic=t&data={payload}", "application/x-www-form-urlencoded; charset=utf-8", "topic=t&data=a%22b%26c%3Dd+e%5Cf%2F%C3%BC"},
		{`{"text":"{payload}"}`, "application/json", `{"text":"a\"b\u0026c=d e\\f/ü"}`},
		{`{"text":{payload}}`, "application/json", `{"text":"a\"b\u0026c=d e\\f/ü"}`},
		{`{"a":"x\"{payload}","b":{payload}}`, "application/cloudevents+json", `{"a":"x\"a\"b\u0026c=d e\\f/ü","b":"a\"b\u0026c=d e\\f/ü"}`},
		{`{"text":"{payload}"}`, "text/plain", `{"text":"` + p + `"}`},
	}
	for _, tc := range tests {
		got := ExpandBody(tc.tmpl, tc.ctype, p)
		if got != tc.want {
			t.Errorf("ExpandBody(%s, %s) = %s, want %s", tc.tmpl, tc.ctype, got, tc.want)
		}
		if strings.Contains(tc.ctype, "json") {
			var v any
			if err := json.Unmarshal([]byte(got), &v); err != nil {
				t.Errorf("ExpandBody(%s) = %s: not JSON: %v", tc.tmpl, got, err)
			}
		}
	}
	for tmpl, want := range map[string]string{
		`{"text":"{payload}"}`: "application/json", `[{payload}]`: "application/json",
		"data={payload}": "application/x-www-form-urlencoded", "{payload}": "text/plain; charset=utf-8",
		"hello {payload}": "text/plain; charset=utf-8",
	} {
		if got := inferContentType(tmpl); got != want {
			t.Errorf("inferContentType(%q) = %q, want %q", tmpl, got, want)
		}
	}
}

func TestFindMark(t *testing.T) {
	const pre = "sseh-0123456789ab-"
	tests := []struct {
		data      string
		seq, sent int64
		ok        bool
	}{
		{`{"text":"sseh-0123456789ab-42-1700000000000000000"}`, 42, 1700000000000000000, true},
		{`sseh-0123456789ab-0-5`, 0, 5, true},
		{`sseh-0123456789ab-x sseh-0123456789ab-7-9 tail`, 7, 9, true},
		{`sseh-ffffffffffff-1-2`, 0, 0, false}, // another run's mark
		{`sseh-0123456789ab-12`, 0, 0, false},
		{`sseh-0123456789ab--5`, 0, 0, false},
		{`no mark`, 0, 0, false},
	}
	for _, tc := range tests {
		seq, sent, ok := findMark(tc.data, pre)
		if seq != tc.seq || sent != tc.sent || ok != tc.ok {
			t.Errorf("findMark(%s) = %d, %d, %v; want %d, %d, %v", tc.data, seq, sent, ok, tc.seq, tc.sent, tc.ok)
		}
	}
}

func TestPublishConfigValidate(t *testing.T) {
	err := PublishConfig{URL: "ftp://x", Method: "PO ST", Body: "no placeholder", Rate: -1}.Validate()
	if err == nil {
		t.Fatal("bad publish config accepted")
	}
	for _, want := range []string{"publish url", "publish method", "publish body", "publish rate", "publish duration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := (PublishConfig{URL: "http://127.0.0.1:1/p", Duration: time.Second}).Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
	if r := (PublishConfig{}).Resolved(); r.Method != "POST" || r.Body != "{payload}" || r.Rate != 5 {
		t.Errorf("defaults %+v", r)
	}
}
