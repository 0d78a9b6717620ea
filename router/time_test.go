package router_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"switchboard/router"
)

func TestTimeRange(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(-1, 12, 31, 23, 59, 59, 999999999, time.UTC), false},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), true},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("", -23*3600-59*60)), false},
		{time.Time{}, true},
	} {
		if got := router.TimeInRange(tc.t); got != tc.want {
			t.Errorf("TimeInRange(%v) = %v", tc.t, got)
		}
	}
}

func TestUnixConversionsRefuseOutOfRange(t *testing.T) {
	for _, n := range []int64{math.MaxInt64, math.MinInt64, 253402300800, -62167219201} {
		if _, err := router.UnixSeconds(n); !errors.Is(err, router.ErrTimeRange) {
			t.Errorf("UnixSeconds(%d): %v", n, err)
		}
	}
	for _, n := range []int64{math.MaxInt64, math.MinInt64, 9000000000000000000, 253402300800000} {
		if _, err := router.UnixMillis(n); !errors.Is(err, router.ErrTimeRange) {
			t.Errorf("UnixMillis(%d): %v", n, err)
		}
	}
	if tm, err := router.UnixMillis(253402300799999); err != nil || tm.Year() != 9999 {
		t.Errorf("last millisecond of 9999: %v %v", tm, err)
	}
	if tm, err := router.UnixSeconds(-62167219200); err != nil || tm.Year() != 0 {
		t.Errorf("first second of year 0: %v %v", tm, err)
	}
}

func TestParseRFC3339(t *testing.T) {
	if _, err := router.ParseRFC3339("9999-12-31T23:59:59-23:59"); !errors.Is(err, router.ErrTimeRange) ||
		err.Error() != `"9999-12-31T23:59:59-23:59" is 10000-01-01T23:58:59Z in UTC, outside years 0000-9999` {
		t.Errorf("got %v", err)
	}
	if tm, err := router.ParseRFC3339("2026-11-26T10:00:00.5+01:00"); err != nil || !tm.Equal(time.Date(2026, 11, 26, 9, 0, 0, 5e8, time.UTC)) {
		t.Errorf("got %v %v", tm, err)
	}
}

// FuzzAppendTime: the fast writer of event times writes what
// time.AppendFormat writes with TimeFormat, for every time.
func FuzzAppendTime(f *testing.F) {
	for _, s := range []int64{0, -1, 1763600000, -62167219200, 253402300799, 253402300800, -62167219201, 1 << 40} {
		f.Add(s, int64(123456789))
	}
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec%1e9)
		if got, want := string(router.AppendTime(nil, tm)), tm.UTC().Format(router.TimeFormat); got != want {
			t.Fatalf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	})
}
