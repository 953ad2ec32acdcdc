package runner

import (
	"iter"
	"math"
	"time"
)

// Plan is the pure schedule of a run: when each stream opens, which streams are
// slow or churn and when, which browser and shard a stream belongs to. It touches
// no network and no clock, so the load shape is testable on its own; the engine
// (Start) turns it into goroutines. Build it with Config.Plan.
type Plan struct {
	Streams           int
	StreamsPerBrowser int
	Ramp              time.Duration
	Hold              time.Duration
	ChurnShare        float64
	ChurnDelay        time.Duration
	SlowShare         float64
	Shard             Shard
}

// Plan returns the schedule of the resolved config.
func (c Config) Plan() Plan {
	r := c.Resolved()
	return Plan{
		Streams:           r.Streams,
		StreamsPerBrowser: r.StreamsPerBrowser,
		Ramp:              r.Ramp,
		Hold:              r.Hold,
		ChurnShare:        r.ChurnShare,
		ChurnDelay:        r.ChurnDelay,
		SlowShare:         r.SlowShare,
		Shard:             r.Shard,
	}
}

// StartAt is when stream i opens, from the start of the run: the streams of the whole
// run (all shards) are spread evenly over the ramp, the first at 0, the last at Ramp.
func (p Plan) StartAt(i int) time.Duration {
	if p.Streams <= 1 || p.Ramp <= 0 {
		return 0
	}
	return time.Duration(float64(p.Ramp) * float64(i) / float64(p.Streams-1))
}

// StopAt is when the hold ends: streams still open are asked to close, and streams
// not yet opened (a run that fell behind) are not opened any more.
func (p Plan) StopAt() time.Duration { return p.Ramp + p.Hold }

// Browser returns the index of the browser stream i belongs to.
func (p Plan) Browser(i int) int {
	if p.StreamsPerBrowser <= 1 {
		return i
	}
	return i / p.StreamsPerBrowser
}

// InShard reports whether stream i belongs to this plan's shard.
func (p Plan) InShard(i int) bool {
	if p.Shard.Count <= 1 {
		return true
	}
	return p.Browser(i)%p.Shard.Count == p.Shard.Index
}

// ShardStreams yields every stream index of this shard, in opening order.
func (p Plan) ShardStreams() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range p.Streams {
			if p.InShard(i) && !yield(i) {
				return
			}
		}
	}
}

// picked spreads a share of n items evenly: item i is picked when the running count
// floor((i+1)*share) steps up at i. Exactly round-down(n*share) items are picked.
func picked(i int, share float64) bool {
	if share <= 0 {
		return false
	}
	if share >= 1 {
		return true
	}
	return math.Floor(float64(i+1)*share) > math.Floor(float64(i)*share)
}

// Slow reports whether stream i reads at the slow read rate.
func (p Plan) Slow(i int) bool { return picked(i, p.SlowShare) }

// LeaveAt says whether stream i churns and, if so, when (from the start of the run)
// it leaves; it comes back ChurnDelay later. Churning streams are picked from the
// end of the index range so that they overlap the slow ones as little as possible,
// and they leave at spread-out moments in the first half of the hold (golden-ratio
// sequence), so that they have time to come back before it ends.
func (p Plan) LeaveAt(i int) (time.Duration, bool) {
	if p.Streams <= 0 || !picked(p.Streams-1-i, p.ChurnShare) {
		return 0, false
	}
	_, frac := math.Modf(float64(i) * 0.6180339887498949)
	return p.Ramp + time.Duration(float64(p.Hold)*(0.1+0.4*frac)), true
}
