package runner

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// postOnlyServer is an SSE endpoint that answers only POST with a JSON body (405 for
// anything else), writes one event per connection and ends it, so the client
// reconnects; it keeps each request's method, protocol and body.
type postOnlyServer struct {
	mu   sync.Mutex
	seen []string // "METHOD PROTO BODY"
}

func (p *postOnlyServer) handler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<10))
	p.mu.Lock()
	p.seen = append(p.seen, r.Method+" "+r.Proto+" "+string(b))
	n := len(p.seen)
	p.mu.Unlock()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 1\nid: "+strings.Repeat("1", n)+"\ndata: x\n\n")
}

func (p *postOnlyServer) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// TestStreamRequestMethodAndBody: a stream asked for with POST and a body template
// sends the method and the body with {session} filled in on every attempt, reconnects
// included, over HTTP/1.1 and HTTP/2; without the method the POST-only endpoint's 405
// ends the stream unopened.
func TestStreamRequestMethodAndBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		h2   bool
	}{{"http1", false}, {"h2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &postOnlyServer{}
			srv := httptest.NewUnstartedServer(http.HandlerFunc(p.handler))
			serve(t, srv, tc.h2)
			bcfg := BrowserConfig{}
			if tc.h2 {
				pool := x509.NewCertPool()
				pool.AddCert(srv.Certificate())
				bcfg.RootCAs = pool
			}

			rec := newRecorder(t)
			es := startSource(t, NewBrowser(bcfg), SourceConfig{URL: srv.URL, Session: "s-7", Method: "POST",
				Body: `{"topic":"x","session":"{session}"}`, MinReconnect: time.Millisecond, Retry: time.Millisecond}, rec.ch)
			waitFor(t, 20*time.Second, "three opened streams", func() bool { return es.Opens() >= 3 })
			proto := "HTTP/1.1"
			if tc.h2 {
				proto = "HTTP/2.0"
			}
			for i, r := range p.requests()[:3] {
				if want := "POST " + proto + ` {"topic":"x","session":"s-7"}`; r != want {
					t.Errorf("request %d: %q, want %q", i, r, want)
				}
			}

			// Without the method: GET, 405, not opened.
			p2 := &postOnlyServer{}
			srv2 := sseServer(t, p2.handler)
			rec2 := newRecorder(t)
			es2 := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv2.URL}, rec2.ch)
			waitDone(t, es2, 20*time.Second, rec2)
			if es2.Opens() != 0 {
				t.Errorf("GET on the POST-only endpoint opened %d times", es2.Opens())
			}
			hs := rec2.kind(RecordHeaders)
			if len(hs) == 0 || hs[0].Status != http.StatusMethodNotAllowed {
				t.Errorf("GET: headers records %+v, want status 405", hs)
			}
		})
	}
}

// TestStreamRequestRedirectAndBadConfig: a 303 turns the POST into a GET without a
// body, as fetch does; a GET with a body and a malformed method are refused.
func TestStreamRequestRedirectAndBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ status int }{{http.StatusSeeOther}, {http.StatusTemporaryRedirect}} {
		r := streamRequest{method: "POST", body: "b"}.redirected(tc.status)
		want := streamRequest{method: "GET"}
		if tc.status == http.StatusTemporaryRedirect {
			want = streamRequest{method: "POST", body: "b"}
		}
		if r != want {
			t.Errorf("after %d: %+v, want %+v", tc.status, r, want)
		}
	}
	b := NewBrowser(BrowserConfig{})
	for _, cfg := range []SourceConfig{{URL: "http://127.0.0.1:1/", Body: "x"}, {URL: "http://127.0.0.1:1/", Method: "PO ST"}} {
		if _, err := b.NewEventSource(cfg, nil); err == nil {
			t.Errorf("%+v: accepted", cfg)
		}
	}
	err := Config{Target: "http://127.0.0.1:1", Body: "x"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "has no body") {
		t.Errorf("Validate of a GET with a body: %v", err)
	}
	if err := (Config{Target: "http://127.0.0.1:1", Method: "POST", Body: "x"}).Validate(); err != nil {
		t.Errorf("Validate of a POST with a body: %v", err)
	}
}
