//go:build linux

package runner

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A loop's read is timed by the kernel: the receive time is when the bytes arrived,
// not when the loop got to them (it waits loopPace between polls).
func TestLoopReceiveTimeIsTheKernels(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	rc, err := client.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if cerr := rc.Control(func(raw uintptr) { fd, err = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil || err != nil {
		t.Fatal(cerr, err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(16))
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	// The kernel turns receive timestamps on a moment after the first socket asks
	// for them (until then reads have none, and the loop times them itself): wait
	// for a read that has one.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := server.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if n, err := unix.Poll(pfd, 10_000); n != 1 || err != nil {
			t.Fatalf("poll: %d, %v", n, err)
		}
		if _, at, err := rawRecv(fd, buf, oob); err != nil {
			t.Fatal(err)
		} else if !at.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no receive time from the kernel within 10 s")
		}
	}
	before := time.Now()
	if _, err := server.Write([]byte("data: x\n\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Poll(pfd, 10_000); n != 1 || err != nil {
		t.Fatalf("poll: %d, %v", n, err)
	}
	ready := time.Now() // the bytes are in by now
	time.Sleep(20 * time.Millisecond)
	n, at, err := rawRecv(fd, buf, oob)
	if err != nil || n != 9 {
		t.Fatalf("recv: %d bytes, %v", n, err)
	}
	switch {
	case at.IsZero():
		t.Fatal("no receive time from the kernel")
	case at.Before(before.Add(-time.Millisecond)) || at.After(ready):
		t.Errorf("receive time %v, want between the write (%v) and when the socket was ready (%v), not the read 20 ms later",
			at.Format(time.StampMicro), before.Format(time.StampMicro), ready.Format(time.StampMicro))
	}
}

// Every record of every stream reaches out through the loops' batches, in order: 60
// streams over 2 loops, each sending its events in bursts (one write of 3,000 tiny
// events too, more than one batch holds), then ending.
func TestEventLoopBatchesLoseNothing(t *testing.T) {
	const streams, burst, bursts = 60, 50, 4
	const big = 3000
	gate := make(chan struct{})
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		<-gate // every stream on its loop before the first event
		id := 0
		for range bursts {
			var b strings.Builder
			for range burst {
				id++
				fmt.Fprintf(&b, "id: %d\ndata: {\"n\": %d}\n\n", id, id)
			}
			writeEvent(w, "%s", b.String())
		}
		if r.URL.Query().Get("big") == "1" {
			var b strings.Builder
			for range big {
				id++
				fmt.Fprintf(&b, "id: %d\ndata:\n\n", id)
			}
			writeEvent(w, "%s", b.String())
		}
	})
	loops := testLoops(t, 2)
	rec := newRecorder(t)
	b := NewBrowser(BrowserConfig{MaxConnsPerHost: streams})
	var srcs []*EventSource
	for i := range streams {
		url := srv.URL
		if i == 0 {
			url += "?big=1"
		}
		srcs = append(srcs, startSource(t, b, SourceConfig{URL: url, Stream: i, NoReconnect: true, EventLoops: loops}, rec.ch))
	}
	waitFor(t, 10*time.Second, "every stream on a loop", func() bool {
		for _, es := range srcs {
			if !looped(es) {
				return false
			}
		}
		return true
	})
	close(gate)
	for _, es := range srcs {
		waitDone(t, es, 20*time.Second)
	}
	rec.flush()
	per := make([][]Record, streams)
	for _, r := range rec.all() {
		per[r.Stream] = append(per[r.Stream], r)
	}
	var onLoop int64
	for i, rs := range per {
		want := burst * bursts
		if i == 0 {
			want += big
		}
		evs := kindOf(rs, RecordEvent)
		if len(evs) != want {
			t.Errorf("stream %d: %d events, want %d", i, len(evs), want)
			continue
		}
		for k, e := range evs {
			if e.Seq != int64(k+1) || e.Missing != 0 || e.Duplicate || e.OutOfOrder {
				t.Errorf("stream %d: event %d is %+v, want id %d in order", i, k, e, k+1)
				break
			}
		}
		if got := srcs[i].Events(); got != int64(want) {
			t.Errorf("stream %d: Events() %d, want %d", i, got, want)
		}
		if last := rs[len(rs)-1]; last.Kind != RecordClosed || last.Reason != CloseEOF {
			t.Errorf("stream %d: last record %+v, want Closed eof", i, last)
		}
		onLoop += int64(len(evs))
	}
	var sent int64
	for _, l := range loops.loops {
		sent += l.sent.Load()
	}
	if sent < onLoop {
		t.Errorf("the loops' batches sent %d records, fewer than the %d events read on them", sent, onLoop)
	}
}

// A loop that goes quiet still sends the records it holds: one event, then silence.
func TestEventLoopIdleSendsHeldRecords(t *testing.T) {
	srv := holdServer(t, "id: 1\ndata: only\n\n")
	loops := testLoops(t, 1)
	rec := newRecorder(t)
	es := startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, EventLoops: loops}, rec.ch)
	if err := es.WaitEvents(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatalf("the event was not counted: %v", err)
	}
	evs := rec.waitKind(t, RecordEvent, 1)
	if !looped(es) || evs[0].EventID != "1" {
		t.Errorf("event %+v, looped %v: want id 1 read on the loop", evs[0], looped(es))
	}
}
