package runner

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestAttemptCtx runs in a synctest bubble: synctest.Wait lets the AfterFunc
// goroutines finish, so each check sees whether they ran without waiting on a clock.
func TestAttemptCtx(t *testing.T) { synctest.Test(t, testAttemptCtx) }

func testAttemptCtx(t *testing.T) {
	c := &attemptCtx{}
	child, cancelChild := context.WithTimeout(c, time.Hour)
	defer cancelChild()
	fired := make(chan struct{})
	stop := context.AfterFunc(c, func() { close(fired) })
	unused := context.AfterFunc(c, func() { t.Error("stopped AfterFunc ran") })
	if !unused() {
		t.Error("stop of a registered func reported false")
	}
	if c.Err() != nil {
		t.Fatal("fresh context already done")
	}
	select {
	case <-c.Done():
		t.Fatal("Done closed before cancel")
	default:
	}
	c.cancel()
	c.cancel()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Errorf("Err = %v", c.Err())
	}
	synctest.Wait()
	for name, ch := range map[string]<-chan struct{}{"Done": c.Done(), "derived": child.Done(), "AfterFunc": fired} {
		select {
		case <-ch:
		default:
			t.Errorf("%s not closed after cancel", name)
		}
	}
	if stop() {
		t.Error("stop after the func ran reported true")
	}
	// Registrations undone by their contexts leave nothing behind.
	c2 := &attemptCtx{}
	for i := 0; i < 3; i++ {
		_, cancel := context.WithTimeout(c2, time.Hour)
		cancel()
	}
	if c2.after != nil {
		t.Errorf("%d registrations left after the derived contexts ended", len(c2.after))
	}
	late := make(chan struct{})
	context.AfterFunc(c, func() { close(late) })
	synctest.Wait()
	select {
	case <-late:
	default:
		t.Error("AfterFunc on a cancelled context did not run")
	}
}
