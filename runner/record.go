package runner

import "time"

// RecordKind says which of Record's fields are meaningful.
type RecordKind uint8

// The kinds of record a simulated EventSource emits, in the order they usually occur
// for one connection attempt: Opened, Headers, then Events and Comments, then Closed,
// then Reconnect when the client will try again. Error records may appear anywhere and
// are always followed by a Closed record for the same attempt. When a stream is ended
// (stopped, cancelled, closed by the scenario) while it waits to reconnect, it emits a
// Closed record for the attempt it did not start, with no Opened before it: the last
// Closed record of a stream always says why the stream ended.
const (
	RecordOpened    RecordKind = iota + 1 // a connection attempt began
	RecordHeaders                         // response headers arrived
	RecordEvent                           // an event was dispatched
	RecordComment                         // a comment line (heartbeat) arrived
	RecordRetry                           // a valid retry field changed the reconnection time
	RecordClosed                          // the attempt ended, see Reason
	RecordReconnect                       // the client waited and is reconnecting
	RecordError                           // something failed, see Class and Err
	RecordPublish                         // the Publisher sent a mark (Stream -1), see Mark
)

var kindNames = [...]string{"", "opened", "headers", "event", "comment", "retry", "closed", "reconnect", "error", "publish"}

// String returns the kind's name as used in reports ("event", "closed", ...).
func (k RecordKind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return "unknown"
}

// CloseReason says why a connection attempt ended.
type CloseReason string

// Close reasons. The first group is the server's doing, the second the network's, the
// third the harness's.
const (
	CloseEOF            CloseReason = "eof"              // the server ended the body cleanly
	CloseNoContent      CloseReason = "no-content"       // 204: the EventSource stops for good
	CloseBadStatus      CloseReason = "bad-status"       // another status: fails without reconnect
	CloseBadContentType CloseReason = "bad-content-type" // not text/event-stream: fails without reconnect
	CloseNetworkError   CloseReason = "network-error"    // dial, TLS or read error: reconnects
	CloseTooLarge       CloseReason = "too-large"        // a line or event passed the size limit, or a body decoded past its ratio limit
	CloseBadEncoding    CloseReason = "bad-encoding"     // a Content-Encoding the runner cannot decode: fails without reconnect
	CloseStopped        CloseReason = "stopped"          // the run's hold ended and the client left
	CloseCancelled      CloseReason = "cancelled"        // the drain grace ran out (or Ctrl-C)
	CloseClientClose    CloseReason = "client-close"     // the scenario closed it deliberately (FIN)
	CloseClientReset    CloseReason = "client-reset"     // the scenario reset it deliberately (RST)
	CloseChurn          CloseReason = "churn"            // the client left to come back later
)

// ErrorClass groups errors for reporting.
type ErrorClass string

// Error classes.
const (
	ErrDial        ErrorClass = "dial"
	ErrTLS         ErrorClass = "tls"
	ErrTimeout     ErrorClass = "timeout"
	ErrStatus      ErrorClass = "http-status"
	ErrContentType ErrorClass = "content-type"
	ErrRead        ErrorClass = "read"
	ErrTooLarge    ErrorClass = "too-large"
	ErrProtocol    ErrorClass = "protocol"
	ErrDecode      ErrorClass = "decode" // unsupported or corrupt content coding
	// ErrHeadTooLarge: the response head passed MaxResponseHead; the attempt ends
	// without reconnecting.
	ErrHeadTooLarge ErrorClass = "head-too-large"
)

// ErrPortsExhausted is a dial that found no free local port for its (source,
// destination) pair; its error carries advice (ErrPortsExhaustedAdvice).
const ErrPortsExhausted ErrorClass = "ports-exhausted"

// Record is one observation of one simulated EventSource. The runner emits records and
// nothing else; report/ aggregates them. Which fields are set depends on Kind; the
// others are zero. Durations that could not be measured are negative.
type Record struct {
	Kind    RecordKind
	Stream  int    // index of the simulated EventSource in the run (global across shards)
	Browser int    // index of the browser it belongs to
	Session string // session id the stream uses
	Attempt int    // connection attempt of this stream: 0 first, 1 after the first reconnect, ...
	Time    time.Time

	// Opened.
	Scheduled time.Time // when the pacer meant the attempt to start (lag = Time - Scheduled)

	// Headers.
	Status      int
	Proto       string // "HTTP/1.1", "HTTP/2.0"
	ContentType string // raw Content-Type header
	// ContentEncoding is the raw Content-Encoding header ("" when absent): gzip,
	// deflate, br and zstd bodies are decoded before parsing (Event Bytes count
	// decoded bytes).
	ContentEncoding string
	Waited          time.Duration // time spent waiting for a free connection in the browser's pool
	Dial            time.Duration // TCP connect (negative when the connection was reused)
	TLS             time.Duration // TLS handshake (negative without TLS or on reuse)
	TTHeaders       time.Duration // request written -> response headers
	// Accepted: status 200 with a text/event-stream content type, the only response that
	// opens an EventSource. FirstAccepted: Accepted, and no earlier attempt of the stream
	// was: the stream opened (counted once per stream).
	Accepted      bool
	FirstAccepted bool

	// Event.
	EventType  string
	EventID    string        // last event ID string at dispatch
	Bytes      int           // bytes read from the body since the previous record of this attempt (Event, Comment, Retry)
	TTFirst    time.Duration // first event of an attempt: attempt start -> event; negative on later events
	Latency    time.Duration // receive time - sent time from the data (clamped at 0); negative when not timed
	Gap        time.Duration // since the previous event of this stream (any attempt); negative on the first
	Seq        int64         // numeric id of the event's own id field; -1 when it had none or not a number
	Sender     string        // sender identifier from the data, "" when absent
	Missing    int64         // ids skipped between the highest numeric id so far and this one
	Duplicate  bool          // this id was already seen by this stream (any attempt; see below)
	OutOfOrder bool          // this id is lower than one already seen, and not a duplicate
	// Ids are tracked per stream in O(1) memory: the highest id and a window of the
	// 1024 ids below it. An id older than the window is reported OutOfOrder (it can no
	// longer be told from a duplicate). An OutOfOrder event fills a gap an earlier
	// Missing counted, so ids lost = sum(Missing) - count(OutOfOrder). The event ID is
	// the last event ID string, which an event without an id field keeps: such an
	// event repeats the previous id and shows as a Duplicate.
	//
	// Id models: a numeric id lower than the current run's first id (or older than
	// the window) at a connection's first event is an IDReset (a per-connection
	// counter, a restarted server), and a forward jump of more than 1024 ids and more
	// than ten times what the run's own id rate explains over the time since the last
	// event is an IDJump (a greeting id 0, then the live counter in the thousands;
	// Jumped holds the ids it skipped). Either restarts the tracking at that id and
	// counts as neither Missing, Duplicate nor OutOfOrder. The same id as the highest
	// so far is always a Duplicate (an inclusive Last-Event-ID replay). An id that is
	// not a plain number sets Opaque and is checked for repeats only (Duplicate, among
	// the stream's 32 most recent opaque ids); Seq stays -1.
	IDReset bool
	IDJump  bool
	Jumped  int64
	Opaque  bool
	// DuplicateSender is set when an event comes from a sender that this connection saw
	// before another sender took over: two senders are pushing into one stream
	// (A, B, A flags the second A; a plain switch A -> B flags nothing). A connection
	// remembers the last 4 senders it replaced.
	DuplicateSender bool

	// Publish-driven marks (SourceConfig.MarkPrefix, Publisher). On an Event whose
	// data holds a mark: Mark is its sequence number (-1 on events without one),
	// MarkLatency the time from its publishing to this delivery (negative when
	// none), and MarkMissing, MarkDuplicate and MarkOutOfOrder relate it to the marks
	// this stream received before, as Missing, Duplicate and OutOfOrder do for
	// numeric ids but with no resets or jumps (marks are the truth). Marks lost
	// between two received ones = sum(MarkMissing) - count(MarkOutOfOrder); marks
	// published while the stream was open but after its last received mark (or
	// before its first) are for the aggregate to count against the Publish records.
	// On a Publish record (Stream -1): Mark is the mark sent, Time when the request
	// was sent, Scheduled when it was due, Status the answer (0 when none),
	// TTHeaders the request's round trip (negative when it failed) and Class/Err a
	// failure (a status outside 2xx is ErrStatus).
	Mark           int64
	MarkLatency    time.Duration
	MarkMissing    int64
	MarkDuplicate  bool
	MarkOutOfOrder bool

	// Quiet is the silence on the wire this record ends: on an Event, Comment or Retry,
	// the time since the attempt's previous bytes (its head or previous item, so a
	// heartbeat comment counts as traffic); on the Closed record of an attempt that
	// opened, the time since its last bytes. 0 otherwise. The longest one is what a
	// proxy's or load balancer's idle timeout must exceed.
	Quiet time.Duration
	// Retry and Reconnect.
	Retry       time.Duration // reconnection time in force (advertised by the server or default)
	Delay       time.Duration // Reconnect: time from Closed to the new attempt
	LastEventID string        // Reconnect: the Last-Event-ID the new attempt sends
	// QuickEnds (Reconnect) counts the attempts in a row, up to the one just ended,
	// that ended within QuickEnd of their start (0: the last one lived longer). From 2
	// on, each doubles the delay (see SourceConfig.MaxBackoff): a stream that keeps
	// ending at once.
	QuickEnds int

	// Closed.
	Reason CloseReason
	// Lived (Closed) is how long an attempt that opened the stream lived, from its
	// start to its end: the stream's lifetime on that connection. 0 when the attempt
	// never opened (refused, failed before or at its head, or never started).
	Lived time.Duration

	// Error.
	Class ErrorClass
	Err   string
	// BeforeHead: the attempt failed before a response head arrived (dial, TLS,
	// timeout, connection closed, malformed or oversized head): it never opened.
	BeforeHead bool
}
