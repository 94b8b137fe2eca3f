package headers

import (
	"net/http"
	"testing"
	"time"
)

func BenchmarkRetryAfter(b *testing.B) {
	h := hdr("Retry-After", "120")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := RetryAfter(h, now); !ok {
			b.Fatal("not ok")
		}
	}
}

func BenchmarkRetryAfterDate(b *testing.B) {
	h := hdr("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := RetryAfter(h, now); !ok {
			b.Fatal("not ok")
		}
	}
}

func BenchmarkParseLegacy(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"delta", hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "59", "X-RateLimit-Reset", "45")},
		{"epoch", hdr("x-ratelimit-limit", "5000", "x-ratelimit-remaining", "4999", "x-ratelimit-reset", "1748782800",
			"x-ratelimit-used", "1", "x-ratelimit-resource", "core")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := Parse(bc.h, now); !ok {
					b.Fatal("not ok")
				}
			}
		})
	}
}

func BenchmarkParseOpenAI(b *testing.B) {
	h := hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "59", "x-ratelimit-reset-requests", "1s",
		"x-ratelimit-limit-tokens", "150000", "x-ratelimit-remaining-tokens", "149984", "x-ratelimit-reset-tokens", "6m0s")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Parse(h, now); !ok {
			b.Fatal("not ok")
		}
	}
}

func BenchmarkParseIETF(b *testing.B) {
	h := hdr("RateLimit-Policy", `"default";q=100;w=60`, "RateLimit", `"default";r=50;t=30`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Parse(h, now); !ok {
			b.Fatal("not ok")
		}
	}
}

func BenchmarkDelay(b *testing.B) {
	h := hdr("Retry-After", "3", "X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "45")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Delay(h, now); !ok {
			b.Fatal("not ok")
		}
	}
}

// TestNoAllocs guards the allocation-free paths in ordinary test runs.
func TestNoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for name, h := range map[string]http.Header{
		"retry-after": hdr("Retry-After", "120", "retry-after-ms", "523"),
		"legacy":      hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1748782800.5", "X-RateLimit-Bucket", "b"),
		"openai": hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "59", "x-ratelimit-reset-requests", "1s",
			"x-ratelimit-limit-tokens", "150000", "x-ratelimit-remaining-tokens", "149984", "x-ratelimit-reset-tokens", "6m0s"),
		"azure+shopify": hdr("x-ms-ratelimit-remaining-subscription-reads", "11999", "X-Shopify-Shop-Api-Call-Limit", "32/40"),
	} {
		if n := testing.AllocsPerRun(100, func() { Delay(h, now) }); n != 0 {
			t.Errorf("%s: Delay allocates %v times", name, n)
		}
	}
}

// BenchmarkParseNone is the common case on a client: a response that
// announces no limit at all.
func BenchmarkParseNone(b *testing.B) {
	h := http.Header{
		"Content-Type":   {"application/json"},
		"Content-Length": {"1234"},
		"Date":           {"Fri, 04 Dec 2026 16:00:00 GMT"},
		"Cache-Control":  {"no-store"},
		"Server":         {"nginx"},
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Parse(h, now); ok {
			b.Fatal("found a limit")
		}
	}
}
