package reference

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Close reasons, the values of sseref_streams_closed_total's reason label.
const (
	ReasonClientGone = "client_gone" // the client went away (connection closed or reset)
	ReasonReplaced   = "replaced"    // a newer connection with the same session id took over
	ReasonLifetime   = "lifetime"    // the stream reached MaxLifetime
	ReasonDone       = "done"        // the session's job reached 100 and `event: done` was sent
	ReasonWriteError = "write_error" // a write failed or blocked past WriteTimeout (incl. TCP user timeout)
	ReasonShutdown   = "shutdown"    // the server shut down
	ReasonCut        = "cut"         // fault cut-after: the connection was cut mid-stream
)

// CloseReasons lists every close reason, so that each series exists from the start.
func CloseReasons() []string {
	return []string{ReasonClientGone, ReasonReplaced, ReasonLifetime, ReasonDone, ReasonWriteError, ReasonShutdown, ReasonCut}
}

// metrics holds one Server's collectors, registered on a registry of its own.
type metrics struct {
	reg              *prometheus.Registry
	streamsOpen      prometheus.Gauge
	sessionsActive   prometheus.Gauge
	topicsActive     prometheus.Gauge
	sendersActive    prometheus.Gauge
	sendersWaiting   prometheus.Gauge
	duplicateSenders prometheus.Counter
	eventsSent       prometheus.Counter
	eventsReplayed   prometheus.Counter
	streamsClosed    *prometheus.CounterVec
}

// gauge and counter make one collector of the given name and help text.
func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func newMetrics() *metrics {
	m := &metrics{
		reg:              prometheus.NewRegistry(),
		streamsOpen:      gauge("sseref_streams_open", "Event streams (session and topic) currently open."),
		sessionsActive:   gauge("sseref_sessions_active", "Sessions held in memory: with an open stream or running sender, or idle/finished within the session TTL."),
		topicsActive:     gauge("sseref_topics_active", "Topics held in memory."),
		sendersActive:    gauge("sseref_senders_active", "Session senders currently running (leaked ones included)."),
		sendersWaiting:   gauge("sseref_senders_waiting", "Session senders queued for a pool worker (fault pool=N only)."),
		duplicateSenders: counter("sseref_duplicate_senders_total", "Times a sender started while another sender of the same session was still running."),
		eventsSent:       counter("sseref_events_sent_total", "Events written to streams, live and replayed (comments and retry-only frames not counted)."),
		eventsReplayed:   counter("sseref_events_replayed_total", "Events written as a Last-Event-ID replay (also counted in sseref_events_sent_total)."),
		streamsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sseref_streams_closed_total",
			Help: "Streams ended, by reason.",
		}, []string{"reason"}),
	}
	for _, r := range CloseReasons() {
		m.streamsClosed.WithLabelValues(r)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.streamsOpen, m.sessionsActive, m.topicsActive, m.sendersActive, m.sendersWaiting,
		m.duplicateSenders, m.eventsSent, m.eventsReplayed, m.streamsClosed,
	)
	return m
}
