// Package all links in every sink type.
package all

import (
	_ "switchboard/sinks/email"
	_ "switchboard/sinks/file"
	_ "switchboard/sinks/http"
	_ "switchboard/sinks/log"
	_ "switchboard/sinks/slack"
)
