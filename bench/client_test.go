package bench

import (
	"net/http"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/resilient-result/resilient/policies"
	"github.com/resilient-result/resilient/transport"
)

// hugeRate is a rate no benchmark can reach: limiters configured with it
// admit every call, so the pairs measure the admission path alone.
const hugeRate = 1 << 30

// failsafeRetry is failsafe-go's HTTP retry policy set like ours by default:
// 3 attempts, exponential backoff from 100ms to 10s, Retry-After honoured.
func failsafeRetry() failsafe.Policy[*http.Response] {
	return failsafehttp.NewRetryPolicyBuilder().
		WithMaxAttempts(3).
		WithBackoff(100*time.Millisecond, 10*time.Second).
		Build()
}

// failsafeBreaker is failsafe-go's circuit breaker set like ours by default:
// opens after 5 consecutive failures (transport errors and 5xx), 5s delay.
func failsafeBreaker() circuitbreaker.CircuitBreaker[*http.Response] {
	return circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(func(resp *http.Response, err error) bool {
			return err != nil || resp == nil || resp.StatusCode >= 500
		}).
		WithFailureThreshold(5).
		WithDelay(5 * time.Second).
		Build()
}

// BenchmarkClientStack is the full client stack: ours is
// transport.Standard() (Timeout 60s, Retry, Breaker per host, RateLimit per
// host, Timeout 10s); failsafe-go's failsafehttp RoundTripper gets the same
// policies in the same order (outermost first), its rate limiter a bursty one
// with a rate it never reaches.
func BenchmarkClientStack(b *testing.B) {
	benchRT(b, "resilient", func(base http.RoundTripper) http.RoundTripper {
		return transport.Chain(base, transport.Standard()...)
	})
	benchRT(b, "failsafe", func(base http.RoundTripper) http.RoundTripper {
		return failsafehttp.NewRoundTripper(base,
			timeout.New[*http.Response](60*time.Second),
			failsafeRetry(),
			failsafeBreaker(),
			ratelimiter.NewBursty[*http.Response](hugeRate, time.Second),
			timeout.New[*http.Response](10*time.Second),
		)
	})
}

// BenchmarkRetry is the retry layer alone: ours (policies.Retry's defaults:
// 3 attempts) vs go-retryablehttp's RoundTripper (RetryMax 2, i.e. 3
// attempts; its Client's HTTPClient sends through the same base; no logger),
// and failsafe-go's HTTP retry policy for reference.
func BenchmarkRetry(b *testing.B) {
	benchRT(b, "resilient", func(base http.RoundTripper) http.RoundTripper {
		return transport.Chain(base, transport.Retry(policies.Retry{}))
	})
	benchRT(b, "retryablehttp", func(base http.RoundTripper) http.RoundTripper {
		c := retryablehttp.NewClient()
		c.HTTPClient.Transport = base
		c.Logger = nil
		c.RetryMax = 2
		return &retryablehttp.RoundTripper{Client: c}
	})
	benchRT(b, "failsafe", func(base http.RoundTripper) http.RoundTripper {
		return failsafehttp.NewRoundTripper(base, failsafeRetry())
	})
}
