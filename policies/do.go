package policies

import (
	"context"

	"github.com/resilient-result/resilient/result"
)

// Policy runs an operation under a resilience rule. Retry, Timeout and the
// runtime values built by NewCircuit, NewLimiter and NewBulkhead implement
// it, so Do composes them; a type of your own may too.
//
// Execute runs op at most as often as the policy allows and returns op's
// error, or the policy's own (a *RejectedError, a *TimeoutError). It must
// pass a context derived from ctx to op and must not keep op after it
// returns.
type Policy interface {
	Execute(ctx context.Context, op func(context.Context) error) error
}

// Do runs op under ps, the first policy outermost, and returns its outcome as
// a Result. Do(ctx, op, Timeout{After: time.Second}, Retry{}) bounds the whole
// call to one second; Do(ctx, op, Retry{}, Timeout{After: time.Second})
// bounds each attempt instead.
//
// Under Retry every error is retried unless the caller's context has ended,
// the error is marked with Permanent, or Retry.Retryable says no. With no
// policies Do simply runs op once.
func Do[T any](ctx context.Context, op func(context.Context) (T, error), ps ...Policy) result.Result[T] {
	var v T
	call := func(ctx context.Context) error {
		x, err := op(ctx)
		if err == nil {
			v = x
		}
		return err
	}
	err := compose(call, ps)(ctx)
	return result.Of(v, err)
}

// compose wraps call in ps, the first outermost.
func compose(call func(context.Context) error, ps []Policy) func(context.Context) error {
	for i := len(ps) - 1; i >= 0; i-- {
		p, inner := ps[i], call
		if p == nil {
			continue
		}
		call = func(ctx context.Context) error { return p.Execute(ctx, inner) }
	}
	return call
}
