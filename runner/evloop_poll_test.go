//go:build linux

package runner

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoopPollsWhileBusyAndParksWhenQuiet: while bytes keep arriving a loop reads
// on its timer, several streams per round (far fewer rounds than events), and once
// they stop it parks: no more rounds, no timer.
func TestLoopPollsWhileBusyAndParksWhenQuiet(t *testing.T) {
	const streams, busyEvents = 20, 200
	url := loopTestServer(t, func(c net.Conn, _ int) {
		if _, err := fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"); err != nil {
			return
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := range busyEvents {
			if _, err := fmt.Fprintf(c, "id: %d\ndata: x\n\n", i+1); err != nil {
				return
			}
			<-tick.C
		}
		// Quiet from here on: the connection stays open until the test ends.
	})
	g := testLoops(t, 1)
	l := g.loops[0]
	var sources []*EventSource
	for range streams {
		rec := newRecorder(t)
		sources = append(sources, startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: url, EventLoops: g}, rec.ch))
	}
	for _, es := range sources {
		if err := es.WaitEvents(ctxTimeout(t, 20*time.Second), busyEvents); err != nil {
			t.Fatal(err)
		}
	}
	rounds, ticks := l.rounds.Load(), l.ticks.Load()
	const events = streams * busyEvents
	if ticks < 10 {
		t.Errorf("%d rounds started by the timer over %d events in about %d ms, want the loop polling on its timer", ticks, events, busyEvents)
	}
	if rounds > events/4 {
		t.Errorf("%d rounds for %d events, want several events per round", rounds, events)
	}
	t.Logf("%d events in %d rounds, %d of them started by the timer", events, rounds, ticks)
	// Quiet: the round that finds nothing parks the loop.
	waitFor(t, 10*time.Second, "the loop to park", func() bool {
		before := l.rounds.Load()
		time.Sleep(20 * pollEvery)
		return l.rounds.Load() == before
	})
}

// TestLoopEndsABodyWhoseFINCameWithItsLastBytes: edge-triggered, a socket whose last
// bytes and FIN both arrived before the loop polled is reported once; the loop must
// read on to the end rather than wait for another report. A busy stream on the same
// loop keeps it polling, so that the two arrive within one of its sleeps.
func TestLoopEndsABodyWhoseFINCameWithItsLastBytes(t *testing.T) {
	const ends = 20
	busyURL := loopTestServer(t, func(c net.Conn, _ int) {
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 20000; i++ {
			if _, err := fmt.Fprintf(c, "data: %d\n\n", i); err != nil {
				return
			}
			<-tick.C
		}
	})
	endURL := loopTestServer(t, func(c net.Conn, _ int) {
		defer c.Close()
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\nretry: 5\n\n")
		time.Sleep(5 * time.Millisecond) // the head is read and the body is on the loop
		fmt.Fprint(c, "data: last\n\n")
	})
	g := testLoops(t, 1)
	busy := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: busyURL, EventLoops: g}, newRecorder(t).ch)
	if err := busy.WaitEvents(ctxTimeout(t, 10*time.Second), 10); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t)
	for range ends {
		startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: endURL, EventLoops: g}, rec.ch)
	}
	// Each body's end is seen (a Closed per source) and the event before it.
	rec.waitKind(t, RecordClosed, ends)
	if got := rec.count(RecordEvent); got < ends {
		t.Errorf("%d events, want the last event of each of %d bodies", got, ends)
	}
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestEventLoopOverTLSEndsAsTheTLSConnectionWould: an HTTP/1.1 body over TLS goes to
// a loop (no goroutine of its own) and its events arrive; Close sends close_notify and
// a FIN, as closing the TLS connection does (the server reads the alert's bytes, then
// the end); Reset sends an RST and nothing else.
func TestEventLoopOverTLSEndsAsTheTLSConnectionWould(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			certs := httptest.NewUnstartedServer(http.NotFoundHandler())
			certs.StartTLS() // for its certificate
			defer certs.Close()
			cfg := &tls.Config{Certificates: certs.TLS.Certificates, NextProtos: []string{"http/1.1"}}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type end struct {
				err   error
				after int64 // bytes read after the request
			}
			ended := make(chan end, 1)
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					ended <- end{err: err}
					return
				}
				defer raw.Close()
				counted := &countingConn{Conn: raw}
				c := tls.Server(counted, cfg)
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						ended <- end{err: err}
						return
					}
					if line == "\r\n" {
						break
					}
				}
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: one\n\nid: 2\ndata: two\n\n")
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				before := counted.n.Load()
				_, err = br.ReadByte()
				ended <- end{err: err, after: counted.n.Load() - before}
			}()
			g := testLoops(t, 1)
			rec := newRecorder(t)
			es := startSource(t, NewBrowser(BrowserConfig{Insecure: true}), SourceConfig{URL: "https://" + ln.Addr().String() + "/", EventLoops: g}, rec.ch)
			if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 2); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the body on the loop", func() bool { return looped(es) })
			if reset {
				es.Reset()
			} else {
				es.Close()
			}
			waitDone(t, es, 10*time.Second, rec)
			e := <-ended
			switch {
			case reset && (e.err == nil || !strings.Contains(e.err.Error(), "reset")):
				t.Errorf("server saw %v, want a connection reset", e.err)
			case reset && e.after != 0:
				t.Errorf("server read %d bytes before the reset, want none", e.after)
			case !reset && !errors.Is(e.err, io.EOF):
				t.Errorf("server saw %v, want EOF", e.err)
			case !reset && e.after == 0:
				t.Errorf("server read no bytes before the end, want close_notify")
			}
			if evs := rec.kind(RecordEvent); len(evs) != 2 || evs[1].EventID != "2" {
				t.Errorf("events %+v, want one and two", evs)
			}
		})
	}
}
