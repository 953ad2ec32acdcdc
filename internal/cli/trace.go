package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// defaultTraceLimit bounds a trace file: 100,000 lines are about 30 MB.
const defaultTraceLimit = 100_000

// traceLine is one line of `run --trace`: one connection attempt of one stream, written
// when the attempt closes.
type traceLine struct {
	Scenario string    `json:"scenario"`
	Stream   int       `json:"stream"`
	Session  string    `json:"session"`
	Attempt  int       `json:"attempt"`
	Open     time.Time `json:"open"`
	Close    time.Time `json:"close"`
	Status   int       `json:"status,omitempty"` // 0: no response head
	Proto    string    `json:"proto,omitempty"`
	Events   int64     `json:"events"`
	FirstID  string    `json:"first_id,omitempty"`
	LastID   string    `json:"last_id,omitempty"`
	Reason   string    `json:"close_reason"`
	Error    string    `json:"error,omitempty"`
}

type attemptKey struct{ stream, attempt int }

// traceWriter folds records into trace lines. Its memory is one traceLine per attempt
// open now; lines past the limit are counted, not written.
type traceWriter struct {
	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	enc     *json.Encoder
	limit   int
	written int
	dropped int
	err     error
	open    map[attemptKey]*traceLine
}

func newTraceWriter(path string, limit int) (*traceWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &traceWriter{f: f, w: w, enc: json.NewEncoder(w), limit: limit, open: map[attemptKey]*traceLine{}}, nil
}

// observe is scenarios.Options.Observe.
func (t *traceWriter) observe(scenario string, r runner.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := attemptKey{r.Stream, r.Attempt}
	if r.Kind == runner.RecordOpened {
		t.open[k] = &traceLine{Scenario: scenario, Stream: r.Stream, Session: r.Session, Attempt: r.Attempt, Open: r.Time}
		return
	}
	l := t.open[k]
	if l == nil {
		return // a stream ended while it waited to reconnect: no attempt to trace
	}
	switch r.Kind {
	case runner.RecordHeaders:
		l.Status, l.Proto = r.Status, r.Proto
	case runner.RecordEvent:
		l.Events++
		if l.Events == 1 {
			l.FirstID = r.EventID
		}
		l.LastID = r.EventID
	case runner.RecordError:
		if l.Error == "" {
			l.Error = string(r.Class) + ": " + r.Err
		}
	case runner.RecordClosed:
		l.Close, l.Reason = r.Time, string(r.Reason)
		delete(t.open, k)
		t.write(l)
	}
}

func (t *traceWriter) write(l *traceLine) {
	if t.written >= t.limit || t.err != nil {
		t.dropped++
		return
	}
	if err := t.enc.Encode(l); err != nil {
		t.err = err
		t.dropped++
		return
	}
	t.written++
}

// close flushes the file and says what was written; the error is the first write error.
func (t *traceWriter) close() (written, dropped int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	err = errors.Join(t.err, t.w.Flush(), t.f.Close())
	return t.written, t.dropped, err
}
