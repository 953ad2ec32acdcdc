package report

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestThresholdsYAMLAndJSONAgree(t *testing.T) {
	y := writeFile(t, "t.yaml", `
# CI limits
same-id-reconnect:
  duplicate-senders: 0
  old-stream-ended: 1s
"*":
  first-event: 2s
  latency-p99: 12.5
`)
	j := writeFile(t, "t.json", `{
  "same-id-reconnect": {"duplicate-senders": 0, "old-stream-ended": "1s"},
  "*": {"first-event": "2s", "latency-p99": 12.5}
}`)
	for _, path := range []string{y, j} {
		th, err := LoadThresholds(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, c := range []struct{ scenario, check, want string }{
			{"same-id-reconnect", "duplicate-senders", "0"},
			{"same-id-reconnect", "old-stream-ended", "1s"},
			{"same-id-reconnect", "first-event", "2s"}, // from "*"
			{"starvation", "first-event", "2s"},
			{"starvation", "latency-p99", "12.5"},
		} {
			if v, ok := th.Lookup(c.scenario, c.check); !ok || v != c.want {
				t.Errorf("%s: Lookup(%s, %s) = %q %v, want %q", filepath.Base(path), c.scenario, c.check, v, ok, c.want)
			}
		}
		if _, ok := th.Lookup("starvation", "duplicate-senders"); ok {
			t.Errorf("%s: a scenario's limit leaked into another", filepath.Base(path))
		}
		want := map[string]string{
			"same-id-reconnect/duplicate-senders": "0", "same-id-reconnect/old-stream-ended": "1s",
			"first-event": "2s", "latency-p99": "12.5",
		}
		if got := th.Flat(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Flat() = %v", filepath.Base(path), got)
		}
	}
	var none *Thresholds
	if _, ok := none.Lookup("a", "b"); ok || len(none.Flat()) != 0 {
		t.Error("nil thresholds hold limits")
	}
}

func TestThresholdsErrors(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"list.yaml", "- a\n- b\n", []string{"line 1", "want a mapping of scenario names"}},
		{"scalar.yaml", "resume: 5\n", []string{"line 1", "resume: want a mapping of check names"}},
		{"values.yaml", "resume:\n  a: [1, 2]\n  b: true\n  c: ~\n  d: \"\"\n", []string{"line 2: resume.a", "not a list", `line 3: resume.b: "true" is not a limit`, "resume.c", "line 5: resume.d: the limit is empty"}},
		{"dup.yaml", "resume:\n  a: 1\n  a: 2\n", []string{"resume.a appears twice"}},
		{"syntax.yaml", "resume:\n  a: 1\n b: [\n", []string{"not valid YAML"}},
		{"bad.json", `{"resume": {"a": true, "b": null, "c": {"x": 1}, "d": " "}}`, []string{"resume.a: true is not a limit", "resume.b: null", "resume.c", "resume.d: the limit is empty"}},
		{"syntax.json", "{\n  \"resume\": {\"a\": 1,}\n}", []string{"not valid JSON: line 2"}},
		{"shape.json", `{"resume": 5}`, []string{"line 1", "want an object"}},
	}
	for _, c := range cases {
		_, err := LoadThresholds(writeFile(t, c.name, c.body))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q is not one line naming the file", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
	if _, err := LoadThresholds(filepath.Join(t.TempDir(), "absent.yaml")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if th, err := ParseThresholds(nil, "yaml"); err != nil || len(th.Flat()) != 0 {
		t.Errorf("empty file: %v %v", th, err)
	}
	if _, err := ParseThresholds(nil, "toml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestThresholdsCheckNames(t *testing.T) {
	th, err := ParseThresholds([]byte("resume:\n  lost-ids: 0\n  lost: 1\nresum:\n  x: 1\n\"*\":\n  first-event: 2s\n  nothing: 1\n"), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string][]string{"resume": {"lost-ids", "in-order"}, "starvation": {"first-event"}}
	err = th.CheckNames(known)
	if err == nil {
		t.Fatal("unknown names accepted")
	}
	for _, w := range []string{`unknown scenario "resum"`, `scenario resume has no check "lost"`, `no scenario has a check "nothing"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	good, _ := ParseThresholds([]byte("resume:\n  lost-ids: 0\n\"*\":\n  first-event: 2s\n"), "yaml")
	if err := good.CheckNames(known); err != nil {
		t.Errorf("known names rejected: %v", err)
	}
}
