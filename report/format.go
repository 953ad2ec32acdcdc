package report

import (
	"math"
	"strconv"
	"time"
)

// threeDigits formats v (>= 0) with about three significant digits and no exponent, so
// that reports stay readable and golden files stable.
func threeDigits(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// fmtDuration formats d for people: 850ns, 12.3µs, 4.56ms, 1.20s, 2m5s.
func fmtDuration(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	var s string
	switch {
	case d == 0:
		s = "0s"
	case d < time.Microsecond:
		s = strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		s = threeDigits(float64(d)/1e3) + "µs"
	case d < time.Second:
		s = threeDigits(float64(d)/1e6) + "ms"
	case d < time.Minute:
		s = threeDigits(d.Seconds()) + "s"
	default:
		s = d.Round(time.Second).String()
	}
	return neg + s
}

// fmtMS formats a duration given in milliseconds.
func fmtMS(ms float64) string {
	return fmtDuration(time.Duration(math.Round(ms * 1e6)))
}

// fmtBytes formats a byte count with binary units: 512 B, 1.50 KiB, 12.3 MiB.
func fmtBytes(b float64) string {
	neg := ""
	if b < 0 {
		neg, b = "-", -b
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return neg + strconv.FormatFloat(b, 'f', -1, 64) + " B"
	}
	return neg + threeDigits(b) + " " + units[i]
}

// fmtNumber formats a count or a ratio: integers as integers, others with three
// significant digits.
func fmtNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	if v < 0 {
		return "-" + threeDigits(-v)
	}
	return threeDigits(v)
}
