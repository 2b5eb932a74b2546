//go:build !race

package groqwebhook

const raceEnabled = false
