package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// AllScenarios is the scenario key of a thresholds file whose limits apply to every
// scenario that has the check (a scenario's own entry wins).
const AllScenarios = "*"

// Thresholds are absolute limits a CI job pins per scenario and check, read from a file
// given to `sseharness run --thresholds FILE`:
//
//	# scenario name -> check name -> limit, written as on the command line
//	same-id-reconnect:
//	  duplicate-senders: 0
//	mid-stream-disconnect:
//	  back-to-baseline: 5s
//	"*":                     # every scenario that has this check
//	  first-event: 2s
//
// The same in JSON (a file ending in .json): {"same-id-reconnect":
// {"duplicate-senders": 0}, "*": {"first-event": "2s"}}. A limit is a number or a string;
// its meaning (count, duration, percentage) is the check's. The zero value and nil hold
// no limits. Thresholds are read-only after loading and safe for concurrent use.
type Thresholds struct {
	limits map[string]map[string]string
}

// LoadThresholds reads a thresholds file: JSON when the name ends in .json, YAML
// otherwise. Every problem of the file is reported at once, each with its line where
// known.
func LoadThresholds(path string) (*Thresholds, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("thresholds file %s does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("thresholds file %s: %w", path, err)
	}
	format := "yaml"
	if strings.EqualFold(filepath.Ext(path), ".json") {
		format = "json"
	}
	t, err := ParseThresholds(b, format)
	if err != nil {
		return nil, fmt.Errorf("thresholds file %s: %w", path, err)
	}
	return t, nil
}

// ParseThresholds parses the contents of a thresholds file; format is "json" or "yaml".
func ParseThresholds(b []byte, format string) (*Thresholds, error) {
	switch format {
	case "json":
		return parseThresholdsJSON(b)
	case "yaml", "yml":
		return parseThresholdsYAML(b)
	}
	return nil, fmt.Errorf("unknown thresholds format %q (want json or yaml)", format)
}

func parseThresholdsYAML(b []byte) (*Thresholds, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	t := &Thresholds{limits: map[string]map[string]string{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return t, nil // an empty file sets no limits
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping of scenario names to their checks' limits", root.Line)
	}
	var errs []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		scenario := key.Value
		if key.Kind != yaml.ScalarNode || scenario == "" {
			errs = append(errs, fmt.Sprintf("line %d: a scenario name must be text", key.Line))
			continue
		}
		if _, dup := t.limits[scenario]; dup {
			errs = append(errs, fmt.Sprintf("line %d: scenario %s appears twice", key.Line, scenario))
			continue
		}
		if val.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Sprintf("line %d: %s: want a mapping of check names to limits", val.Line, scenario))
			continue
		}
		checks := map[string]string{}
		t.limits[scenario] = checks
		for j := 0; j+1 < len(val.Content); j += 2 {
			ck, cv := val.Content[j], val.Content[j+1]
			if ck.Kind != yaml.ScalarNode || ck.Value == "" {
				errs = append(errs, fmt.Sprintf("line %d: %s: a check name must be text", ck.Line, scenario))
				continue
			}
			where := fmt.Sprintf("line %d: %s.%s", cv.Line, scenario, ck.Value)
			if _, dup := checks[ck.Value]; dup {
				errs = append(errs, fmt.Sprintf("line %d: %s.%s appears twice", ck.Line, scenario, ck.Value))
				continue
			}
			switch {
			case cv.Kind != yaml.ScalarNode:
				errs = append(errs, where+": the limit must be a number or text such as 5s, not a list or mapping")
			case cv.Tag == "!!bool" || cv.Tag == "!!null":
				errs = append(errs, fmt.Sprintf("%s: %q is not a limit (want a number or text such as 5s)", where, cv.Value))
			case strings.TrimSpace(cv.Value) == "":
				errs = append(errs, where+": the limit is empty")
			default:
				checks[ck.Value] = strings.TrimSpace(cv.Value)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return t, nil
}

func parseThresholdsJSON(b []byte) (*Thresholds, error) {
	var raw map[string]map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			line, _ := position(b, typ.Offset)
			return nil, fmt.Errorf("line %d: want an object of scenario names to objects of check limits", line)
		}
		return nil, fmt.Errorf("%s", strings.TrimPrefix(jsonError(b, err).Error(), "is "))
	}
	t := &Thresholds{limits: map[string]map[string]string{}}
	var errs []string
	for _, scenario := range sortedKeys(raw) {
		checks := map[string]string{}
		t.limits[scenario] = checks
		for _, check := range sortedKeys(raw[scenario]) {
			v := bytes.TrimSpace(raw[scenario][check])
			where := scenario + "." + check
			var s string
			var n json.Number
			switch {
			case string(v) == "null":
				errs = append(errs, where+": null is not a limit (want a number or a string such as \"5s\")")
			case json.Unmarshal(v, &s) == nil:
				if strings.TrimSpace(s) == "" {
					errs = append(errs, where+": the limit is empty")
					continue
				}
				checks[check] = strings.TrimSpace(s)
			case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) && json.Unmarshal(v, &n) == nil:
				checks[check] = n.String()
			default:
				errs = append(errs, fmt.Sprintf("%s: %s is not a limit (want a number or a string such as \"5s\")", where, v))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return t, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Lookup returns the limit the file sets for check in scenario: the scenario's own entry,
// else the "*" entry. ok is false when the file sets none (or t is nil).
func (t *Thresholds) Lookup(scenario, check string) (value string, ok bool) {
	if t == nil {
		return "", false
	}
	if v, ok := t.limits[scenario][check]; ok {
		return v, true
	}
	v, ok := t.limits[AllScenarios][check]
	return v, ok
}

// Flat returns the limits as "scenario/check" -> value, with "*" entries as plain
// "check" keys: the form of `run --threshold`, so flags can be laid over a file.
func (t *Thresholds) Flat() map[string]string {
	out := map[string]string{}
	if t == nil {
		return out
	}
	for scenario, checks := range t.limits {
		for check, v := range checks {
			if scenario == AllScenarios {
				out[check] = v
			} else {
				out[scenario+"/"+check] = v
			}
		}
	}
	return out
}

// CheckNames verifies every entry against the scenarios and checks that exist (scenario
// name -> its check names) and reports all unknown ones at once, so that a typo in a CI
// job's file is an error instead of a limit silently ignored.
func (t *Thresholds) CheckNames(known map[string][]string) error {
	if t == nil {
		return nil
	}
	anyCheck := map[string]bool{}
	for _, checks := range known {
		for _, c := range checks {
			anyCheck[c] = true
		}
	}
	var errs []string
	for _, scenario := range sortedKeys(t.limits) {
		checks, isScenario := known[scenario]
		if scenario != AllScenarios && !isScenario {
			errs = append(errs, fmt.Sprintf("unknown scenario %q (known: %s)", scenario, strings.Join(sortedKeys(known), ", ")))
			continue
		}
		for _, check := range sortedKeys(t.limits[scenario]) {
			switch {
			case scenario == AllScenarios && !anyCheck[check]:
				errs = append(errs, fmt.Sprintf("no scenario has a check %q", check))
			case scenario != AllScenarios && !contains(checks, check):
				errs = append(errs, fmt.Sprintf("scenario %s has no check %q (its checks: %s)", scenario, check, strings.Join(checks, ", ")))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
