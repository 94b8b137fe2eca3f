package policies

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Tests for Do (do.go) and Timeout (timeout.go). Real timers run inside
// synctest bubbles, so timeouts and backoff waits take no wall time.

// blockUntilDone is an op that waits for its context to end and returns its
// error, like a well-behaved call to a callee that never answers.
func blockUntilDone(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestDoNoPolicies(t *testing.T) {
	var calls atomic.Int64
	r := Do(context.Background(), func(context.Context) (int, error) { calls.Add(1); return 42, nil })
	if !r.IsOk() || r.Value() != 42 || calls.Load() != 1 {
		t.Errorf("Do = %v after %d calls, want Ok(42) after 1", r, calls.Load())
	}
	r = Do(context.Background(), func(context.Context) (int, error) { return 7, errDown })
	if !r.IsErr() || r.Err() != errDown || r.Value() != 0 {
		t.Errorf("Do = %v (value %d), want Err(down) with the zero value", r, r.Value())
	}
}

func TestDoSkipsNilPolicies(t *testing.T) {
	var calls atomic.Int64
	r := Do(context.Background(), func(context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return "", errDown
		}
		return "ok", nil
	}, nil, Retry{Backoff: Constant(0)}, nil)
	if r.Value() != "ok" || calls.Load() != 2 {
		t.Errorf("Do = %v after %d calls, want Ok(ok) after 2", r, calls.Load())
	}
}

func TestDoPassesContext(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	r := Do(ctx, func(ctx context.Context) (any, error) { return ctx.Value(key{}), nil },
		Retry{}, Timeout{After: time.Second})
	if r.Value() != "v" {
		t.Errorf("op saw value %v, want the caller's context's v", r.Value())
	}
}

func TestDoRetryReturnsLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		r := Do(context.Background(), func(context.Context) (int, error) {
			n := calls.Add(1)
			return int(n), fmt.Errorf("attempt %d failed", n)
		}, Retry{MaxAttempts: 4})
		if calls.Load() != 4 || r.IsOk() || r.Err().Error() != "attempt 4 failed" || r.Value() != 0 {
			t.Errorf("Do = %v after %d calls, want Err(attempt 4 failed) after 4", r, calls.Load())
		}
	})
}

func TestDoRetryOkAfterTransientFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var calls atomic.Int64
		r := Do(context.Background(), func(context.Context) (string, error) {
			if calls.Add(1) == 1 {
				return "stale", errDown
			}
			return "fresh", nil
		}, Retry{Backoff: Constant(time.Second)})
		if !r.IsOk() || r.Value() != "fresh" || calls.Load() != 2 {
			t.Errorf("Do = %v after %d calls, want Ok(fresh) after 2", r, calls.Load())
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("waited %v between attempts, want the 1s backoff", waited)
		}
	})
}

func TestDoTimeoutInsideRetryRetriesTimedOutAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		r := Do(context.Background(), func(ctx context.Context) (int, error) {
			if calls.Add(1) == 1 {
				return 0, blockUntilDone(ctx)
			}
			return 1, nil
		}, Retry{Backoff: Constant(0)}, Timeout{After: time.Second})
		if !r.IsOk() || calls.Load() != 2 {
			t.Errorf("Do = %v after %d calls, want Ok after the timed-out attempt was retried", r, calls.Load())
		}

		// Every attempt times out: the error is the policy's timeout, not
		// the caller's deadline.
		calls.Store(0)
		rec := &recorder{}
		r = Do(context.Background(), func(ctx context.Context) (int, error) {
			calls.Add(1)
			return 0, blockUntilDone(ctx)
		}, Retry{Backoff: Constant(0)}, Timeout{After: time.Second, Name: "db", Observer: rec})
		err := r.Err()
		if calls.Load() != 3 || !errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do = %v after %d calls, want ErrTimeout (not context.DeadlineExceeded) after 3", err, calls.Load())
		}
		var te *TimeoutError
		if !errors.As(err, &te) || te.Name != "db" || te.After != time.Second || te.Err != nil {
			t.Errorf("error %#v, want a *TimeoutError named db after 1s wrapping nothing", err)
		}
		if got := rec.types(); got != "timeout timeout timeout" {
			t.Errorf("timeout events %q, want three", got)
		}
	})
}

func TestDoCallerDeadlineNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var calls atomic.Int64
		rec := &recorder{}
		r := Do(ctx, func(ctx context.Context) (int, error) {
			calls.Add(1)
			return 0, blockUntilDone(ctx)
		}, Retry{MaxAttempts: 5, Backoff: Constant(0)}, Timeout{After: time.Hour, Observer: rec})
		err := r.Err()
		if calls.Load() != 1 || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
			t.Errorf("Do = %v after %d calls, want the caller's context.DeadlineExceeded after 1", err, calls.Load())
		}
		if len(rec.all()) != 0 {
			t.Errorf("the caller's deadline emitted timeout events %q", rec.types())
		}
	})
}

func TestDoTimeoutOutsideRetryBoundsWholeCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var calls atomic.Int64
		r := Do(context.Background(), func(context.Context) (int, error) {
			calls.Add(1)
			return 0, errDown
		}, Timeout{After: 10 * time.Second}, Retry{MaxAttempts: 100, Backoff: Constant(3 * time.Second)})
		// Attempts at 0s, 3s, 6s, 9s; a wait to 12s would pass the deadline,
		// so Retry stops and returns the last error without sleeping.
		if calls.Load() != 4 || r.Err() != errDown {
			t.Errorf("Do = %v after %d calls, want Err(down) after 4", r, calls.Load())
		}
		if took := time.Since(start); took != 9*time.Second {
			t.Errorf("Do took %v, want 9s: no sleep toward the deadline", took)
		}
	})
}

func TestTimeoutZeroRunsOpUnbounded(t *testing.T) {
	var hadDeadline bool
	err := Timeout{}.Execute(context.Background(), func(ctx context.Context) error {
		_, hadDeadline = ctx.Deadline()
		return errDown
	})
	if err != errDown || hadDeadline {
		t.Errorf("Timeout{} = %v, deadline %v; want op's error and no deadline", err, hadDeadline)
	}
}

func TestTimeoutValidate(t *testing.T) {
	if err := (Timeout{After: time.Second}).Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	var calls atomic.Int64
	err := Timeout{After: -time.Second}.Execute(context.Background(), failing(&calls))
	if err == nil || calls.Load() != 0 {
		t.Errorf("Timeout{After: -1s}.Execute = %v after %d calls, want a validation error and no call", err, calls.Load())
	}
}

func TestTimeoutOutcomes(t *testing.T) {
	errOwn := errors.New("own")
	tests := []struct {
		name    string
		op      func(context.Context) error
		wantErr func(error) bool
	}{
		{"fast success", func(context.Context) error { return nil },
			func(err error) bool { return err == nil }},
		{"fast failure", func(context.Context) error { return errOwn },
			func(err error) bool { return err == errOwn }},
		{"success after the timeout", func(ctx context.Context) error { <-ctx.Done(); return nil },
			func(err error) bool { return err == nil }},
		{"context error after the timeout", blockUntilDone,
			func(err error) bool {
				var te *TimeoutError
				return errors.As(err, &te) && te.Err == nil && !errors.Is(err, context.DeadlineExceeded)
			}},
		{"wrapped context error after the timeout", func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("query: %w", ctx.Err())
		}, func(err error) bool { return errors.Is(err, ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) }},
		{"own error after the timeout", func(ctx context.Context) error { <-ctx.Done(); return errOwn },
			func(err error) bool { return errors.Is(err, ErrTimeout) && errors.Is(err, errOwn) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				err := Timeout{After: time.Second}.Execute(context.Background(), tt.op)
				if !tt.wantErr(err) {
					t.Errorf("Execute = %#v", err)
				}
			})
		})
	}
}

func TestTimeoutErrorShape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		err := Timeout{After: 2 * time.Second, Name: "db"}.Execute(context.Background(), blockUntilDone)
		if got, want := err.Error(), `policies: timeout "db" after 2s`; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
		var te interface{ Timeout() bool }
		if !errors.As(err, &te) || !te.Timeout() {
			t.Error("the error does not report Timeout() like a net.Error")
		}
		if _, ok := RetryAfter(err); ok {
			t.Error("a timeout carries a RetryAfter")
		}
	})
}

func TestTimeoutCallerEndsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		tm := Timeout{After: time.Hour, Observer: rec}

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := tm.Execute(ctx, blockUntilDone); err != context.DeadlineExceeded {
			t.Errorf("caller's deadline: Execute = %v, want context.DeadlineExceeded unchanged", err)
		}

		ctx2, cancel2 := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel2)
		if err := tm.Execute(ctx2, blockUntilDone); err != context.Canceled {
			t.Errorf("caller's cancel: Execute = %v, want context.Canceled unchanged", err)
		}
		if len(rec.all()) != 0 {
			t.Errorf("the caller ending emitted %q", rec.types())
		}
	})
}

func TestTimeoutEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		_ = Timeout{After: time.Second, Name: "db", Observer: rec}.Execute(context.Background(), blockUntilDone)
		evs := rec.all()
		if len(evs) != 1 {
			t.Fatalf("events %+v, want one", evs)
		}
		e := evs[0]
		if e.Kind != KindTimeout || e.Type != EventTimeout || e.Name != "db" || e.Delay != time.Second || !errors.Is(e.Err, context.DeadlineExceeded) {
			t.Errorf("event %+v", e)
		}
	})
}

func TestTimedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := context.Background()
		tctx, cancel := WithTimeout(parent, time.Second)
		defer cancel()
		if te := TimedOut(parent, tctx, errDown); te != nil {
			t.Errorf("TimedOut before the timeout = %v, want nil", te)
		}
		<-tctx.Done()
		if te := TimedOut(parent, tctx, errDown); te == nil || te.After != time.Second || te.Err != errDown {
			t.Errorf("TimedOut after the timeout = %#v", te)
		}
		// A context not made by WithTimeout is not ours to report.
		plain, cancel2 := context.WithTimeout(parent, time.Second)
		defer cancel2()
		<-plain.Done()
		if te := TimedOut(parent, plain, context.DeadlineExceeded); te != nil {
			t.Errorf("TimedOut for a plain context.WithTimeout = %v, want nil", te)
		}
		// Canceling a WithTimeout context early is not a timeout either.
		early, cancel3 := WithTimeout(parent, time.Hour)
		cancel3()
		if te := TimedOut(parent, early, context.Canceled); te != nil {
			t.Errorf("TimedOut after cancel = %v, want nil", te)
		}
	})
}

func TestTimeoutCauseIsRecognised(t *testing.T) {
	cause := TimeoutCause(time.Millisecond)
	parent := context.Background()
	tctx, cancel := context.WithTimeoutCause(parent, time.Nanosecond, cause)
	defer cancel()
	<-tctx.Done()
	te := TimedOut(parent, tctx, tctx.Err())
	if te == nil || te.After != time.Millisecond || !errors.Is(te, ErrTimeout) || errors.Is(te, context.DeadlineExceeded) {
		t.Fatalf("TimedOut = %#v, want a *TimeoutError after 1ms that is ErrTimeout and not the caller's deadline", te)
	}
}
