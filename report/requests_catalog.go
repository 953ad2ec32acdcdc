package report

import (
	"fmt"

	"github.com/sseharness/sseharness/runner"
)

// EvidenceRequest: at least one request stream was sent (runner.RunRequests).
const EvidenceRequest Evidence = "request"

// missingRequest says why s has no request evidence, "" when it has.
func missingRequest(s *ScenarioResult) string {
	r := s.Metrics.Requests
	switch {
	case r == nil || r.Requests == 0:
		return "no request stream was run"
	case r.Sent == 0:
		return fmt.Sprintf("no request was sent (%s)", breakdown(r.Ends))
	}
	return ""
}

// requestMetricDefs are the metrics of request streams (RequestMetrics), for rules and
// compare: none has a value without request records.
func requestMetricDefs() []metricDef {
	req := func(s *ScenarioResult) *RequestMetrics { return s.Metrics.Requests }
	ends := func(s *ScenarioResult) string {
		r := req(s)
		if r == nil {
			return ""
		}
		return fmt.Sprintf("%d requests, ended: %s", r.Requests, breakdown(r.Ends))
	}
	count := func(name string, worse int, f func(*RequestMetrics) int64) metricDef {
		return metricDef{name: name, unit: unitCount, worse: worse, explain: ends, get: func(s *ScenarioResult) (float64, bool) {
			r := req(s)
			if r == nil {
				return 0, false
			}
			return float64(f(r)), true
		}}
	}
	ratio := func(name string, worse int, f func(*RequestMetrics) (float64, bool), explain func(*ScenarioResult) string) metricDef {
		return metricDef{name: name, unit: unitRatio, worse: worse, explain: explain, get: func(s *ScenarioResult) (float64, bool) {
			r := req(s)
			if r == nil {
				return 0, false
			}
			return f(r)
		}}
	}
	rates := func(s *ScenarioResult) string {
		r := req(s)
		if r == nil {
			return ""
		}
		return fmt.Sprintf("achieved %s requests/s of %s scheduled; client wait max %s", fmtNumber(r.AchievedRate), fmtNumber(r.ScheduledRate), fmtMS(r.Waited.MaxMS))
	}
	defs := []metricDef{
		count("requests", -1, func(r *RequestMetrics) int64 { return r.Requests }),
		count("requests_sent", -1, func(r *RequestMetrics) int64 { return r.Sent }),
		count("requests_good", -1, func(r *RequestMetrics) int64 { return r.Good }),
		count("requests_dropped", 1, func(r *RequestMetrics) int64 { return r.Ends[string(runner.EndDropped)] }),
		// Requests that did not end at their terminal event, whatever else ended them.
		count("requests_unterminated", 1, func(r *RequestMetrics) int64 { return r.Requests - r.Ends[string(runner.EndTerminated)] }),
		// Requests ended by an error event inside a 200.
		count("requests_error_events", 1, func(r *RequestMetrics) int64 { return r.Ends[string(runner.EndErrorEvent)] }),
		ratio("goodput", -1, func(r *RequestMetrics) (float64, bool) { return r.Goodput() }, func(s *ScenarioResult) string {
			r := req(s)
			if r == nil {
				return ""
			}
			return fmt.Sprintf("%d of %d requests met the SLO (%s, terminated); ended: %s", r.Good, r.Requests, r.SLO, breakdown(r.Ends))
		}),
		ratio("request_rate_ratio", -1, func(r *RequestMetrics) (float64, bool) {
			return r.AchievedRate / r.ScheduledRate, r.ScheduledRate > 0
		}, rates),
		ratio("request_scheduled_rate", 0, func(r *RequestMetrics) (float64, bool) { return r.ScheduledRate, r.ScheduledRate > 0 }, rates),
		ratio("request_achieved_rate", -1, func(r *RequestMetrics) (float64, bool) { return r.AchievedRate, r.Sent > 0 }, rates),
		// The server's token count per content event, over requests that carried one:
		// above 1, events are batches of tokens and their gaps are not inter-token latency.
		ratio("request_tokens_per_event", 1, func(r *RequestMetrics) (float64, bool) {
			return float64(r.UsageTokens) / float64(r.UsageContentEvents), r.UsageContentEvents > 0
		}, func(s *ScenarioResult) string {
			r := req(s)
			if r == nil {
				return ""
			}
			if r.UsageRequests == 0 {
				return fmt.Sprintf("no request carried a token count (usage path); %d content events", r.ContentEvents)
			}
			return fmt.Sprintf("%d requests with a token count: %d tokens in %d content events", r.UsageRequests, r.UsageTokens, r.UsageContentEvents)
		}),
	}
	defs = append(defs, figureDefs("request_", requestDurations(), unitMS, 1, ends, req)...)
	defs = append(defs, figureDefs("request_", requestValues(), unitCount, 0, nil, req)...)
	return defs
}
