package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sseharness/sseharness/runner"
)

// six-connection-limit: browsers open more than 6 streams to one origin. Over HTTP/1.1
// browsers allow 6 connections per origin, so the 7th stream, and any other request to
// that origin, waits for one to close. Over HTTP/2 all streams share one connection.
func sixConnectionLimit() *Scenario {
	ck := sixConnChecks{
		streamsOpen:     &CheckSpec{Name: "streams-open", Default: "2s", Means: "every stream a page opens is open within"},
		ordinaryRequest: &CheckSpec{Name: "ordinary-request", Default: "2s", Means: "an ordinary request to the origin completes within"},
	}
	return &Scenario{
		Name:       "six-connection-limit",
		Proves:     "a browser can open more than 6 streams to the origin, and still make ordinary requests, without stalling (needs HTTP/2)",
		Catches:    []string{"plain HTTP/1.1 (serve without --tls)"},
		Checks:     ck.all(),
		ServerArgs: []string{"--tls"},
		run:        func(ctx context.Context, h *Harness) error { return runSixConn(ctx, h, ck) },
	}
}

// sixConnChecks are SixConn's checks, declared once: the run names them as fields, so a check
// that is not declared cannot be named.
type sixConnChecks struct{ streamsOpen, ordinaryRequest *CheckSpec }

func (c sixConnChecks) all() []*CheckSpec { return []*CheckSpec{c.streamsOpen, c.ordinaryRequest} }

func runSixConn(ctx context.Context, h *Harness, ck sixConnChecks) error {
	perBrowser := 8
	browsers := max(1, h.Streams(16)/perBrowser)
	within := h.Dur(ck.streamsOpen)
	reqWithin := h.Dur(ck.ordinaryRequest)
	h.Request(browsers*perBrowser, browsers, within, fmt.Sprintf("%d browsers, %d streams each to one origin, plus one ordinary request each", browsers, perBrowser))

	var srcs []*runner.EventSource
	var brs []*runner.Browser
	for b := range browsers {
		br := h.NewBrowser(false)
		brs = append(brs, br)
		for j := range perBrowser {
			i := b*perBrowser + j
			es, err := h.Open(ctx, br, i, h.Session("", i), h.StreamURL(h.Session("", i)), func(c *runner.SourceConfig) { c.NoReconnect = true })
			if err != nil {
				return err
			}
			srcs = append(srcs, es)
		}
	}
	start := time.Now()
	// While the streams are open (or stalled), each browser makes an ordinary request.
	type reqResult struct {
		waited time.Duration
		err    error
	}
	results := make([]reqResult, len(brs))
	var wg sync.WaitGroup
	for bi, br := range brs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Let the browser's first streams take their connections first, as a page
			// that opens its streams on load and fetches later does.
			WaitAll(ctx, srcs[bi*perBrowser:bi*perBrowser+min(6, perBrowser)], within, func(ctx context.Context, s *runner.EventSource) error { return s.WaitOpen(ctx) })
			rctx, cancel := context.WithTimeout(ctx, reqWithin+time.Second)
			defer cancel()
			t0 := time.Now()
			req, _ := http.NewRequestWithContext(rctx, http.MethodGet, h.opts.OrdinaryURL, nil)
			resp, _, err := br.DoWaited(rctx, req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			results[bi] = reqResult{waited: time.Since(t0), err: err}
		}()
	}
	stalled := WaitAll(ctx, srcs, within+time.Second, func(ctx context.Context, s *runner.EventSource) error { return s.WaitOpen(ctx) })
	took := time.Since(start)
	wg.Wait()
	h.Finish()

	opened := len(srcs) - len(stalled)
	if opened == 0 {
		if err := h.unreachable(srcs); err != nil {
			return err
		}
	}
	proto := h.protocols()
	if len(stalled) == 0 {
		h.Offenders(ck.streamsOpen, 0, len(srcs), fmt.Sprintf("all %d streams open after %s (%s)", len(srcs), ms(took), proto))
	} else {
		h.Offenders(ck.streamsOpen, len(stalled), len(srcs), fmt.Sprintf("%d of %d streams still waiting after %s (%s): over HTTP/1.1 a browser opens at most 6 connections per origin; serve over HTTP/2, or share one stream per page", len(stalled), len(srcs), within+time.Second, proto))
	}
	blocked := 0
	var worst time.Duration
	for _, r := range results {
		if r.err != nil && !errors.Is(r.err, context.DeadlineExceeded) {
			return fmt.Errorf("ordinary request to %s: %w", h.opts.OrdinaryURL, r.err)
		}
		if r.err != nil || r.waited > reqWithin {
			blocked++
		}
		worst = max(worst, r.waited)
	}
	h.Offenders(ck.ordinaryRequest, blocked, len(results), fmt.Sprintf("%d of %d ordinary requests blocked; slowest %s", blocked, len(results), ms(worst)))
	return nil
}
