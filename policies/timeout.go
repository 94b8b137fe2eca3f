package policies

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Timeout bounds the time an operation may take. Its zero value (After 0)
// imposes no timeout. As a Policy it gives op a context that ends After the
// start; when that policy deadline, not the caller's, cut op short, Execute
// returns a *TimeoutError (errors.Is(err, ErrTimeout)), which Retry treats as
// retryable. The caller's own deadline or cancellation comes back unchanged.
type Timeout struct {
	After    time.Duration // how long op may run; 0 means no timeout
	Name     string        // for events and errors; default ""
	Observer Observer      // receives EventTimeout; nil means none
}

// Validate reports a negative After.
func (t Timeout) Validate() error {
	if t.After < 0 {
		return fmt.Errorf("policies: Timeout.After must be >= 0, got %v", t.After)
	}
	return nil
}

// Execute runs op with a context that ends after t.After.
func (t Timeout) Execute(ctx context.Context, op func(context.Context) error) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.After == 0 {
		return op(ctx)
	}
	tctx, cancel := WithTimeout(ctx, t.After)
	defer cancel()
	err := op(tctx)
	if err != nil {
		if te := TimedOut(ctx, tctx, err); te != nil {
			te.Name = t.Name
			emit(t.Observer, Event{Kind: KindTimeout, Name: t.Name, Type: EventTimeout, Delay: t.After, Err: err})
			return te
		}
	}
	return err
}

// timeoutCause marks a context that a policy timeout, not the caller, ended.
type timeoutCause struct{ after time.Duration }

func (c *timeoutCause) Error() string { return fmt.Sprintf("policies: timeout after %v", c.after) }

// TimeoutCause returns the cause a context ended by a policy timeout of d
// carries, the one WithTimeout uses and TimedOut recognises. Adapters that
// apply the same timeout on every call make it once and pass it to
// context.WithTimeoutCause, saving an allocation per call.
func TimeoutCause(d time.Duration) error { return &timeoutCause{after: d} }

// WithTimeout returns a child of ctx that ends after d with a cause that
// TimedOut recognises, so adapters can tell their own timeout apart from the
// caller's deadline. A caller deadline earlier than d still ends it first,
// and is then reported as the caller's.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, &timeoutCause{after: d})
}

// TimedOut reports whether tctx, made by WithTimeout from parent, was ended by
// its own timeout while parent is still live. If so it returns a
// *TimeoutError wrapping err (the operation's error); otherwise nil, and err
// belongs to the caller or the operation.
func TimedOut(parent, tctx context.Context, err error) *TimeoutError {
	if parent.Err() != nil || tctx.Err() == nil {
		return nil
	}
	var tc *timeoutCause
	if !errors.As(context.Cause(tctx), &tc) {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The operation only reports the deadline we set: keep it out of the
		// chain so errors.Is(err, context.DeadlineExceeded) stays a test for
		// the caller's deadline.
		err = nil
	}
	return &TimeoutError{After: tc.after, Err: err}
}
