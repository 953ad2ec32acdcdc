//go:build race

package scenarios

// raceEnabled: the race detector instruments every function, so frames are larger.
const raceEnabled = true
