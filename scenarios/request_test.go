package scenarios

import (
	"strings"
	"testing"
	"time"
)

func TestRequestOptionsDefaultsAndValidate(t *testing.T) {
	c := RequestOptions{}.config("http://127.0.0.1:9/", 5, 3*time.Second)
	if c.URL != "http://127.0.0.1:9/v1/chat/completions" || c.Method != "POST" || c.Body != DefaultRequestBody ||
		c.EndData != DefaultEndData || c.ContentPath != DefaultContentPath || c.UsagePath != DefaultUsagePath || c.Duration != 3*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if c := (RequestOptions{EndEvent: "message_stop"}).config("http://h", 1, time.Second); c.EndData != "" {
		t.Errorf("an end event keeps the default end data %q", c.EndData)
	}
	if c := (RequestOptions{NoEndData: true}).config("http://h", 1, time.Second); c.EndData != "" || c.EndEvent != "" {
		t.Errorf("NoEndData: end data %q", c.EndData)
	}
	if c := (RequestOptions{Requests: 7}).config("http://h", 1, time.Second); c.Duration != 0 || c.Requests != 7 {
		t.Errorf("a request bound also got the default window: %+v", c)
	}
	err := RequestOptions{Rates: []float64{1, -2}, GoodputTarget: 1.5, ContentPath: "a..b", Method: "NO PE"}.Validate([]*Scenario{requestStream()})
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"rate -2", "one rate", "goodput target", "content path", "method"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if err := (RequestOptions{}).Validate(All()); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
