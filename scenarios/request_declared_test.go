package scenarios

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sseharness/sseharness/report"
)

// chatDouble answers POST /v1/chat/completions like an OpenAI-style streaming chat
// completion: three content chunks, a usage chunk counting them, and [DONE]. With
// goodFor > 0 only its first goodFor requests (counted over the server's life) get the
// [DONE], with goodFor < 0 none does, as a server that drops its terminal does.
func chatDouble(t *testing.T, goodFor int64) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "want POST /v1/chat/completions", http.StatusNotFound)
			return
		}
		k := n.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			fl.Flush()
		}
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\n")
		if goodFor == 0 || k <= goodFor {
			fmt.Fprint(w, "data: [DONE]\n\n")
		}
		fl.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func requestOpts(url string, o RequestOptions, thresholds map[string]string) Options {
	return Options{Target: url, StreamTemplate: "{target}/s/{session}", Requests: o, Thresholds: thresholds}
}

// TestRequestPhaseRunsTheRequestsItDeclares: request-stream's request phase sends the
// requests, and every check is a rule over their metrics: all pass against a correct
// double, and terminated fails (with the count) against one that never sends [DONE].
func TestRequestPhaseRunsTheRequestsItDeclares(t *testing.T) {
	o := RequestOptions{Rates: []float64{50}, Requests: 6}
	res := runAgainst(t, requestStream(), requestOpts(chatDouble(t, 0).URL, o, nil))
	r := res.Metrics.Requests
	if r == nil || r.Requests != 6 || r.Ends["terminated"] != 6 || r.ContentEvents != 18 {
		t.Fatalf("requests %+v: want 6 terminated with 3 content events each", r)
	}
	if len(res.Checks) != 8 {
		t.Fatalf("checks %+v, want the 8 declared", res.Checks)
	}
	for _, c := range res.Checks {
		if c.Verdict != report.VerdictPass || c.Rule == nil {
			t.Errorf("%s: %s (%s; %s) rule %v, want a pass by rule", c.Name, c.Verdict, c.Measured, c.Detail, c.Rule)
		}
	}
	if !strings.Contains(res.Load.Requested.Note, "at 50/s") {
		t.Errorf("requested load %q does not describe the requests", res.Load.Requested.Note)
	}
	res = runAgainst(t, requestStream(), requestOpts(chatDouble(t, -1).URL, o, nil))
	if c := checkOf(t, res, "terminated"); c.Verdict != report.VerdictFail || c.Measured != "6" {
		t.Errorf("terminated without [DONE]: %s (%s), want fail with 6", c.Verdict, c.Measured)
	}
}

// TestRequestPhaseSLOIsItsChecksThresholds: the goodput of request-stream counts
// against its ttft-p99, itl-p99 and e2e-p99 thresholds: overriding ttft-p99 below any
// first token makes no request good, and the SLO recorded says so.
func TestRequestPhaseSLOIsItsChecksThresholds(t *testing.T) {
	o := RequestOptions{Rates: []float64{50}, Requests: 4}
	url := chatDouble(t, 0).URL
	res := runAgainst(t, requestStream(), requestOpts(url, o, nil))
	if r := res.Metrics.Requests; r == nil || r.Good != 4 || r.SLO.TTFT != defaultRequestSLO.TTFT {
		t.Fatalf("requests %+v: want 4 good within the default TTFT %s", r, defaultRequestSLO.TTFT)
	}
	res = runAgainst(t, requestStream(), requestOpts(url, o, map[string]string{"request-stream/ttft-p99": "1ns"}))
	if r := res.Metrics.Requests; r == nil || r.Good != 0 || r.SLO.TTFT != 1 {
		t.Errorf("requests %+v: want none good within a TTFT of 1ns", r)
	}
}

// TestRateStepsSweepStopsAndJudgesTheSteps: request-capacity's sweep runs a step per
// rate into a group of its own and stops after the first step below the goodput
// target; the knee comes from the steps' aggregates, and sustained-rates is one rule
// over the groups of the steps that ran.
func TestRateStepsSweepStopsAndJudgesTheSteps(t *testing.T) {
	o := RequestOptions{Rates: []float64{20, 40, 80}, Requests: 4}
	url := chatDouble(t, 4).URL // the first step's 4 requests end at [DONE], no later one
	res := runAgainst(t, requestCapacity(), requestOpts(url, o, nil))
	var groups []string
	for _, g := range res.Groups {
		groups = append(groups, g.Name)
	}
	if strings.Join(groups, ",") != "rate-20,rate-40" {
		t.Fatalf("groups %v: want the steps rate-20 and rate-40 (the sweep stops below the target)", groups)
	}
	if res.Headline != "knee: 20 requests/s" {
		t.Errorf("headline %q, want the knee at 20 requests/s", res.Headline)
	}
	c := checkOf(t, res, "sustained-rates")
	if c.Verdict != report.VerdictPass || c.Rule == nil || c.Rule.Group != "rate-20" || len(c.Rule.And) != 0 {
		t.Errorf("sustained-rates at 1: %s (%s) rule %+v, want a pass on rate-20's goodput", c.Verdict, c.Measured, c.Rule)
	}
	res = runAgainst(t, requestCapacity(), requestOpts(chatDouble(t, 4).URL, o, map[string]string{"sustained-rates": "2"}))
	c = checkOf(t, res, "sustained-rates")
	if c.Verdict != report.VerdictFail || c.Rule == nil || len(c.Rule.And) != 1 || c.Rule.And[0].Group != "rate-40" {
		t.Errorf("sustained-rates at 2: %s (%s) rule %+v, want a fail on rate-40's goodput", c.Verdict, c.Measured, c.Rule)
	}
	res = runAgainst(t, requestCapacity(), requestOpts(chatDouble(t, 4).URL, o, map[string]string{"sustained-rates": "4"}))
	if c := checkOf(t, res, "sustained-rates"); c.Verdict != report.VerdictFail || !strings.Contains(c.Detail, "3 rates configured, 4 needed") {
		t.Errorf("sustained-rates at 4 of 3 rates: %s (%s; %s), want fail saying 3 rates configured, 4 needed", c.Verdict, c.Measured, c.Detail)
	}
}

// TestRequestDeclarationValidates: a request phase beside another phase, a RateSteps
// check of a phase that is no sweep and a request phase without a window are each
// reported.
func TestRequestDeclarationValidates(t *testing.T) {
	rs := &CheckSpec{Name: "steps", Default: "1", RateSteps: &RateSteps{Phase: 0}}
	sc := &Scenario{Name: "x", Checks: []*CheckSpec{rs},
		Load: []Phase{{Requests: &RequestLoad{}}, {Streams: 1, Until: UntilOpen}}}
	err := sc.Validate()
	if err == nil {
		t.Fatal("a bad request declaration validated")
	}
	for _, want := range []string{"no other phase", "window 0s", "which is no request sweep"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	for _, s := range []*Scenario{requestStream(), requestCapacity()} {
		if err := s.Validate(); err != nil || len(s.Load) != 1 || s.Load[0].Requests == nil {
			t.Errorf("%s: %v (load %+v, want one request phase)", s.Name, err, s.Load)
		}
	}
}
