package router

import (
	"encoding/json"
	"math"
	"strconv"
)

// Numbers in payloads keep their exact value (ids above all): a JSON
// number decodes as
//
//   - int, when it is written as an integer (no fraction, no exponent) and
//     fits an int64;
//   - uint64, when it is written as an integer that fits a uint64 but not
//     an int64;
//   - float64, when it has at most 15 significant digits and its value is
//     a normal float64 (or zero): such a float64 prints back as the same
//     decimal value (strconv's shortest form);
//   - json.Number (its text, exact) otherwise: 12345678901234567890123,
//     0.12345678901234567890, 2e700.
//
// String prints each of them exactly. The payload bytes as received are
// kept beside the decoded values and are what sinks write out.

// minNormal is the smallest positive normal float64: below it a float64
// has fewer than 15 digits of precision.
const minNormal = 2.2250738585072014e-308

// number decodes the text of one JSON number (already checked against the
// JSON grammar) as above.
func number(s string) any {
	integer := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			integer = false
			break
		}
	}
	if integer {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return int(i)
		}
		if s[0] != '-' {
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return u
			}
		}
	}
	if significantDigits(s) <= 15 {
		f, err := strconv.ParseFloat(s, 64)
		if err == nil && (f == 0 && allZeroDigits(s) || math.Abs(f) >= minNormal) {
			return f
		}
	}
	return json.Number(s)
}

// significantDigits counts the digits of a number from the first non-zero
// one to the last non-zero one.
func significantDigits(s string) int { return len(parseDecimal(s).digits) }

// allZeroDigits reports whether a number's value is zero.
func allZeroDigits(s string) bool { return significantDigits(s) == 0 }
