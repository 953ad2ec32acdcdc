// Package runner drives the load: thousands of simulated browser EventSources, each
// emitting typed Records (opened, headers, event, comment, retry, closed, reconnect,
// error). It never prints or renders; report/ aggregates the records.
//
// The pieces, from the inside out:
//
//   - EventSource models one browser EventSource: request headers, the 200 +
//     text/event-stream rule, 204 ends it for good, other answers fail it, a clean end
//     or a network error reconnects after the reconnection time with Last-Event-ID.
//     Each event is measured (latency from sent_unix_ns, gap, ids missing, duplicated
//     or out of order across resumes, a second sender in one connection). Scenario
//     controls: Close (FIN), Reset (RST), Leave, StopReading (half-open),
//     SetReadRate (slow consumer), SetReconnect, WaitOpen, WaitEvents.
//   - Browser owns a connection pool per origin: at most 6 HTTP/1.1 connections, or
//     one shared HTTP/2 connection up to the server's stream limit; Do sends an
//     ordinary request through the same pool.
//   - Config describes a load shape; Plan is its pure schedule (when each stream
//     opens, which are slow, which churn, which shard owns it); Start turns it into
//     streams with two deadlines: stop at the end of the hold, cancel after the drain.
//   - RunRequests drives request streams instead: requests (an OpenAI-style chat
//     completion with "stream": true, say) that each get a finite event stream back,
//     sent open-loop on a Schedule (constant, poisson or gamma:SHAPE arrivals from a
//     seed) under a concurrency cap. It emits RequestRecords: a RequestChunk per event
//     (gap, token gap, content) and a RequestEnd per request (time to headers, TTFT,
//     E2E, events, content bytes, the server's token count, and its EndClass). Every
//     latency counts from the request's scheduled time, so time spent waiting in the
//     client is in it (no coordinated omission) and also reported apart (Waited).
//
// Event loops: by default the body of an HTTP/1.1 stream (cleartext or TLS) without
// Content-Encoding is read by one of a few event loops (evloop.go) instead of its
// goroutine, which ends once the head is read. Measured with TestEventLoopCost (child
// runners alternating against one child server, one event per second per stream,
// medians of 3, on a shared 2-core machine): at 10,000 streams 4.5 KB of RSS per
// stream against 14.2 KB and 9.7 us CPU per event against 13.1 us on goroutines; at
// 2,000 streams 5.6 against 15.2 KB and 15.0 against 23.2 us. Config.GoroutineReaders
// turns them off; the paragraph below is the goroutine path.
//
// Memory: the HTTP/1.1 path is one goroutine per stream over a net.Conn of its own.
// The response head is parsed by http.ReadResponse, the body is read in place into
// the parser's buffer (no bufio, no net/http body), and the frames under a blocked
// read are kept small so that an idle stream's stack shrinks to 4 KB. Measured with
// TestMemoryPerStream (10,000 streams, one event per second each, server in a child
// process): about 13.4 KB of runner RSS per stream.
//
// Requests carry Chromium's EventSource headers, Accept-Encoding included; gzip,
// deflate, br and zstd bodies are decoded incrementally under the parser (no decoder
// for an uncompressed body), with a decompression-bomb limit. A compressed stream
// costs its decoder's window on top, resident as the window fills: measured with
// SSEHARNESS_MEMTEST_ENCODING after a few events per stream, 14.0 KB per identity
// stream and 29.5 KB per gzip stream at 10,000 streams (its stack grows to 8 KB
// under the decoder's frames; the 32 KB window becomes resident as it fills), and
// at 3,000 streams 28.8 KB per deflate stream and 40 KB per br or zstd stream. br
// and zstd windows are the server's choice (br up to 16 MiB, zstd limited to 8 MiB
// as browsers do), so a long br or zstd stream can cost megabytes.
package runner
