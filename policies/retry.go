package policies

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// Retry runs an operation again when it fails, waiting between attempts. Its
// zero value makes 3 attempts in all, waits with exponential backoff and full
// jitter (100ms growing to at most 10s) and never waits longer than 30s.
//
// As a Policy (Execute, and so Do) it retries every error except one marked
// with Permanent, one Retryable rejects, and any error once the caller's
// context has ended. It waits max(backoff, server delay), where the server
// delay is the wait a rejection asks for (RetryAfter, such as an open
// circuit's cool-down), and returns the last attempt's error when it stops.
//
// Adapters that classify outcomes themselves, like the HTTP transport, drive
// the same rules one attempt at a time with Next and NextErr.
type Retry struct {
	MaxAttempts int           // attempts in all, first included; 0 means 3; 1 disables retrying
	Backoff     Backoff       // nil means Exponential(100ms, 10s) with full jitter
	MaxDelay    time.Duration // longest single wait, server-requested waits included; 0 means 30s
	Budget      *Budget       // shared retry budget; nil means none
	// Retryable reports whether Execute may retry an error; nil means every
	// error. Errors marked with Permanent and the caller's context ending are
	// never retried, whatever it says. Next and NextErr do not use it: their
	// caller says whether the outcome is retryable.
	Retryable func(error) bool
	Name      string      // for events; default ""
	Observer  Observer    // receives EventRetry, EventRetryStop and EventBudgetExhausted; nil means none
	Clock     clock.Clock // reads the time for deadlines and sleeps between attempts; nil means the wall clock
}

// StopReason says why Retry stopped retrying.
type StopReason uint8

// The reasons to stop. The zero StopReason goes with a decision to retry.
const (
	// StopNotRetryable: the outcome may not be retried.
	StopNotRetryable StopReason = iota + 1
	// StopMaxAttempts: MaxAttempts attempts have been made.
	StopMaxAttempts
	// StopDelayTooLong: the callee asked for a wait longer than MaxDelay.
	StopDelayTooLong
	// StopDeadline: the wait would end at or past the context's deadline, or
	// the deadline has already passed.
	StopDeadline
	// StopBudget: the retry budget refused the retry.
	StopBudget
	// StopCanceled: the caller's context was canceled.
	StopCanceled
)

var stopReasonNames = [...]string{"", "not_retryable", "max_attempts", "delay_too_long", "deadline", "budget", "canceled"}

// String returns the reason's snake_case name, such as "max_attempts", or ""
// for the zero StopReason.
func (s StopReason) String() string {
	if int(s) < len(stopReasonNames) {
		return stopReasonNames[s]
	}
	return "unknown"
}

// RetryDecision is what Next decided about the attempt that just ended.
type RetryDecision struct {
	Retry  bool          // whether to make another attempt
	Delay  time.Duration // when Retry, the wait before it; when stopping for delay_too_long or deadline, the wait that was refused
	Reason StopReason    // why not, when Retry is false
}

const (
	defaultMaxAttempts = 3
	defaultMaxDelay    = 30 * time.Second
)

// defaultBackoff is the Backoff of Retry's zero value, kept concrete so that
// Next does not box it on each call.
var defaultBackoff = ExponentialBackoff{Base: defaultBackoffBase, Max: defaultBackoffMax}

// Validate reports a negative MaxAttempts or MaxDelay and an invalid Budget.
func (r Retry) Validate() error {
	if r.MaxAttempts < 0 {
		return fmt.Errorf("policies: Retry.MaxAttempts must be >= 0, got %d", r.MaxAttempts)
	}
	if r.MaxDelay < 0 {
		return fmt.Errorf("policies: Retry.MaxDelay must be >= 0, got %v", r.MaxDelay)
	}
	if err := r.Budget.Validate(); err != nil {
		return fmt.Errorf("policies: Retry.Budget: %w", err)
	}
	return nil
}

// Next decides what follows attempt, the attempt that just ended (counted
// from 1). retryable says whether its outcome may be retried at all;
// serverDelay is the wait the callee asked for, 0 when none. Next is NextErr
// without a cause for events.
func (r Retry) Next(ctx context.Context, attempt int, retryable bool, serverDelay time.Duration) RetryDecision {
	return r.NextErr(ctx, attempt, nil, retryable, serverDelay)
}

// NextErr decides what follows attempt, the attempt that just ended (counted
// from 1), and reports cause, that attempt's error (nil when none, such as
// for a retryable HTTP status), in the events it emits.
//
// The wait is max(backoff, serverDelay), with the backoff clamped to
// MaxDelay. NextErr stops, checking in this order, when
//   - ctx has ended (StopCanceled, or StopDeadline when its deadline passed);
//   - retryable is false (StopNotRetryable);
//   - attempt >= MaxAttempts (StopMaxAttempts);
//   - serverDelay > MaxDelay: the callee asked for longer than we accept,
//     so NextErr stops rather than wait less (StopDelayTooLong);
//   - the wait would end at or past ctx's deadline, measured on Clock: no
//     wait is planned that outlives the caller (StopDeadline);
//   - the Budget refuses the retry (StopBudget), after which NextErr emits
//     EventBudgetExhausted.
//
// Only the budget check records anything: it spends one retry from the
// budget. NextErr does not call Budget.Request; its caller does, once per
// call. It emits EventRetry when it decides to retry and EventRetryStop,
// with cause (or ErrBudgetExhausted), when it stops. It does not allocate
// when Observer is nil.
func (r Retry) NextErr(ctx context.Context, attempt int, cause error, retryable bool, serverDelay time.Duration) RetryDecision {
	d := r.decide(ctx, attempt, retryable, serverDelay)
	if r.Observer == nil {
		return d
	}
	ev := Event{Kind: KindRetry, Name: r.Name, Type: EventRetry, Attempt: attempt, Delay: d.Delay, Err: cause}
	if !d.Retry {
		ev.Type = EventRetryStop
		ev.Reason = d.Reason
		if d.Reason == StopBudget {
			ev.Err = ErrBudgetExhausted
			r.Observer.Observe(Event{Kind: KindRetry, Name: r.Name, Type: EventBudgetExhausted, Attempt: attempt, Err: ErrBudgetExhausted})
		}
	}
	r.Observer.Observe(ev)
	return d
}

// decide is NextErr without the events.
func (r Retry) decide(ctx context.Context, attempt int, retryable bool, serverDelay time.Duration) RetryDecision {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return RetryDecision{Reason: StopDeadline}
		}
		return RetryDecision{Reason: StopCanceled}
	}
	if !retryable {
		return RetryDecision{Reason: StopNotRetryable}
	}
	maxAttempts := r.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = defaultMaxAttempts
	}
	if attempt >= maxAttempts {
		return RetryDecision{Reason: StopMaxAttempts}
	}
	maxDelay := r.MaxDelay
	if maxDelay <= 0 {
		maxDelay = defaultMaxDelay
	}
	if serverDelay > maxDelay {
		return RetryDecision{Delay: serverDelay, Reason: StopDelayTooLong}
	}
	var wait time.Duration
	if r.Backoff != nil {
		wait = r.Backoff.Delay(attempt)
	} else {
		wait = defaultBackoff.Delay(attempt)
	}
	wait = max(min(wait, maxDelay), serverDelay, 0)
	if deadline, ok := ctx.Deadline(); ok && !deadline.After(clock.Or(r.Clock).Now().Add(wait)) {
		return RetryDecision{Delay: wait, Reason: StopDeadline}
	}
	if !r.Budget.AllowRetry() {
		return RetryDecision{Reason: StopBudget}
	}
	return RetryDecision{Retry: true, Delay: wait}
}

// Execute runs op, and runs it again after a wait while it fails with an
// error that may be retried and NextErr allows it (see Retry and NextErr). It
// records one request in Budget per call, sleeps on Clock, and returns nil
// or the last attempt's error. When ctx ends during a wait, the error wraps
// both the last attempt's error and ctx's cause, so errors.Is finds either.
func (r Retry) Execute(ctx context.Context, op func(context.Context) error) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.Budget.Request()
	clk := clock.Or(r.Clock)
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		retryable := !IsPermanent(err) && (r.Retryable == nil || r.Retryable(err))
		serverDelay, _ := RetryAfter(err)
		d := r.NextErr(ctx, attempt, err, retryable, serverDelay)
		if !d.Retry {
			return err
		}
		if cause := clk.Sleep(ctx, d.Delay); cause != nil {
			err = fmt.Errorf("%w (retry wait cut short: %w)", err, cause)
			reason := StopCanceled
			if errors.Is(cause, context.DeadlineExceeded) {
				reason = StopDeadline
			}
			emit(r.Observer, Event{Kind: KindRetry, Name: r.Name, Type: EventRetryStop, Attempt: attempt, Delay: d.Delay, Err: err, Reason: reason})
			return err
		}
	}
}
