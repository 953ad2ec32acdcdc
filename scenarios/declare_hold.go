package scenarios

import (
	"fmt"
	"time"
)

// The declaration of a held load at scale (hold): a phase the load engine opens over a
// ramp (Phase.Ramp), held through a window of time, and checks over what each of its
// streams got in that window (CheckSpec.Held). interpret_hold.go runs them.

// Ramp makes a phase the load engine's (runner.Start) instead of one EventSource per
// stream: its streams open evenly over the ramp, are held through the scenario's hold
// and Past it, and the engine keeps a few words per stream, so a phase of 100,000
// streams costs what the streams cost. The phase's Streams is the run's total
// (--streams overrides it); with a shard the engine opens this shard's share of the
// same plan. Such a phase awaits no stream: the scenario goes on after the ramp plus
// Settle, and the hold window (Window) then counts what each stream got.
type Ramp struct {
	// PerSecond is how many streams open per second when the run gives no ramp
	// (HoldConfig.Ramp).
	PerSecond int
	// Settle is the wait after the ramp for the last streams' first events, before
	// the window opens.
	Settle time.Duration
	// Past is how long the engine holds its streams beyond the hold, so that none ends
	// inside the window by the plan.
	Past time.Duration
	// Window names the window of time over the hold, for rules (report.Rule.Group)
	// and for the Held checks, which count events in it.
	Window string
	// Publish makes the harness publish marks to a target with a publish endpoint over
	// the ramp, the settle and the hold, so that the Delivery and Held checks count
	// marks rather than the target's ids.
	Publish bool
	// Costs notes what a stream costs the runner (its RSS before the load, at the end
	// of the hold and after a collection) and the server (its RSS and goroutines
	// against the baseline), measured at the end of the hold.
	Costs bool
}

// Held declares a check over the streams of the scenario's ramped phase and what each
// got in the hold window. The interpreter keeps a few words per stream of the plan
// (its events in the window, its reconnect waits, its first event and marks), bounded
// by the streams and never by the events; the times of the marks published are kept
// too (bounded by the publish rate times the hold). Each kind is judged as a count of
// offending streams (a measure that adds up over shards) or, for HeldLostIDs, as a rule.
type Held struct {
	Kind HeldKind
}

// HeldKind is what a Held check counts.
type HeldKind int

// Held kinds.
const (
	// HeldEveryEvent: streams more than the threshold behind the median stream's
	// events in the window, besides the events of the reconnect waits the server
	// asked for (its retry); a stream with none is behind whatever the threshold.
	HeldEveryEvent HeldKind = iota + 1
	// HeldExcessEvents: streams that got more than threshold times the events the
	// target produced while they were open (the marks published, or the stream's own
	// rate in the window), plus two for the window's edges.
	HeldExcessEvents
	// HeldFirstEvent: streams whose first event came later than the threshold and
	// than three of the target's median gaps between events in the window.
	HeldFirstEvent
	// HeldQuickEnds: streams that saw more than threshold attempts in a row end within
	// a second of opening.
	HeldQuickEnds
	// HeldLostIDs: ids lost (Delivery LostIDs); with marks, also the marks a stream
	// missed before its first or after its last received one, while it was open.
	HeldLostIDs
)

func (k HeldKind) String() string {
	switch k {
	case HeldEveryEvent:
		return "every-event"
	case HeldExcessEvents:
		return "excess-events"
	case HeldFirstEvent:
		return "first-event"
	case HeldQuickEnds:
		return "quick-ends"
	case HeldLostIDs:
		return "lost-ids"
	}
	return fmt.Sprintf("held kind %d", int(k))
}

// validateHeld reports the problems of the ramped phases and Held checks of s: more
// than one ramped phase, a ramped phase with what only EventSources have (browsers,
// proxies, nginx, a reload, a milestone to await) or without a window, a Held check
// without a ramped phase or of no known kind.
func (s *Scenario) validateHeld() []error {
	var errs []error
	ramped := 0
	for i, p := range s.Load {
		r := p.Ramp
		if r == nil {
			continue
		}
		ramped++
		if p.PerBrowser != 0 || p.Through != nil || p.Nginx != nil || p.Reopen != nil || p.ReadRate != 0 || p.NoReconnect || p.Within != nil || p.Group != "" {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d: a ramped phase has no browsers, proxy, nginx, reload, read rate, group or wait of its own", s.Name, i))
		}
		if p.Until != Unawaited {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d: a ramped phase awaits no stream (Until: Unawaited)", s.Name, i))
		}
		if r.PerSecond <= 0 || r.Settle < 0 || r.Past < 0 {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d: ramp of %d streams per second, settle %s, past %s: want > 0, >= 0, >= 0", s.Name, i, r.PerSecond, r.Settle, r.Past))
		}
		if r.Window == "" {
			errs = append(errs, fmt.Errorf("scenario %s: phase %d: a ramped phase names its hold window", s.Name, i))
		}
	}
	if ramped > 1 {
		errs = append(errs, fmt.Errorf("scenario %s: %d ramped phases, at most one", s.Name, ramped))
	}
	if ramped > 0 && s.Hold <= 0 {
		errs = append(errs, fmt.Errorf("scenario %s: a ramped phase without a hold has no window", s.Name))
	}
	for _, c := range s.Checks {
		if c == nil || c.Held == nil {
			continue
		}
		if ramped == 0 {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: held streams, but no ramped phase", s.Name, c.Name))
		}
		if c.Held.Kind < HeldEveryEvent || c.Held.Kind > HeldLostIDs {
			errs = append(errs, fmt.Errorf("scenario %s: check %s: %s", s.Name, c.Name, c.Held.Kind))
		}
	}
	return errs
}
