package policies

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Error is the type of the package's sentinel errors, so tracing records a
// meaningful error type. Match sentinels with errors.Is.
type Error string

// Error returns the message.
func (e Error) Error() string { return string(e) }

// The sentinels callers branch on. Every rejection a policy returns wraps one
// of them, so errors.Is matches through any wrapping.
var (
	// ErrCircuitOpen: a circuit breaker refused the call (open, or half-open
	// with every probe slot taken).
	ErrCircuitOpen error = Error("policies: circuit breaker is open")
	// ErrRateLimited: a rate limiter refused the call, or the wait it asked
	// for would outlive the caller's deadline.
	ErrRateLimited error = Error("policies: rate limited")
	// ErrBulkheadFull: a bulkhead had no free slot and no room (or no time)
	// left in its queue.
	ErrBulkheadFull error = Error("policies: bulkhead is full")
	// ErrTimeout: a policy's own timeout expired. It is not the caller's
	// deadline: errors.Is(err, context.DeadlineExceeded) is false for it.
	ErrTimeout error = Error("policies: timeout")
	// ErrBudgetExhausted: a retry was refused because the retry budget is
	// spent. It is carried as the reason a retry stopped, never returned by
	// Do on its own: Do returns the last attempt's error.
	ErrBudgetExhausted error = Error("policies: retry budget exhausted")
)

// RejectedError is returned when a policy refuses to run an operation. It
// wraps the sentinel for its policy kind (ErrCircuitOpen, ErrRateLimited or
// ErrBulkheadFull) and says how long the caller should wait.
type RejectedError struct {
	Kind Kind          // the kind of policy that refused
	Name string        // the policy's name; "" when unnamed
	Key  string        // the key (host, client) the decision was for; "" when unkeyed
	Wait time.Duration // how long to wait before trying again; 0 when unknown
	Err  error         // the sentinel
}

// Error describes the rejection, naming the policy and the wait.
func (e *RejectedError) Error() string {
	msg := e.Err.Error()
	if e.Name != "" {
		msg += " (" + e.Name + ")"
	}
	if e.Key != "" {
		msg += " for " + e.Key
	}
	if e.Wait > 0 {
		msg += fmt.Sprintf(": retry after %v", e.Wait)
	}
	return msg
}

// Unwrap returns the sentinel, so errors.Is(err, ErrCircuitOpen) and friends
// work.
func (e *RejectedError) Unwrap() error { return e.Err }

// RetryAfter reports how long a rejection asks the caller to wait before
// trying again. ok is false when err carries no such wait.
func RetryAfter(err error) (wait time.Duration, ok bool) {
	var re *RejectedError
	if errors.As(err, &re) && re.Wait > 0 {
		return re.Wait, true
	}
	return 0, false
}

// TimeoutError is returned when a policy's own timeout expires. It matches
// ErrTimeout with errors.Is and wraps the error the operation returned, if
// any.
type TimeoutError struct {
	Name  string        // the policy's name; "" when unnamed
	After time.Duration // the timeout that expired
	Err   error         // what the operation returned when cut short; may be nil
}

// Error names the timeout.
func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("policies: timeout after %v", e.After)
	if e.Name != "" {
		msg = fmt.Sprintf("policies: timeout %q after %v", e.Name, e.After)
	}
	return msg
}

// Is reports ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap returns the operation's own error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// Timeout reports true, like net.Error.
func (e *TimeoutError) Timeout() bool { return true }

// PermanentError marks an error that no retry can fix; Retry stops at once.
type PermanentError struct {
	Err error // the error that no retry can fix
}

// Error returns the wrapped error's message.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err so that Retry never retries it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or anything it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

// CallerDone reports whether ctx, the caller's context, has ended: such an
// outcome is never retried and never counted as a failure of the callee.
func CallerDone(ctx context.Context) bool { return ctx.Err() != nil }
