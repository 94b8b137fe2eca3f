package policies

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// types lists the events' types, such as "retry retry_stop".
func (r *recorder) types() string {
	var s []string
	for _, e := range r.all() {
		s = append(s, e.Type.String())
	}
	return strings.Join(s, " ")
}

// failing returns an op that fails with errs in turn, then succeeds, and
// counts its calls.
func failing(calls *atomic.Int64, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		n := calls.Add(1)
		if int(n) <= len(errs) {
			return errs[n-1]
		}
		return nil
	}
}

var errDown = errors.New("down")

func TestStopReasonString(t *testing.T) {
	want := map[StopReason]string{
		0:                "",
		StopNotRetryable: "not_retryable",
		StopMaxAttempts:  "max_attempts",
		StopDelayTooLong: "delay_too_long",
		StopDeadline:     "deadline",
		StopBudget:       "budget",
		StopCanceled:     "canceled",
		200:              "unknown",
	}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("StopReason(%d).String() = %q, want %q", r, r.String(), s)
		}
	}
}

func TestRetryValidate(t *testing.T) {
	tests := []struct {
		r    Retry
		want string
	}{
		{Retry{}, ""},
		{Retry{MaxAttempts: 1, MaxDelay: time.Second, Budget: &Budget{}}, ""},
		{Retry{MaxAttempts: -1}, "Retry.MaxAttempts"},
		{Retry{MaxDelay: -time.Second}, "Retry.MaxDelay"},
		{Retry{Budget: &Budget{Ratio: -1}}, "Retry.Budget: policies: Budget.Ratio"},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v.Validate() = %v, want nil", tt.r, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), "policies: "+tt.want)):
			t.Errorf("%+v.Validate() = %v, want an error naming %s", tt.r, err, tt.want)
		}
	}
}

func TestExecuteRejectsInvalidConfig(t *testing.T) {
	var calls atomic.Int64
	err := Retry{MaxAttempts: -1}.Execute(context.Background(), failing(&calls))
	if err == nil || calls.Load() != 0 {
		t.Errorf("Execute with MaxAttempts -1 = %v after %d calls, want a validation error and no call", err, calls.Load())
	}
}

func TestRetryDefaultMaxAttempts(t *testing.T) {
	r := Retry{Backoff: Constant(0)}
	var calls atomic.Int64
	err := r.Execute(context.Background(), failing(&calls, errDown, errDown, errDown, errDown))
	if calls.Load() != 3 || !errors.Is(err, errDown) {
		t.Errorf("zero MaxAttempts: %d calls, err %v; want 3 calls and the last error", calls.Load(), err)
	}
	ctx := context.Background()
	if d := r.Next(ctx, 2, true, 0); !d.Retry {
		t.Errorf("zero MaxAttempts: Next after attempt 2 = %+v, want a retry", d)
	}
	if d := r.Next(ctx, 3, true, 0); d.Retry || d.Reason != StopMaxAttempts {
		t.Errorf("zero MaxAttempts: Next after attempt 3 = %+v, want stop max_attempts", d)
	}
}

func TestRetryMaxAttemptsOneDisablesRetrying(t *testing.T) {
	var calls atomic.Int64
	err := Retry{MaxAttempts: 1}.Execute(context.Background(), failing(&calls, errDown))
	if calls.Load() != 1 || !errors.Is(err, errDown) {
		t.Errorf("MaxAttempts 1: %d calls, err %v; want 1 call and its error", calls.Load(), err)
	}
}

func TestRetryDefaultBackoff(t *testing.T) {
	r := Retry{MaxAttempts: 2000}
	ctx := context.Background()
	var sawLarge bool
	for attempt := 1; attempt < 1000; attempt++ {
		d := r.Next(ctx, attempt, true, 0)
		if !d.Retry || d.Delay < 0 || d.Delay > 10*time.Second {
			t.Fatalf("default backoff after attempt %d: %+v, want a retry within [0, 10s]", attempt, d)
		}
		if attempt == 1 && d.Delay > 100*time.Millisecond {
			t.Fatalf("default backoff after attempt 1: %v, want within [0, 100ms]", d.Delay)
		}
		sawLarge = sawLarge || d.Delay > 5*time.Second
	}
	if !sawLarge {
		t.Error("default backoff never waited over 5s in 1000 attempts; want it to grow to 10s")
	}
	// The default is Exponential(100ms, 10s) with the default jitter.
	if defaultBackoff.Base != 100*time.Millisecond || defaultBackoff.Max != 10*time.Second || defaultBackoff.Rand != nil {
		t.Errorf("defaultBackoff = %+v", defaultBackoff)
	}
}

func TestRetryDefaultMaxDelay(t *testing.T) {
	r := Retry{Backoff: Constant(time.Hour)}
	ctx := context.Background()
	if d := r.Next(ctx, 1, true, 0); !d.Retry || d.Delay != 30*time.Second {
		t.Errorf("backoff 1h, zero MaxDelay: %+v, want a retry clamped to 30s", d)
	}
	r.Backoff = Constant(0)
	if d := r.Next(ctx, 1, true, 30*time.Second); !d.Retry || d.Delay != 30*time.Second {
		t.Errorf("server delay 30s, zero MaxDelay: %+v, want a retry after 30s", d)
	}
	if d := r.Next(ctx, 1, true, 30*time.Second+1); d.Retry || d.Reason != StopDelayTooLong {
		t.Errorf("server delay 30s+1ns, zero MaxDelay: %+v, want stop delay_too_long", d)
	}
}

func TestRetryWaitIsMaxOfBackoffAndServerDelay(t *testing.T) {
	r := Retry{Backoff: Constant(time.Second), MaxDelay: time.Minute}
	ctx := context.Background()
	tests := []struct {
		server, want time.Duration
	}{
		{0, time.Second},
		{-time.Second, time.Second}, // a negative server delay is none
		{500 * time.Millisecond, time.Second},
		{5 * time.Second, 5 * time.Second},
		{time.Minute, time.Minute},
	}
	for _, tt := range tests {
		if d := r.Next(ctx, 1, true, tt.server); !d.Retry || d.Delay != tt.want || d.Reason != 0 {
			t.Errorf("backoff 1s, server delay %v: %+v, want a retry after %v", tt.server, d, tt.want)
		}
	}
}

func TestRetryServerDelayBeyondMaxDelayStops(t *testing.T) {
	r := Retry{MaxAttempts: 10, Backoff: Constant(time.Millisecond), MaxDelay: 5 * time.Second}
	d := r.Next(context.Background(), 1, true, 6*time.Second)
	if d != (RetryDecision{Delay: 6 * time.Second, Reason: StopDelayTooLong}) {
		t.Errorf("server delay 6s, MaxDelay 5s: %+v, want stop delay_too_long at once", d)
	}
	// A backoff alone beyond MaxDelay is clamped, not a reason to stop.
	r.Backoff = Constant(time.Hour)
	if d := r.Next(context.Background(), 1, true, 0); !d.Retry || d.Delay != 5*time.Second {
		t.Errorf("backoff 1h, MaxDelay 5s: %+v, want a retry after 5s", d)
	}
}

func TestRetryStopReasons(t *testing.T) {
	fake := clock.NewFake(time.Now())
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	soon, cancel3 := context.WithDeadline(context.Background(), fake.Now().Add(50*time.Second))
	defer cancel3()
	spent := &Budget{Ratio: 0.01, MinPerSecond: 1, Window: time.Second, Clock: fake}
	spent.AllowRetry()

	base := Retry{MaxAttempts: 3, Backoff: Constant(time.Second), MaxDelay: time.Minute, Clock: fake}
	withBudget := base
	withBudget.Budget = spent
	longBackoff := base
	longBackoff.Backoff = Constant(2 * time.Hour)
	longBackoff.MaxDelay = 3 * time.Hour

	tests := []struct {
		name      string
		r         Retry
		ctx       context.Context
		attempt   int
		retryable bool
		server    time.Duration
		want      StopReason
	}{
		{"not retryable", base, context.Background(), 1, false, 0, StopNotRetryable},
		{"max attempts", base, context.Background(), 3, true, 0, StopMaxAttempts},
		{"beyond max attempts", base, context.Background(), 4, true, 0, StopMaxAttempts},
		{"delay too long", base, context.Background(), 1, true, time.Minute + 1, StopDelayTooLong},
		{"deadline passed", base, expired, 1, true, 0, StopDeadline},
		{"wait past deadline", longBackoff, soon, 1, true, 0, StopDeadline},
		{"server wait past deadline", base, soon, 1, true, 55 * time.Second, StopDeadline},
		{"budget", withBudget, context.Background(), 1, true, 0, StopBudget},
		{"canceled", base, canceled, 1, true, 0, StopCanceled},
		{"canceled beats not retryable", base, canceled, 1, false, 0, StopCanceled},
		{"not retryable beats max attempts", base, context.Background(), 3, false, 0, StopNotRetryable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.r.Next(tt.ctx, tt.attempt, tt.retryable, tt.server)
			if d.Retry || d.Reason != tt.want {
				t.Errorf("Next = %+v, want stop %q", d, tt.want)
			}
		})
	}
}

func TestRetryNeverPlansPastDeadline(t *testing.T) {
	fake := clock.NewFake(time.Now())
	ctx, cancel := context.WithDeadline(context.Background(), fake.Now().Add(time.Hour))
	defer cancel()
	r := Retry{MaxAttempts: 10, Backoff: Constant(time.Hour - 1), MaxDelay: 2 * time.Hour, Clock: fake}
	if d := r.Next(ctx, 1, true, 0); !d.Retry || d.Delay != time.Hour-1 {
		t.Errorf("wait ending 1ns before the deadline: %+v, want a retry", d)
	}
	r.Backoff = Constant(time.Hour)
	if d := r.Next(ctx, 1, true, 0); d.Retry || d.Reason != StopDeadline {
		t.Errorf("wait ending at the deadline: %+v, want stop deadline", d)
	}
	// As time passes the same wait no longer fits.
	r.Backoff = Constant(30 * time.Minute)
	fake.Advance(29*time.Minute + 59*time.Second)
	if d := r.Next(ctx, 1, true, 0); !d.Retry {
		t.Errorf("30m wait with 31m left: %+v, want a retry", d)
	}
	fake.Advance(2 * time.Second)
	if d := r.Next(ctx, 1, true, 0); d.Retry || d.Reason != StopDeadline {
		t.Errorf("30m wait with 29m59s left: %+v, want stop deadline", d)
	}
	// Random backoff: no planned wait ever outlives the deadline.
	deadline, _ := ctx.Deadline()
	r.Backoff = Exponential(time.Minute, 2*time.Hour)
	for attempt := 1; attempt < 9; attempt++ {
		for range 200 {
			d := r.Next(ctx, attempt, true, 0)
			if d.Retry && !fake.Now().Add(d.Delay).Before(deadline) {
				t.Fatalf("attempt %d: planned %v, past the deadline", attempt, d.Delay)
			}
		}
	}
}

func TestRetryBudgetConsultedLast(t *testing.T) {
	fake := clock.NewFake(epoch)
	b := &Budget{Ratio: 0.01, MinPerSecond: 2, Window: time.Second, Clock: fake}
	r := Retry{MaxAttempts: 3, Backoff: Constant(0), MaxDelay: time.Second, Budget: b}
	ctx := context.Background()
	// Stops decided before the budget do not spend it.
	r.Next(ctx, 1, false, 0)
	r.Next(ctx, 3, true, 0)
	r.Next(ctx, 1, true, time.Hour)
	if got := allowN(b, 10); got != 2 {
		t.Fatalf("budget allowed %d retries after three stops, want its 2 untouched", got)
	}
	fake.Advance(time.Second)
	if d := r.Next(ctx, 1, true, 0); !d.Retry {
		t.Fatalf("budget with room: %+v, want a retry", d)
	}
	if d := r.Next(ctx, 1, true, 0); !d.Retry {
		t.Fatalf("budget with room: %+v, want a retry", d)
	}
	if d := r.Next(ctx, 1, true, 0); d != (RetryDecision{Reason: StopBudget}) {
		t.Fatalf("budget spent: %+v, want stop budget", d)
	}
}

func TestExecuteUsesBudget(t *testing.T) {
	fake := clock.NewFake(epoch)
	b := &Budget{Ratio: 0.5, MinPerSecond: 1, Window: time.Second, Clock: fake}
	rec := &recorder{}
	r := Retry{MaxAttempts: 10, Backoff: Constant(0), Budget: b, Observer: rec, Name: "api"}
	var calls atomic.Int64
	// One call: 1 request earns 0.5, the floor 1: one retry.
	err := r.Execute(context.Background(), failing(&calls, errDown, errDown, errDown))
	if calls.Load() != 2 || !errors.Is(err, errDown) || errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("%d calls, err %v; want 2 calls and the last op error", calls.Load(), err)
	}
	if got := rec.types(); got != "retry budget_exhausted retry_stop" {
		t.Fatalf("events %q", got)
	}
	evs := rec.all()
	if e := evs[1]; e.Kind != KindRetry || e.Name != "api" || e.Attempt != 2 || e.Err != ErrBudgetExhausted {
		t.Errorf("budget event %+v", e)
	}
	if e := evs[2]; e.Attempt != 2 || e.Err != ErrBudgetExhausted {
		t.Errorf("stop event %+v, want Err ErrBudgetExhausted", e)
	}
	// A second call records one more request: with 2 requests (1 retry
	// earned) + 1 floor and 1 retry spent, one more fits.
	calls.Store(0)
	_ = r.Execute(context.Background(), failing(&calls, errDown, errDown, errDown))
	if calls.Load() != 2 {
		t.Errorf("second call made %d attempts, want 2", calls.Load())
	}
}

func TestRetryEvents(t *testing.T) {
	rec := &recorder{}
	r := Retry{MaxAttempts: 3, Backoff: Constant(time.Millisecond), Name: "db", Observer: rec}
	var calls atomic.Int64
	e1, e2, e3 := errors.New("e1"), errors.New("e2"), errors.New("e3")
	err := r.Execute(context.Background(), failing(&calls, e1, e2, e3))
	if err != e3 {
		t.Fatalf("Execute = %v, want the last error e3", err)
	}
	want := []Event{
		{Kind: KindRetry, Name: "db", Type: EventRetry, Attempt: 1, Delay: time.Millisecond, Err: e1},
		{Kind: KindRetry, Name: "db", Type: EventRetry, Attempt: 2, Delay: time.Millisecond, Err: e2},
		{Kind: KindRetry, Name: "db", Type: EventRetryStop, Attempt: 3, Err: e3, Reason: StopMaxAttempts},
	}
	got := rec.all()
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Next reports no cause; NextErr reports its own.
	rec.events = nil
	r.Next(context.Background(), 1, true, 0)
	r.NextErr(context.Background(), 3, e1, true, 0)
	got = rec.all()
	if len(got) != 2 || got[0].Type != EventRetry || got[0].Err != nil || got[1].Type != EventRetryStop || got[1].Err != e1 {
		t.Errorf("events %+v", got)
	}
}

func TestRetryPermanentNotRetried(t *testing.T) {
	var calls atomic.Int64
	var asked atomic.Bool
	r := Retry{MaxAttempts: 5, Backoff: Constant(0), Retryable: func(error) bool { asked.Store(true); return true }}
	err := r.Execute(context.Background(), failing(&calls, Permanent(errDown)))
	if calls.Load() != 1 || !errors.Is(err, errDown) || !IsPermanent(err) {
		t.Errorf("%d calls, err %v; want one call and the permanent error", calls.Load(), err)
	}
	if asked.Load() {
		t.Error("Retryable was asked about a permanent error")
	}
}

func TestRetryRetryable(t *testing.T) {
	errTransient := errors.New("transient")
	r := Retry{MaxAttempts: 5, Backoff: Constant(0), Retryable: func(err error) bool { return errors.Is(err, errTransient) }}
	var calls atomic.Int64
	err := r.Execute(context.Background(), failing(&calls, errTransient, errTransient, errDown, errTransient))
	if calls.Load() != 3 || err != errDown {
		t.Errorf("%d calls, err %v; want 3 calls ending with the error Retryable rejects", calls.Load(), err)
	}
}

func TestRetryCallerCancellationNotRetried(t *testing.T) {
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	// Even a Retryable that says yes to everything cannot retry it.
	r := Retry{MaxAttempts: 5, Backoff: Constant(0), Observer: rec, Retryable: func(error) bool { return true }}
	err := r.Execute(ctx, func(ctx context.Context) error {
		calls.Add(1)
		cancel()
		return ctx.Err()
	})
	if calls.Load() != 1 || !errors.Is(err, context.Canceled) {
		t.Errorf("%d calls, err %v; want one call and context.Canceled", calls.Load(), err)
	}
	if got := rec.types(); got != "retry_stop" {
		t.Errorf("events %q, want one retry_stop", got)
	}
}

func TestRetryRejectionWaitIsServerDelay(t *testing.T) {
	rec := &recorder{}
	rejected := &RejectedError{Kind: KindBreaker, Wait: 2 * time.Second, Err: ErrCircuitOpen}
	fake := clock.NewFake(epoch)
	r := Retry{MaxAttempts: 2, Backoff: Constant(time.Millisecond), MaxDelay: 5 * time.Second, Observer: rec, Clock: fake}
	var calls atomic.Int64
	done := make(chan error, 1)
	go func() { done <- r.Execute(context.Background(), failing(&calls, rejected)) }()
	if err := fake.BlockUntil(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if e := rec.all()[0]; e.Type != EventRetry || e.Delay != 2*time.Second {
		t.Fatalf("event %+v, want a retry after the rejection's 2s", e)
	}
	fake.Advance(2 * time.Second)
	if err := <-done; err != nil || calls.Load() != 2 {
		t.Fatalf("Execute = %v after %d calls, want nil after 2", err, calls.Load())
	}

	// A rejection that asks for longer than MaxDelay ends at once.
	calls.Store(0)
	long := &RejectedError{Kind: KindRateLimit, Wait: time.Minute, Err: ErrRateLimited}
	err := r.Execute(context.Background(), failing(&calls, long))
	if calls.Load() != 1 || !errors.Is(err, ErrRateLimited) {
		t.Errorf("%d calls, err %v; want 1 call and the rejection", calls.Load(), err)
	}
}

func TestExecuteSleepsOnClock(t *testing.T) {
	fake := clock.NewFake(epoch)
	r := Retry{MaxAttempts: 3, Backoff: Constant(time.Second), Clock: fake}
	var calls atomic.Int64
	done := make(chan error, 1)
	go func() { done <- r.Execute(context.Background(), failing(&calls, errDown, errDown)) }()

	for want := int64(1); want <= 2; want++ {
		if err := fake.BlockUntil(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != want {
			t.Fatalf("%d calls while sleeping, want %d", calls.Load(), want)
		}
		fake.Advance(999 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("Execute returned %v before its wait ended", err)
		default:
		}
		if calls.Load() != want {
			t.Fatalf("attempt %d started before its wait ended", want+1)
		}
		fake.Advance(time.Millisecond)
	}
	if err := <-done; err != nil || calls.Load() != 3 {
		t.Errorf("Execute = %v after %d calls, want nil after 3", err, calls.Load())
	}
}

func TestExecuteWaitCutByCaller(t *testing.T) {
	fake := clock.NewFake(epoch)
	rec := &recorder{}
	r := Retry{MaxAttempts: 3, Backoff: Constant(time.Minute), Clock: fake, Observer: rec}
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	done := make(chan error, 1)
	go func() { done <- r.Execute(ctx, failing(&calls, errDown, errDown)) }()
	if err := fake.BlockUntil(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := <-done
	if calls.Load() != 1 || !errors.Is(err, errDown) || !errors.Is(err, context.Canceled) {
		t.Errorf("%d calls, err %v; want 1 call and an error matching both the last error and context.Canceled", calls.Load(), err)
	}
	if got := rec.types(); got != "retry retry_stop" {
		t.Errorf("events %q", got)
	}
}

func TestNextAllocs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	r := Retry{MaxAttempts: 5, Budget: &Budget{Ratio: 1}}
	r.Budget.Request()
	cause := errors.New("boom")
	allocs := testing.AllocsPerRun(1000, func() {
		r.Budget.Request()
		r.Next(ctx, 2, true, time.Second)
		r.NextErr(ctx, 5, cause, true, 0)
		r.Next(context.Background(), 1, true, 0)
	})
	if allocs != 0 {
		t.Errorf("Next allocated %v times per run, want 0", allocs)
	}
}

func BenchmarkRetryNext(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.Run("default", func(b *testing.B) {
		r := Retry{}
		b.ReportAllocs()
		for b.Loop() {
			r.Next(ctx, 1, true, 0)
		}
	})
	b.Run("budget", func(b *testing.B) {
		r := Retry{Budget: &Budget{Ratio: 1}}
		b.ReportAllocs()
		for b.Loop() {
			r.Budget.Request()
			r.Next(ctx, 1, true, 0)
		}
	})
}
