//go:build unix

package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestHTMLInChromium opens the HTML report of a realistic result in headless Chromium,
// served by a local server that counts requests, and checks the screenshot shows the
// charts and that the page fetched nothing besides itself.
func TestHTMLInChromium(t *testing.T) {
	t.Parallel() // each Chromium run takes seconds; the two browser tests overlap
	chromium := needChromium(t)
	var page bytes.Buffer
	if err := HTML(&page, fixtureResult(t)); err != nil {
		t.Fatal(err)
	}
	img, requests := openInChromium(t, chromium, page.Bytes())
	counts, nonWhite, total := chartPixels(img)
	t.Logf("screenshot %v: %d of %d pixels not white; chart colours %v", img.Bounds().Size(), nonWhite, total, counts)
	if nonWhite < total/50 {
		t.Errorf("screenshot is nearly blank: %d of %d pixels not white", nonWhite, total)
	}
	for name, n := range counts {
		if n < 300 {
			t.Errorf("chart colour %s covers %d pixels; the chart was not drawn", name, n)
		}
	}
	if len(requests) != 1 {
		t.Errorf("the page made %d requests, want exactly 1 (itself): %q", len(requests), requests)
	}
}

// TestChromiumRequestCountCanFail: the same harness sees a page that loads an image
// make a second request, so "exactly one request" above is a real observation.
func TestChromiumRequestCountCanFail(t *testing.T) {
	t.Parallel()
	chromium := needChromium(t)
	page := []byte(`<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><img src="/pixel.png"></body></html>`)
	_, requests := openInChromium(t, chromium, page)
	if len(requests) != 2 {
		t.Errorf("a page loading an image made %d requests, want 2: %q", len(requests), requests)
	}
}

func needChromium(t *testing.T) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (CI=true requires it): %v", err)
		}
		t.Skipf("chromium is not installed, so the HTML report is not checked in a browser: %v", err)
	}
	return chromium
}

// openInChromium serves page from a local server at /report.html, screenshots it in
// headless Chromium and returns the screenshot and every request the server received.
func openInChromium(t *testing.T, chromium string, page []byte) (image.Image, []string) {
	t.Helper()
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/report.html" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+shot, "--window-size=1200,2000",
		srv.URL+"/report.html")
	// Chromium starts helper processes: put them in one group and kill the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	if err := cmd.Wait(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out.Bytes())
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out.Bytes())
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return img, append([]string(nil), requests...)
}

// chartPixels counts the screenshot's pixels close to each chart colour, and the pixels
// that are not white.
func chartPixels(img image.Image) (counts map[string]int, nonWhite, total int) {
	colours := map[string][3]int{
		"latency " + colorLatency:       hexRGB(colorLatency),
		"open " + colorOpen:             hexRGB(colorOpen),
		"events " + colorEvents:         hexRGB(colorEvents),
		"goroutines " + colorGoroutines: hexRGB(colorGoroutines),
		"memory " + colorMemory:         hexRGB(colorMemory),
	}
	counts = map[string]int{}
	for name := range colours {
		counts[name] = 0
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			p := [3]int{int(r >> 8), int(g >> 8), int(bl >> 8)}
			total++
			if p[0] < 245 || p[1] < 245 || p[2] < 245 {
				nonWhite++
			}
			for name, c := range colours {
				if abs(p[0]-c[0]) <= 10 && abs(p[1]-c[1]) <= 10 && abs(p[2]-c[2]) <= 10 {
					counts[name]++
				}
			}
		}
	}
	return counts, nonWhite, total
}

func hexRGB(s string) [3]int {
	var c [3]int
	for i := range c {
		c[i] = hexDigit(s[1+2*i])<<4 | hexDigit(s[2+2*i])
	}
	return c
}

func hexDigit(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	}
	return int(b-'A') + 10
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestChartPixelsCanFail: a blank white image has no chart pixels.
func TestChartPixelsCanFail(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 100, 100))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	counts, nonWhite, _ := chartPixels(img)
	for name, n := range counts {
		if n != 0 {
			t.Errorf("%s: %d pixels in a blank image", name, n)
		}
	}
	if nonWhite != 0 {
		t.Errorf("%d non-white pixels in a blank image", nonWhite)
	}
}
