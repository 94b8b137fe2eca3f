package transport

import (
	"time"

	"github.com/resilient-result/resilient/policies"
)

// The timeouts of the presets.
const (
	standardCallTimeout    = 60 * time.Second
	standardAttemptTimeout = 10 * time.Second

	thirdPartyCallTimeout    = 3 * time.Minute
	thirdPartyAttemptTimeout = 30 * time.Second

	internalCallTimeout    = 10 * time.Second
	internalAttemptTimeout = 2 * time.Second
)

// Standard returns the recommended stack, with zero configuration, in the
// recommended order (outermost first):
//
//	Timeout(60s)                     bounds the whole call: attempts, waits and reading the body
//	Retry(policies.Retry{})          3 attempts, exponential backoff with jitter, honours Retry-After up to 30s
//	Breaker(policies.Breaker{})      per host: opens after 5 consecutive failures (errors, 5xx)
//	RateLimit(policies.RateLimit{})  per host: remembers and obeys what servers announce
//	Timeout(10s)                     bounds each attempt, so a hung attempt is retried
//
// Why this order: the outer Timeout gives Retry a deadline, so Retry never
// plans a wait that outlives it and returns the last response instead. Retry
// sits outside Breaker so that each attempt is judged by the circuit and an
// open circuit is not retried (it fails fast with ErrCircuitOpen). RateLimit
// sits inside Breaker so that its own refusals (the request never left) are
// not counted as host failures, and outside the per-attempt Timeout so that
// waiting for a held host does not eat an attempt's time; when the wait
// would outlive the call's deadline it fails fast with ErrRateLimited. The
// per-attempt Timeout is innermost: an attempt it cuts short is retried.
//
// Both timeouts also bound reading the response body, like
// http.Client.Timeout: for long downloads or streams build your own stack.
// Each call returns fresh layers, and the state (circuits, held hosts)
// belongs to the RoundTripper that Chain builds from them: Chain once per
// client and share the client.
//
//	client := &http.Client{Transport: transport.Chain(nil, transport.Standard()...)}
func Standard() []Layer { return StandardWith(nil) }

// StandardWith is Standard with every layer reporting its events to o (nil
// means silent), so metrics, traces and logs can see what the stack does.
// The two timeouts are named "call" and "attempt" in their events.
func StandardWith(o policies.Observer) []Layer {
	return stack(o, standardCallTimeout, policies.Retry{}, standardAttemptTimeout)
}

// stack builds the presets' five layers in their one order, every layer
// reporting to o.
func stack(o policies.Observer, call time.Duration, retry policies.Retry, attempt time.Duration) []Layer {
	retry.Observer = o
	return []Layer{
		TimeoutWith(policies.Timeout{After: call, Name: "call", Observer: o}),
		Retry(retry),
		Breaker(policies.Breaker{Observer: o}),
		RateLimit(policies.RateLimit{Observer: o}),
		TimeoutWith(policies.Timeout{After: attempt, Name: "attempt", Observer: o}),
	}
}

// ThirdPartyAPI returns a stack for an external API that announces its rate
// limits (Retry-After, RateLimit, X-RateLimit-*): patient, and polite to the
// host. In the order of Standard (outermost first):
//
//	Timeout(3m)        bounds the whole call
//	Retry              5 attempts, backoff 500ms growing to 30s, honours server delays up to 60s
//	Breaker            per host, the defaults (5 failures, 5s cool-down doubling to 2m)
//	RateLimit          per host: after "remaining 0" or a 429/503 with Retry-After, later
//	                   requests to that host wait until the announced reset
//	Timeout(30s)       bounds each attempt
//
// Statuses 429 and 503 are retried after the wait the server asks for; a
// wait beyond 60s, or past the call's deadline, returns the last response at
// once. Like Standard, each call returns fresh layers.
func ThirdPartyAPI() []Layer {
	return stack(nil, thirdPartyCallTimeout, policies.Retry{
		MaxAttempts: 5,
		Backoff:     policies.Exponential(500*time.Millisecond, 30*time.Second),
		MaxDelay:    60 * time.Second,
	}, thirdPartyAttemptTimeout)
}

// Internal returns a stack for service-to-service calls inside one
// platform: fail fast, and never let retries multiply an outage. In order
// (outermost first):
//
//	Timeout(10s)                     bounds the whole call
//	Retry              3 attempts, backoff 25ms growing to 1s, server delays up to 2s,
//	                   under a retry budget (at most 20% extra load, plus 10 retries a second)
//	Breaker            per host, the defaults (5 failures, 5s cool-down doubling to 2m)
//	RateLimit          per host: obeys a peer shedding load with 429/503 and Retry-After
//	Timeout(2s)        bounds each attempt
//
// The retry budget (a policies.Budget with its defaults) is shared by every
// request through the RoundTripper that Chain builds from one call's layers:
// Chain once per client and share the client.
func Internal() []Layer {
	return stack(nil, internalCallTimeout, policies.Retry{
		MaxAttempts: 3,
		Backoff:     policies.Exponential(25*time.Millisecond, time.Second),
		MaxDelay:    2 * time.Second,
		Budget:      &policies.Budget{},
	}, internalAttemptTimeout)
}
