package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sseharness/sseharness/eventstream"
)

// Output records of `sseharness parse`, one JSON object per line. Field order is part
// of the format: type, data, id.
type (
	parsedEvent struct {
		Type string `json:"type"`
		Data string `json:"data"`
		ID   string `json:"id"`
	}
	parsedRetry struct {
		Retry int64 `json:"retry"` // milliseconds
	}
	parsedComment struct {
		Comment string `json:"comment"`
	}
)

const parseDescription = `
Parse a captured text/event-stream body (FILE, or standard input when FILE is '-' or
absent) exactly as a browser's EventSource does (WHATWG HTML 9.2.5/9.2.6: UTF-8 with
U+FFFD for invalid bytes, one leading BOM dropped, CR/LF/CRLF line ends, the last
unfinished block discarded) and write one JSON object per line, in stream order:

  {"type":"message","data":"...","id":"..."}  each dispatched event; id is the last
                                              event ID string at dispatch
  {"retry":3000}                              each valid retry field (milliseconds)
  {"comment":" ping"}                         each comment line, only with --comments

Exit status: 0 when the whole input was read (also when it is empty), 2 for bad flags
or arguments, 3 when the input cannot be read or a line or event passes --max-size
(the objects before that point are still written).`

// runParse runs `sseharness parse`: it reads a captured event stream and prints what a
// browser's EventSource would make of it, one JSON object per line in stream order.
func runParse(ctx context.Context, env *Env, args []string) int {
	fs := newFlagSet(env, "parse", "[flags] [FILE|-]", parseDescription)
	lastID := fs.String("last-event-id", "", "seed the id buffer and the last event ID string with `id`, as a reconnect that sent this Last-Event-ID (default none)")
	maxSize := fs.Int("max-size", eventstream.DefaultMaxLineSize, "largest line, and largest event data, in `bytes`; past it parsing stops with exit 3")
	comments := fs.Bool("comments", false, `also write each comment line as {"comment": TEXT} (text after the colon, leading space kept)`)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageError(env, "parse", "too many arguments (%d): give at most one FILE, or '-' for standard input", fs.NArg())
	}
	if *maxSize <= 0 {
		return usageError(env, "parse", "--max-size must be a positive number of bytes, got %d", *maxSize)
	}

	in, name := env.Stdin, "standard input"
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return harnessError(env, "parse", err)
		}
		defer f.Close()
		in, name = f, fs.Arg(0)
	}
	if in == nil {
		in = eofReader{}
	}
	p := eventstream.New(in, eventstream.Config{MaxLineSize: *maxSize, MaxEventSize: *maxSize, LastEventID: *lastID})

	results, stop := readItems(p)
	defer stop()
	enc := json.NewEncoder(env.Stdout)
	enc.SetEscapeHTML(false) // data is shown as sent: '<' stays '<'
	for {
		var r parsedItem
		select {
		case r = <-results:
		case <-ctx.Done():
			return harnessError(env, "parse", fmt.Errorf("interrupted before the end of %s", name))
		}
		if errors.Is(r.err, io.EOF) {
			return ExitOK
		}
		if r.err != nil {
			return harnessError(env, "parse", fmt.Errorf("%s: %w", name, r.err))
		}
		var rec any
		switch r.it.Kind {
		case eventstream.KindEvent:
			rec = parsedEvent{Type: r.it.Type, Data: r.it.Data, ID: r.it.ID}
		case eventstream.KindRetry:
			rec = parsedRetry{Retry: r.it.Retry.Milliseconds()}
		case eventstream.KindComment:
			if !*comments {
				continue
			}
			rec = parsedComment{Comment: r.it.Comment}
		}
		if err := enc.Encode(rec); err != nil {
			return harnessError(env, "parse", fmt.Errorf("writing output: %w", err))
		}
	}
}

// parsedItem is one result of the parser: an item, or the error that ended it.
type parsedItem struct {
	it  eventstream.Item
	err error
}

// readItems reads p in its own goroutine, so that an interrupt ends the command even
// while a read of standard input blocks; the items (the last one with the error that
// ended the parse) come on results until stop is called.
func readItems(p *eventstream.Parser) (results <-chan parsedItem, stop func()) {
	ch := make(chan parsedItem)
	done := make(chan struct{})
	go func() {
		for {
			it, err := p.Next()
			select {
			case ch <- parsedItem{it, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, func() { close(done) }
}

// eofReader is an empty input, for an Env without standard input.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
