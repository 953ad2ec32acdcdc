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
)

var kindNames = [...]string{"", "opened", "headers", "event", "comment", "retry", "closed", "reconnect", "error"}

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
	CloseTooLarge       CloseReason = "too-large"        // a line or event passed the size limit
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
	// ErrHeadTooLarge: the response head passed MaxResponseHead; the attempt ends
	// without reconnecting.
	ErrHeadTooLarge ErrorClass = "head-too-large"
)

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
	Proto       string        // "HTTP/1.1", "HTTP/2.0"
	ContentType string        // raw Content-Type header
	Waited      time.Duration // time spent waiting for a free connection in the browser's pool
	Dial        time.Duration // TCP connect (negative when the connection was reused)
	TLS         time.Duration // TLS handshake (negative without TLS or on reuse)
	TTHeaders   time.Duration // request written -> response headers
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
	// DuplicateSender is set when an event comes from a sender that this connection saw
	// before another sender took over: two senders are pushing into one stream
	// (A, B, A flags the second A; a plain switch A -> B flags nothing). A connection
	// remembers the last 4 senders it replaced.
	DuplicateSender bool

	// Retry and Reconnect.
	Retry       time.Duration // reconnection time in force (advertised by the server or default)
	Delay       time.Duration // Reconnect: time from Closed to the new attempt
	LastEventID string        // Reconnect: the Last-Event-ID the new attempt sends

	// Closed.
	Reason CloseReason

	// Error.
	Class ErrorClass
	Err   string
	// BeforeHead: the attempt failed before a response head arrived (dial, TLS,
	// timeout, connection closed, malformed or oversized head): it never opened.
	BeforeHead bool
}
