package middleware

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resilient-result/resilient/headers"
	"github.com/resilient-result/resilient/policies"
)

// RateLimit returns a middleware that limits each client to p.Limit requests
// per p.Window, the client being named by key (nil means ClientIP()). It is
// RateLimitWith(RateLimitOptions{Policy: p, Key: key}); see there for what
// it answers. It panics when p.Limit is not > 0 or p is otherwise invalid.
//
// It is a per-client limiter, not a concurrency cap: use Bulkhead for that.
func RateLimit(p policies.RateLimit, key KeyFunc) func(http.Handler) http.Handler {
	return RateLimitWith(RateLimitOptions{Policy: p, Key: key})
}

// RateLimitOptions configures RateLimitWith. Only Policy.Limit must be set.
type RateLimitOptions struct {
	// Policy is the limit applied to each key: Policy.Limit requests per
	// Policy.Window (0 means 1s), token bucket by default (Burst 0 means
	// Limit), Algorithm: policies.SlidingWindow on request, keys kept in
	// memory up to Policy.MaxKeys (0 means 100,000; idle, then least recently
	// seen keys are evicted) or in Policy.Store. Limit must be > 0: a server
	// limiter without a limit is a mistake, not a default.
	Policy policies.RateLimit
	// Key names the client a request counts against; nil means ClientIP().
	// A key error answers 400: requests are never pooled in a shared bucket.
	Key KeyFunc
	// Cost returns the units a request takes; nil means 1 for every request.
	// A cost below 1 counts as 1; a cost above the bucket's capacity (Burst,
	// or Limit for SlidingWindow) can never be admitted and is answered 429
	// without Retry-After.
	Cost func(*http.Request) int
	// Legacy also writes X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset (delta seconds) for older clients; default false.
	Legacy bool
	// PolicyName is the policy's name in the RateLimit-Policy and RateLimit
	// fields; "" means "default". It must be printable ASCII.
	PolicyName string
}

// RateLimitWith returns a middleware that rate-limits requests per key with
// one policies.Limiter built from o.Policy; every handler the returned
// middleware wraps shares that limiter. It panics at construction, with a
// message naming the option, when o is invalid.
//
// Every response carries the IETF RateLimit-Policy and RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers), written before the handler runs,
// and X-RateLimit-* when o.Legacy is set:
//
//	RateLimit-Policy: "default";q=100;w=60
//	RateLimit: "default";r=42;t=35
//
// In RateLimit, t is the time until the key's quota is whole again; when
// no unit is left (r=0) it is instead the time until the next request may
// be admitted, so that a client reading t as "wait until" (as
// headers.Delay does) waits no longer than Retry-After says.
//
// A refused request is answered 429 Too Many Requests with Retry-After (whole
// seconds, at least 1) and an application/problem+json body; the handler is
// not called. A request whose key cannot be told is answered 400, and one
// the limiter's Store cannot decide (a Store error) 503, both with
// problem+json bodies.
func RateLimitWith(o RateLimitOptions) func(http.Handler) http.Handler {
	p := o.Policy
	if p.Limit <= 0 {
		panic("middleware: RateLimit.Limit must be > 0, got " + strconv.Itoa(p.Limit))
	}
	if err := p.Validate(); err != nil {
		panic("middleware: " + strings.TrimPrefix(err.Error(), "policies: "))
	}
	name := o.PolicyName
	if name == "" {
		name = "default"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e {
			panic("middleware: RateLimitOptions.PolicyName must be printable ASCII, got " + strconv.Quote(name))
		}
	}
	rl := &rlHandler{
		lim:    policies.NewLimiter(p),
		key:    o.Key,
		cost:   o.Cost,
		legacy: o.Legacy,
		name:   name,
		limit:  int64(p.Limit),
	}
	if rl.key == nil {
		rl.key = ClientIP()
	}
	window := p.Window
	if window == 0 {
		window = time.Second
	}
	rl.capacity = p.Burst
	if rl.capacity == 0 || p.Algorithm == policies.SlidingWindow {
		rl.capacity = p.Limit
	}
	if p.Algorithm == policies.TokenBucket {
		rl.perUnit = window / time.Duration(p.Limit)
	}
	tmp := http.Header{}
	headers.WritePolicy(tmp, headers.Policy{Name: name, Quota: int64(p.Limit), Window: window})
	rl.policyValue = tmp.Get("RateLimit-Policy")
	return func(next http.Handler) http.Handler {
		return &rlMiddleware{rl: rl, next: next}
	}
}

// rlHandler is the state one RateLimitWith shares among every handler it wraps.
type rlHandler struct {
	lim         *policies.Limiter
	key         KeyFunc
	cost        func(*http.Request) int
	legacy      bool
	name        string
	limit       int64
	capacity    int
	perUnit     time.Duration // TokenBucket: the time one unit takes to refill; 0 for SlidingWindow
	policyValue string        // RateLimit-Policy, computed once
}

// rlMiddleware is one wrapped handler.
type rlMiddleware struct {
	rl   *rlHandler
	next http.Handler
}

var _ http.Handler = (*rlMiddleware)(nil)

// Canonical keys of the fields the middleware writes.
const (
	rlKeyPolicy = "Ratelimit-Policy"
	rlKeyState  = "Ratelimit"
)

func (m *rlMiddleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rl := m.rl
	h := w.Header()
	// One backing array for the values of both fields; each gets a slice
	// with no spare capacity, so an append to one cannot reach the other.
	vals := make([]string, 2)
	vals[0] = rl.policyValue
	h[rlKeyPolicy] = vals[0:1:1]
	key, err := rl.key(r)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	n := 1
	if rl.cost != nil {
		n = max(rl.cost(r), 1)
	}
	if n > rl.capacity {
		d, err := rl.lim.AllowN(r.Context(), key, 0) // the state, for the headers
		if err == nil {
			rl.writeState(h, d, vals[1:2:2])
		}
		writeProblem(w, http.StatusTooManyRequests,
			"request costs "+strconv.Itoa(n)+" units, more than the limit's capacity of "+strconv.Itoa(rl.capacity)+": it can never be admitted")
		return
	}
	d, err := rl.lim.AllowN(r.Context(), key, n)
	if err != nil {
		headers.WriteRetryAfter(h, time.Second)
		writeProblem(w, http.StatusServiceUnavailable, "rate limiter unavailable")
		return
	}
	if !d.Allowed {
		d.Reset = min(d.Reset, d.RetryAfter)
	} else if d.Remaining == 0 && rl.perUnit > 0 {
		// Less than one token left: the next one is whole this much sooner
		// than the bucket.
		d.Reset = max(d.Reset-time.Duration(rl.capacity-1)*rl.perUnit, 0)
	}
	rl.writeState(h, d, vals[1:2:2])
	if !d.Allowed {
		headers.WriteRetryAfter(h, max(d.RetryAfter, time.Second))
		writeProblem(w, http.StatusTooManyRequests, "rate limit exceeded, retry after "+strconv.FormatInt(rlCeilSeconds(d.RetryAfter), 10)+"s")
		return
	}
	m.next.ServeHTTP(w, r)
}

// writeState writes RateLimit (and the legacy trio) for decision d. RateLimit
// goes into val, a one-element slice the caller provides.
func (rl *rlHandler) writeState(h http.Header, d policies.LimitDecision, val []string) {
	st := headers.State{Name: rl.name, Remaining: int64(d.Remaining), Reset: d.Reset}
	var buf [96]byte
	if b, ok := headers.AppendState(buf[:0], st); ok {
		val[0] = string(b) // the one allocation: the slice is the caller's
		h[rlKeyState] = val
	} else {
		headers.WriteState(h, st)
	}
	if rl.legacy {
		headers.WriteLegacy(h, rl.limit, int64(d.Remaining), d.Reset)
	}
}

// rlCeilSeconds is d in whole seconds, rounded up, at least 1.
func rlCeilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return max(s, 1)
}
