//go:build race

package sinks

const raceEnabled = true
