package runner

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestParseArrival(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Arrival{
		"constant":  {Kind: ArrivalConstant},
		"poisson":   {Kind: ArrivalPoisson},
		"gamma:0.5": {Kind: ArrivalGamma, Shape: 0.5},
		"gamma:4":   {Kind: ArrivalGamma, Shape: 4},
	} {
		got, err := ParseArrival(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseArrival(%q) = %+v (%s), %v", in, got, got, err)
		}
	}
	for _, bad := range []string{"gamma", "gamma:", "gamma:0", "gamma:-1", "gamma:x", "gamma:NaN", "gamma:Inf", "uniform"} {
		if _, err := ParseArrival(bad); err == nil {
			t.Errorf("ParseArrival(%q) accepted", bad)
		}
	}
}

func TestScheduleConstantIsExact(t *testing.T) {
	t.Parallel()
	got := Schedule(Arrival{}, 4, 1, 5, 0)
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond, time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("Schedule = %v, want %v", got, want)
	}
	// A duration bound keeps the offsets before it.
	if got := Schedule(Arrival{}, 4, 1, 0, time.Second); len(got) != 4 || got[3] != 750*time.Millisecond {
		t.Fatalf("Schedule within 1s = %v, want 4 offsets up to 750ms", got)
	}
	if got := Schedule(Arrival{}, 4, 1, 3, time.Second); len(got) != 3 {
		t.Fatalf("both bounds: %d offsets, want 3", len(got))
	}
}

// gapStats returns the mean and variance of the gaps of a schedule, in seconds.
func gapStats(offsets []time.Duration) (mean, variance float64) {
	n := float64(len(offsets) - 1)
	for i := 1; i < len(offsets); i++ {
		mean += (offsets[i] - offsets[i-1]).Seconds()
	}
	mean /= n
	for i := 1; i < len(offsets); i++ {
		d := (offsets[i] - offsets[i-1]).Seconds() - mean
		variance += d * d
	}
	return mean, variance / (n - 1)
}

func TestScheduleRandomArrivalsHaveTheirMeanAndVariance(t *testing.T) {
	t.Parallel()
	const rate, n = 50.0, 40001
	for _, tc := range []struct {
		a     Arrival
		shape float64 // of the gaps (0: constant); their variance is 1/(shape*rate^2)
	}{
		{Arrival{Kind: ArrivalPoisson}, 1},
		{Arrival{Kind: ArrivalGamma, Shape: 1}, 1},
		{Arrival{Kind: ArrivalGamma, Shape: 0.25}, 0.25},
		{Arrival{Kind: ArrivalGamma, Shape: 4}, 4},
		{Arrival{Kind: ArrivalConstant}, 0},
	} {
		offsets := Schedule(tc.a, rate, 42, n, 0)
		if len(offsets) != n {
			t.Fatalf("%s: %d offsets, want %d", tc.a, len(offsets), n)
		}
		mean, variance := gapStats(offsets)
		if tc.shape == 0 {
			if math.Abs(mean*rate-1) > 1e-6 || variance > 1e-12 {
				t.Errorf("%s: mean gap %gs, variance %g, want %gs and 0", tc.a, mean, variance, 1/rate)
			}
			continue
		}
		// Within 4 standard errors of the estimators over n-1 gaps: the mean's relative
		// error is 1/sqrt(shape*n), the variance's sqrt((6/shape+2)/n) (gamma's excess
		// kurtosis is 6/shape). The seed is fixed, so this never flickers.
		wantVar := 1 / (tc.shape * rate * rate)
		if tol := 4 / math.Sqrt(tc.shape*n); math.Abs(mean*rate-1) > tol {
			t.Errorf("%s: mean gap %.6fs, want %.6fs within %.1f%%", tc.a, mean, 1/rate, 100*tol)
		}
		if tol := 4 * math.Sqrt((6/tc.shape+2)/n); math.Abs(variance/wantVar-1) > tol {
			t.Errorf("%s: gap variance %.4g s^2, want %.4g within %.1f%%", tc.a, variance, wantVar, 100*tol)
		}
		// Reproducible from the seed, different with another.
		if again := Schedule(tc.a, rate, 42, n, 0); !slices.Equal(again, offsets) {
			t.Errorf("%s: same seed, different schedule", tc.a)
		}
		if tc.a.Kind != ArrivalConstant && slices.Equal(Schedule(tc.a, rate, 43, n, 0), offsets) {
			t.Errorf("%s: another seed gives the same schedule", tc.a)
		}
	}
}
