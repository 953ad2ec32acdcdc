package conform

import (
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// TestReadBodyWindow: on a fake clock (testing/synctest), a body read with a 500 ms
// window stops 500 ms after the read began, or with FromFirstByte 500 ms after its first
// byte (here 300 ms in), keeping what arrived within the window and nothing after it.
func TestReadBodyWindow(t *testing.T) {
	for _, tc := range []struct {
		fromFirstByte bool
		want          []string
		stopAfter     time.Duration
	}{
		{false, []string{"a"}, 500 * time.Millisecond},
		{true, []string{"a", "b"}, 800 * time.Millisecond},
	} {
		synctest.Test(t, func(t *testing.T) {
			pr, pw := io.Pipe()
			written := make(chan struct{})
			go func() {
				defer close(written)
				defer pw.Close()
				time.Sleep(300 * time.Millisecond) // silent before the first byte
				for _, step := range []struct {
					data  string
					after time.Duration
				}{{"a", 300 * time.Millisecond}, {"b", time.Second}, {"c", 0}} {
					if _, err := fmt.Fprintf(pw, "data: %s\n\n", step.data); err != nil {
						return
					}
					time.Sleep(step.after)
				}
			}()
			start := time.Now()
			ex := &exchange{HeadersAt: start}
			// Cancelling the request closes its body, as net/http does.
			cancel := func() { pr.CloseWithError(fmt.Errorf("request cancelled")) }
			readBody(t.Context(), cancel, ex, pr, readPlan{Window: 500 * time.Millisecond, FromFirstByte: tc.fromFirstByte})
			<-written // the writer's next write fails on the closed body
			var got []string
			for _, it := range ex.events() {
				got = append(got, it.Data)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || ex.End != endStopped || ex.EndAt.Sub(start) != tc.stopAfter {
				t.Errorf("from first byte %v: events %q, end %v after %v; want %q, stopped after %v",
					tc.fromFirstByte, got, ex.End, ex.EndAt.Sub(start), tc.want, tc.stopAfter)
			}
		})
	}
}
