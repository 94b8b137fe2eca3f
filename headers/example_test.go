package headers_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/resilient-result/resilient/headers"
)

func ExampleParse() {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("x-ratelimit-limit-requests", "60")
	h.Set("x-ratelimit-remaining-requests", "59")
	h.Set("x-ratelimit-reset-requests", "1s")
	h.Set("x-ratelimit-limit-tokens", "150000")
	h.Set("x-ratelimit-remaining-tokens", "0")
	h.Set("x-ratelimit-reset-tokens", "6m0s")

	l, ok := headers.Parse(h, now)
	fmt.Println(ok, l.Name, l.Quota, l.Remaining, l.Reset)
	// Output: true tokens 150000 0 6m0s
}

func ExampleRetryAfter() {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("Retry-After", "Sun, 01 Jun 2025 12:01:30 GMT")

	d, ok := headers.RetryAfter(h, now)
	fmt.Println(d, ok)
	// Output: 1m30s true
}

func ExampleDelay() {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", "1748779245") // epoch seconds, 45s after now

	d, ok := headers.Delay(h, now)
	fmt.Println(d, ok)
	// Output: 45s true
}

func ExampleWritePolicy() {
	h := http.Header{}
	headers.WritePolicy(h, headers.Policy{Name: "default", Quota: 100, Window: time.Minute})
	headers.WriteState(h, headers.State{Name: "default", Remaining: 0, Reset: 29500 * time.Millisecond})
	headers.WriteRetryAfter(h, 29500*time.Millisecond)
	fmt.Println("RateLimit-Policy:", h.Get("RateLimit-Policy"))
	fmt.Println("RateLimit:", h.Get("RateLimit"))
	fmt.Println("Retry-After:", h.Get("Retry-After"))

	l, _ := headers.Parse(h, time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	fmt.Printf("%+v\n", l)
	// Output:
	// RateLimit-Policy: "default";q=100;w=60
	// RateLimit: "default";r=0;t=30
	// Retry-After: 30
	// {Name:default Quota:100 Remaining:0 Reset:30s Window:1m0s}
}

func ExampleWriteLegacy() {
	h := http.Header{}
	headers.WriteLegacy(h, 60, 59, 45*time.Second)
	fmt.Println(h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"))
	// Output: 60 59 45
}
