package middleware

import (
	"net/http"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// The settings of Standard.
const (
	// StandardRateLimit is the requests per second Standard allows each
	// client IP address (burst included).
	StandardRateLimit = 100
	// StandardMaxConcurrent is how many handlers Standard lets run at once.
	StandardMaxConcurrent = 100
	// StandardMaxQueue is how many requests Standard lets wait for a slot.
	StandardMaxQueue = 100
	// StandardQueueTimeout is the longest a request waits in Standard's
	// queue before it is answered 503.
	StandardQueueTimeout = time.Second
	// StandardTimeout is how long Standard gives a handler to start its
	// answer before it answers 503.
	StandardTimeout = 30 * time.Second
)

// Standard returns the recommended server stack, outermost first:
//
//	Chain(
//		RateLimit(policies.RateLimit{Limit: 100, Window: time.Second}, nil), // per client IP
//		Bulkhead(policies.Bulkhead{MaxConcurrent: 100, MaxQueue: 100, QueueTimeout: time.Second}),
//		Timeout(30*time.Second),
//	)
//
// The order puts the cheapest refusal first. The rate limiter turns away a
// client over its share (429) before it can take a bulkhead slot or queue
// place that well-behaved clients need. The bulkhead then bounds the work in
// progress (503 when full). Timeout comes last, so its clock starts when the
// handler really starts, not while the request waits in the bulkhead's queue,
// and it costs nothing for refused requests.
//
// Every call builds new limiter and bulkhead state: wrap the whole router
// once for server-wide limits. Keys are client IPs (ClientIP); behind a
// reverse proxy, or for other numbers, compose the same layers with Chain.
func Standard() func(http.Handler) http.Handler {
	return Chain(
		RateLimit(policies.RateLimit{Limit: StandardRateLimit, Window: time.Second}, nil),
		Bulkhead(policies.Bulkhead{
			MaxConcurrent: StandardMaxConcurrent,
			MaxQueue:      StandardMaxQueue,
			QueueTimeout:  StandardQueueTimeout,
		}),
		Timeout(StandardTimeout),
	)
}
