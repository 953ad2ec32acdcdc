//go:build !linux

package runner

import "errors"

// EventLoops is a set of event loops reading stream bodies; they need Linux epoll,
// so elsewhere NewEventLoops fails and every body is read on its source's goroutine.
type EventLoops struct{}

// NewEventLoops reports that event loops need Linux.
func NewEventLoops(n int) (*EventLoops, error) {
	return nil, errors.New("event loops need Linux epoll")
}

// Close does nothing.
func (g *EventLoops) Close() {}

type loopStream struct{}

func (s *loopStream) interrupt(rst bool) {}

func (g *EventLoops) handOff(es *EventSource, attempt int, x *exchange) bool { return false }

// evloop is never made off Linux: a source's batch field stays nil there.
type evloop struct{}

func (*evloop) batch(*EventSource, *Record) {}

// writeAll is never called off Linux: a loopConn never goes to a loop there.
func writeAll(int, []byte) (int, error) { return 0, errors.ErrUnsupported }
