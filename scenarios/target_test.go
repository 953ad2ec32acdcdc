package scenarios

import (
	"strings"
	"testing"

	"github.com/sseharness/sseharness/runner"
)

// TestTargetDescriptionValidate: a broadcast stream URL (no {session}) is valid; every
// problem with the description is reported at once.
func TestTargetDescriptionValidate(t *testing.T) {
	ok := Options{Target: "http://127.0.0.1:1", StreamTemplate: "{target}/events"}
	if err := ok.Validate(All()); err != nil {
		t.Fatalf("broadcast stream URL rejected: %v", err)
	}
	bad := ok
	bad.TargetDescription = TargetDescription{SentField: "a..b", SentUnit: "minutes", MinReconnect: -1,
		Publish: runner.PublishConfig{URL: "ftp://x", Body: "no payload"}}
	err := bad.Validate(All())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"sent unit", "min reconnect", "publish url", "publish body"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestLacksSaysWhy: a broadcast target lacks sessions, with the reason; a session
// template has them.
func TestLacksSaysWhy(t *testing.T) {
	h := &Harness{sc: sameIDReconnect(), opts: Options{StreamTemplate: "{target}/events"}}
	if why := h.lacking(); !strings.Contains(why, "broadcast feed") {
		t.Errorf("lacking %q, want the broadcast-feed reason", why)
	}
	h.opts.StreamTemplate = "{target}/s/{session}"
	if why := h.lacking(); why != "" {
		t.Errorf("lacking %q with a session template", why)
	}
	if why := h.lacks(NeedPublish); !strings.Contains(why, "--publish-url") {
		t.Errorf("publish: %q", why)
	}
}
