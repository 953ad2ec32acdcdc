package reference_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sseharness/sseharness/reference"
)

// wait is the generous deadline for conditions on a busy 2-core machine.
const wait = 5 * time.Second

// testConfig is a fast configuration: ticks every 30ms, nothing else firing on its own.
func testConfig() reference.Config {
	cfg := reference.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Tick = 30 * time.Millisecond
	cfg.Retry = time.Second
	return cfg
}

// startServer serves cfg through httptest and shuts it down at the end of the test.
func startServer(t *testing.T, cfg reference.Config) string {
	t.Helper()
	srv, err := reference.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return ts.URL
}

// serveWith is startServer on testConfig() as sets change it, in their order.
func serveWith(t *testing.T, sets ...func(cfg *reference.Config)) string {
	t.Helper()
	cfg := testConfig()
	for _, set := range sets {
		set(&cfg)
	}
	return startServer(t, cfg)
}

// frame is one block of an event stream: an event, a retry-only block or comments.
type frame struct {
	ID       string
	HasID    bool
	Event    string
	Data     string
	Retry    string
	Comments []string
	Arrived  time.Time
}

// eventData is the JSON data of the reference server's events.
type eventData struct {
	Session    string  `json:"session"`
	Topic      string  `json:"topic"`
	Seq        uint64  `json:"seq"`
	SentUnixNs int64   `json:"sent_unix_ns"`
	Sender     string  `json:"sender"`
	Replayed   bool    `json:"replayed"`
	Progress   *int    `json:"progress"`
	Message    *string `json:"message"`
	Payload    *string `json:"payload"`
}

func (f frame) data(t *testing.T) eventData {
	t.Helper()
	var d eventData
	if err := json.Unmarshal([]byte(f.Data), &d); err != nil {
		t.Fatalf("event %q data %q is not JSON: %v", f.Event, f.Data, err)
	}
	return d
}

// client is one open event stream read by a goroutine into frames.
type client struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc

	mu     sync.Mutex
	frames []frame
	bytes  int64
	eof    bool
	err    error
	change chan struct{} // closed and replaced on every new frame or at the end
}

var testHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}}

// open GETs url with hdr and, on 200, reads the stream in the background.
func open(t *testing.T, url string, hdr map[string]string) *client {
	t.Helper()
	return openWith(t, testHTTP, url, hdr)
}

func openWith(t *testing.T, hc *http.Client, url string, hdr map[string]string) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	c := &client{t: t, resp: resp, cancel: cancel, change: make(chan struct{})}
	t.Cleanup(c.close)
	go c.read()
	return c
}

func (c *client) close() {
	c.cancel()
	c.resp.Body.Close()
}

func (c *client) read() {
	br := bufio.NewReader(c.resp.Body)
	var f frame
	var data []string
	dirty := false
	for {
		line, err := br.ReadString('\n')
		c.mu.Lock()
		c.bytes += int64(len(line))
		c.mu.Unlock()
		if err != nil {
			c.finish(err)
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if dirty {
				f.Data = strings.Join(data, "\n")
				f.Arrived = time.Now()
				c.push(f)
			}
			f, data, dirty = frame{}, nil, false
			continue
		}
		dirty = true
		if c, ok := strings.CutPrefix(line, ":"); ok {
			f.Comments = append(f.Comments, strings.TrimPrefix(c, " "))
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			f.ID, f.HasID = value, true
		case "event":
			f.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			f.Retry = value
		}
	}
}

func (c *client) push(f frame) {
	c.mu.Lock()
	c.frames = append(c.frames, f)
	close(c.change)
	c.change = make(chan struct{})
	c.mu.Unlock()
}

func (c *client) finish(err error) {
	c.mu.Lock()
	c.eof = true
	if err != io.EOF {
		c.err = err
	}
	close(c.change)
	c.change = make(chan struct{})
	c.mu.Unlock()
}

// snapshot returns the frames so far and whether the body ended.
func (c *client) snapshot() ([]frame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.frames...), c.eof
}

func (c *client) bodyBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// await waits until cond holds on the frames so far (and end-of-body), failing the test
// with what after the deadline.
func (c *client) await(d time.Duration, what string, cond func(frames []frame, eof bool) bool) []frame {
	c.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		frames, eof, ch := append([]frame(nil), c.frames...), c.eof, c.change
		c.mu.Unlock()
		if cond(frames, eof) {
			return frames
		}
		select {
		case <-ch:
		case <-deadline.C:
			c.t.Fatalf("after %v: %s; got %d frames (eof=%v): %s", d, what, len(frames), eof, summary(frames))
		}
	}
}

// awaitEOF waits for the body to end.
func (c *client) awaitEOF(d time.Duration) []frame {
	c.t.Helper()
	return c.await(d, "body did not end", func(_ []frame, eof bool) bool { return eof })
}

// awaitEvents waits until n events of type typ arrived.
func (c *client) awaitEvents(d time.Duration, typ string, n int) []frame {
	c.t.Helper()
	return c.await(d, fmt.Sprintf("want %d %q events", n, typ), func(fs []frame, _ bool) bool {
		return len(events(fs, typ)) >= n
	})
}

// events filters frames to events of the given types (all events when none given).
func events(fs []frame, types ...string) []frame {
	var out []frame
	for _, f := range fs {
		if f.Event == "" {
			continue
		}
		if len(types) == 0 || contains(types, f.Event) {
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func summary(fs []frame) string {
	var b strings.Builder
	for i, f := range fs {
		if i == 12 {
			fmt.Fprintf(&b, " ... (%d more)", len(fs)-i)
			break
		}
		switch {
		case f.Event != "":
			fmt.Fprintf(&b, " [%s id=%s]", f.Event, f.ID)
		case f.Retry != "":
			fmt.Fprintf(&b, " [retry %s]", f.Retry)
		default:
			fmt.Fprintf(&b, " [:%s]", strings.Join(f.Comments, "|"))
		}
	}
	return b.String()
}

// senders returns the distinct senders of the given event types, in order of appearance.
func senders(t *testing.T, fs []frame, types ...string) []string {
	t.Helper()
	var out []string
	for _, f := range events(fs, types...) {
		if s := f.data(t).Sender; !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// scrape reads /metrics into "name" or `name{label="value"}` -> value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := testHTTP.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			key := name
			if lp := m.GetLabel(); len(lp) > 0 {
				var parts []string
				for _, l := range lp {
					parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				sort.Strings(parts)
				key += "{" + strings.Join(parts, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func closed(reason string) string { return `sseref_streams_closed_total{reason="` + reason + `"}` }

// awaitMetrics polls /metrics until cond holds.
func awaitMetrics(t *testing.T, base string, d time.Duration, what string, cond func(m map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := scrape(t, base)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s; metrics: %s", d, what, sseref(m))
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}

// sseref renders the sseref_* metrics for failure messages.
func sseref(m map[string]float64) string {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, "sseref_") || k == "go_goroutines" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v ", k, m[k])
	}
	return b.String()
}

// post POSTs body (JSON) to url and returns the status and response body.
func post(t *testing.T, url, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// progress posts a progress callback that must be accepted and returns its seq.
func progress(t *testing.T, base, id string, p int, msg string) uint64 {
	t.Helper()
	js, _ := json.Marshal(map[string]any{"progress": p, "message": msg})
	code, body := post(t, base+"/sessions/"+id+"/progress", string(js), nil)
	if code != http.StatusOK {
		t.Fatalf("progress %d for %s: status %d: %s", p, id, code, body)
	}
	var r struct{ Seq uint64 }
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("progress response %q: %v", body, err)
	}
	return r.Seq
}

// eventually polls cond until it holds, failing the test after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}
