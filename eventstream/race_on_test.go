//go:build race

package eventstream

const raceEnabled = true
