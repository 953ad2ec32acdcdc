package runner

import "fmt"

// FDHeadroom is how many file descriptors the runner keeps for itself (probe,
// ordinary requests, output files, the standard streams) beyond one per stream.
const FDHeadroom = 64

// FDLimit is the process's RLIMIT_NOFILE.
type FDLimit struct {
	Soft, Hard uint64
}

// MaxStreams is how many streams fit under the soft limit, with FDHeadroom left over.
func (l FDLimit) MaxStreams() int {
	if l.Soft <= FDHeadroom {
		return 0
	}
	n := l.Soft - FDHeadroom
	if n > uint64(^uint(0)>>1) {
		n = uint64(^uint(0) >> 1)
	}
	return int(n)
}

// CheckStreams says clearly when streams exceed what the limit allows: each stream
// holds one file descriptor in the runner (its connection), and a server in the same
// process (tests) holds one more per stream.
func (l FDLimit) CheckStreams(streams int) error {
	if streams <= l.MaxStreams() {
		return nil
	}
	return fmt.Errorf("%d streams need about %d open files, but the limit is %d (hard limit %d): "+
		"raise it (ulimit -n), lower --streams, or split the run into shards",
		streams, uint64(streams)+FDHeadroom, l.Soft, l.Hard)
}
