package testkit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 10*time.Second, "three polls", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Fatalf("cond polled %d times, want 3", got)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records instead of ending the goroutine.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = format
	panic(f)
}

func TestWaitForFailsAtItsDeadline(t *testing.T) {
	f := &fatalRecorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != f {
				t.Fatalf("WaitFor did not fail the test (recovered %v)", r)
			}
		}()
		WaitFor(f, 30*time.Millisecond, "never", func() bool { return false })
	}()
	if !strings.Contains(f.msg, "timed out") || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("failed with %q after %v", f.msg, time.Since(start))
	}
}

func TestServeSpeaksHTTP1AndH2(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.Proto)
		}))
		Serve(t, srv, h2)
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; string(b) != want {
			t.Errorf("tlsH2 %v: served %q, want %q", h2, b, want)
		}
	}
}
