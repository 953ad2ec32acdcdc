package runner

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SentUnit says how an event's send-time field is written.
type SentUnit string

// Send-time units. SentAuto infers the unit of an epoch number from its magnitude
// (seconds up to 1e11, milliseconds up to 1e14, microseconds up to 1e17, else
// nanoseconds: each range holds the years 1973 to 5138 of its unit) and reads a
// string that is not a number as RFC 3339.
const (
	SentAuto    SentUnit = "auto"
	SentNanos   SentUnit = "ns"
	SentMicros  SentUnit = "us"
	SentMillis  SentUnit = "ms"
	SentSeconds SentUnit = "s"
	SentRFC3339 SentUnit = "rfc3339"
)

// Valid reports whether u is one of the units above ("" is not: resolve it first).
func (u SentUnit) Valid() bool {
	switch u {
	case SentAuto, SentNanos, SentMicros, SentMillis, SentSeconds, SentRFC3339:
		return true
	}
	return false
}

// resolveSentUnit is the unit used when none is given: nanoseconds for the default
// field (its name says so), auto for any other.
func resolveSentUnit(u SentUnit, field string) SentUnit {
	if u != "" {
		return u
	}
	if field == "" || field == DefaultSentField {
		return SentNanos
	}
	return SentAuto
}

// validSentPath reports a problem with a send-time JSON path ("ts", "meta.sent_at"):
// dot-separated object keys, none empty.
func validSentPath(path string) error {
	for seg := range strings.SplitSeq(path, ".") {
		if seg == "" {
			return fmt.Errorf("sent field %q: empty key in the JSON path (want keys separated by dots, such as meta.sent_at)", path)
		}
	}
	return nil
}

// SentTime returns the send time an event's JSON data carries at path (object keys
// separated by dots: "ts", "meta.sent_at"), in unix nanoseconds, read in unit (""
// means auto). Numbers and strings holding numbers are epoch times; RFC 3339 strings
// are read with SentRFC3339 or SentAuto. ok is false when the data is not a JSON
// object, the field is missing, or its value does not fit the unit.
func SentTime(data, path string, unit SentUnit) (unixNanos int64, ok bool) {
	raw, ok := lookupJSON(data, path)
	if !ok {
		return 0, false
	}
	if unit == "" {
		unit = SentAuto
	}
	return parseSent(raw, unit)
}

// lookupJSON returns the raw JSON value at path (object keys only) in data, without
// decoding the rest and without allocating (keys with escapes excepted). Unlike
// JSONPath.Lookup it does not need the whole document to be valid JSON, only the part
// up to the value.
func lookupJSON(data, path string) (string, bool) {
	data = data[skipWS(data, 0):]
	for {
		if data == "" || data[0] != '{' {
			return "", false
		}
		key, rest, more := strings.Cut(path, ".")
		raw, ok := jsonMember(data, key)
		if !ok || !more {
			return raw, ok
		}
		data, path = raw, rest
	}
}

// parseSent converts a raw JSON value (number or string) to unix nanoseconds.
func parseSent(raw string, unit SentUnit) (int64, bool) {
	quoted := len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"'
	if quoted {
		raw = raw[1 : len(raw)-1]
	}
	if unit == SentRFC3339 {
		return parseRFC3339(raw, quoted)
	}
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return scaleEpoch(float64(n), n, true, unit)
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		if unit == SentAuto {
			return parseRFC3339(raw, quoted)
		}
		return 0, false
	}
	return scaleEpoch(f, 0, false, unit)
}

func parseRFC3339(s string, quoted bool) (int64, bool) {
	if !quoted {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}

// scaleEpoch turns an epoch number in unit into nanoseconds; exact integers (isInt)
// are scaled without going through float64.
func scaleEpoch(f float64, n int64, isInt bool, unit SentUnit) (int64, bool) {
	if unit == SentAuto {
		switch a := math.Abs(f); {
		case a < 1e11:
			unit = SentSeconds
		case a < 1e14:
			unit = SentMillis
		case a < 1e17:
			unit = SentMicros
		default:
			unit = SentNanos
		}
	}
	var mult int64
	switch unit {
	case SentNanos:
		mult = 1
	case SentMicros:
		mult = 1e3
	case SentMillis:
		mult = 1e6
	case SentSeconds:
		mult = 1e9
	default:
		return 0, false
	}
	if isInt && n <= math.MaxInt64/mult && n >= math.MinInt64/mult {
		return n * mult, true
	}
	v := f * float64(mult)
	if v != v || v > 9.2e18 || v < -9.2e18 {
		return 0, false
	}
	return int64(v), true
}
