// Command summarize reads the key=value lines of bench/suite.sh (each with
// round= and label=) and prints Markdown tables: per label, the median of
// each figure over rounds, and the ratios asked for with -ratio, each the
// median over rounds of the per-round ratio, with its spread.
//
//	summarize -ratio 'sb-match1/ref-match1' -ratio 'sb-match1@2000/ref-match1@2000:router_cpu_cores' < lines
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Figures shown, in order, where any run of a table has them.
var loadCols = []string{"accepted_per_s", "in_p50_ms", "in_p99_ms", "router_cpu_cores", "router_peak_rss_mb",
	"sink_rate", "e2e_p50_ms", "e2e_p99_ms", "match_accepted", "delivered", "dups", "non2xx", "errors",
	"lg_cpu_cores", "box_steal_pct"}

var backlogCols = []string{"pending", "req_bytes", "fill_per_s", "disk_per_pending_b", "disk_mb", "rss_pending_mb",
	"restart_ready_s", "rss_after_restart_mb", "drain_per_s", "delivered", "dups", "disk_after_drain_mb", "router_peak_rss_mb"}

type run map[string]string

type ratio struct{ num, den, col string }

type ratios []ratio

func (r *ratios) String() string { return fmt.Sprint(*r) }

func (r *ratios) Set(s string) error {
	nd, col, _ := strings.Cut(s, ":")
	num, den, ok := strings.Cut(nd, "/")
	if !ok || num == "" || den == "" {
		return fmt.Errorf("%q: want LABEL/LABEL or LABEL/LABEL:FIGURE", s)
	}
	if col == "" {
		col = "accepted_per_s"
	}
	*r = append(*r, ratio{num, den, col})
	return nil
}

func main() {
	var rs ratios
	flag.Var(&rs, "ratio", "LABEL/LABEL[:FIGURE] (default figure accepted_per_s); repeatable")
	flag.Parse()
	order, by := read(os.Stdin)
	var load, backlog []string
	for _, l := range order {
		if by[l][0]["pending"] != "" {
			backlog = append(backlog, l)
		} else {
			load = append(load, l)
		}
	}
	table(os.Stdout, load, by, loadCols)
	table(os.Stdout, backlog, by, backlogCols)
	ratioTable(os.Stdout, rs, by)
}

func read(r io.Reader) (order []string, by map[string][]run) {
	by = map[string][]run{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		x := run{}
		for _, f := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok {
				x[k] = v
			}
		}
		l := x["label"]
		if l == "" || x["failed"] != "" {
			continue
		}
		if by[l] == nil {
			order = append(order, l)
		}
		by[l] = append(by[l], x)
	}
	return order, by
}

func figures(runs []run, col string) []float64 {
	var v []float64
	for _, x := range runs {
		if f, err := strconv.ParseFloat(x[col], 64); err == nil {
			v = append(v, f)
		}
	}
	return v
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func num(f float64) string {
	if f >= 100 || f <= -100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

func table(w io.Writer, labels []string, by map[string][]run, cols []string) {
	if len(labels) == 0 {
		return
	}
	var shown []string
	for _, c := range cols {
		if slices.ContainsFunc(labels, func(l string) bool { return len(figures(by[l], c)) > 0 }) {
			shown = append(shown, c)
		}
	}
	fmt.Fprintf(w, "\n| label | runs | %s |\n|---|---|%s\n", strings.Join(shown, " | "), strings.Repeat("---|", len(shown)))
	for _, l := range labels {
		fmt.Fprintf(w, "| %s | %d |", l, len(by[l]))
		for _, c := range shown {
			if v := figures(by[l], c); len(v) > 0 {
				fmt.Fprintf(w, " %s |", num(median(v)))
			} else {
				fmt.Fprint(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
}

// ratioTable pairs the runs of two labels by round.
func ratioTable(w io.Writer, rs ratios, by map[string][]run) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n| ratio | figure | rounds | median | min | max |\n|---|---|---|---|---|---|\n")
	for _, r := range rs {
		den := map[string]float64{}
		for _, x := range by[r.den] {
			den[x["round"]], _ = strconv.ParseFloat(x[r.col], 64)
		}
		var v []float64
		for _, x := range by[r.num] {
			n, err := strconv.ParseFloat(x[r.col], 64)
			if d := den[x["round"]]; err == nil && d > 0 {
				v = append(v, n/d)
			}
		}
		if len(v) == 0 {
			fmt.Fprintf(w, "| %s / %s | %s | 0 | – | – | – |\n", r.num, r.den, r.col)
			continue
		}
		fmt.Fprintf(w, "| %s / %s | %s | %d | %.2f | %.2f | %.2f |\n", r.num, r.den, r.col, len(v), median(v), slices.Min(v), slices.Max(v))
	}
}
