package daemon

import "net/http"

// consoleAssets is the path prefix of the operator console's static
// files. GET / (the console's page) and GET under this prefix are the only
// admin paths open without the token: what they serve carries no data.
// Everything the page shows comes from the token- or session-protected
// API.
const consoleAssets = "/console/"

// mountConsole is where the operator console adds its handlers to the
// admin listener: the page at "GET /{$}", static files under consoleAssets,
// its API under /api/. Every handler mounted here sits behind adminGuard
// (see admin.go) with nothing more to do: Host and Origin are checked, the
// token or session is required outside the page and its files, and a
// handler for anything but GET and HEAD only ever sees a POST with a JSON
// body. The session endpoints the console logs in with are in session.go.
func (d *Daemon) mountConsole(mux *http.ServeMux) {}
