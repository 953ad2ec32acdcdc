// Package testkit holds what the tests of several packages need alike: waiting for a
// condition with a deadline (never a sleep that hopes), and starting an httptest
// server over HTTP/1.1 or over TLS with HTTP/2. Only tests import it.
package testkit

import (
	"io"
	"log"
	"net/http/httptest"
	"testing"
	"time"
)

// WaitFor polls cond every 5 ms until it holds, failing the test after within. The
// machines tests run on are busy: give within generously.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Serve starts srv (made with httptest.NewUnstartedServer), over TLS with HTTP/2 when
// tlsH2, with its error log discarded, and closes it and its connections when the test
// ends.
func Serve(t testing.TB, srv *httptest.Server, tlsH2 bool) {
	t.Helper()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsH2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
}
