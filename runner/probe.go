package runner

import "github.com/sseharness/sseharness/probe"

// The Prometheus probe moved to package probe; these names stay for code written
// against runner.

// Probe is probe.Probe.
//
// Deprecated: use probe.Probe.
type Probe = probe.Probe

// ProbeSample is probe.Sample.
//
// Deprecated: use probe.Sample.
type ProbeSample = probe.Sample

// Metric names every probe reads.
//
// Deprecated: use probe.MetricGoroutines and probe.MetricRSS.
const (
	MetricGoroutines = probe.MetricGoroutines
	MetricRSS        = probe.MetricRSS
)
