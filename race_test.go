//go:build race

package groqwebhook

// raceEnabled tells allocation tests to stand down: the race detector makes
// sync.Pool drop items on purpose.
const raceEnabled = true
