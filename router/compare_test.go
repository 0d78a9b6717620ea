package router

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

func TestCompareDecimal(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"0", "-0.0e5", 0}, {"1", "1.000", 0}, {"10", "1e1", 0}, {"0.1", "1e-1", 0},
		{"12", "123", -1}, {"0.12", "0.123", -1}, {"-0.12", "-0.123", 1}, {"-1", "0", -1},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1},
		{"1e99999999999999999999999", "1e400", 1}, {"1e-99999999999999999999999", "0", 1},
		{"-1e-99999999999999999999999", "0", -1}, {"18446744073709551615", "1.8446744073709551615E19", 0},
	} {
		if got := compareDecimal(tc.a, tc.b); got != tc.want {
			t.Errorf("compare(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareDecimal(tc.b, tc.a); got != -tc.want {
			t.Errorf("compare(%s, %s) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

// FuzzCompareDecimal checks the linear decimal comparison against
// math/big on numbers small enough for big.Rat to spell out.
func FuzzCompareDecimal(f *testing.F) {
	f.Add("1", "1.0")
	f.Add("-0.5e1", "-5")
	f.Add("12345678901234567891", "1.2345678901234567891e19")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !smallNumber(a) || !smallNumber(b) {
			return
		}
		x, _ := new(big.Rat).SetString(a)
		y, _ := new(big.Rat).SetString(b)
		if got, want := compareDecimal(a, b), x.Cmp(y); got != want {
			t.Fatalf("compare(%s, %s) = %d, math/big says %d", a, b, got, want)
		}
	})
}

func smallNumber(s string) bool {
	if len(s) > 40 || !json.Valid([]byte(s)) || strings.ContainsAny(s, "\"[{tfn \t\r\n") {
		return false
	}
	if e := strings.IndexAny(s, "eE"); e >= 0 {
		n, err := strconv.Atoi(strings.TrimPrefix(s[e+1:], "+"))
		return err == nil && n < 300 && n > -300
	}
	return true
}
