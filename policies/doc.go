// Package policies is resilient's policy core: retry with backoff and a retry
// budget, circuit breaker, rate limiter, bulkhead and timeout. It knows
// nothing of HTTP: each policy decides (admit, wait, reject, retry after d)
// and records outcomes; the transport and middleware packages translate
// those decisions to and from HTTP.
//
// Every options struct (Retry, Breaker, RateLimit, Bulkhead, Timeout) is
// ready to use at its zero value. Stateful policies have a runtime value built
// from their options (NewCircuit, NewLimiter, NewBulkhead); those values, Retry
// and Timeout implement Policy, and Do runs any function under them and
// returns a result.Result:
//
//	circuit := policies.NewCircuit(policies.Breaker{Name: "db"})
//	r := policies.Do(ctx, queryUser, policies.Retry{}, circuit, policies.Timeout{After: time.Second})
//
// The first policy is outermost. Rejections wrap ErrCircuitOpen,
// ErrRateLimited or ErrBulkheadFull (match with errors.Is) and RetryAfter
// tells how long they ask the caller to wait. Every policy reports what it
// does to an optional Observer as Events, which metrics, traces and logs are
// built from.
package policies
