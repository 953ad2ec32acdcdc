package cli

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sseharness/sseharness/runner"
	"github.com/sseharness/sseharness/scenarios"
)

// The target description (issue 11): everything `run` needs to know about a target, as
// flags and, under the same names, in a YAML file (--target-file). Flags given on the
// command line win over the file.

// targetFileKeys are the flags a target file may set: the target's URLs, requests and
// events, never the load or the output.
var targetFileKeys = []string{
	"target", "stream-url", "header", "progress-url", "callback-token", "metrics-url", "ordinary-url",
	"open-streams-metric", "senders-metric", "duplicate-senders-metric", "insecure",
	"sent-field", "sent-unit", "accept-encoding", "min-reconnect",
	"publish-url", "publish-method", "publish-header", "publish-body", "publish-rate",
	// Request streams: what a request is and how its stream ends (the load stays on the
	// command line).
	"request-url", "method", "body", "body-file", "random-bodies", "end-data", "end-event",
	"content-path", "error-path", "usage-path", "request-timeout",
}

// targetFlags are the target-description flags `run` adds to its own.
type targetFlags struct {
	file           *string
	sentField      *string
	sentUnit       *string
	acceptEncoding *string
	minReconnect   *time.Duration
	publishURL     *string
	publishMethod  *string
	publishBody    *string
	publishRate    rateFlag
	publishHeaders headerFlag
}

func addTargetFlags(fs *flag.FlagSet) *targetFlags {
	t := &targetFlags{
		file:           fs.String("target-file", "", "YAML file describing the target with the flags' names as keys (stream-url, sent-field, publish-url, ...); flags given on the command line win"),
		sentField:      fs.String("sent-field", "", "JSON path of an event's send time in its data, e.g. ts or meta.sent_at (default sent_unix_ns)"),
		sentUnit:       fs.String("sent-unit", "", "how the send time is written: auto (an epoch number's unit from its magnitude), ns, us, ms, s or rfc3339 (default ns for sent_unix_ns, auto for any other field)"),
		acceptEncoding: fs.String("accept-encoding", "", "the streams' Accept-Encoding (default what Chromium sends: "+runner.DefaultAcceptEncoding+"); identity turns compression off"),
		minReconnect:   fs.Duration("min-reconnect", runner.DefaultMinReconnect, "shortest reconnection delay whatever the target's retry field; streams that keep ending at once back off from it"),
		publishURL:     fs.String("publish-url", "", "the target's publish endpoint: hold and the scenarios that count deliveries publish marked events themselves and measure each subscriber's latency, losses, repeats and order ({target} is replaced)"),
		publishMethod:  fs.String("publish-method", runner.DefaultPublishMethod, "method of the publish requests"),
		publishBody:    fs.String("publish-body", runner.DefaultPublishBody, "body template of a publish request; {payload} is the mark, escaped for the body's JSON or form encoding"),
		publishRate:    rateFlag(runner.DefaultPublishRate),
	}
	fs.Var(&t.publishRate, "publish-rate", "marks published per second: 5, 5/s or 300/m")
	fs.Var(&t.publishHeaders, "publish-header", "extra header of the publish requests, \"Name: value\" (repeatable)")
	return t
}

// applyFile sets every flag the target file names and the command line did not; it
// reports every problem with the file at once, each with its line.
func (t *targetFlags) applyFile(fs *flag.FlagSet) error {
	if *t.file == "" {
		return nil
	}
	b, err := os.ReadFile(*t.file)
	if err != nil {
		return fmt.Errorf("--target-file: %v", err)
	}
	return applyTargetFile(fs, *t.file, b)
}

func applyTargetFile(fs *flag.FlagSet, name string, b []byte) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	known := map[string]bool{}
	for _, k := range targetFileKeys {
		known[k] = true
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("target file %s: %v", name, err)
	}
	if len(doc.Content) == 0 {
		return fmt.Errorf("target file %s: empty", name)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("target file %s line %d: want keys such as stream-url: ..., not a list or a value", name, root.Line)
	}
	var errs []string
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: %s", line, fmt.Sprintf(format, args...)))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		k := key.Value
		switch {
		case !known[k]:
			bad(key.Line, "unknown key %q (known: %s)", k, strings.Join(sortedKeys(), ", "))
			continue
		case seen[k] > 0:
			bad(key.Line, "%s given twice (first on line %d)", k, seen[k])
			continue
		}
		seen[k] = key.Line
		if set[k] {
			continue // the command line wins
		}
		var values []string
		switch val.Kind {
		case yaml.ScalarNode:
			values = []string{val.Value}
		case yaml.SequenceNode:
			for _, item := range val.Content {
				if item.Kind != yaml.ScalarNode {
					bad(item.Line, "%s: want a list of values", k)
					continue
				}
				values = append(values, item.Value)
			}
		case yaml.MappingNode: // headers as Name: value pairs
			for j := 0; j+1 < len(val.Content); j += 2 {
				values = append(values, val.Content[j].Value+": "+val.Content[j+1].Value)
			}
		default:
			bad(val.Line, "%s: want a value", k)
			continue
		}
		if len(values) > 1 && k != "header" && k != "publish-header" {
			bad(val.Line, "%s takes one value, not %d", k, len(values))
			continue
		}
		for _, v := range values {
			if err := fs.Set(k, v); err != nil {
				bad(val.Line, "%s %q: %v", k, v, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("target file %s: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

func sortedKeys() []string {
	k := append([]string(nil), targetFileKeys...)
	sort.Strings(k)
	return k
}

// description is the target description the flags (and file) give; base replaces
// {target} in the publish URL.
func (t *targetFlags) description(base string) scenarios.TargetDescription {
	d := scenarios.TargetDescription{
		SentField:      *t.sentField,
		SentUnit:       runner.SentUnit(*t.sentUnit),
		AcceptEncoding: *t.acceptEncoding,
		MinReconnect:   *t.minReconnect,
	}
	if *t.publishURL != "" {
		d.Publish = runner.PublishConfig{
			URL:    strings.ReplaceAll(*t.publishURL, "{target}", strings.TrimRight(base, "/")),
			Method: *t.publishMethod,
			Header: http.Header(t.publishHeaders),
			Body:   *t.publishBody,
			Rate:   float64(t.publishRate),
		}
	}
	return d
}

// targetConfig is the target description as the result file records it.
type targetConfig struct {
	SentField      string  `json:"sent_field,omitempty"`
	SentUnit       string  `json:"sent_unit,omitempty"`
	AcceptEncoding string  `json:"accept_encoding,omitempty"`
	MinReconnect   string  `json:"min_reconnect,omitempty"`
	PublishURL     string  `json:"publish_url,omitempty"`
	PublishMethod  string  `json:"publish_method,omitempty"`
	PublishBody    string  `json:"publish_body,omitempty"`
	PublishRate    float64 `json:"publish_rate,omitempty"`
	Sessions       bool    `json:"sessions"`
	// Method and Body of the event-stream requests (--method, --body), when a scenario
	// that opens event streams ran.
	Method string `json:"method,omitempty"`
	Body   string `json:"body,omitempty"`
}

func (t *targetFlags) config(streamTemplate string) targetConfig {
	c := targetConfig{SentField: *t.sentField, SentUnit: *t.sentUnit, AcceptEncoding: *t.acceptEncoding,
		MinReconnect: t.minReconnect.String(), Sessions: strings.Contains(streamTemplate, "{session}")}
	if *t.publishURL != "" {
		c.PublishURL, c.PublishMethod, c.PublishBody, c.PublishRate = *t.publishURL, *t.publishMethod, *t.publishBody, float64(t.publishRate)
	}
	return c
}

// rateFlag is a rate per second: "5", "5/s" or "300/m".
type rateFlag float64

func (r *rateFlag) String() string { return strconv.FormatFloat(float64(*r), 'f', -1, 64) + "/s" }
func (r *rateFlag) Set(v string) error {
	num, per, _ := strings.Cut(strings.TrimSpace(v), "/")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f <= 0 || f != f {
		return fmt.Errorf("want a rate > 0 such as 5, 5/s or 300/m")
	}
	switch strings.TrimSpace(per) {
	case "", "s":
	case "m":
		f /= 60
	default:
		return fmt.Errorf("unit /%s: want /s or /m", per)
	}
	*r = rateFlag(f)
	return nil
}
