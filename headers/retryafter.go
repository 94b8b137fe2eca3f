package headers

import (
	"net/http"
	"time"
)

// Canonical keys of the retry fields.
const (
	keyRetryAfter     = "Retry-After"
	keyRetryAfterMs   = "Retry-After-Ms"
	keyMsRetryAfterMs = "X-Ms-Retry-After-Ms"
)

// RetryAfter reads how long the server asked the client to wait, relative to
// now, from Retry-After (delay-seconds, decimals tolerated, or an HTTP date
// in any of the three forms http.ParseTime accepts), retry-after-ms and
// x-ms-retry-after-ms (milliseconds). When several are present the largest
// wins. A date in the past gives 0; a delay beyond MaxDelay gives MaxDelay.
// ok is false when none is present or all are malformed or negative.
//
// Reading delay-seconds or milliseconds does not allocate.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	var d time.Duration
	found := false
	if v, ok := h[keyRetryAfter]; ok && len(v) > 0 {
		s := trimOWS(v[0])
		if w, n, ok := parseNumber(s); ok {
			d, found = seconds(w, n), true
		} else if t, err := http.ParseTime(s); err == nil {
			d, found = untilTime(t, now), true
		}
	}
	for _, k := range [...]string{keyRetryAfterMs, keyMsRetryAfterMs} {
		if ms, ok := parseMillis(first(h[k])); ok {
			d, found = max(d, ms), true
		}
	}
	return d, found
}

// Delay is the wait the server asks for before the next request: the
// largest of RetryAfter and, when the most restrictive Limit (see Parse) is
// exhausted (Remaining == 0) with a known Reset, that Reset. The result is
// within [0, MaxDelay]. ok is false when the server asked for no wait: no
// signal at all, or signals that all amount to zero.
func Delay(h http.Header, now time.Time) (time.Duration, bool) {
	d, _ := RetryAfter(h, now)
	if l, ok := Parse(h, now); ok && l.Remaining == 0 && l.Reset > d {
		d = l.Reset
	}
	return d, d > 0
}
