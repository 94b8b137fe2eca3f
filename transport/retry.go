package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/resilient-result/resilient/headers"
	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// Retry returns a Layer that sends a request again when an attempt fails,
// deciding each retry with p (p.NextErr): the zero policies.Retry makes 3
// attempts in all with exponential backoff and full jitter (100ms up to
// 10s), never waiting longer than 30s. It panics if p is invalid
// (p.Validate), naming the field.
//
// What is retried:
//   - transport errors, and responses with status 408, 429, 500, 502, 503 or
//     504;
//   - for GET, HEAD, OPTIONS, TRACE, PUT and DELETE, and for any request that
//     carries an Idempotency-Key header; other methods (POST, PATCH) only
//     when the error proves the request never left: a dial or proxy-connect
//     error (*net.OpError with Op "dial" or "proxyconnect") or a rejection
//     by an inner layer (ErrRateLimited, ErrBulkheadFull);
//   - only when the body can be replayed: a request with a body (not nil,
//     not http.NoBody) and no GetBody is sent once.
//
// What is never retried: the caller's cancellation or deadline (the
// request's context has ended), an ErrCircuitOpen rejection from an inner
// Breaker (the breaker exists to stop traffic), and errors marked with
// policies.Permanent. An attempt cut short by an inner Timeout layer (a
// *policies.TimeoutError while the caller's context is live) is retried.
//
// Between attempts it waits max(backoff, server delay) on p.Clock, where the
// server delay is what the response asks for (headers.Delay: Retry-After in
// seconds or as an HTTP date, retry-after-ms, an exhausted RateLimit or
// X-RateLimit-* reset) or what an inner rejection asks for
// (policies.RetryAfter). A server delay beyond p.MaxDelay, or a wait that
// would end past the request's deadline, ends the retries at once and the
// last response (or error) is returned as is: nobody sleeps past a deadline.
// When the caller's context ends during a wait, the error wraps the
// context's cause.
//
// The caller's request is never modified: the first attempt sends it as it
// came, and an attempt that needs a fresh body (from GetBody) sends a
// shallow copy carrying it, so the success path costs no allocation. Every
// response not handed to the caller is drained (up to 64 KiB) and closed so
// its connection is reused. p.Budget, when set, is charged one request per
// call. Events (EventRetry, EventRetryStop, EventBudgetExhausted) go to
// p.Observer with Key set to the request's host; a retryable status is
// reported as a *StatusError without body.
//
// Place Retry outside Breaker and RateLimit so that each attempt is judged
// by them, and outside a per-attempt Timeout; a Timeout outside Retry bounds
// the whole call, waits included.
func Retry(p policies.Retry) Layer {
	if err := p.Validate(); err != nil {
		panic("transport: " + strings.TrimPrefix(err.Error(), "policies: "))
	}
	clk := clock.Or(p.Clock)
	return func(next http.RoundTripper) http.RoundTripper {
		return &retryRT{next: next, p: p, clk: clk}
	}
}

// retryRT is the RoundTripper built by Retry.
type retryRT struct {
	next http.RoundTripper
	p    policies.Retry
	clk  clock.Clock
}

var _ http.RoundTripper = (*retryRT)(nil)

// RoundTrip sends req, and sends it again while p allows; see Retry.
func (rt *retryRT) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	hasBody := req.Body != nil && req.Body != http.NoBody
	replayable := !hasBody || req.GetBody != nil
	idempotent := retryIdempotent(req)
	p := rt.p
	if p.Observer != nil {
		p.Observer = keyObserver{o: p.Observer, key: hostKey(req)}
	}
	p.Budget.Request()

	var body io.ReadCloser // the body of the next attempt, from GetBody
	for attempt := 1; ; attempt++ {
		areq := req // the first attempt goes out as it came: nothing here modifies it
		if body != nil {
			// Later attempts need their own body: a shallow copy carries it,
			// sharing the rest (which no RoundTripper may modify).
			areq = new(http.Request)
			*areq = *req
			areq.Body, body = body, nil
		}
		resp, err := rt.next.RoundTrip(areq)

		var (
			retryable   bool
			serverDelay time.Duration
			cause       error
		)
		if err != nil {
			cause = err
			retryable = replayable && retryableError(err) && (idempotent || retryNeverSent(err))
			serverDelay, _ = policies.RetryAfter(err)
		} else if retryable = replayable && idempotent && retryableStatus(resp.StatusCode); retryable {
			serverDelay, _ = headers.Delay(resp.Header, rt.clk.Now())
			if p.Observer != nil {
				cause = retryStatusCause(areq, resp)
			}
		}

		if err == nil && !retryable {
			return resp, nil // a final response: nothing to decide or report
		}
		d := p.NextErr(ctx, attempt, cause, retryable, serverDelay)
		if !d.Retry {
			return resp, err
		}

		// Fetch the next body before letting the response go: if the body
		// cannot be had, the caller gets this attempt's outcome.
		if hasBody {
			b, gerr := req.GetBody()
			if gerr != nil || b == nil {
				return resp, err
			}
			body = b
		}
		discard(resp)

		if serr := rt.clk.Sleep(ctx, d.Delay); serr != nil {
			if body != nil {
				_ = body.Close()
			}
			if err != nil {
				err = fmt.Errorf("%w (retry wait cut short: %w)", err, serr)
			} else {
				err = fmt.Errorf("transport: retry wait cut short: %w", serr)
			}
			if p.Observer != nil {
				reason := policies.StopCanceled
				if errors.Is(serr, context.DeadlineExceeded) {
					reason = policies.StopDeadline
				}
				p.Observer.Observe(policies.Event{Kind: policies.KindRetry, Name: p.Name,
					Type: policies.EventRetryStop, Attempt: attempt, Delay: d.Delay, Err: err, Reason: reason})
			}
			return nil, err
		}
	}
}

// CloseIdleConnections forwards to the wrapped RoundTripper.
func (rt *retryRT) CloseIdleConnections() { forwardCloseIdle(rt.next) }

// retryIdempotent reports whether req may be sent twice: an idempotent
// method (RFC 9110 section 9.2.2, with the safe ones) or an Idempotency-Key
// header.
func retryIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	return ok
}

// retryableStatus reports whether a response with status code is worth
// another attempt: 408, 429, 500, 502, 503 and 504.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableError reports whether a transport error is worth another attempt:
// every error except an open circuit (fail fast) and a Permanent one. The
// caller's cancellation is left to Retry.NextErr, which checks the context.
func retryableError(err error) bool {
	return !errors.Is(err, policies.ErrCircuitOpen) && !policies.IsPermanent(err)
}

// retryNeverSent reports whether err proves the request never reached the
// server, so even a non-idempotent request may be sent again: a failed dial
// (DNS included) or proxy connect, or a rejection by an inner policy.
func retryNeverSent(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && (oe.Op == "dial" || oe.Op == "proxyconnect") {
		return true
	}
	var re *policies.RejectedError
	return errors.As(err, &re)
}

// retryStatusCause describes a retryable response for events, without its
// body.
func retryStatusCause(req *http.Request, resp *http.Response) error {
	return &StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Method: req.Method, URL: statusURL(req), Header: resp.Header}
}
