package runner

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestLoadSpreadsStreamsOverSourceAddrs: Config.SourceAddrs reaches every
// browser of the load: the server sees the streams' connections spread round-robin.
func TestLoadSpreadsStreamsOverSourceAddrs(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen[host]++
		mu.Unlock()
		streamHeaders(w)
		<-r.Context().Done()
	})
	srcs, err := NewSourceAddrs([]netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Target: srv.URL, StreamTemplate: "{target}/s/{session}", Streams: 4, Hold: 300 * time.Millisecond, Drain: time.Second, SourceAddrs: srcs}
	runAll(t, ctxTimeout(t, 30*time.Second), cfg)
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{"127.0.0.2": 2, "127.0.0.3": 2}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("server saw connections from %v, want %v", seen, want)
	}
}

// TestLoadPinsSessionsToTargets: with Config.Targets each stream connects to
// the target its session is pinned to.
func TestLoadPinsSessionsToTargets(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{} // session -> server
	handler := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got[r.URL.Path[len("/s/"):]] = name
			mu.Unlock()
			streamHeaders(w)
			<-r.Context().Done()
		}
	}
	a, b := sseServer(t, handler("a")), sseServer(t, handler("b"))
	names := map[string]string{a.URL: "a", b.URL: "b"}
	targets := []string{a.URL, b.URL}
	cfg := Config{Target: a.URL, StreamTemplate: "{target}/s/{session}", Streams: 12, Hold: 300 * time.Millisecond, Drain: time.Second, Targets: targets}
	runAll(t, ctxTimeout(t, 30*time.Second), cfg)
	mu.Lock()
	defer mu.Unlock()
	perServer := map[string]int{}
	for i := range cfg.Streams {
		s := cfg.Session(i)
		if want := names[PinTarget(targets, s)]; got[s] != want {
			t.Errorf("session %s went to %q, want %q", s, got[s], want)
		}
		perServer[got[s]]++
	}
	if perServer["a"] == 0 || perServer["b"] == 0 {
		t.Errorf("streams per server %v: want both used", perServer)
	}
}
