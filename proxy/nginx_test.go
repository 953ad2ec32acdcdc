package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/proxy"
)

const (
	bufferedConf   = "nginx/buffered.conf"
	unbufferedConf = "nginx/unbuffered.conf"
)

// requireNginx skips when nginx is missing, except in CI, where the real-proxy path must run.
func requireNginx(t *testing.T) {
	t.Helper()
	if _, err := proxy.NginxAvailable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and nginx is required: %v", err)
		}
		t.Skipf("skipping the real-nginx test: %v", err)
	}
}

func startNginx(t *testing.T, conf, upstreamURL string) *proxy.Nginx {
	t.Helper()
	n, err := proxy.StartNginx(context.Background(), proxy.NginxConfig{ConfFile: conf, Upstream: upstreamURL})
	if err != nil {
		t.Fatalf("StartNginx(%s): %v", conf, err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return n
}

// untilQuiet awaits the first bytes, then collects until nothing more arrives within
// quietWindow: one batch as nginx sent it.
func (s *stream) untilQuiet(t *testing.T) []byte {
	t.Helper()
	var got []byte
	select {
	case b := <-s.chunks:
		got = b
	case err := <-s.ended:
		t.Fatalf("stream ended before its next batch: %v", err)
	case <-time.After(awaitTimeout):
		t.Fatal("timed out waiting for a batch")
	}
	for {
		select {
		case b := <-s.chunks:
			got = append(got, b...)
		case <-time.After(quietWindow):
			return got
		}
	}
}

// Through the stock-buffering config, an upstream without X-Accel-Buffering reaches the
// client late (nothing, not even headers, before ~4 KiB) and in page-sized batches.
func TestNginxBufferedConfHoldsAndBatches(t *testing.T) {
	requireNginx(t)
	u := newStepUpstream(t, "")
	n := startNginx(t, bufferedConf, u.srv.URL)
	s := openStream(t, newClient(t), n.URL()+"/sessions/a/events")
	<-u.started

	var sent []byte
	writeUpTo := func(total int) {
		for len(sent) < total {
			e := event(len(sent)/100, 100)
			u.write(t, e)
			sent = append(sent, e...)
		}
	}
	writeUpTo(3000)
	s.expectQuiet(t, "3000 bytes into stock-buffering nginx")

	writeUpTo(6000)
	s.awaitHeader(t)
	first := s.untilQuiet(t)
	// nginx's first buffer (proxy_buffer_size, one 4 KiB page) also holds the upstream's
	// status line and headers, so the first batch carries a little less than 4 KiB of body.
	if len(first) < 3500 || len(first) > 4096 {
		t.Fatalf("first batch %d bytes, want one ~4 KiB buffer (3500..4096)", len(first))
	}
	writeUpTo(len(first) + 4096 + 1000)
	second := s.untilQuiet(t)
	if len(second) != 4096 {
		t.Fatalf("second batch %d bytes, want one 4096-byte buffer", len(second))
	}
	close(u.writes)
	rest, err := s.awaitEnd(t)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v, want a clean end", err)
	}
	got := append(append(first, second...), rest...)
	if !bytes.Equal(got, sent) {
		t.Fatalf("received %d bytes, sent %d: content differs", len(got), len(sent))
	}
	t.Logf("batches through stock nginx: %d, %d, then %d at the end", len(first), len(second), len(rest))
}

// The same config passes an `X-Accel-Buffering: no` stream through at once.
func TestNginxBufferedConfHonoursXAccelBufferingNo(t *testing.T) {
	requireNginx(t)
	u := newStepUpstream(t, "no")
	n := startNginx(t, bufferedConf, u.srv.URL)
	checkPassThrough(t, u, n)
}

// The streaming config passes everything through at once, whatever the upstream says.
func TestNginxUnbufferedConfPassesThrough(t *testing.T) {
	requireNginx(t)
	u := newStepUpstream(t, "")
	n := startNginx(t, unbufferedConf, u.srv.URL)
	checkPassThrough(t, u, n)
}

// Stop leaves no nginx process (master or worker) and no directory behind.
func TestNginxStopLeavesNothing(t *testing.T) {
	requireNginx(t)
	u := newStepUpstream(t, "no")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tmp := t.TempDir()
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := proxy.StartNginx(ctx, proxy.NginxConfig{ConfFile: unbufferedConf, Upstream: u.srv.URL, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	// An open stream must not hold up the stop.
	s := openStream(t, newClient(t), n.URL()+"/")
	s.awaitHeader(t)

	pgid := n.Pid()
	if procs := processGroup(t, pgid); len(procs) < 2 {
		t.Fatalf("nginx group %d has %d processes, want a master and its workers", pgid, len(procs))
	}
	cancel() // ending the context stops nginx
	select {
	case <-n.Exited():
	case <-time.After(awaitTimeout):
		t.Fatal("nginx did not exit after its context ended")
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if procs := processGroup(t, pgid); len(procs) != 0 {
		t.Fatalf("processes of nginx group %d still running: %v", pgid, procs)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("nginx left %d entries in its temp dir", len(entries))
	}
	s.awaitEnd(t)
}

// A config nginx rejects fails StartNginx with nginx's own message.
func TestNginxBadConfigFailsWithItsMessage(t *testing.T) {
	requireNginx(t)
	raw, err := os.ReadFile(unbufferedConf)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, bytes.Replace(raw, []byte("proxy_buffering off;"), []byte("proxy_buffering sideways;"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = proxy.StartNginx(context.Background(), proxy.NginxConfig{ConfFile: bad, Upstream: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "sideways") {
		t.Fatalf("StartNginx with a bad config: %v; want nginx's complaint", err)
	}
}

// processGroup lists the live processes of group pgid from /proc (Linux).
func processGroup(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc to inspect processes: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid pgrp ...
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}
