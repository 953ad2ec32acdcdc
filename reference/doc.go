// Package reference is sseharness's reference Server-Sent Events server: a target known
// to be right, and the same target with exactly one thing done wrong (Faults), so that
// every scenario can be shown able to fail. `sseharness serve` runs it.
//
// # Sessions
//
// GET /sessions/{id}/events opens the stream of session id (1-128 characters of
// [A-Za-z0-9._:-], else 400). The handler writes and flushes the headers
// (Content-Type: text/event-stream; charset=utf-8, Cache-Control: no-cache,
// X-Accel-Buffering: no) and hands the body to the session's sender, which writes
// everything else: `retry: <ms>`, then `event: connected`, then any replay, then
// `event: tick` every Tick, `event: progress`/`event: done` as callbacks arrive, and
// `: ping` every Heartbeat. Every frame is flushed at once. The sender runs on the
// handler's own goroutine (one select for its wake-ups and the stream's ends), so a
// session stream costs net/http's two goroutines and no third; only under fault
// leak-on-disconnect, whose senders outlive their streams, has each a goroutine of its
// own.
//
// Every event has `id: <seq>` and one data line of JSON with at least session, seq,
// sent_unix_ns (when the sender wrote it, also for a replayed event) and sender (an id
// unique to the sender, "s-<n>"); also produced_unix_ns (when the event was produced),
// replayed (true for a Last-Event-ID replay), and progress and message for progress and
// done. Seqs count 1, 2, 3, ... per session across all its streams, without gaps: ticks,
// progress and done each take one. The connected event takes none and has no id field,
// so it leaves the client's last event ID as it was (an EventSource keeps its id buffer
// across events); its JSON seq is the stream's starting point, the last seq before the
// first event this stream sends (the client's Last-Event-ID when resuming, else the
// session's current seq; 0 for a new session). It is neither retained nor replayed.
//
// A session has at most one stream and one sender. A second connection with the same id
// ends the earlier stream (reason replaced; its client sees the body end), waits until
// the earlier sender has stopped, and only then starts its own sender; concurrent
// connections with one id are serialised.
//
// # Resumption
//
// With Last-Event-ID: N (or ?lastEventId=N), the session's retained events (the last
// Replay) with seq > N are replayed in order, then the stream goes on live; events
// produced during the replay are queued, so nothing is lost or doubled. When N cannot be
// honoured, a comment saying events were lost follows the connected event (never an
// error status):
//   - N not a number: live only, after the current seq;
//   - N older than the retained window: every retained event, then live (a visible gap);
//   - N ahead of the session (it was forgotten, or the server restarted): the session
//     continues numbering after N, so the client's ids keep increasing.
//
// Ticks are produced only by a running sender, i.e. while a stream is open; progress
// callbacks are produced and retained whether or not a stream is open.
//
// # Progress callbacks and the end of a session
//
// POST /sessions/{id}/progress with {"progress": 0..100, "message": "..."} produces one
// event per accepted call (progress < 100: `event: progress`; 100: `event: done`, after
// which the sender ends the stream, reason done). The reply is {"session", "seq"}. A
// body that is not one JSON object, a progress that is not a whole number in 0..100, or a
// body over 64 KiB is 400; with CallbackToken a missing or wrong Bearer token is 401;
// a callback after done is 409. Once done, GET answers 204 No Content, which stops an
// EventSource, unless the client's Last-Event-ID is before the done event: then it gets
// the events it missed up to done, and the end.
//
// A session is held in memory while a stream, a request or a sender uses it, and for
// SessionTTL after that (to resume, and to answer 204 once done); then it is forgotten.
// sseref_sessions_active counts the sessions held. A stream that would create one more
// than MaxSessions gets 503 with Retry-After.
//
// A callback may come before any stream opened its session (early progress: a job that
// reports before its page connects); its events are retained and replayed as usual. Such
// early sessions are held apart: at most MaxEarlySessions of them (one more callback is
// 503), each forgotten EarlySessionTTL after its last callback unless a stream opens it,
// which makes it an ordinary session under MaxSessions (503 when there is no room). So
// callbacks for ids nobody opens, junk or not, cannot keep streams out. With
// MaxEarlySessions 0 a callback for a session no stream opened is 404.
//
// # Topics
//
// GET /topics/{name}/events and POST /topics/{name} (body = payload, at most 64 KiB)
// fan one published event out to every subscriber through a go-sse Joe per topic, with
// a FiniteReplayer for Last-Event-ID. Topic events are `event: message` with id = the
// topic's seq and JSON data with topic, session (= topic), seq, sent_unix_ns (when
// published), sender (the topic's publisher, "t-<n>") and payload. An id too old for the
// replayer, or unknown, gets the lost comment and the live stream only.
//
// # Chat completions
//
// POST /v1/chat/completions is the streaming subset of OpenAI's chat completion API:
// a JSON object with model (non-empty string), messages (non-empty array of objects
// with a role), "stream": true and max_tokens (1..4096, default 16); other fields are
// ignored; the body may be up to 1 MiB (over it: 413). Anything else is 400 with an
// OpenAI-style body
// {"error": {"message": "<one line>", "type": "invalid_request_error", ...}}. A valid
// request gets 200 text/event-stream at once, then, FirstTokenDelay after its
// generation starts, max_tokens chunks one TokenInterval apart, each
// `data: {"id":"chatcmpl-<n>","object":"chat.completion.chunk",...,"choices":[{"index":0,
// "delta":{"content":"tok<i> "},"finish_reason":null}]}` (the first delta also has
// "role":"assistant"), then a chunk with an empty delta, finish_reason "length" and
// usage.completion_tokens = max_tokens, then `data: [DONE]`, and the body ends.
// Faults token-batch=N, no-done, stream-error=P, gen-slots=N and late-head each break
// one of these properties (see Faults).
//
// # Streams end
//
// A stream ends when its client goes (client_gone), when a write fails or blocks past
// WriteTimeout or the kernel's TCP user timeout (= WriteTimeout) drops a peer that
// stopped reading (write_error), when a same-id connection replaces it (replaced), after
// MaxLifetime (lifetime), after the done event (done), at shutdown (shutdown, after a
// final `: shutdown` comment), or under fault cut-after (cut); sseref_streams_closed_total
// counts each reason.
//
// # Metrics
//
// GET /metrics serves a registry of the Server's own: go_* and process_* plus
// sseref_streams_open, sseref_sessions_active, sseref_topics_active,
// sseref_senders_active (running senders, leaked ones included),
// sseref_senders_waiting (queued for a pool worker under fault pool=N),
// sseref_duplicate_senders_total (a sender started while another of the same session
// ran), sseref_events_sent_total (events handed to a stream, replays included; under
// no-flush, gzip-buffer and late-head, into what holds them), sseref_events_replayed_total and
// sseref_streams_closed_total{reason}. They stay truthful under every fault.
//
// # HTTP/2
//
// With TLS the server speaks HTTP/2 and advertises SETTINGS_MAX_CONCURRENT_STREAMS =
// H2MaxStreams (default 1000, generous; many servers, proxies and CDNs use about 100).
// A client that opens more streams than that on one connection must queue the rest.
//
// # Production faults
//
// Besides the faults of the original write-up (see Faults), three reproduce pitfalls
// users keep reporting (a fourth, the HTTP/2 stream cap, is the setting above):
//   - gzip-buffer: when the client's Accept-Encoding allows gzip, event streams
//     (sessions and topics) are gzip-compressed (Content-Encoding: gzip) and never
//     flushed: bytes leave only when the compressor's output fills the response buffer,
//     hundreds of events later. The correct server does not compress event streams at
//     all, whatever the client accepts, so it can flush every event;
//   - late-head: a session stream's status and headers are held, with its retry field
//     and connected event, until the sender's next write (its first event, or a ping):
//     a quiet stream never looks open. Faults.LateHead is meant for every streaming
//     endpoint that holds a head;
//   - cut-after=D: every stream's connection is cut D after it opened, mid-body: over
//     HTTP/1.1 without the chunked terminator (the client reads an unexpected EOF),
//     over HTTP/2 with RST_STREAM; reason cut.
//
// Browsers on any origin may use the server: CORS requests get their origin echoed
// with credentials allowed, and preflights (for Last-Event-ID) are answered.
package reference
