package report

import (
	"fmt"
	"time"
)

// ReconnectRate is how many reconnects per second a scenario made over its duration
// (End - Start); ok is false for a scenario without a duration. It is computed from
// the merged counts and times, so merged shards give the whole run's rate.
func (s *ScenarioResult) ReconnectRate() (perSecond float64, ok bool) {
	d := s.End.Sub(s.Start).Seconds()
	if d <= 0 {
		return 0, false
	}
	return float64(s.Metrics.Reconnects) / d, true
}

// reconnectRateText says a scenario's reconnect rate in words (ReconnectRateText).
func reconnectRateText(s *ScenarioResult) string {
	return ReconnectRateText(s.Metrics.Reconnects, s.Metrics.Streams, s.End.Sub(s.Start))
}

// ReconnectRateText says the rate of reconnects over span in words, per second and
// per stream (of streams opened), as the reports show the reconnect_rate metric.
func ReconnectRateText(reconnects, streams int64, span time.Duration) string {
	if span <= 0 {
		return fmt.Sprintf("%d reconnects, no duration", reconnects)
	}
	r := float64(reconnects) / span.Seconds()
	t := fmt.Sprintf("%d reconnects in %.1f s: %s/s", reconnects, span.Seconds(), fmtNumber(r))
	if streams > 0 {
		t += fmt.Sprintf(", %s/s per stream of %d", fmtNumber(r/float64(streams)), streams)
	}
	return t
}

// reconnectRateDefs are the metrics of the reconnect rate for rules and compare:
// reconnect_rate per second, reconnect_rate_per_stream per second and opened stream.
func reconnectRateDefs() []metricDef {
	return []metricDef{
		{name: "reconnect_rate", unit: unitCount, worse: 1, get: func(s *ScenarioResult) (float64, bool) {
			return s.ReconnectRate()
		}, explain: reconnectRateText},
		{name: "reconnect_rate_per_stream", unit: unitCount, worse: 1, get: func(s *ScenarioResult) (float64, bool) {
			r, ok := s.ReconnectRate()
			if !ok || s.Metrics.Streams == 0 {
				return 0, false
			}
			return r / float64(s.Metrics.Streams), true
		}, explain: reconnectRateText},
	}
}

// withReconnectRate adds the reconnect rate after the reconnects row of a counts table
// when the scenario reconnected.
func withReconnectRate(t textTable, s *ScenarioResult) textTable {
	if s.Metrics.Reconnects == 0 {
		return t
	}
	for i, row := range t.rows {
		if len(row) > 0 && row[0] == "reconnects" {
			rows := append([][]string(nil), t.rows[:i+1]...)
			rows = append(rows, []string{"reconnect rate", reconnectRateText(s)})
			t.rows = append(rows, t.rows[i+1:]...)
			return t
		}
	}
	t.rows = append(t.rows, []string{"reconnect rate", reconnectRateText(s)})
	return t
}
