// Package probe reads a server's own figures (goroutines, resident memory, any named
// metric) from its Prometheus text endpoint: once, until a condition holds, or
// periodically as a timeline. Scenarios use it around their load; report keeps its
// samples as server figures.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics every probe reads.
const (
	MetricGoroutines = "go_goroutines"
	MetricRSS        = "process_resident_memory_bytes"
)

// DefaultTimeout bounds one scrape.
const DefaultTimeout = 5 * time.Second

// maxScrapeBytes bounds the body of one scrape.
const maxScrapeBytes = 16 << 20

// Probe reads a server's own figures from a Prometheus text endpoint: go_goroutines,
// process_resident_memory_bytes and the metrics in Names. A Probe is safe for
// concurrent use once configured.
type Probe struct {
	// URL of the metrics endpoint, e.g. http://127.0.0.1:8080/metrics.
	URL string
	// Names are metrics read besides MetricGoroutines and MetricRSS.
	Names []string
	// Timeout bounds one scrape. Default DefaultTimeout.
	Timeout time.Duration
	// Insecure skips TLS verification; RootCAs replaces the system roots.
	Insecure bool
	RootCAs  *x509.CertPool
	// Client, when set, is used as is (Timeout, Insecure and RootCAs are ignored).
	Client *http.Client
}

// Sample is one scrape. Values holds each wanted metric the endpoint exposed
// (the sum over its series; for histograms and summaries the sample count); a metric
// the endpoint does not expose is absent, never zero. Err is set, and Values empty,
// when the endpoint was unavailable (refused, not 200, unparsable).
type Sample struct {
	Time   time.Time          `json:"time"`
	Values map[string]float64 `json:"values"`
	Err    string             `json:"err,omitempty"`
}

// Available reports whether the scrape worked.
func (s Sample) Available() bool { return s.Err == "" }

// Value returns a metric's value and whether the scrape had it.
func (s Sample) Value(name string) (float64, bool) {
	v, ok := s.Values[name]
	return v, ok
}

// Wanted returns the metric names the probe reads, defaults first, without repeats.
func (p *Probe) Wanted() []string {
	names := []string{MetricGoroutines, MetricRSS}
	for _, n := range p.Names {
		dup := false
		for _, m := range names {
			dup = dup || m == n
		}
		if !dup && n != "" {
			names = append(names, n)
		}
	}
	return names
}

func (p *Probe) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: p.Insecure, RootCAs: p.RootCAs},
			DisableKeepAlives: true, // a scrape every second or so: no idle pool to leak
		},
	}
}

// Scrape reads the endpoint once. It blocks for at most the probe's timeout.
func (p *Probe) Scrape(ctx context.Context) Sample {
	s := Sample{Time: time.Now()}
	fams, err := p.fetch(ctx)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	s.Values = make(map[string]float64)
	for _, name := range p.Wanted() {
		if f, ok := fams[name]; ok {
			if v, ok := familyValue(f); ok {
				s.Values[name] = v
			}
		}
	}
	return s
}

func (p *Probe) fetch(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	if p.URL == "" {
		return nil, fmt.Errorf("unavailable: no metrics URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("unavailable: %w", err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := p.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("unavailable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unavailable: %s answered %s", p.URL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxScrapeBytes))
	if err != nil {
		return nil, fmt.Errorf("unavailable: %s is not Prometheus text: %w", p.URL, err)
	}
	return fams, nil
}

// familyValue sums a family's series.
func familyValue(f *dto.MetricFamily) (float64, bool) {
	var sum float64
	n := 0
	for _, m := range f.GetMetric() {
		switch {
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		default:
			continue
		}
		n++
	}
	return sum, n > 0
}

// Until scrapes every interval until cond holds for a sample or ctx ends; it returns
// the last sample and whether cond held. Unavailable samples are passed to cond too.
func (p *Probe) Until(ctx context.Context, every time.Duration, cond func(Sample) bool) (Sample, bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s := p.Scrape(ctx)
		if cond(s) {
			return s, true
		}
		select {
		case <-ctx.Done():
			return s, false
		case <-t.C:
		}
	}
}

// Sampler scrapes a probe periodically in the background: the timeline of a run,
// from which peaks are read. Start it with Probe.Sample.
type Sampler struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	series []Sample
}

// Sample starts scraping at once and then every interval, until Stop or ctx's end.
func (p *Probe) Sample(ctx context.Context, every time.Duration) *Sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &Sampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sample := p.Scrape(ctx)
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.series = append(s.series, sample)
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Samples returns the samples taken so far, oldest first.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.series...)
}

// Stop ends sampling, waits for a scrape in progress, and returns the timeline.
func (s *Sampler) Stop() []Sample {
	s.cancel()
	<-s.done
	return s.Samples()
}

// Peak returns the largest value of a metric over samples, and false when no sample
// had it.
func Peak(samples []Sample, name string) (float64, bool) {
	var peak float64
	found := false
	for _, s := range samples {
		if v, ok := s.Values[name]; ok && (!found || v > peak) {
			peak, found = v, true
		}
	}
	return peak, found
}

// Result is the server side of a run: a sample before the load, the timeline
// during it, and a sample after the drain.
type Result struct {
	Baseline Sample
	Timeline []Sample
	After    Sample
}

// Peak returns the largest value of name over the baseline, timeline and after
// samples.
func (r Result) Peak(name string) (float64, bool) {
	all := append([]Sample{r.Baseline, r.After}, r.Timeline...)
	return Peak(all, name)
}
