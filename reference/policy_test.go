package reference

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// seamsOf fingerprints each seam of p: a function by its code, an interface by its
// dynamic type, a value as it is, a head policy maker by the type it makes and a chat
// plan by what it plans.
func seamsOf(p policies) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			name, f := prefix+v.Type().Field(i).Name, v.Field(i)
			switch f.Kind() {
			case reflect.Struct:
				walk(name+".", f)
			case reflect.Func:
				out[name] = fmt.Sprint(f.Pointer())
			case reflect.Interface:
				out[name] = f.Elem().Type().String()
			default:
				out[name] = fmt.Sprint(f)
			}
		}
	}
	walk("", reflect.ValueOf(p))
	out["sessionHead"] = reflect.TypeOf(p.sessionHead()).String()
	// A plan by what it does (inlining makes a closure per call site, so its code
	// pointer says little): the tokens and the end of requests 1-100.
	var plan strings.Builder
	for n := range uint64(100) {
		emit, end := p.chat.plan(n+1, 16)
		fmt.Fprint(&plan, emit, reflect.ValueOf(end).Pointer(), " ")
	}
	out["chat.plan"] = plan.String()
	return out
}

// policiesFor builds the policies of a valid config with faults, and stops what they
// started (pool=N workers) at the end of the test.
func policiesFor(t *testing.T, faults string) policies {
	t.Helper()
	f, err := ParseFaults(faults)
	if err != nil {
		t.Fatalf("ParseFaults(%q): %v", faults, err)
	}
	cfg := DefaultConfig()
	cfg.Faults = f
	var bg sync.WaitGroup
	shutdown := make(chan struct{})
	p := newPolicies(cfg, newMetrics(), bg.Go, shutdown)
	t.Cleanup(func() {
		close(shutdown)
		p.sched.shutdown()
		bg.Wait()
	})
	return p
}

func TestDefaultPoliciesAreTheCorrectServer(t *testing.T) {
	p := policiesFor(t, "")
	checks := []struct {
		what      string
		got, want any
	}{
		{"takeover", p.takeover, replaceEarlier{}},
		{"gone", p.gone, noticeGone{}},
		{"sched", p.sched, inline{}},
		{"sessionHead", p.sessionHead(), headNow{}},
		{"chat.slots", p.chat.slots, unlimitedSlots{}},
		{"chat.chunk", p.chat.chunk, 1},
		{"userTimeout", p.userTimeout, DefaultConfig().WriteTimeout},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
		}
	}
	if emit, _ := p.chat.plan(1, 16); emit != 16 {
		t.Errorf("chat.plan emits %d of 16 tokens, want all", emit)
	}
	if c, _ := p.cut(); c != nil {
		t.Error("cut fires without fault cut-after")
	}
	c, stop := p.lifetime()
	defer stop()
	if c == nil {
		t.Error("lifetime never fires without fault no-lifetime")
	}
}

// Each fault swaps exactly the seams it names, and every known fault has one.
func TestEachFaultSwapsOnlyItsSeams(t *testing.T) {
	want := map[string][]string{
		"no-replace":         {"takeover"},
		"leak-on-disconnect": {"gone", "sched"},
		"no-flush":           {"newBody"},
		"no-retry":           {"retry"},
		"no-replay":          {"lastEventID"},
		"no-heartbeat":       {"heartbeat", "userTimeout", "writeDeadline"},
		"no-204":             {"finished"},
		"no-lifetime":        {"lifetime"},
		"gzip-buffer":        {"newBody"},
		"late-head":          {"chat.openHead", "sessionHead"},
		"no-done":            {"chat.plan"},
		"cut-after=D":        {"cut"},
		"pool=N":             {"sched"},
		"token-batch=N":      {"chat.chunk"},
		"stream-error=P":     {"chat.plan"},
		"gen-slots=N":        {"chat.slots"},
	}
	value := strings.NewReplacer("=D", "=1s", "=N", "=2", "=P", "=10")
	base := seamsOf(policiesFor(t, ""))
	for _, name := range KnownFaults() {
		seams, ok := want[name]
		if !ok {
			t.Errorf("fault %s: no seam listed for it in this test", name)
			continue
		}
		got := seamsOf(policiesFor(t, value.Replace(name)))
		var changed []string
		for k, v := range got {
			if base[k] != v {
				changed = append(changed, k)
			}
		}
		slices.Sort(changed)
		if !slices.Equal(changed, seams) {
			t.Errorf("fault %s changes %v, want %v", name, changed, seams)
		}
	}
}

func TestTimerFuncs(t *testing.T) {
	if c, stop := never(); c != nil {
		t.Error("never has a channel")
	} else {
		stop()
	}
	c, stop := after(time.Millisecond)()
	defer stop()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatal("after(1ms) did not fire within 5s")
	}
}
