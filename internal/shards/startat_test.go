package shards

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestParseStartAt(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-12-01T10:00:00Z", "2026-12-01T11:00:00.250+01:00", " 2026-12-01T08:00:00Z "} {
		if _, err := ParseStartAt(s, now); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	got, _ := ParseStartAt("2026-12-01T11:00:00.250+01:00", now)
	if want := time.Date(2026, 12, 1, 10, 0, 0, 250e6, time.UTC); !got.Equal(want) {
		t.Errorf("parsed %v, want %v", got, want)
	}
	for s, want := range map[string]string{
		"":                     "want an RFC 3339 time",
		"10:00":                "want an RFC 3339 time",
		"2026-12-01 10:00:00":  "want an RFC 3339 time",
		"2026-12-01T10:00:00":  "want an RFC 3339 time", // no zone
		"2026-12-03T10:00:00Z": "more than 24h0m0s: check its time zone",
	} {
		_, err := ParseStartAt(s, now)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line with %q", s, err, want)
		}
	}
}

func TestWaitUntilWaitsForTheTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at := time.Now().Add(90 * time.Second)
		s, err := WaitUntil(t.Context(), at)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Waited || !s.Began.Equal(at) || s.LateMS != 0 || time.Now().Before(at) {
			t.Errorf("start %+v, want a wait until %v and no lateness", s, at)
		}
	})
}

func TestWaitUntilReportsALateStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at := time.Now().Add(-2500 * time.Millisecond)
		before := time.Now()
		s, err := WaitUntil(t.Context(), at)
		if err != nil {
			t.Fatal(err)
		}
		if s.Waited || !time.Now().Equal(before) || s.LateMS != 2500 || s.Late() != 2500*time.Millisecond {
			t.Errorf("start %+v, want no wait and 2500 ms late", s)
		}
	})
}

func TestWaitUntilEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		s, err := WaitUntil(ctx, start.Add(time.Hour))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 10*time.Second || !s.Began.IsZero() {
			t.Errorf("after %v: %+v, %v; want the context's end after 10s", time.Since(start), s, err)
		}
	})
}
