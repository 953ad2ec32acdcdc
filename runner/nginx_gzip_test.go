package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sseharness/sseharness/proxy"
)

// TestThroughNginxGzip: real nginx in front of the stream, configured for streaming
// (docker/nginx/unbuffered.conf) with gzip on for text/event-stream, as sites run
// it: the runner asks for gzip as Chromium does, gets nginx's gzip, and parses every
// event as it arrives, exactly as the same stream uncompressed.
func TestThroughNginxGzip(t *testing.T) {
	if _, err := proxy.NginxAvailable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and nginx is required: %v", err)
		}
		t.Skipf("skipping the real-nginx test: %v", err)
	}
	raw, err := os.ReadFile("../docker/nginx/unbuffered.conf")
	if err != nil {
		t.Fatal(err)
	}
	const at = "proxy_buffering off;"
	if !strings.Contains(string(raw), at) {
		t.Fatalf("unbuffered.conf has no %q to put gzip next to", at)
	}
	conf := strings.Replace(string(raw), at, at+"\n            gzip on;\n            gzip_types text/event-stream;\n            gzip_min_length 0;\n            gzip_proxied any;", 1)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "gzip.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	proceed := make(chan struct{})
	direct := compressedServer(t, false, nil, "", proceed)
	want, _ := runScript(t, direct, false, proceed)

	proceed = make(chan struct{})
	upstream := compressedServer(t, false, nil, "", proceed)
	n, err := proxy.StartNginx(context.Background(), proxy.NginxConfig{ConfFile: confFile, Upstream: upstream.URL, TempDir: dir})
	if err != nil {
		t.Fatalf("StartNginx: %v", err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	got, recs := runScriptAt(t, n.URL(), BrowserConfig{}, proceed)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("through nginx gzip:\n got %+v\nwant %+v", got, want)
	}
	var gz bool
	for _, r := range recs {
		if r.Kind == RecordHeaders && r.Status == 200 {
			gz = r.ContentEncoding == "gzip"
		}
		if r.Kind == RecordError {
			t.Errorf("error %s: %s", r.Class, r.Err)
		}
	}
	if !gz {
		t.Error("nginx did not gzip the stream: the test proves nothing")
	}
}
