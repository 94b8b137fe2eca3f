package headers

import (
	"math"
	"time"
)

// MaxDelay is the longest delay or reset any reader returns: larger values
// are clamped to it, negative ones ignored. A server asking for more than a
// day is almost certainly wrong, and a client should not trust it blindly.
const MaxDelay = 24 * time.Hour

// MaxCount is the largest quota or remaining count the readers return and
// the writers emit: larger values are clamped to it. It is the largest
// Integer a structured field (RFC 9651) can carry, 999,999,999,999,999.
const MaxCount = 999_999_999_999_999

// Thresholds telling epoch milliseconds, epoch seconds and delta seconds apart.
const (
	epochMillisAbove  = 1e12 // 2001-09-09 in milliseconds, 33658 AD in seconds
	epochSecondsAbove = 1e9  // 2001-09-09 in seconds, 31 years as a delta
	saturateWhole     = 1 << 62
)

// trimOWS removes leading and trailing spaces and tabs.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// first returns the first field value of h[key] (already canonical), or "".
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// parseNumber parses a non-negative decimal "123" or "1.5" (surrounding
// whitespace allowed). whole saturates at 1<<62; nanos holds the first nine
// fractional digits as nanoseconds of one unit. ok is false for anything else.
func parseNumber(s string) (whole uint64, nanos int64, ok bool) {
	s = trimOWS(s)
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if whole < saturateWhole {
			whole = whole*10 + uint64(s[i]-'0')
		}
	}
	if i == 0 {
		return 0, 0, false
	}
	if whole > saturateWhole {
		whole = saturateWhole
	}
	if i == len(s) {
		return whole, 0, true
	}
	if s[i] != '.' || i+1 == len(s) {
		return 0, 0, false
	}
	scale := int64(100_000_000)
	for i++; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		nanos += int64(c-'0') * scale
		scale /= 10
	}
	return whole, nanos, true
}

// parseCount parses a count such as "100" (a fraction is truncated; a list
// such as "100, 100;w=60" yields its first member), clamped to MaxCount.
// It returns -1 when s is absent, negative or malformed.
func parseCount(s string) int64 {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' || s[i] == ';' {
			s = s[:i]
			break
		}
	}
	w, _, ok := parseNumber(s)
	if !ok {
		return -1
	}
	return clampCount(w)
}

func clampCount(w uint64) int64 {
	if w > MaxCount {
		return MaxCount
	}
	return int64(w)
}

// clampDelay clamps d to [0, MaxDelay].
func clampDelay(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d > MaxDelay {
		return MaxDelay
	}
	return d
}

// seconds converts whole seconds plus nanoseconds to a Duration clamped to
// [0, MaxDelay].
func seconds(whole uint64, nanos int64) time.Duration {
	if whole > uint64(MaxDelay/time.Second) {
		return MaxDelay
	}
	return clampDelay(time.Duration(whole)*time.Second + time.Duration(nanos))
}

// parseDeltaSeconds parses delay seconds such as "30" or "1.5", clamped to
// [0, MaxDelay]; -1 when absent or malformed.
func parseDeltaSeconds(s string) time.Duration {
	w, n, ok := parseNumber(s)
	if !ok {
		return -1
	}
	return seconds(w, n)
}

// parseMillis parses milliseconds such as "523" or "523.5", clamped to
// [0, MaxDelay]; ok false when absent or malformed.
func parseMillis(s string) (time.Duration, bool) {
	w, n, ok := parseNumber(s)
	if !ok {
		return 0, false
	}
	if w > uint64(MaxDelay/time.Millisecond) {
		return MaxDelay, true
	}
	return clampDelay(time.Duration(w)*time.Millisecond + time.Duration(n/1e3)), true
}

// parseReset reads a reset that may be delta seconds, epoch seconds or epoch
// milliseconds, with decimals: above 1e12 it is epoch milliseconds, above 1e9
// epoch seconds, otherwise delta seconds. An epoch in the past gives 0. The
// result is clamped to [0, MaxDelay]; -1 when absent or malformed.
func parseReset(s string, now time.Time) time.Duration {
	w, n, ok := parseNumber(s)
	if !ok {
		return -1
	}
	switch {
	case w > epochMillisAbove:
		return untilTime(time.UnixMilli(int64(w)).Add(time.Duration(n/1e3)), now)
	case w > epochSecondsAbove:
		return untilTime(time.Unix(int64(w), n), now)
	default:
		return seconds(w, n)
	}
}

// untilTime is t - now clamped to [0, MaxDelay]. time.Time.Sub saturates.
func untilTime(t, now time.Time) time.Duration {
	return clampDelay(t.Sub(now))
}

// ceilSeconds rounds d up to whole seconds, at least 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// durationFromSeconds converts whole seconds to a Duration, saturating at
// the largest Duration; negative gives 0.
func durationFromSeconds(s int64) time.Duration {
	if s <= 0 {
		return 0
	}
	if s > math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(s) * time.Second
}

// parseGoDuration parses the durations OpenAI writes, a sequence of decimal
// numbers each with a unit among h, m, s, ms, us, µs, ns ("6m0s", "1.5s",
// "12ms", "1h30m"); a bare number is seconds. The result is clamped to
// [0, MaxDelay]; -1 when absent, negative or malformed. It never allocates.
func parseGoDuration(s string) time.Duration {
	s = trimOWS(s)
	if s == "" {
		return -1
	}
	if w, n, ok := parseNumber(s); ok {
		return seconds(w, n)
	}
	var total float64 // nanoseconds; float so that enormous input saturates instead of wrapping
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		w, n, ok := parseNumber(s[:i])
		if !ok {
			return -1
		}
		s = s[i:]
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		var unit float64
		switch s[:j] {
		case "h":
			unit = float64(time.Hour)
		case "m":
			unit = float64(time.Minute)
		case "s":
			unit = float64(time.Second)
		case "ms":
			unit = float64(time.Millisecond)
		case "us", "µs", "μs":
			unit = float64(time.Microsecond)
		case "ns":
			unit = 1
		default:
			return -1
		}
		s = s[j:]
		total += (float64(w) + float64(n)/1e9) * unit
	}
	if total >= float64(MaxDelay) {
		return MaxDelay
	}
	return clampDelay(time.Duration(math.Round(total)))
}
