package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSummaryPairsRunsByRound(t *testing.T) {
	in := `round=1 label=a accepted_per_s=100 in_p99_ms=2
round=1 label=ref accepted_per_s=50 in_p99_ms=1
round=2 label=a accepted_per_s=90 in_p99_ms=4
round=2 label=ref accepted_per_s=100 in_p99_ms=1
round=3 label=a failed=1
round=3 label=ref accepted_per_s=10
round=1 label=backlog pending=1000 disk_per_pending_b=900 drain_per_s=5000
`
	order, by := read(strings.NewReader(in))
	var out bytes.Buffer
	table(&out, order[:2], by, loadCols)
	table(&out, order[2:], by, backlogCols)
	var rs ratios
	rs.Set("a/ref")
	rs.Set("a/missing")
	ratioTable(&out, rs, by)
	for _, want := range []string{
		"| a | 2 | 95.00 | 3.00 |",                              // medians of two rounds; the failed round left out
		"| ref | 3 | 50.00 | 1.00 |",                            // in_p99_ms only where given
		"| backlog | 1 | 1000 | 900 | 5000 |",                   // its own columns
		"| a / ref | accepted_per_s | 2 | 1.45 | 0.90 | 2.00 |", // per-round ratios 2.0 and 0.9
		"| a / missing | accepted_per_s | 0 | – | – | – |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
}
