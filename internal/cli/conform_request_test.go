package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sseharness/sseharness/report"
)

// TestConformRequestStreamEndpoint: with --method POST and --body, conform checks the
// framing of an endpoint that answers each request with a stream (the reference's
// POST /v1/chat/completions): content type, UTF-8, line grammar and flushing pass. The
// same endpoint probed with an EventSource's GET is not a stream at all.
func TestConformRequestStreamEndpoint(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	srv := startBinary(t, bin, "--heartbeat", "1s")
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":8}`
	conformRun := func(extra ...string) (int, *report.Result, string) {
		env, _, errb := conformEnv()
		file := filepath.Join(t.TempDir(), "conform.json")
		args := append([]string{"conform", "--target", srv.url + "/v1/chat/completions", "--idle", "1s", "--timeout", "5s", "--out", file}, extra...)
		code := Main(context.Background(), args, env)
		res, err := report.Load(file)
		if err != nil {
			t.Fatalf("%v: exit %d, no result: %v; stderr %s", extra, code, err, errb)
		}
		return code, res, errb.String()
	}
	verdicts := func(res *report.Result) map[string]report.Verdict {
		v := map[string]report.Verdict{}
		for _, c := range res.Scenarios[0].Checks {
			v[c.Name] = c.Verdict
		}
		return v
	}
	code, res, stderr := conformRun("--method", "POST", "--body", body)
	if code != ExitOK {
		t.Errorf("POST: exit %d, want 0; stderr %s", code, stderr)
	}
	v := verdicts(res)
	for _, name := range []string{"01 status", "02 content-type", "04 utf-8", "05 line-grammar", "07 incremental-delivery"} {
		if v[name] != report.VerdictPass {
			t.Errorf("POST: %s %s, want pass", name, v[name])
		}
	}
	if v["18 get"] != report.VerdictNotApplicable {
		t.Errorf("POST: 18 get %s, want n/a (EventSource's GET rule is not for request-stream endpoints)", v["18 get"])
	}
	code, res, _ = conformRun()
	if code != ExitFailed || verdicts(res)["01 status"] != report.VerdictFail {
		t.Errorf("GET of a POST endpoint: exit %d, status check %s; want 1 and fail", code, verdicts(res)["01 status"])
	}
}

func TestConformBodyNeedsAMethod(t *testing.T) {
	t.Parallel()
	env, _, errb := conformEnv()
	code := Main(context.Background(), []string{"conform", "--target", "http://127.0.0.1:1/x", "--body", "{}", "--method", "BAD METHOD"}, env)
	if code != ExitUsage || !strings.Contains(errb.String(), "method") || strings.Count(strings.TrimSpace(errb.String()), "\n") > 1 {
		t.Errorf("exit %d, stderr %q: want 2 and one line about the method", code, errb)
	}
}
