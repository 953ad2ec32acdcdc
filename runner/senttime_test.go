package runner

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSentTime(t *testing.T) {
	const sec = 1_700_000_000
	tsNanos := int64(sec) * 1e9
	rfc := time.Unix(sec, 123_000_000).UTC().Format(time.RFC3339Nano)
	tests := []struct {
		name string
		data string
		path string
		unit SentUnit
		want int64
		ok   bool
	}{
		{"ms number", `{"seq":1,"ts":1700000000000}`, "ts", SentMillis, tsNanos, true},
		{"auto ms", `{"seq":1,"ts":1700000000000}`, "ts", SentAuto, tsNanos, true},
		{"auto s", `{"ts":1700000000}`, "ts", SentAuto, tsNanos, true},
		{"auto s fraction", `{"ts":1700000000.5}`, "ts", SentAuto, tsNanos + 5e8, true},
		{"auto us", `{"ts":1700000000000000}`, "ts", SentAuto, tsNanos, true},
		{"auto ns", `{"ts":1700000000000000000}`, "ts", SentAuto, tsNanos, true},
		{"empty unit is auto", `{"ts":1700000000000}`, "ts", "", tsNanos, true},
		{"us", `{"ts":1700000000000000}`, "ts", SentMicros, tsNanos, true},
		{"s", `{"ts":1700000000}`, "ts", SentSeconds, tsNanos, true},
		{"ns", `{"ts":1700000000000000000}`, "ts", SentNanos, tsNanos, true},
		{"string holding ms", `{"ts":"1700000000000"}`, "ts", SentMillis, tsNanos, true},
		{"string holding auto", `{"ts":"1700000000000"}`, "ts", SentAuto, tsNanos, true},
		{"rfc3339", `{"at":"` + rfc + `"}`, "at", SentRFC3339, tsNanos + 123e6, true},
		{"auto rfc3339", `{"at":"` + rfc + `"}`, "at", SentAuto, tsNanos + 123e6, true},
		{"rfc3339 with offset", `{"at":"2023-11-14T23:13:20+01:00"}`, "at", SentRFC3339, tsNanos, true},
		{"nested", `{"seq":2,"meta":{"id":"x","sent_at":1700000000000},"ts":5}`, "meta.sent_at", SentMillis, tsNanos, true},
		{"deeply nested", `{"a":{"b":{"c":"1700000000"}}}`, "a.b.c", SentSeconds, tsNanos, true},
		{"nested skips arrays and strings", `{"x":[{"ts":1}],"s":"}{","meta":{"ts":1700000000}}`, "meta.ts", SentAuto, tsNanos, true},
		{"missing field", `{"seq":1}`, "ts", SentAuto, 0, false},
		{"missing nested field", `{"meta":{"other":1}}`, "meta.sent_at", SentAuto, 0, false},
		{"nested path into a number", `{"meta":5}`, "meta.sent_at", SentAuto, 0, false},
		{"top level only", `{"meta":{"ts":1700000000}}`, "ts", SentAuto, 0, false},
		{"not json", `hello`, "ts", SentAuto, 0, false},
		{"rfc3339 as number unit", `{"at":"` + rfc + `"}`, "at", SentMillis, 0, false},
		{"number with rfc3339 unit", `{"at":1700000000}`, "at", SentRFC3339, 0, false},
		{"bad string", `{"ts":"soon"}`, "ts", SentAuto, 0, false},
		{"null", `{"ts":null}`, "ts", SentAuto, 0, false},
		{"overflow", `{"ts":99999999999999999999}`, "ts", SentSeconds, 0, false},
		{"too large for ns", `{"ts":9300000000}`, "ts", SentSeconds, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := SentTime(tc.data, tc.path, tc.unit)
			if ok != tc.ok || got != tc.want {
				t.Errorf("SentTime(%s, %q, %q) = %d, %v; want %d, %v", tc.data, tc.path, tc.unit, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestScanDataNestedSentField(t *testing.T) {
	f := scanData(`{"meta":{"sent_at":1700000000000},"sender":"a"}`, "meta.sent_at", SentAuto, "sender")
	if !f.hasSent || f.sent != 1_700_000_000_000_000_000 || f.sender != "a" {
		t.Errorf("scanData nested = %+v", f)
	}
	if f := scanData(`{"meta":{"x":1},"sender":"a"}`, "meta.sent_at", SentAuto, "sender"); f.hasSent || f.sender != "a" {
		t.Errorf("scanData without the nested field = %+v", f)
	}
	data := `{"seq":1,"meta":{"sent_at":1700000000000},"sender":"a"}`
	if allocs := testing.AllocsPerRun(100, func() { scanData(data, "meta.sent_at", SentAuto, "sender") }); allocs != 0 {
		t.Errorf("nested lookup allocates %v times per event, want 0", allocs)
	}
}

func TestSentUnitDefaultsAndValidation(t *testing.T) {
	if u := (Config{Target: "http://127.0.0.1:1"}).Resolved().SentUnit; u != SentNanos {
		t.Errorf("default field resolves to unit %q, want ns", u)
	}
	if u := (Config{Target: "http://127.0.0.1:1", SentField: "ts"}).Resolved().SentUnit; u != SentAuto {
		t.Errorf("field ts resolves to unit %q, want auto", u)
	}
	err := Config{Target: "http://127.0.0.1:1", SentField: "meta..ts", SentUnit: "hours"}.Validate()
	if err == nil {
		t.Fatal("bad sent field and unit accepted")
	}
	for _, want := range []string{`sent field "meta..ts"`, `sent unit "hours"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestLatencyFromAnyField: a source measures latency from a millisecond ts field and
// from a nested RFC 3339 time, as configured; the default field is not used then.
func TestLatencyFromAnyField(t *testing.T) {
	srv := sseServer(t, func(w http.ResponseWriter, r *http.Request) {
		streamHeaders(w)
		now := time.Now().Add(-50 * time.Millisecond)
		writeEvent(w, "data: {\"seq\":1,\"ts\":%d,\"meta\":{\"sent_at\":%q},\"sent_unix_ns\":1}\n\n",
			now.UnixMilli(), now.UTC().Format(time.RFC3339Nano))
		<-r.Context().Done()
	})
	for _, tc := range []struct {
		field string
		unit  SentUnit
	}{{"ts", ""}, {"ts", SentMillis}, {"meta.sent_at", ""}, {"meta.sent_at", SentRFC3339}} {
		rec := newRecorder(t)
		startSource(t, NewBrowser(BrowserConfig{}), SourceConfig{URL: srv.URL, SentField: tc.field, SentUnit: tc.unit}, rec.ch)
		ev := rec.waitKind(t, RecordEvent, 1)
		if l := ev[0].Latency; l < 49*time.Millisecond || l > 10*time.Second {
			t.Errorf("field %s unit %q: latency %v, want about 50ms", tc.field, tc.unit, l)
		}
	}
	if _, err := NewBrowser(BrowserConfig{}).NewEventSource(SourceConfig{URL: srv.URL, SentUnit: "weeks"}, nil); err == nil {
		t.Error("unknown sent unit accepted")
	}
}
