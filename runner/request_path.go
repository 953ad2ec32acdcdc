package runner

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// JSONPath names a value inside a JSON document: dot-separated object keys and array
// indices, e.g. "choices.0.delta.content". The empty path names nothing.
type JSONPath []string

// ParseJSONPath splits a dotted path; an empty segment ("a..b", ".a") is an error.
func ParseJSONPath(s string) (JSONPath, error) {
	if s == "" {
		return nil, nil
	}
	segs := strings.Split(s, ".")
	for _, seg := range segs {
		if seg == "" {
			return nil, fmt.Errorf("JSON path %q has an empty segment", s)
		}
	}
	return JSONPath(segs), nil
}

// String returns the dotted form.
func (p JSONPath) String() string { return strings.Join(p, ".") }

// Lookup returns the raw JSON text of the value at p in doc (a string value still
// quoted), or ok false when doc is not JSON down to that value, or p is empty. A
// segment reads an object's key or, on an array, the element of that index. It scans
// without decoding (or allocating, unless a key has escapes): the runner looks up
// paths in every chunk of every request.
func (p JSONPath) Lookup(doc string) (raw string, ok bool) {
	if len(p) == 0 {
		return "", false
	}
	i := skipWS(doc, 0)
	end := scanValue(doc, i)
	if end < 0 {
		return "", false
	}
	raw = doc[i:end]
	for _, seg := range p {
		if raw, ok = jsonChild(raw, seg); !ok {
			return "", false
		}
	}
	return raw, true
}

// jsonChild returns the member seg of object v, or element seg of array v.
func jsonChild(v, seg string) (string, bool) {
	if v == "" {
		return "", false
	}
	switch v[0] {
	case '{':
		return jsonMember(v, seg)
	case '[':
		idx, err := strconv.Atoi(seg)
		if err != nil || idx < 0 {
			return "", false
		}
		return jsonItem(v, "", idx)
	}
	return "", false
}

// jsonMember returns the value of member key of the object s.
func jsonMember(s, key string) (string, bool) { return jsonItem(s, key, -1) }

// jsonItem returns the value of member key of the object s, or of element idx of
// the array s (s[0] says which), scanning the items in order.
func jsonItem(s, key string, idx int) (string, bool) {
	object := s[0] == '{'
	i := 1
	for n := 0; ; n++ {
		i = skipWS(s, i)
		match := n == idx
		if object {
			var ok bool
			if i, match, ok = memberKey(s, i, key); !ok {
				return "", false
			}
		} else if i >= len(s) || s[i] == ']' {
			return "", false
		}
		vEnd := scanValue(s, i)
		if vEnd < 0 {
			return "", false
		}
		if match {
			return s[i:vEnd], true
		}
		i = skipWS(s, vEnd)
		if i >= len(s) || s[i] != ',' {
			return "", false
		}
		i++
	}
}

// memberKey reads an object's key at s[i:] and the colon after it: where the value
// starts and whether the key is key; ok is false when no key and colon are there.
func memberKey(s string, i int, key string) (value int, match, ok bool) {
	if i >= len(s) || s[i] != '"' {
		return 0, false, false
	}
	kEnd, kEsc := scanString(s, i)
	if kEnd < 0 {
		return 0, false, false
	}
	k := s[i+1 : kEnd-1]
	if kEsc {
		k = unquoteJSON(s[i:kEnd])
	}
	i = skipWS(s, kEnd)
	if i >= len(s) || s[i] != ':' {
		return 0, false, false
	}
	return skipWS(s, i+1), k == key, true
}

// jsonStringLen returns the decoded length in bytes of the JSON string raw, or ok false
// when raw is not a string.
func jsonStringLen(raw string) (n int, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return 0, false
	}
	inner := raw[1 : len(raw)-1]
	if strings.IndexByte(inner, '\\') < 0 {
		return len(inner), true
	}
	return len(unquoteJSON(raw)), true
}

// jsonInt reads a JSON number (or a string holding one) as an integer.
func jsonInt(raw string) (int64, bool) {
	if raw == "" || raw == "null" {
		return 0, false
	}
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(f) || f > 9.2e18 || f < -9.2e18 {
		return 0, false
	}
	return int64(f), true
}
