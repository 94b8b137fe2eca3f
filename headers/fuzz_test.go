package headers

import (
	"net/http"
	"testing"
	"time"
)

// checkLimit fails t when l breaks the documented bounds.
func checkLimit(t *testing.T, l Limit) {
	t.Helper()
	if l.Quota < -1 || l.Quota > MaxCount || l.Remaining < -1 || l.Remaining > MaxCount {
		t.Fatalf("count out of bounds: %+v", l)
	}
	if l.Quota >= 0 && l.Remaining > l.Quota {
		t.Fatalf("remaining above quota: %+v", l)
	}
	if l.Reset < -1 || l.Reset > MaxDelay {
		t.Fatalf("reset out of bounds: %+v", l)
	}
	if l.Window < 0 {
		t.Fatalf("negative window: %+v", l)
	}
}

func checkDelay(t *testing.T, d time.Duration) {
	t.Helper()
	if d < 0 || d > MaxDelay {
		t.Fatalf("delay %v out of [0, MaxDelay]", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("60", "59", "45", "1s", "2025-06-01T12:00:30Z", "32/40")
	f.Add("5000", "0", "1748779260", "6m0s", "2025-06-01T14:00:10+02:00", "40/40")
	f.Add("60", "0", "1748779201500", "12ms", "", "")
	f.Add("5", "0", "1470173023.123", "1h30m", "garbage", "1/0")
	f.Add("99999999999999999999", "-1", "99999999999999999999", "99999999999999999999h", "9999-12-31T23:59:59Z", "99999999999999999999/1")
	f.Add("10, 10;w=1", "1.5", "1.", "2m59.56s", "1970-01-01T00:00:00Z", "/")
	f.Fuzz(func(t *testing.T, limit, remaining, reset, duration, rfc3339, shopify string) {
		h := http.Header{
			keyXLimit:                                     {limit},
			keyXRemaining:                                 {remaining},
			keyXReset:                                     {reset},
			keyXResetAfter:                                {reset},
			keyXDashReset:                                 {reset},
			keyDraftLimit:                                 {limit},
			keyDraftRemaining:                             {remaining},
			keyDraftReset:                                 {reset},
			"X-Ratelimit-Limit-Tokens":                    {limit},
			"X-Ratelimit-Remaining-Tokens":                {remaining},
			"X-Ratelimit-Reset-Tokens":                    {duration},
			"Anthropic-Ratelimit-Requests-Limit":          {limit},
			"Anthropic-Ratelimit-Requests-Remaining":      {remaining},
			"Anthropic-Ratelimit-Requests-Reset":          {rfc3339},
			"X-Ms-Ratelimit-Remaining-Subscription-Reads": {remaining},
			keyShopify:                                    {shopify},
			keyRetryAfter:                                 {rfc3339},
			keyRetryAfterMs:                               {reset},
		}
		if l, ok := Parse(h, now); ok {
			checkLimit(t, l)
		}
		if d, ok := Delay(h, now); ok {
			checkDelay(t, d)
		}
		if d := parseGoDuration(duration); d != -1 {
			checkDelay(t, d)
		}
		// Each dialect alone, so that most-restrictive selection does not hide one.
		for _, k := range []string{keyXLimit, keyDraftLimit, "X-Ratelimit-Limit-Tokens", "Anthropic-Ratelimit-Requests-Limit"} {
			one := http.Header{k: h[k]}
			if l, ok := Parse(one, now); ok {
				checkLimit(t, l)
			}
		}
	})
}

func FuzzRetryAfter(f *testing.F) {
	f.Add("120", "")
	f.Add("0", "523")
	f.Add("1.5", "1500")
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT", "")
	f.Add("Sunday, 01-Jun-25 12:01:00 GMT", "")
	f.Add("Sun Jun  1 13:00:00 2025", "")
	f.Add("Fri, 31 Dec 9999 23:59:59 GMT", "-5")
	f.Add("99999999999999999999", "99999999999999999999")
	f.Add("-1", "abc")
	f.Fuzz(func(t *testing.T, retryAfter, ms string) {
		h := http.Header{keyRetryAfter: {retryAfter}, keyRetryAfterMs: {ms}, keyMsRetryAfterMs: {ms}}
		d, ok := RetryAfter(h, now)
		if !ok {
			if d != 0 {
				t.Fatalf("RetryAfter = %v, false", d)
			}
			return
		}
		checkDelay(t, d)
		// Round trip: what the writer emits reads back rounded up to whole seconds.
		w := http.Header{}
		WriteRetryAfter(w, d)
		got, ok := RetryAfter(w, now)
		want := min(time.Duration(ceilSeconds(d))*time.Second, MaxDelay)
		if !ok || got != want {
			t.Fatalf("WriteRetryAfter(%v) read back %v, %v; want %v", d, got, ok, want)
		}
	})
}

func FuzzRateLimitIETF(f *testing.F) {
	f.Add(`"default";q=100;w=60`, `"default";r=50;t=30`)
	f.Add(`"burst";q=100;w=60, "daily";q=1000;w=86400`, `"burst";r=0;t=10, "daily";r=5;t=3600`)
	f.Add(`"peruser";q=100;qu="requests";w=60;pk=:Y2xpZW50:`, `"peruser";r=0;t=5;pk=:Y2xpZW50:`)
	f.Add(`100;w=60`, `limit=100, remaining=50, reset=30`)
	f.Add(`"a";q=999999999999999;w=999999999999999`, `"a";r=-5;t=999999999999999`)
	f.Add(`default;q=1`, `default;r=1;t=1`)
	f.Add(`("a" "b");q=1`, `"x`)
	f.Fuzz(func(t *testing.T, policy, state string) {
		h := http.Header{keyPolicy: {policy}, keyState: {state}}
		l, ok := Parse(h, now)
		if !ok {
			return
		}
		checkLimit(t, l)
		if l.Quota < 0 || l.Remaining < 0 || l.Reset < 0 {
			return // a partial policy does not round-trip through both writers
		}
		w := http.Header{}
		WritePolicy(w, Policy{Name: l.Name, Quota: l.Quota, Window: l.Window})
		WriteState(w, State{Name: l.Name, Remaining: l.Remaining, Reset: l.Reset})
		got, ok := Parse(w, now)
		if !ok || got != l {
			t.Fatalf("round trip of %+v = %+v, %v (headers %v)", l, got, ok, w)
		}
	})
}
