package report

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"testing"
)

// externalRefs lists everything in page that could make a browser fetch something or
// that names an address: scripts, stylesheets, frames, images, src/href/action/srcset
// attributes (except data: URLs), CSS url() and @import, and any "://" outside the
// target text the page is allowed to show.
func externalRefs(page, allowedText string) []string {
	var found []string
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<(script|iframe|object|embed|img|audio|video|source|base|form)\b`),
		regexp.MustCompile(`(?i)<link\b[^>]*>`),
		regexp.MustCompile(`(?i)\b(src|href|xlink:href|action|srcset|poster|data)\s*=\s*"[^"]*"`),
		regexp.MustCompile(`(?i)url\s*\(`),
		regexp.MustCompile(`(?i)@import`),
	} {
		for _, m := range re.FindAllString(page, -1) {
			if strings.Contains(m, `"data:`) {
				continue // the empty data: favicon keeps browsers from asking for /favicon.ico
			}
			found = append(found, m)
		}
	}
	rest := strings.ReplaceAll(page, html.EscapeString(allowedText), "")
	if strings.Contains(rest, "://") {
		i := strings.Index(rest, "://")
		found = append(found, rest[max(0, i-20):min(len(rest), i+20)])
	}
	return found
}

func TestHTMLSelfContained(t *testing.T) {
	r := fixtureResult(t)
	page := string(render(t, HTML, r))
	if refs := externalRefs(page, r.Target); len(refs) > 0 {
		t.Fatalf("the HTML report refers to external resources: %q", refs)
	}
	for _, want := range []string{
		"Delivery latency distribution", "Streams open", "Events per second",
		"Server goroutines", "Server memory (RSS)", "<svg", "<polyline", "<rect",
		"same-id-reconnect", "duplicate-senders, old-stream-ended", "Content-Security-Policy",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !strings.Contains(page, "WHATWG server-sent events conformance &lt;checklist&gt;") {
		t.Error("text is not escaped")
	}
}

// TestHTMLExternalRefsCheckCanFail: the check above catches each kind of reference.
func TestHTMLExternalRefsCheckCanFail(t *testing.T) {
	for _, bad := range []string{
		`<script>1</script>`, `<img src="x.png">`, `<link rel="stylesheet" href="a.css">`,
		`<div style="background:url(x)">`, `<style>@import "x";</style>`, `see https://example.com/`,
		`<svg><image xlink:href="y"/></svg>`,
	} {
		page := "<html><body>" + bad + "</body></html>"
		if len(externalRefs(page, "")) == 0 {
			t.Errorf("%s not caught", bad)
		}
	}
	if refs := externalRefs(`<link rel="icon" href="data:,"><p>http://t/</p>`, "http://t/"); len(refs) != 0 {
		t.Errorf("allowed content flagged: %q", refs)
	}
}

func TestHTMLWithoutData(t *testing.T) {
	r := &Result{Target: "x", Scenarios: []ScenarioResult{BuildScenario(ScenarioInput{Name: "empty"})}}
	r.Evaluate()
	var buf bytes.Buffer
	if err := HTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<svg") {
		t.Error("charts drawn without data")
	}
}

func TestNiceMax(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {230, 500}, {0.03, 0.05}} {
		if got := niceMax(c.in); got != c.want {
			t.Errorf("niceMax(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
