package transport

import (
	"net/http"
	"strings"

	"github.com/resilient-result/resilient/headers"
	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// RateLimit returns a Layer that paces requests per host and obeys what
// each host says about its own limits. The zero policies.RateLimit does no
// local pacing and only obeys the hosts.
//
// Before sending, a request waits for its host's turn in a policies.Limiter
// keyed by host (p.Limit requests per p.Window; Limit 0 means no local
// pacing). When the wait would outlive the request context's deadline, it
// fails at once without sending: RoundTrip closes the request body and
// returns (nil, err), err a *policies.RejectedError (errors.Is(err,
// policies.ErrRateLimited); policies.RetryAfter(err) is the wait). When the
// context ends while waiting, RoundTrip returns the context's cause.
//
// After each response it remembers what the host announced (see package
// headers): an exhausted limit (remaining 0, in the IETF RateLimit field,
// RateLimit-*, X-RateLimit-* or a vendor dialect) holds the host until the
// announced reset, and a 429 or 503 with Retry-After (or retry-after-ms)
// holds it for that delay. Later requests to a held host wait until then, or
// fail fast as above. The response itself is returned unchanged: a 429 goes
// to the caller (or to a Retry layer outside this one).
//
// RateLimit panics when p is invalid (see policies.RateLimit.Validate).
func RateLimit(p policies.RateLimit) Layer {
	if err := p.Validate(); err != nil {
		panic("transport: " + strings.TrimPrefix(err.Error(), "policies: "))
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &rateLimitRT{next: next, lim: policies.NewLimiter(p), clock: clock.Or(p.Clock)}
	}
}

// rateLimitRT is the RoundTripper RateLimit builds.
type rateLimitRT struct {
	next  http.RoundTripper
	lim   *policies.Limiter
	clock clock.Clock
}

var _ http.RoundTripper = (*rateLimitRT)(nil)

// RoundTrip waits for req's host, sends req and remembers what the host
// announced.
func (l *rateLimitRT) RoundTrip(req *http.Request) (*http.Response, error) {
	host := hostKey(req)
	if err := l.lim.Wait(req.Context(), host); err != nil {
		closeRequestBody(req)
		return nil, err
	}
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	l.remember(host, resp)
	return resp, nil
}

// remember holds host as long as resp asks.
func (l *rateLimitRT) remember(host string, resp *http.Response) {
	if len(resp.Header) == 0 {
		return
	}
	now := l.clock.Now()
	if lim, ok := headers.Parse(resp.Header, now); ok && lim.Remaining == 0 && lim.Reset > 0 {
		l.lim.Hold(host, now.Add(lim.Reset))
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := headers.RetryAfter(resp.Header, now); ok && d > 0 {
			l.lim.Hold(host, now.Add(d))
		}
	}
}

// CloseIdleConnections forwards to the wrapped transport.
func (l *rateLimitRT) CloseIdleConnections() { forwardCloseIdle(l.next) }
