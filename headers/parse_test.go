package headers

import (
	"net/http"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	lim := func(name string, q, r int64, reset, window time.Duration) Limit {
		return Limit{Name: name, Quota: q, Remaining: r, Reset: reset, Window: window}
	}
	tests := []struct {
		name string
		h    http.Header
		want Limit
		ok   bool
	}{
		{"empty", http.Header{}, Limit{}, false},
		{"nil", nil, Limit{}, false},
		{"unrelated", hdr("Content-Type", "text/plain"), Limit{}, false},

		// IETF draft-10.
		{"ietf", hdr("RateLimit-Policy", `"default";q=100;w=60`, "RateLimit", `"default";r=50;t=30`),
			lim("default", 100, 50, 30*time.Second, time.Minute), true},
		{"ietf two policies, smallest ratio", hdr(
			"RateLimit-Policy", `"burst";q=100;w=60, "daily";q=1000;w=86400`,
			"RateLimit", `"burst";r=99;t=10, "daily";r=5;t=3600`),
			lim("daily", 1000, 5, time.Hour, 24*time.Hour), true},
		{"ietf both exhausted, longest reset", hdr(
			"RateLimit-Policy", `"burst";q=100;w=60, "daily";q=1000;w=86400`,
			"RateLimit", `"burst";r=0;t=10, "daily";r=0;t=3600`),
			lim("daily", 1000, 0, time.Hour, 24*time.Hour), true},
		{"ietf split field lines, pk, qu", hdr(
			"RateLimit-Policy", `"peruser";q=100;qu="requests";w=60;pk=:Y2xpZW50:`,
			"RateLimit", `"peruser";r=0;t=5;pk=:Y2xpZW50:`),
			lim("peruser", 100, 0, 5*time.Second, time.Minute), true},
		{"ietf token name", hdr("RateLimit", `default;r=3;t=2`),
			lim("default", -1, 3, 2*time.Second, 0), true},
		{"ietf policy only", hdr("RateLimit-Policy", `"default";q=100;w=60`),
			lim("default", 100, -1, -1, time.Minute), true},
		{"ietf draft-07 unnamed policy", hdr("RateLimit-Policy", `100;w=60`),
			lim("", 100, -1, -1, time.Minute), true},
		{"ietf old dictionary", hdr("RateLimit", `limit=100, remaining=50, reset=30`),
			lim("", 100, 50, 30*time.Second, 0), true},
		{"ietf malformed ignored", hdr("RateLimit", `"default;r=`, "RateLimit-Policy", `:::`), Limit{}, false},
		{"ietf negative and huge", hdr("RateLimit", `"a";r=-5;t=999999999999999`),
			Limit{}, false},
		{"ietf huge clamped", hdr("RateLimit-Policy", `"a";q=999999999999999`, "RateLimit", `"a";r=0;t=999999999999999`),
			lim("a", MaxCount, 0, MaxDelay, 0), true},
		{"ietf remaining above quota", hdr("RateLimit-Policy", `"a";q=10`, "RateLimit", `"a";r=50;t=1`),
			lim("a", 10, 10, time.Second, 0), true},

		// IETF drafts 00-06.
		{"draft separate fields", hdr("RateLimit-Limit", "100", "RateLimit-Remaining", "0", "RateLimit-Reset", "30"),
			lim("", 100, 0, 30*time.Second, 0), true},
		{"draft-03 limit list", hdr("RateLimit-Limit", "10, 10;w=1, 1000;w=3600", "RateLimit-Remaining", "9", "RateLimit-Reset", "1"),
			lim("", 10, 9, time.Second, 0), true},

		// Legacy X-RateLimit-*.
		{"legacy delta", hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "59", "X-RateLimit-Reset", "45"),
			lim("", 60, 59, 45*time.Second, 0), true},
		{"legacy epoch seconds", hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", epoch(2*time.Minute)),
			lim("", 60, 0, 2*time.Minute, 0), true},
		{"legacy epoch millis", hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", itoa(now.Add(1500*time.Millisecond).UnixMilli())),
			lim("", 60, 0, 1500*time.Millisecond, 0), true},
		{"legacy epoch past", hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", epoch(-time.Hour)),
			lim("", 60, 0, 0, 0), true},
		{"legacy decimal", hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1.5"),
			lim("", 60, 1, 1500*time.Millisecond, 0), true},
		{"legacy overflow", hdr("X-RateLimit-Limit", "99999999999999999999", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "99999999999999999999"),
			lim("", MaxCount, 0, MaxDelay, 0), true},
		{"legacy long delta clamped", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "999999999"),
			lim("", -1, 0, MaxDelay, 0), true},
		{"legacy garbage", hdr("X-RateLimit-Limit", "abc", "X-RateLimit-Remaining", "-1", "X-RateLimit-Reset", "soon"),
			Limit{}, false},
		{"legacy garbage reset", hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "-3"),
			lim("", 10, 3, -1, 0), true},
		{"x-rate-limit (Twitter)", hdr("X-Rate-Limit-Limit", "900", "X-Rate-Limit-Remaining", "899", "X-Rate-Limit-Reset", epoch(15*time.Minute)),
			lim("", 900, 899, 15*time.Minute, 0), true},

		// GitHub.
		{"github", hdr("x-ratelimit-limit", "5000", "x-ratelimit-remaining", "4999", "x-ratelimit-reset", epoch(time.Hour),
			"x-ratelimit-used", "1", "x-ratelimit-resource", "core"),
			lim("core", 5000, 4999, time.Hour, 0), true},
		{"github used only", hdr("x-ratelimit-limit", "60", "x-ratelimit-used", "60", "x-ratelimit-reset", epoch(time.Minute), "x-ratelimit-resource", "search"),
			lim("search", 60, 0, time.Minute, 0), true},

		// Discord.
		{"discord reset-after preferred", hdr("X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "0",
			"X-RateLimit-Reset", "1470173023.123", "X-RateLimit-Reset-After", "64.57", "X-RateLimit-Bucket", "abcd1234"),
			lim("abcd1234", 5, 0, 64570*time.Millisecond, 0), true},
		{"discord decimal epoch", hdr("X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "0",
			"X-RateLimit-Reset", epoch(2*time.Second)+".250", "X-RateLimit-Bucket", "abcd1234"),
			lim("abcd1234", 5, 0, 2250*time.Millisecond, 0), true},

		// OpenAI.
		{"openai", hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "59", "x-ratelimit-reset-requests", "1s",
			"x-ratelimit-limit-tokens", "150000", "x-ratelimit-remaining-tokens", "149984", "x-ratelimit-reset-tokens", "6m0s"),
			lim("requests", 60, 59, time.Second, 0), true},
		{"openai tokens exhausted", hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "59", "x-ratelimit-reset-requests", "12ms",
			"x-ratelimit-limit-tokens", "150000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "1h30m"),
			lim("tokens", 150000, 0, 90*time.Minute, 0), true},
		{"openai fractional", hdr("x-ratelimit-limit-tokens", "1000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "17.28s"),
			lim("tokens", 1000, 0, 17280*time.Millisecond, 0), true},
		{"openai bad reset", hdr("x-ratelimit-limit-tokens", "1000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6 minutes"),
			lim("tokens", 1000, 0, -1, 0), true},

		// Anthropic.
		{"anthropic", hdr(
			"anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "0",
			"anthropic-ratelimit-requests-reset", now.Add(30*time.Second).Format(time.RFC3339),
			"anthropic-ratelimit-tokens-limit", "40000", "anthropic-ratelimit-tokens-remaining", "39000",
			"anthropic-ratelimit-tokens-reset", now.Add(time.Second).Format(time.RFC3339)),
			lim("requests", 50, 0, 30*time.Second, 0), true},
		{"anthropic input tokens, offset time", hdr(
			"anthropic-ratelimit-input-tokens-limit", "40000", "anthropic-ratelimit-input-tokens-remaining", "100",
			"anthropic-ratelimit-input-tokens-reset", "2025-06-01T14:00:10+02:00",
			"anthropic-ratelimit-output-tokens-limit", "8000", "anthropic-ratelimit-output-tokens-remaining", "7000"),
			lim("input-tokens", 40000, 100, 10*time.Second, 0), true},

		// Azure.
		{"azure", hdr("x-ms-ratelimit-remaining-subscription-reads", "11999", "x-ms-ratelimit-remaining-subscription-writes", "1199"),
			lim("subscription-writes", -1, 1199, -1, 0), true},

		// Shopify.
		{"shopify", hdr("X-Shopify-Shop-Api-Call-Limit", "32/40"), lim("", 40, 8, -1, 0), true},
		{"shopify over", hdr("X-Shopify-Shop-Api-Call-Limit", "41/40"), lim("", 40, 0, -1, 0), true},
		{"shopify garbage", hdr("X-Shopify-Shop-Api-Call-Limit", "32of40"), Limit{}, false},

		// Mixed dialects: the most restrictive wins.
		{"exhausted beats low ratio", hdr("X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "10",
			"x-ratelimit-limit-tokens", "1000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "2s"),
			lim("tokens", 1000, 0, 2*time.Second, 0), true},
		{"known remaining beats unknown", hdr("RateLimit-Policy", `"a";q=10`, "x-ms-ratelimit-remaining-subscription-reads", "500"),
			lim("subscription-reads", -1, 500, -1, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.h, now)
			if ok != tt.ok || got != tt.want {
				t.Errorf("Parse = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseGoDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"6m0s", 6 * time.Minute},
		{"1.5s", 1500 * time.Millisecond},
		{"12ms", 12 * time.Millisecond},
		{"1h30m", 90 * time.Minute},
		{"2m59.56s", 2*time.Minute + 59560*time.Millisecond},
		{"0s", 0},
		{"250us", 250 * time.Microsecond},
		{"250µs", 250 * time.Microsecond},
		{"7ns", 7},
		{"30", 30 * time.Second},
		{" 1s ", time.Second},
		{"25h", MaxDelay},
		{"99999999999999999999h", MaxDelay},
		{"", -1},
		{"-1s", -1},
		{"1x", -1},
		{"s", -1},
		{"1.s", -1},
		{"1..5s", -1},
		{"1d", -1},
	}
	for _, tt := range tests {
		if got := parseGoDuration(tt.in); got != tt.want {
			t.Errorf("parseGoDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestMoreRestrictiveIsStrict(t *testing.T) {
	ls := []Limit{
		{Quota: -1, Remaining: -1, Reset: -1},
		{Quota: 10, Remaining: 0, Reset: -1},
		{Quota: 10, Remaining: 0, Reset: 5},
		{Quota: 10, Remaining: 5, Reset: 5},
		{Quota: -1, Remaining: 5, Reset: 1},
		{Quota: 100, Remaining: 50, Reset: 1},
	}
	for _, a := range ls {
		if moreRestrictive(a, a) {
			t.Errorf("moreRestrictive(%+v, itself) = true", a)
		}
		for _, b := range ls {
			if moreRestrictive(a, b) && moreRestrictive(b, a) {
				t.Errorf("both %+v and %+v are more restrictive than each other", a, b)
			}
		}
	}
}
