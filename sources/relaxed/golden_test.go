package relaxed_test

// An external test package: the golden harness in sources/sourcetest
// imports sources, which imports this package.

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"switchboard/router"
	"switchboard/sources/relaxed"
	"switchboard/sources/sourcetest"
)

// The providers' documentation samples, copied verbatim into testdata,
// parse to the golden values; those that are strict JSON agree with the
// strict decoder.
func TestSeedSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in testdata: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			in := sourcetest.ReadFile(t, f)
			got, err := relaxed.Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if _, ok := got.(map[string]any); !ok {
				t.Fatalf("Parse gave %T, want an object", got)
			}
			if want, err := router.DecodeJSON(in); err == nil && !reflect.DeepEqual(got, want) {
				t.Errorf("strict JSON sample parsed differently\n got %#v\nwant %#v", got, want)
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			sourcetest.Golden(t, filepath.Join("testdata", "golden", name+".json"), append(out, '\n'))
		})
	}
}
