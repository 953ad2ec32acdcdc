package cli

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sseharness/sseharness/runner"
)

// TestRunSourceAddrsSpreadConnections: run --source-addrs binds the streams'
// connections round-robin to the addresses, as the server sees them.
func TestRunSourceAddrsSpreadConnections(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(sseHandler(func(w http.ResponseWriter, f http.Flusher, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			mu.Lock()
			seen[host]++
			mu.Unlock()
		}
		tickEvents(w, f, r, sentNow)
	}))
	defer srv.Close()
	code, stderr, res := holdRun(t, srv.URL, "--streams", "6", "--source-addrs", "127.0.0.2-127.0.0.4")
	if code != ExitOK || res.Scenarios[0].Metrics.Streams != 6 {
		t.Fatalf("exit %d, %d streams; want 0 and 6\nstderr: %s", code, res.Scenarios[0].Metrics.Streams, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"127.0.0.2": 2, "127.0.0.3": 2, "127.0.0.4": 2}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("the server saw stream connections from %v, want %v", seen, want)
	}
	if cfg, ok := res.Config.(map[string]any); !ok || cfg["source_addrs"] != "127.0.0.2-127.0.0.4" {
		t.Errorf("result config %v does not record the source addresses", res.Config)
	}
}

// TestRunSourceAddrsBadList: a bad list or one of the other family than the target is
// a usage error in one line, before any load.
func TestRunSourceAddrsBadList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ list, want string }{
		{"127.0.0.9-127.0.0.2", "ends before it starts"},
		{"::1", "cannot be reached from IPv6 source addresses"},
		{"nonsense", "is not an IP address"},
	} {
		var out strings.Builder
		env, stderr := serveTestEnv(&out)
		code := Main(t.Context(), []string{"run", "--target", "http://127.0.0.1:1", "--source-addrs", tc.list, "hold"}, env)
		if code != ExitUsage || !strings.Contains(stderr.String(), tc.want) || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 1 {
			t.Errorf("--source-addrs %s: exit %d, stderr %q; want 2 and one line with %q", tc.list, code, stderr, tc.want)
		}
	}
}

// TestResolveSourceAddrsPicksLoopbackAddresses: with no --source-addrs, streams past
// one address's ports to a loopback target get enough loopback source addresses, and
// the run says so; fewer streams, or a target elsewhere, keep the system's choice.
func TestResolveSourceAddrsPicksLoopbackAddresses(t *testing.T) {
	budget, _ := runner.LocalPortBudget()
	per := budget.PerAddr()
	if per <= 0 {
		t.Skip("no ephemeral ports on this machine")
	}
	streams := 3*per + 1
	srcs, note, err := resolveSourceAddrs("", "http://127.0.0.1:8080", streams)
	if err != nil {
		t.Fatal(err)
	}
	if srcs == nil || len(srcs.Addrs()) != 4 || srcs.Addrs()[0].String() != "127.0.0.2" {
		t.Fatalf("%d streams: addresses %v, want 4 from 127.0.0.2", streams, srcs)
	}
	if !strings.Contains(note, "spreading their connections over 4 loopback addresses 127.0.0.2-127.0.0.5") {
		t.Errorf("note %q does not say which addresses", note)
	}
	for _, tc := range []struct {
		target  string
		streams int
	}{{"http://127.0.0.1:8080", per}, {"http://192.0.2.10:8080", streams}} {
		if srcs, note, err := resolveSourceAddrs("", tc.target, tc.streams); srcs != nil || note != "" || err != nil {
			t.Errorf("%s with %d streams: %v %q %v, want the system's choice", tc.target, tc.streams, srcs, note, err)
		}
	}
	if _, _, err := resolveSourceAddrs("", "http://[::1]:8080", streams); err == nil || !strings.Contains(err.Error(), "IPv6 loopback has only ::1") {
		t.Errorf("IPv6 loopback past its ports: %v, want an error with advice", err)
	}
}
