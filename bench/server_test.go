package bench

import (
	"net/http"
	"testing"
	"time"

	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"

	"github.com/resilient-result/resilient/middleware"
	"github.com/resilient-result/resilient/policies"
)

// BenchmarkServerStack is the full server stack around the same trivial
// handler, outermost first. Ours is middleware.Standard()'s layers
// (RateLimit per client IP, Bulkhead 100 running + 100 queued for 1s,
// Timeout 30s) with a per-IP rate no benchmark reaches, since every request
// comes from one client; chi's is httprate.LimitByIP with the same rate,
// Throttle with the same backlog (ThrottleBacklog(100, 100, 1s)) and chi's
// Timeout(30s).
func BenchmarkServerStack(b *testing.B) {
	benchHandler(b, "resilient", func(h http.Handler) http.Handler {
		return middleware.Chain(
			middleware.RateLimit(policies.RateLimit{Limit: hugeRate, Window: time.Second}, nil),
			middleware.Bulkhead(policies.Bulkhead{
				MaxConcurrent: middleware.StandardMaxConcurrent,
				MaxQueue:      middleware.StandardMaxQueue,
				QueueTimeout:  middleware.StandardQueueTimeout,
			}),
			middleware.Timeout(middleware.StandardTimeout),
		)(h)
	})
	benchHandler(b, "chi", func(h http.Handler) http.Handler {
		return middleware.Chain(
			httprate.LimitByIP(hugeRate, time.Second),
			chimw.ThrottleBacklog(middleware.StandardMaxConcurrent, middleware.StandardMaxQueue, middleware.StandardQueueTimeout),
			chimw.Timeout(middleware.StandardTimeout),
		)(h)
	})
}

// BenchmarkTimeoutMiddleware is the timeout layer alone: ours
// (middleware.Timeout) vs http.TimeoutHandler, both 30s, and chi's Timeout
// for reference (it only sets a context deadline; it does not answer 503
// itself nor guard against writes after the timeout).
func BenchmarkTimeoutMiddleware(b *testing.B) {
	benchHandler(b, "resilient", func(h http.Handler) http.Handler {
		return middleware.Timeout(middleware.StandardTimeout)(h)
	})
	benchHandler(b, "stdlib", func(h http.Handler) http.Handler {
		return http.TimeoutHandler(h, middleware.StandardTimeout, "")
	})
	benchHandler(b, "chi", func(h http.Handler) http.Handler {
		return chimw.Timeout(middleware.StandardTimeout)(h)
	})
}
