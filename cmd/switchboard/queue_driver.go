package main

import (
	"fmt"
	"io"

	"switchboard/config"
)

// queueWhere names where the queue lives, for messages.
func queueWhere(q config.Queue) string {
	if q.Driver == config.DriverNATS {
		return "the NATS stream " + q.NATS.Stream + " at " + q.NATS.URL
	}
	return "the queue in " + q.Dir
}

// printWarnings prints what `check` should draw attention to without
// refusing the file.
func printWarnings(w io.Writer, f *config.File) {
	for _, p := range f.Warnings() {
		fmt.Fprintln(w, "warning: "+p.Error())
	}
}
