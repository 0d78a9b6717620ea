package daemon

import (
	"net/http"
	"os"
	"strings"

	"switchboard/config"
	"switchboard/redact"
	"switchboard/sinks"
	"switchboard/sources"
)

// GET /api/config: the config in force, rendered with every default
// (config.Render) and every credential redacted, and how the file on disk
// differs from it: an edit not applied yet, or one a reload refused.

type configView struct {
	Path    string      `json:"path,omitempty"`
	Running string      `json:"running"`
	Reload  reloadState `json:"reload"`
	Disk    diskState   `json:"disk"`
}

// diskState compares the file on disk with the running config: "same",
// "differs" (with Diff), "invalid" (with Problems), "unreadable" (with
// Error), or "none" when the daemon was started without a file.
type diskState struct {
	State    string     `json:"state"`
	Diff     []diffLine `json:"diff,omitempty"`
	Problems []string   `json:"problems,omitempty"`
	Error    string     `json:"error,omitempty"`
}

func (d *Daemon) serveConfig(w http.ResponseWriter, r *http.Request) {
	snap := d.snap.Load()
	red := redact.New(snap.Secrets...).With(redact.Current())
	running, err := config.Render(withSinkDefaults(snap.File))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "cannot render the running config: " + err.Error()})
		return
	}
	v := configView{Path: d.ConfigPath, Running: red.String(string(running)), Reload: *d.reload.Load(), Disk: diskState{State: "none"}}
	if d.ConfigPath != "" {
		v.Disk = diskView(d.ConfigPath, v.Running, red)
	}
	writeJSON(w, http.StatusOK, v)
}

func diskView(path, running string, red *redact.Redactor) diskState {
	raw, err := os.ReadFile(path)
	if err != nil {
		return diskState{State: "unreadable", Error: err.Error()}
	}
	f, err := config.Parse(raw)
	if err != nil {
		ds := diskState{State: "invalid"}
		if ps, ok := err.(config.Problems); ok {
			for _, p := range ps {
				ds.Problems = append(ds.Problems, red.String(p.Error()))
			}
		} else {
			ds.Problems = []string{red.String(err.Error())}
		}
		return ds
	}
	onDisk, err := config.Render(withSinkDefaults(f))
	if err != nil {
		return diskState{State: "unreadable", Error: err.Error()}
	}
	red = red.With(redact.New(fileSecrets(f)...))
	disk := red.String(string(onDisk))
	if disk == running {
		return diskState{State: "same"}
	}
	return diskState{State: "differs", Diff: lineDiff(running, disk)}
}

// withSinkDefaults returns f with each sink's concurrency as the sink
// runs with it: left at 0 in the file, it is the sink type's default
// (http 8, others 1), which the page must show rather than 0.
func withSinkDefaults(f *config.File) *config.File {
	c := *f
	c.Sinks = make(map[string]config.Sink, len(f.Sinks))
	for name, sc := range f.Sinks {
		if sc.Concurrency == 0 {
			sc.Concurrency = 1
			if factory, ok := sinks.Lookup(sc.Type); ok {
				if d, ok := factory().(sinks.DefaultConcurrency); ok {
					sc.Concurrency = d.DefaultConcurrency()
				}
			}
		}
		c.Sinks[name] = sc
	}
	return &c
}

// fileSecrets lists f's credentials as Build would find them, without
// building anything: each source and sink type decodes its own settings.
func fileSecrets(f *config.File) []string {
	out := config.Secrets(f)
	for _, sc := range f.Sources {
		if factory, ok := sources.Lookup(sc.Type); ok {
			b := factory()
			config.Decode(sc.Options, b, "")
			out = append(out, config.Secrets(b)...)
		}
	}
	for _, sc := range f.Sinks {
		if factory, ok := sinks.Lookup(sc.Type); ok {
			b := factory()
			config.Decode(sc.Options, b, "")
			out = append(out, config.Secrets(b)...)
		}
	}
	return out
}

// diffLine is one line of a diff: Op is " " (both), "-" (running only)
// or "+" (file only).
type diffLine struct {
	Op   string `json:"op"`
	Text string `json:"text"`
}

// maxDiffCells bounds the diff's table (lines × lines): past it, the two
// texts are shown whole, one removed and one added.
const maxDiffCells = 4 << 20

// lineDiff is a longest-common-subsequence diff of two texts by lines.
func lineDiff(a, b string) []diffLine {
	x, y := strings.Split(strings.TrimSuffix(a, "\n"), "\n"), strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	var out []diffLine
	if (len(x)+1)*(len(y)+1) > maxDiffCells {
		for _, l := range x {
			out = append(out, diffLine{"-", l})
		}
		for _, l := range y {
			out = append(out, diffLine{"+", l})
		}
		return out
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	w := len(y) + 1
	lcs := make([]int32, (len(x)+1)*w)
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		switch {
		case x[i] == y[j]:
			out = append(out, diffLine{" ", x[i]})
			i, j = i+1, j+1
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			out = append(out, diffLine{"-", x[i]})
			i++
		default:
			out = append(out, diffLine{"+", y[j]})
			j++
		}
	}
	for ; i < len(x); i++ {
		out = append(out, diffLine{"-", x[i]})
	}
	for ; j < len(y); j++ {
		out = append(out, diffLine{"+", y[j]})
	}
	return out
}
