package proxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRewriteConf(t *testing.T) {
	conf := []byte(`# a comment naming listen 1 and 127.0.0.1:8080
events {}
http {
    server {
        listen 8081 reuseport;
        location / { proxy_pass http://127.0.0.1:8080; }
    }
}
`)
	got, err := rewriteConf(conf, "127.0.0.1:40001", "127.0.0.1:9999")
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{"listen 127.0.0.1:40001 reuseport;", "proxy_pass http://127.0.0.1:9999;"} {
		if !strings.Contains(s, want) {
			t.Errorf("rewritten config lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "8080") || strings.Contains(s, "8081") {
		t.Errorf("placeholder left in:\n%s", s)
	}

	for name, bad := range map[string]string{
		"no listen":      "http { server { location / { proxy_pass http://127.0.0.1:8080; } } }",
		"two listens":    "http { server {\n listen 1;\n listen 2;\n location / { proxy_pass http://127.0.0.1:8080; } } }",
		"other upstream": "http { server {\n listen 1;\n location / { proxy_pass http://backend:80; } } }",
	} {
		if _, err := rewriteConf([]byte(bad), "127.0.0.1:1", "127.0.0.1:2"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The shipped configs follow the scheme.
func TestShippedConfsFollowPlaceholderScheme(t *testing.T) {
	files, _ := filepath.Glob("nginx/*.conf")
	if len(files) < 2 {
		t.Fatalf("found %d configs in docker/nginx, want the buffered and unbuffered ones", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rewriteConf(raw, "127.0.0.1:1", "127.0.0.1:2"); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if !strings.Contains(string(raw), "location = "+NginxReadyPath) {
			t.Errorf("%s: no ready location %s", f, NginxReadyPath)
		}
		for _, d := range []string{"\nuser ", "\npid ", "\ndaemon "} {
			if strings.Contains(string(raw), d) {
				t.Errorf("%s: has a %q directive, which the launcher passes with -g", f, strings.TrimSpace(d))
			}
		}
	}
}

func TestNginxConfigValidate(t *testing.T) {
	ok := NginxConfig{ConfFile: "x.conf", Upstream: "http://127.0.0.1:8080"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	err := (&NginxConfig{Listen: "bad", Upstream: "nohost", TempDir: `a"b`, StartTimeout: -1}).Validate()
	if err == nil {
		t.Fatal("invalid accepted")
	}
	for _, want := range []string{"config file is required", "listen address", "upstream", "temp dir", "timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
}
