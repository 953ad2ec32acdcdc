package runner

import (
	"hash/fnv"
	"math/bits"
)

// PinTarget returns the target of targets that session is pinned to: the same for one
// session id in every process and every run, so that a session's stream, its
// reconnections and its callbacks all reach the one server that holds it. The index
// comes from FNV-1a(session) through murmur3's 64-bit finaliser: FNV-1a alone mixes a
// change in the last bytes (session ids end in a counter) into neither its low bits
// nor its high ones well enough to spread ids "…-7" and "…-8" over few targets.
// One target is returned as it is, none as "".
func PinTarget(targets []string, session string) string {
	switch len(targets) {
	case 0:
		return ""
	case 1:
		return targets[0]
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(session))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	i, _ := bits.Mul64(x, uint64(len(targets)))
	return targets[i]
}
