package conform

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sseharness/sseharness/report"
)

func findings(verdicts map[int]Verdict) []Finding {
	var fs []Finding
	for _, c := range checks() {
		v := Pass
		if got, ok := verdicts[c.ID]; ok {
			v = got
		}
		fs = append(fs, Finding{ID: c.ID, Name: c.Name, Level: c.Level, Verdict: v, Threshold: c.Threshold, Seen: "seen", Spec: c.Spec})
	}
	return fs
}

// TestReportVerdicts: only a failed MUST fails the result, in Result and in its report
// form; a failed SHOULD shows but does not fail it.
func TestReportVerdicts(t *testing.T) {
	t.Parallel()
	cfg := Config{Target: "http://127.0.0.1:1/s", Header: http.Header{"Authorization": {"Bearer secret-token"}}}.withDefaults()
	cases := []struct {
		verdicts map[int]Verdict
		want     report.Verdict
	}{
		{nil, report.VerdictPass},
		{map[int]Verdict{8: Fail, 20: Warn, 5: NA}, report.VerdictPass},
		{map[int]Verdict{7: Fail}, report.VerdictFail},
	}
	for _, tc := range cases {
		res := Result{Config: cfg, Started: time.Now(), Duration: time.Second, Findings: findings(tc.verdicts)}
		rep := res.Report("test")
		if rep.Verdict != tc.want || res.Failed() != (tc.want == report.VerdictFail) {
			t.Errorf("%v: report verdict %s, Failed %v; want %s", tc.verdicts, rep.Verdict, res.Failed(), tc.want)
		}
		if len(rep.Scenarios) != 1 || len(rep.Scenarios[0].Checks) != numChecks || rep.Scenarios[0].Checks[6].Name != "07 incremental-delivery" {
			t.Fatalf("scenario layout: %+v", rep.Scenarios)
		}
		var js, junit bytes.Buffer
		if err := report.Encode(&js, rep); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(js.String(), "secret-token") || !strings.Contains(js.String(), "Authorization") {
			t.Errorf("the result file must name the header but not hold its value:\n%s", js.String())
		}
		if err := report.JUnit(&junit, rep); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(junit.String(), "<testcase"); got != numChecks {
			t.Errorf("JUnit has %d test cases, want %d", got, numChecks)
		}
	}
}
