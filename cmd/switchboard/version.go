package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Long: `Prints the version, the commit it was built from (with its time, and
"modified" when the work tree had uncommitted changes) and the Go version.
All of it comes from the build information Go records in the binary: a
binary built with 'go build' or 'go install' from a git clone carries its
commit, with no flags needed.`,
		Example: `  switchboard version`,
		Args:    noArgs("version takes nothing"),
		RunE: func(cmd *cobra.Command, args []string) error {
			printVersion(cmd.OutOrStdout(), readBuildInfo())
			return nil
		},
	}
}

// buildVersion is what the binary knows about its build.
type buildVersion struct {
	// Version is the main module's version: a tag, a pseudo-version
	// (v0.0.0-20261126132200-ab8b45c0a1b2) for a commit, or "(devel)".
	Version  string
	Revision string // the full commit hash; "" when unknown
	Time     string // the commit time, RFC 3339; "" when unknown
	Modified bool   // the work tree had uncommitted changes
	Go       string
}

func readBuildInfo() buildVersion {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return buildVersion{Version: "(devel)", Go: runtime.Version()}
	}
	return parseBuildInfo(bi)
}

// parseBuildInfo takes the vcs.* settings `go build` records when it builds
// in a git checkout (-buildvcs, on by default).
func parseBuildInfo(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: bi.Main.Version, Go: bi.GoVersion}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	// Go stamps a pseudo-version with +dirty for a modified tree; the
	// commit line says so already.
	v.Version = strings.TrimSuffix(v.Version, "+dirty")
	return v
}

// shortRevision is the commit as people quote it: 12 hex digits.
func (v buildVersion) shortRevision() string {
	switch {
	case v.Revision == "":
		return "unknown"
	case len(v.Revision) > 12:
		return v.Revision[:12]
	}
	return v.Revision
}

// String is the one-line version: what `version` prints and the start-up
// log records.
func (v buildVersion) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (commit %s", v.Version, v.shortRevision())
	if v.Time != "" {
		fmt.Fprintf(&b, ", %s", v.Time)
	}
	if v.Modified {
		b.WriteString(", modified")
	}
	fmt.Fprintf(&b, "; %s %s/%s)", v.Go, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

func versionString(v buildVersion) string { return "switchboard " + v.String() }

func printVersion(w io.Writer, v buildVersion) {
	fmt.Fprintln(w, versionString(v))
}
