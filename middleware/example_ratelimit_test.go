package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/resilient-result/resilient/middleware"
	"github.com/resilient-result/resilient/policies"
)

// Two requests a minute per client IP: the third is refused with 429 and
// Retry-After, and every response carries the IETF RateLimit fields.
func ExampleRateLimit() {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	h := middleware.RateLimit(policies.RateLimit{Limit: 2, Window: time.Minute}, nil)(hello)

	for range 3 {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "192.0.2.1:52000"
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("RateLimit-Policy"), rec.Header().Get("RateLimit"))
		if ra := rec.Header().Get("Retry-After"); ra != "" {
			fmt.Println("Retry-After:", ra)
		}
	}
	// Output:
	// 200 "default";q=2;w=60 "default";r=1;t=30
	// 200 "default";q=2;w=60 "default";r=0;t=30
	// 429 "default";q=2;w=60 "default";r=0;t=30
	// Retry-After: 30
}

// A per-tenant limit keyed by an API key header and the route, where
// expensive requests cost more, with the legacy X-RateLimit-* fields for
// older clients.
func ExampleRateLimitWith() {
	mux := http.NewServeMux()
	limit := middleware.RateLimitWith(middleware.RateLimitOptions{
		Policy:     policies.RateLimit{Limit: 10, Window: time.Minute},
		Key:        middleware.Compose(middleware.ByHeader("X-Api-Key"), middleware.ByRoute()),
		PolicyName: "tenant",
		Legacy:     true,
		Cost: func(r *http.Request) int {
			if r.URL.Query().Has("export") {
				return 5
			}
			return 1
		},
	})
	// Inside the mux, so that the route pattern is known.
	mux.Handle("GET /reports", limit(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))

	for _, target := range []string{"/reports?export", "/reports"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("X-Api-Key", "acme")
		mux.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("RateLimit"), rec.Header().Get("X-RateLimit-Remaining"))
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/reports", nil)) // no API key
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output:
	// 200 "tenant";r=5;t=30 5
	// 200 "tenant";r=4;t=36 4
	// 400 application/problem+json
}

// Behind proxies in 10.0.0.0/8, the client is the rightmost address of
// X-Forwarded-For that is not a proxy; a peer outside that range is keyed by
// its own address, whatever headers it sends.
func ExampleTrustedProxies() {
	key := middleware.TrustedProxies("10.0.0.0/8")

	viaProxy := httptest.NewRequest(http.MethodGet, "/", nil)
	viaProxy.RemoteAddr = "10.0.0.2:8080"
	viaProxy.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.0.0.1")
	k, _ := key(viaProxy)
	fmt.Println(k)

	direct := httptest.NewRequest(http.MethodGet, "/", nil)
	direct.RemoteAddr = "[2001:db8::7]:443"
	direct.Header.Set("X-Forwarded-For", "203.0.113.9")
	k, _ = key(direct)
	fmt.Println(k)
	// Output:
	// 203.0.113.9
	// 2001:db8::/64
}
