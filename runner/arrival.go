package runner

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// ArrivalKind is the shape of the gaps between request arrivals.
type ArrivalKind uint8

// Arrival kinds.
const (
	ArrivalConstant ArrivalKind = iota // every gap is exactly 1/rate
	ArrivalPoisson                     // exponential gaps with mean 1/rate (a Poisson process)
	ArrivalGamma                       // gamma gaps of shape Shape with mean 1/rate
)

// Arrival is an arrival process: constant, poisson or gamma:SHAPE. The zero value is
// constant. For every kind the mean gap is 1/rate; a gamma gap's variance is
// 1/(Shape*rate^2), so Shape 1 is Poisson, Shape < 1 burstier, Shape > 1 smoother.
type Arrival struct {
	Kind  ArrivalKind
	Shape float64 // ArrivalGamma only; > 0
}

// ParseArrival parses "constant", "poisson" or "gamma:SHAPE" (SHAPE a number > 0).
func ParseArrival(s string) (Arrival, error) {
	switch s {
	case "constant", "":
		return Arrival{Kind: ArrivalConstant}, nil
	case "poisson":
		return Arrival{Kind: ArrivalPoisson}, nil
	}
	if v, ok := strings.CutPrefix(s, "gamma:"); ok {
		shape, err := strconv.ParseFloat(v, 64)
		if err != nil || !(shape > 0) || math.IsInf(shape, 0) {
			return Arrival{}, fmt.Errorf("arrival %q: gamma:SHAPE needs a number SHAPE > 0", s)
		}
		return Arrival{Kind: ArrivalGamma, Shape: shape}, nil
	}
	return Arrival{}, fmt.Errorf("arrival %q: want constant, poisson or gamma:SHAPE", s)
}

// String returns the form ParseArrival reads.
func (a Arrival) String() string {
	switch a.Kind {
	case ArrivalPoisson:
		return "poisson"
	case ArrivalGamma:
		return "gamma:" + strconv.FormatFloat(a.Shape, 'g', -1, 64)
	}
	return "constant"
}

// Validate reports a gamma arrival without a positive shape.
func (a Arrival) Validate() error {
	if a.Kind == ArrivalGamma && (!(a.Shape > 0) || math.IsInf(a.Shape, 0)) {
		return fmt.Errorf("arrival gamma needs a shape > 0, got %v", a.Shape)
	}
	if a.Kind > ArrivalGamma {
		return fmt.Errorf("unknown arrival kind %d", a.Kind)
	}
	return nil
}

// Schedule returns when each request is due, as offsets from the start of the run: the
// first at 0, then one gap of the arrival process after another, for at most count
// requests (0: no count bound) and only offsets before within (0: no time bound). At
// least one bound must be set. The gaps come from a PCG generator seeded with seed, so
// the same arguments always give the same schedule. rate is in requests per second.
func Schedule(a Arrival, rate float64, seed uint64, count int, within time.Duration) []time.Duration {
	if rate <= 0 || (count <= 0 && within <= 0) {
		return nil
	}
	if count <= 0 || count > maxScheduled {
		count = maxScheduled
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	offsets := make([]time.Duration, 0, min(count, 1<<16))
	var t float64 // seconds
	for len(offsets) < count {
		d := time.Duration(t * float64(time.Second))
		if within > 0 && d >= within {
			break
		}
		offsets = append(offsets, d)
		t += a.gap(rng) / rate
	}
	return offsets
}

// maxScheduled bounds a schedule's length (Validate refuses larger runs).
const maxScheduled = 10_000_000

// gap draws one gap of the process at rate 1 (mean 1).
func (a Arrival) gap(rng *rand.Rand) float64 {
	switch a.Kind {
	case ArrivalPoisson:
		return rng.ExpFloat64()
	case ArrivalGamma:
		return gammaVariate(rng, a.Shape) / a.Shape
	}
	return 1
}

// gammaVariate draws from Gamma(shape, scale 1) by Marsaglia and Tsang's method
// (ACM TOMS 26(3), 2000), with the boost x * U^(1/shape) for shape < 1.
func gammaVariate(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		u := rng.Float64()
		for u == 0 {
			u = rng.Float64()
		}
		return gammaVariate(rng, shape+1) * math.Pow(u, 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x {
			return d * v
		}
		if u > 0 && math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// waitUntil waits on timer (stopped, or fired and drained) until due; false when ctx
// ended first. The loops that send on a schedule share it.
func waitUntil(ctx context.Context, timer *time.Timer, due time.Time) bool {
	if d := time.Until(due); d > 0 {
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}
