package proxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/proxy"
)

const idleConf = "nginx/idle-timeout.conf"

// beatUpstream is an SSE upstream that sends its head and one event at once, then a
// `: ping` comment every beat (never, with beat 0), until the request ends.
func beatUpstream(t *testing.T, beat time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Accel-Buffering", "no")
		rc := http.NewResponseController(w)
		if _, err := w.Write([]byte("id: 1\ndata: hello\n\n")); err != nil || rc.Flush() != nil {
			return
		}
		var beatC <-chan time.Time
		if beat > 0 {
			tk := time.NewTicker(beat)
			defer tk.Stop()
			beatC = tk.C
		}
		for {
			select {
			case <-r.Context().Done():
				return
			case <-beatC:
				if _, err := w.Write([]byte(": ping\n\n")); err != nil || rc.Flush() != nil {
					return
				}
			}
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// cutAfter opens url and reports how long after the first bytes the stream ended and
// how (nil error: still open after within).
func cutAfter(t *testing.T, url string, within time.Duration) (time.Duration, error, bool) {
	t.Helper()
	s := openStream(t, newClient(t), url)
	s.awaitHeader(t)
	first := time.Now()
	deadline := time.After(within)
	for {
		select {
		case <-s.chunks:
		case err := <-s.ended:
			return time.Since(first), err, true
		case <-deadline:
			s.cancel()
			return time.Since(first), nil, false
		}
	}
}

// An idle timeout cuts a stream silent for that long, mid-body, and spares one whose
// heartbeats are shorter: the built-in proxy and real nginx alike.
func checkIdleTimeout(t *testing.T, start func(upstream string) string, d time.Duration) {
	t.Helper()
	quiet := beatUpstream(t, 0)
	took, err, ended := cutAfter(t, start(quiet.URL)+"/quiet", d+awaitTimeout)
	if !ended {
		t.Fatalf("a stream silent for %v was not cut by an idle timeout of %v", took, d)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("the quiet stream ended with %v, want an abrupt end (unexpected EOF)", err)
	}
	// Timers on a busy machine fire late, never early: a little before d is a failure.
	if took < d-50*time.Millisecond {
		t.Fatalf("the quiet stream was cut after %v, before the idle timeout of %v", took, d)
	}
	t.Logf("quiet stream cut after %v (idle timeout %v)", took, d)

	beating := beatUpstream(t, d/4)
	took, err, ended = cutAfter(t, start(beating.URL)+"/beating", 3*d)
	if ended {
		t.Fatalf("a stream with heartbeats every %v was cut after %v by an idle timeout of %v: %v", d/4, took, d, err)
	}
}

func TestIdleTimeoutCutsQuietStreams(t *testing.T) {
	t.Parallel()
	const d = 500 * time.Millisecond
	var proxies []*proxy.Proxy
	checkIdleTimeout(t, func(upstream string) string {
		p := startProxy(t, proxy.Config{Upstream: upstream, NoBuffering: true, IdleTimeout: d})
		proxies = append(proxies, p)
		return p.URL()
	}, d)
	if got := proxies[0].Stats().IdleTimeouts; got != 1 {
		t.Errorf("quiet proxy: %d idle timeouts counted, want 1", got)
	}
	if got := proxies[1].Stats().IdleTimeouts; got != 0 {
		t.Errorf("beating proxy: %d idle timeouts counted, want 0", got)
	}
}

// Without an idle timeout (the default) a quiet stream stays.
func TestNoIdleTimeoutByDefault(t *testing.T) {
	t.Parallel()
	quiet := beatUpstream(t, 0)
	p := startProxy(t, proxy.Config{Upstream: quiet.URL, NoBuffering: true})
	if took, err, ended := cutAfter(t, p.URL()+"/quiet", time.Second); ended {
		t.Fatalf("a quiet stream ended after %v without an idle timeout: %v", took, err)
	}
}

// An upstream that sends no head within the idle timeout gets the client a 504.
func TestIdleTimeoutBeforeTheHeadIs504(t *testing.T) {
	t.Parallel()
	mute := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(func() {
		mute.CloseClientConnections()
		mute.Close()
	})
	p := startProxy(t, proxy.Config{Upstream: mute.URL, IdleTimeout: 200 * time.Millisecond})
	resp, err := newClient(t).Get(p.URL() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
}

func TestNginxIdleTimeoutConfCutsQuietStreams(t *testing.T) {
	requireNginx(t)
	const d = time.Second
	checkIdleTimeout(t, func(upstream string) string {
		n, err := proxy.StartNginx(context.Background(), proxy.NginxConfig{ConfFile: idleConf, Upstream: upstream, ReadTimeout: d})
		if err != nil {
			t.Fatalf("StartNginx: %v", err)
		}
		t.Cleanup(func() {
			if err := n.Stop(); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
		return n.URL()
	}, d)
}

// ReadTimeout needs a proxy_read_timeout to set: a config without one is refused.
func TestNginxReadTimeoutNeedsTheDirective(t *testing.T) {
	requireNginx(t)
	raw, err := os.ReadFile(idleConf)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "no-timeout.conf")
	if err := os.WriteFile(conf, regexp.MustCompile(`(?m)^\s*proxy_read_timeout.*$`).ReplaceAll(raw, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = proxy.StartNginx(context.Background(), proxy.NginxConfig{ConfFile: conf, Upstream: "127.0.0.1:1", ReadTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "proxy_read_timeout") {
		t.Fatalf("StartNginx without proxy_read_timeout: %v, want a refusal naming it", err)
	}
}
