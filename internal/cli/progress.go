package cli

import (
	"fmt"
	"sync"
)

// progressLine is the live status line of a long run: rewritten in place on a terminal
// (stderr), absent otherwise. The harness calls update at most 4 times a second.
type progressLine struct {
	env  *Env
	mu   sync.Mutex
	live bool // a line is on screen and must be cleared
}

func newProgressLine(env *Env) *progressLine { return &progressLine{env: env} }

func (p *progressLine) begin(name string) {
	if !p.env.StderrIsTerminal {
		return
	}
	p.update(name + ": starting")
}

func (p *progressLine) update(line string) {
	if !p.env.StderrIsTerminal {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.env.Stderr, "\r\033[K%s", line)
	p.live = true
}

func (p *progressLine) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.env.Stderr, "\r\033[K")
		p.live = false
	}
}
