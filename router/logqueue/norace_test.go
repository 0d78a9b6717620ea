//go:build !race

package logqueue

const raceEnabled = false
