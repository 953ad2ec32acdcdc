package runner

import (
	"context"
	"sync"
	"time"
)

// attemptCtx is the context of one connection attempt: cancel-only, without a
// parent. A context.WithCancel per attempt would keep about 500 bytes for the
// stream's whole life (an entry in its parent's children map, and a children map of
// its own that the dial's timeout context leaves behind); this one keeps a done
// channel, and a short list only while something is registered (a dial). The
// attempt ends through EventSource.end, which cancels it: Run's context is watched
// once per source, not once per attempt. Safe for concurrent use.
type attemptCtx struct {
	mu    sync.Mutex
	done  chan struct{}
	err   error
	after []*afterFunc
}

type afterFunc struct{ f func() }

var _ context.Context = (*attemptCtx)(nil)

func (c *attemptCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *attemptCtx) Value(any) any               { return nil }

// Done returns a channel closed by cancel; it is made on first use.
func (c *attemptCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *attemptCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc runs f when c is cancelled (at once, in its own goroutine, if it is
// already). The context package uses it to tie derived contexts to c without a
// goroutine; stop undoes the registration and reports whether it did.
func (c *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	e := &afterFunc{f: f}
	c.after = append(c.after, e)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.after {
			if x == e {
				last := len(c.after) - 1
				c.after[i] = c.after[last]
				c.after[last] = nil
				if c.after = c.after[:last]; last == 0 {
					c.after = nil
				}
				return true
			}
		}
		return false
	}
}

// cancel ends c: Done closes, Err says context.Canceled and the registered
// functions run. Later calls do nothing.
func (c *attemptCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done == nil {
		c.done = make(chan struct{})
	}
	close(c.done)
	after := c.after
	c.after = nil
	c.mu.Unlock()
	for _, e := range after {
		e.f()
	}
}
