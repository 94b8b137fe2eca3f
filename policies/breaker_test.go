package policies

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

var cbStart = time.Unix(1_700_000_000, 0)

var cbErrBoom = errors.New("boom")

// cbEvents records events; safe for concurrent use.
type cbEvents struct {
	mu  sync.Mutex
	evs []Event
	ch  chan Event // when set, every state change is sent on it too
}

func (r *cbEvents) Observe(e Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
	if r.ch != nil && e.Type == EventStateChange {
		r.ch <- e
	}
}

func (r *cbEvents) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

// cbTransitions returns the state changes as "from->to" strings.
func (r *cbEvents) transitions() []string {
	var out []string
	for _, e := range r.all() {
		if e.Type == EventStateChange {
			out = append(out, e.From.String()+"->"+e.To.String())
		}
	}
	return out
}

func cbNew(t *testing.T, b Breaker) (*Circuit, *clock.Fake) {
	t.Helper()
	fake := clock.NewFake(cbStart)
	b.Clock = fake
	return NewCircuit(b), fake
}

func cbRecord(t *testing.T, c *Circuit, o Outcome) {
	t.Helper()
	tk, err := c.Allow()
	if err != nil {
		t.Fatalf("Allow() = %v, want admitted (state %v)", err, c.State())
	}
	tk.Record(o)
}

func cbWantState(t *testing.T, c *Circuit, want State) {
	t.Helper()
	if got := c.State(); got != want {
		t.Fatalf("State() = %v, want %v", got, want)
	}
}

// cbWantRejected asserts Allow rejects with ErrCircuitOpen and the given wait.
func cbWantRejected(t *testing.T, c *Circuit, wait time.Duration) {
	t.Helper()
	tk, err := c.Allow()
	if err == nil {
		tk.Record(OutcomeIgnore)
		t.Fatalf("Allow() admitted in state %v, want rejection", c.State())
	}
	if !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Allow() error = %v, want ErrCircuitOpen", err)
	}
	var re *RejectedError
	if !errors.As(err, &re) || re.Kind != KindBreaker || re.Wait != wait {
		t.Fatalf("Allow() error = %#v, want *RejectedError{Kind: breaker, Wait: %v}", err, wait)
	}
}

// cbTrip opens a closed consecutive-mode circuit with n failures.
func cbTrip(t *testing.T, c *Circuit, n int) {
	t.Helper()
	for range n {
		cbRecord(t, c, OutcomeFailure)
	}
	cbWantState(t, c, StateOpen)
}

func TestBreakerDefaults(t *testing.T) {
	c, fake := cbNew(t, Breaker{})
	// Failures: 0 means 5.
	for range 4 {
		cbRecord(t, c, OutcomeFailure)
	}
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateOpen)
	// OpenFor: 0 means 5s.
	cbWantRejected(t, c, 5*time.Second)
	fake.Advance(5 * time.Second)
	// HalfOpenProbes: 0 means 1.
	probe, err := c.Allow()
	if err != nil {
		t.Fatalf("Allow() after cool-down = %v, want a probe", err)
	}
	cbWantState(t, c, StateHalfOpen)
	cbWantRejected(t, c, 0)
	// MaxOpenFor: 0 means 2m; the cool-down doubles from 5s.
	probe.Record(OutcomeFailure)
	for _, want := range []time.Duration{10, 20, 40, 80, 120, 120} {
		want *= time.Second
		cbWantRejected(t, c, want)
		fake.Advance(want)
		cbRecord(t, c, OutcomeFailure)
	}
	if c.Name() != "" {
		t.Errorf("Name() = %q, want empty", c.Name())
	}
}

func TestBreakerResolveDefaults(t *testing.T) {
	for _, tc := range []struct {
		name        string
		b           Breaker
		openFor     time.Duration
		maxOpenFor  time.Duration
		failures    uint64
		probes      int
		window      time.Duration
		minCalls    int
		realIsClock bool
	}{
		{"zero", Breaker{}, 5 * time.Second, 2 * time.Minute, 5, 1, 10 * time.Second, 10, true},
		{"long OpenFor raises the cap", Breaker{OpenFor: 5 * time.Minute}, 5 * time.Minute, 5 * time.Minute, 5, 1, 10 * time.Second, 10, true},
		{"short MaxOpenFor lowers OpenFor", Breaker{MaxOpenFor: time.Second}, time.Second, time.Second, 5, 1, 10 * time.Second, 10, true},
		{"explicit", Breaker{Failures: 3, OpenFor: time.Second, MaxOpenFor: time.Minute, HalfOpenProbes: 4, Window: time.Minute, MinCalls: 20},
			time.Second, time.Minute, 3, 4, time.Minute, 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cbResolve(tc.b)
			if cfg.openFor != tc.openFor || cfg.maxOpenFor != tc.maxOpenFor || cfg.failures != tc.failures ||
				cfg.probes != tc.probes || cfg.window != tc.window || cfg.minCalls != tc.minCalls {
				t.Errorf("cbResolve(%+v) = %+v", tc.b, cfg)
			}
			if cfg.clock == nil {
				t.Error("clock is nil, want the real clock")
			}
		})
	}
}

func TestBreakerValidate(t *testing.T) {
	for _, tc := range []struct {
		b    Breaker
		want string
	}{
		{Breaker{Failures: -1}, "policies: Breaker.Failures must be >= 0, got -1"},
		{Breaker{OpenFor: -time.Second}, "policies: Breaker.OpenFor must be >= 0, got -1s"},
		{Breaker{MaxOpenFor: -time.Second}, "policies: Breaker.MaxOpenFor must be >= 0, got -1s"},
		{Breaker{OpenFor: time.Minute, MaxOpenFor: time.Second}, "policies: Breaker.MaxOpenFor must be >= OpenFor (1m0s), got 1s"},
		{Breaker{HalfOpenProbes: -2}, "policies: Breaker.HalfOpenProbes must be >= 0, got -2"},
		{Breaker{FailureRatio: -0.1}, "policies: Breaker.FailureRatio must be in [0, 1], got -0.1"},
		{Breaker{FailureRatio: 1.5}, "policies: Breaker.FailureRatio must be in [0, 1], got 1.5"},
		{Breaker{FailureRatio: cbNaN()}, "policies: Breaker.FailureRatio must be in [0, 1], got NaN"},
		{Breaker{Window: -time.Millisecond}, "policies: Breaker.Window must be >= 0, got -1ms"},
		{Breaker{MinCalls: -3}, "policies: Breaker.MinCalls must be >= 0, got -3"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			err := tc.b.Validate()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			func() {
				defer func() {
					r := recover()
					if msg, ok := r.(string); !ok || msg != tc.want {
						t.Errorf("NewCircuit panicked with %v, want %q", r, tc.want)
					}
				}()
				NewCircuit(tc.b)
			}()
			c := NewCircuit(Breaker{Name: "keep"})
			if err := c.Reconfigure(tc.b); err == nil || err.Error() != tc.want {
				t.Errorf("Reconfigure() = %v, want %q", err, tc.want)
			}
			if c.Name() != "keep" {
				t.Errorf("an invalid Reconfigure changed the configuration")
			}
		})
	}
	for _, b := range []Breaker{{}, {OpenFor: time.Second, MaxOpenFor: time.Second}, {FailureRatio: 1}, {MaxOpenFor: time.Millisecond}} {
		if err := b.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", b, err)
		}
	}
}

func cbNaN() float64 {
	zero := 0.0
	return zero / zero
}

func TestBreakerClosedToOpen(t *testing.T) {
	rec := &cbEvents{}
	c, _ := cbNew(t, Breaker{Failures: 3, OpenFor: time.Second, Name: "db", Observer: rec})
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeSuccess) // resets the count
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeIgnore) // neither counts nor resets
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateOpen)

	_, err := c.Allow()
	var re *RejectedError
	if !errors.As(err, &re) || re.Name != "db" || re.Kind != KindBreaker || re.Wait != time.Second {
		t.Fatalf("Allow() = %#v, want a RejectedError named db waiting 1s", err)
	}
	if got, want := err.Error(), "policies: circuit breaker is open (db): retry after 1s"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	evs := rec.all()
	if len(evs) != 2 {
		t.Fatalf("events = %+v, want a state change and a reject", evs)
	}
	want0 := Event{Kind: KindBreaker, Name: "db", Type: EventStateChange, From: StateClosed, To: StateOpen, Delay: time.Second}
	want1 := Event{Kind: KindBreaker, Name: "db", Type: EventReject, Delay: time.Second, Err: ErrCircuitOpen}
	if evs[0] != want0 || evs[1] != want1 {
		t.Errorf("events = %+v, want %+v then %+v", evs, want0, want1)
	}
}

func TestBreakerOpenToHalfOpenAfterCoolDown(t *testing.T) {
	c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: 10 * time.Second})
	cbTrip(t, c, 1)
	cbWantRejected(t, c, 10*time.Second)
	fake.Advance(4 * time.Second)
	cbWantRejected(t, c, 6*time.Second)
	fake.Advance(6*time.Second - 1)
	cbWantRejected(t, c, 1)
	cbWantState(t, c, StateOpen)
	fake.Advance(1)
	// Lazy: still open until someone asks.
	cbWantState(t, c, StateOpen)
	tk, err := c.Allow()
	if err != nil {
		t.Fatalf("Allow() after the cool-down = %v, want a probe", err)
	}
	cbWantState(t, c, StateHalfOpen)
	tk.Record(OutcomeSuccess)
	cbWantState(t, c, StateClosed)
}

func TestBreakerHalfOpenToClosed(t *testing.T) {
	rec := &cbEvents{}
	c, fake := cbNew(t, Breaker{Failures: 2, OpenFor: time.Second, Observer: rec})
	cbTrip(t, c, 2)
	fake.Advance(time.Second)
	cbRecord(t, c, OutcomeSuccess)
	cbWantState(t, c, StateClosed)
	// The failure count starts afresh.
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateOpen)
	want := []string{"closed->open", "open->half-open", "half-open->closed", "closed->open"}
	if got := rec.transitions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("transitions = %v, want %v", got, want)
	}
}

func TestBreakerFailedProbeDoublesCoolDown(t *testing.T) {
	c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: time.Second, MaxOpenFor: 5 * time.Second})
	cbTrip(t, c, 1)
	for _, want := range []time.Duration{1, 2, 4, 5, 5} {
		want *= time.Second
		cbWantRejected(t, c, want)
		fake.Advance(want - 1)
		cbWantRejected(t, c, 1)
		fake.Advance(1)
		cbRecord(t, c, OutcomeFailure) // the probe fails
		cbWantState(t, c, StateOpen)
	}
	// A successful probe closes; the next opening is back to OpenFor.
	fake.Advance(5 * time.Second)
	cbRecord(t, c, OutcomeSuccess)
	cbWantState(t, c, StateClosed)
	cbTrip(t, c, 1)
	cbWantRejected(t, c, time.Second)
}

func TestBreakerProbeLimitConcurrent(t *testing.T) {
	c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: time.Second, HalfOpenProbes: 2})
	cbTrip(t, c, 1)
	fake.Advance(time.Second)

	const n = 50
	var (
		admitted, rejected atomic.Int32
		wg                 sync.WaitGroup
		start              = make(chan struct{})
		tickets            = make(chan Ticket, n)
	)
	for range n {
		wg.Go(func() {
			<-start
			tk, err := c.Allow()
			if err != nil {
				if !errors.Is(err, ErrCircuitOpen) {
					t.Errorf("Allow() = %v, want ErrCircuitOpen", err)
				}
				rejected.Add(1)
				return
			}
			admitted.Add(1)
			tickets <- tk
		})
	}
	close(start)
	wg.Wait()
	close(tickets)
	if admitted.Load() != 2 || rejected.Load() != n-2 {
		t.Fatalf("admitted %d, rejected %d; want 2 and %d", admitted.Load(), rejected.Load(), n-2)
	}
	cbWantState(t, c, StateHalfOpen)
	for tk := range tickets {
		tk.Record(OutcomeSuccess)
	}
	cbWantState(t, c, StateClosed)
}

func TestBreakerFirstProbeDecides(t *testing.T) {
	c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: time.Second, HalfOpenProbes: 2})
	cbTrip(t, c, 1)
	fake.Advance(time.Second)
	p1, _ := c.Allow()
	p2, _ := c.Allow()
	p1.Record(OutcomeFailure)
	cbWantState(t, c, StateOpen)
	// p2 belongs to the old half-open generation: its success is ignored.
	p2.Record(OutcomeSuccess)
	cbWantState(t, c, StateOpen)
	cbWantRejected(t, c, 2*time.Second)
}

func TestBreakerIgnoreReleasesProbeSlot(t *testing.T) {
	c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: time.Second, HalfOpenProbes: 2})
	cbTrip(t, c, 1)
	fake.Advance(time.Second)
	p1, err1 := c.Allow()
	p2, err2 := c.Allow()
	if err1 != nil || err2 != nil {
		t.Fatalf("Allow() = %v, %v; want two probes", err1, err2)
	}
	cbWantRejected(t, c, 0)

	p1.Record(OutcomeIgnore)
	cbWantState(t, c, StateHalfOpen)
	// A ticket records once: a second Ignore frees no second slot.
	p1.Record(OutcomeIgnore)
	p1.Record(OutcomeFailure)
	cbWantState(t, c, StateHalfOpen)
	p3, err := c.Allow()
	if err != nil {
		t.Fatalf("Allow() after Ignore = %v, want the freed slot", err)
	}
	cbWantRejected(t, c, 0)

	p3.Record(OutcomeIgnore)
	p2.Record(OutcomeIgnore)
	cbWantState(t, c, StateHalfOpen)
	cbRecord(t, c, OutcomeSuccess)
	cbWantState(t, c, StateClosed)
}

func TestBreakerGenerationGuard(t *testing.T) {
	c, fake := cbNew(t, Breaker{Failures: 3, OpenFor: time.Second})
	slow, _ := c.Allow() // admitted while closed
	slowOK, _ := c.Allow()
	cbTrip(t, c, 3)
	fake.Advance(time.Second)
	probe, err := c.Allow()
	if err != nil {
		t.Fatalf("Allow() = %v, want a probe", err)
	}
	// The slow call fails now: it must not count as the probe's failure.
	slow.Record(OutcomeFailure)
	cbWantState(t, c, StateHalfOpen)
	cbWantRejected(t, c, 0) // the probe still holds the only slot
	probe.Record(OutcomeSuccess)
	cbWantState(t, c, StateClosed)

	// Nor does an old success reset the new generation's failure count.
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeFailure)
	slowOK.Record(OutcomeSuccess)
	slow.Record(OutcomeFailure)
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateOpen)

	// The zero Ticket records nothing.
	Ticket{}.Record(OutcomeFailure)
}

func TestBreakerRatioMode(t *testing.T) {
	c, _ := cbNew(t, Breaker{FailureRatio: 0.5, MinCalls: 4, Window: 10 * time.Second, Failures: 1})
	// Failures is ignored in ratio mode; under MinCalls nothing opens.
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateClosed)
	// A success never opens, even when it brings the calls to MinCalls.
	cbRecord(t, c, OutcomeSuccess)
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeIgnore) // not a call
	cbRecord(t, c, OutcomeSuccess)
	cbRecord(t, c, OutcomeSuccess)
	// 3 of 6; the next failure makes 4 of 7 >= 0.5.
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateOpen)
}

func TestBreakerRatioBelowThreshold(t *testing.T) {
	c, _ := cbNew(t, Breaker{FailureRatio: 0.5, MinCalls: 4})
	for range 20 {
		cbRecord(t, c, OutcomeSuccess)
		cbRecord(t, c, OutcomeSuccess)
		cbRecord(t, c, OutcomeFailure)
	}
	cbWantState(t, c, StateClosed)
}

func TestBreakerRatioWindowSlides(t *testing.T) {
	c, fake := cbNew(t, Breaker{FailureRatio: 1, MinCalls: 4, Window: 10 * time.Second})
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeFailure)
	fake.Advance(9 * time.Second)
	cbRecord(t, c, OutcomeFailure) // 3 in window
	fake.Advance(time.Second)
	// The first two left the window (10 buckets of 1s): 2 in window.
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeFailure) // 4 in window
	cbWantState(t, c, StateOpen)
}

func TestBreakerRatioDefaults(t *testing.T) {
	c, fake := cbNew(t, Breaker{FailureRatio: 0.5})
	// MinCalls: 0 means 10.
	for range 9 {
		cbRecord(t, c, OutcomeFailure)
	}
	cbWantState(t, c, StateClosed)
	// Window: 0 means 10s; calls older than that are gone.
	fake.Advance(10 * time.Second)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateClosed)
	for range 8 {
		cbRecord(t, c, OutcomeFailure)
	}
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateOpen)
}

func TestBreakerRatioWindowEmptiedOnClose(t *testing.T) {
	c, fake := cbNew(t, Breaker{FailureRatio: 0.5, MinCalls: 2, OpenFor: time.Second})
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeFailure)
	cbWantState(t, c, StateOpen)
	fake.Advance(time.Second)
	cbRecord(t, c, OutcomeSuccess) // probe closes
	cbRecord(t, c, OutcomeFailure) // 1 call in window: under MinCalls
	cbWantState(t, c, StateClosed)
}

func TestBreakerHealthCheck(t *testing.T) {
	rec := &cbEvents{ch: make(chan Event, 10)}
	var calls atomic.Int32
	started := make(chan struct{})
	answer := make(chan error)
	hc := func(ctx context.Context) error {
		calls.Add(1)
		started <- struct{}{}
		return <-answer
	}
	c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: time.Second, HealthCheck: hc, Observer: rec})
	cbTrip(t, c, 1)
	<-rec.ch // closed->open

	// The cool-down ends: the first Allow starts the check and is rejected.
	fake.Advance(time.Second)
	cbWantRejected(t, c, 0)
	<-started
	if e := <-rec.ch; e.To != StateHalfOpen {
		t.Fatalf("event %+v, want open->half-open", e)
	}
	// Live traffic is rejected while the check runs; no second check starts.
	cbWantRejected(t, c, 0)
	cbWantRejected(t, c, 0)

	// A failed check opens again with a doubled cool-down.
	answer <- cbErrBoom
	if e := <-rec.ch; e.To != StateOpen || e.Delay != 2*time.Second {
		t.Fatalf("event %+v, want half-open->open for 2s", e)
	}
	cbWantRejected(t, c, 2*time.Second)

	// A successful check closes.
	fake.Advance(2 * time.Second)
	cbWantRejected(t, c, 0)
	<-started
	<-rec.ch // open->half-open
	answer <- nil
	if e := <-rec.ch; e.To != StateClosed {
		t.Fatalf("event %+v, want half-open->closed", e)
	}
	cbWantState(t, c, StateClosed)
	cbRecord(t, c, OutcomeSuccess)
	if n := calls.Load(); n != 2 {
		t.Errorf("HealthCheck called %d times, want 2", n)
	}
	// The cool-down is back to OpenFor.
	cbTrip(t, c, 1)
	<-rec.ch
	cbWantRejected(t, c, time.Second)
}

func TestBreakerHealthCheckBoundedByOpenFor(t *testing.T) {
	rec := &cbEvents{ch: make(chan Event, 10)}
	hc := func(ctx context.Context) error {
		<-ctx.Done()
		return context.Cause(ctx)
	}
	c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: time.Second, HealthCheck: hc, Observer: rec})
	cbTrip(t, c, 1)
	<-rec.ch
	fake.Advance(time.Second)
	cbWantRejected(t, c, 0)
	<-rec.ch // open->half-open
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("the health check armed no timer: %v", err)
	}
	fake.Advance(time.Second)
	if e := <-rec.ch; e.From != StateHalfOpen || e.To != StateOpen {
		t.Fatalf("event %+v, want half-open->open", e)
	}
}

func TestBreakerExecute(t *testing.T) {
	ctx := context.Background()
	t.Run("success and failure", func(t *testing.T) {
		c, _ := cbNew(t, Breaker{Failures: 2})
		calls := 0
		op := func(err error) func(context.Context) error {
			return func(context.Context) error { calls++; return err }
		}
		if err := c.Execute(ctx, op(nil)); err != nil {
			t.Fatalf("Execute = %v", err)
		}
		if err := c.Execute(ctx, op(cbErrBoom)); err != cbErrBoom {
			t.Fatalf("Execute = %v, want op's error unchanged", err)
		}
		cbWantState(t, c, StateClosed)
		_ = c.Execute(ctx, op(cbErrBoom))
		cbWantState(t, c, StateOpen)
		err := c.Execute(ctx, op(nil))
		if !errors.Is(err, ErrCircuitOpen) || calls != 3 {
			t.Fatalf("Execute on open = %v after %d calls, want ErrCircuitOpen without calling op", err, calls)
		}
	})
	t.Run("caller cancellation is not a failure", func(t *testing.T) {
		c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: time.Second})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := c.Execute(cctx, func(ctx context.Context) error { return ctx.Err() })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Execute = %v, want context.Canceled", err)
		}
		cbWantState(t, c, StateClosed)
		// Nor does it decide a probe; it frees the slot.
		cbTrip(t, c, 1)
		fake.Advance(time.Second)
		_ = c.Execute(cctx, func(ctx context.Context) error { return ctx.Err() })
		cbWantState(t, c, StateHalfOpen)
		if err := c.Execute(ctx, func(context.Context) error { return nil }); err != nil {
			t.Fatalf("Execute = %v, want the freed probe slot", err)
		}
		cbWantState(t, c, StateClosed)
	})
	t.Run("IsFailure", func(t *testing.T) {
		errNotFound := errors.New("not found")
		c, _ := cbNew(t, Breaker{Failures: 2, IsFailure: func(err error) bool { return !errors.Is(err, errNotFound) }})
		_ = c.Execute(ctx, func(context.Context) error { return cbErrBoom })
		// A non-failure error counts as a success: it resets the count.
		if err := c.Execute(ctx, func(context.Context) error { return errNotFound }); err != errNotFound {
			t.Fatalf("Execute = %v, want errNotFound", err)
		}
		_ = c.Execute(ctx, func(context.Context) error { return cbErrBoom })
		cbWantState(t, c, StateClosed)
		_ = c.Execute(ctx, func(context.Context) error { return cbErrBoom })
		cbWantState(t, c, StateOpen)
	})
	t.Run("panic is a failure", func(t *testing.T) {
		c, _ := cbNew(t, Breaker{Failures: 1})
		func() {
			defer func() {
				if r := recover(); r != "kaboom" {
					t.Errorf("recovered %v, want the op's panic", r)
				}
			}()
			_ = c.Execute(ctx, func(context.Context) error { panic("kaboom") })
		}()
		cbWantState(t, c, StateOpen)
	})
	t.Run("Do", func(t *testing.T) {
		c, _ := cbNew(t, Breaker{Failures: 1})
		r := Do(ctx, func(context.Context) (int, error) { return 0, cbErrBoom }, c)
		if r.Err() != cbErrBoom {
			t.Fatalf("Do = %v", r)
		}
		r = Do(ctx, func(context.Context) (int, error) { return 1, nil }, c)
		if !errors.Is(r.Err(), ErrCircuitOpen) {
			t.Fatalf("Do = %v, want ErrCircuitOpen", r)
		}
	})
}

func TestBreakerRetryAfter(t *testing.T) {
	c, fake := cbNew(t, Breaker{Failures: 1, OpenFor: 5 * time.Second})
	cbTrip(t, c, 1)
	fake.Advance(2 * time.Second)
	err := c.Execute(context.Background(), func(context.Context) error { return nil })
	if d, ok := RetryAfter(fmt.Errorf("wrapped: %w", err)); !ok || d != 3*time.Second {
		t.Fatalf("RetryAfter = %v, %v; want 3s, true", d, ok)
	}
	// Half-open with no free slot asks for no particular wait.
	fake.Advance(3 * time.Second)
	probe, _ := c.Allow()
	_, err = c.Allow()
	if d, ok := RetryAfter(err); ok || !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("RetryAfter(%v) = %v, %v; want none", err, d, ok)
	}
	probe.Record(OutcomeSuccess)
}

func TestBreakerEventsOrder(t *testing.T) {
	rec := &cbEvents{}
	c, fake := cbNew(t, Breaker{Name: "api", Failures: 1, OpenFor: time.Second, Observer: rec})
	cbTrip(t, c, 1)
	cbWantRejected(t, c, time.Second)
	fake.Advance(time.Second)
	probe, _ := c.Allow()
	cbWantRejected(t, c, 0)
	probe.Record(OutcomeFailure)
	fake.Advance(2 * time.Second)
	cbRecord(t, c, OutcomeSuccess)

	var got []string
	for _, e := range rec.all() {
		if e.Kind != KindBreaker || e.Name != "api" {
			t.Errorf("event %+v lacks kind or name", e)
		}
		switch e.Type {
		case EventStateChange:
			got = append(got, fmt.Sprintf("%v->%v", e.From, e.To))
		case EventReject:
			got = append(got, fmt.Sprintf("reject %v", e.Delay))
		}
	}
	want := "[closed->open reject 1s open->half-open reject 0s half-open->open open->half-open half-open->closed]"
	if fmt.Sprint(got) != want {
		t.Errorf("events = %v\nwant       %v", got, want)
	}
}

func TestBreakerObserverMayReadState(t *testing.T) {
	var c *Circuit
	var seen []string
	obs := ObserverFunc(func(e Event) {
		// Runs outside the circuit's lock: reading and using it is safe.
		seen = append(seen, fmt.Sprintf("%v:%v", e.Type, c.State()))
		if e.Type == EventStateChange && e.To == StateOpen {
			_, _ = c.Allow()
		}
	})
	fake := clock.NewFake(cbStart)
	c = NewCircuit(Breaker{Failures: 1, OpenFor: time.Second, Observer: obs, Clock: fake})
	cbTrip(t, c, 1)
	fake.Advance(time.Second)
	cbRecord(t, c, OutcomeSuccess)
	want := "[state_change:open reject:open state_change:half-open state_change:closed]"
	if fmt.Sprint(seen) != want {
		t.Errorf("observer saw %v, want %v", seen, want)
	}
}

func TestBreakerReconfigureKeepsState(t *testing.T) {
	c, fake := cbNew(t, Breaker{Failures: 5, OpenFor: time.Second, Name: "a"})
	cbRecord(t, c, OutcomeFailure)
	cbRecord(t, c, OutcomeFailure)
	if err := c.Reconfigure(Breaker{Failures: 3, OpenFor: 4 * time.Second, Name: "b", Clock: fake}); err != nil {
		t.Fatal(err)
	}
	if c.Name() != "b" {
		t.Errorf("Name() = %q, want b", c.Name())
	}
	cbRecord(t, c, OutcomeFailure) // the count carried over: 3 of 3
	cbWantState(t, c, StateOpen)
	cbWantRejected(t, c, 4*time.Second)
	// Open state carries over a reconfiguration too.
	if err := c.Reconfigure(Breaker{Failures: 3, OpenFor: time.Minute, Clock: fake}); err != nil {
		t.Fatal(err)
	}
	cbWantRejected(t, c, 4*time.Second)
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{OutcomeSuccess: "success", OutcomeFailure: "failure", OutcomeIgnore: "ignore", 9: "unknown"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", o, got, want)
		}
	}
}

func TestBreakerClosedAllocs(t *testing.T) {
	c := NewCircuit(Breaker{})
	n := testing.AllocsPerRun(100, func() {
		tk, _ := c.Allow()
		tk.Record(OutcomeFailure)
		tk, _ = c.Allow()
		tk.Record(OutcomeSuccess)
	})
	if n != 0 {
		t.Errorf("closed Allow+Record allocates %v times, want 0", n)
	}
}

func TestBreakerConcurrentRace(t *testing.T) {
	// Hammer every path under -race; the circuit must end in a valid state.
	c, fake := cbNew(t, Breaker{Failures: 3, OpenFor: time.Millisecond, HalfOpenProbes: 2})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				if g == 0 && i%10 == 0 {
					fake.Advance(time.Millisecond)
				}
				tk, err := c.Allow()
				if err != nil {
					continue
				}
				tk.Record(Outcome((g + i) % 3))
			}
		})
	}
	wg.Wait()
	if s := c.State(); s > StateHalfOpen {
		t.Fatalf("State() = %v", s)
	}
}

func BenchmarkCircuitClosed(b *testing.B) {
	c := NewCircuit(Breaker{})
	b.ReportAllocs()
	for b.Loop() {
		tk, err := c.Allow()
		if err != nil {
			b.Fatal(err)
		}
		tk.Record(OutcomeSuccess)
	}
}

func BenchmarkCircuitClosedParallel(b *testing.B) {
	c := NewCircuit(Breaker{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tk, err := c.Allow()
			if err != nil {
				b.Fatal(err)
			}
			tk.Record(OutcomeSuccess)
		}
	})
}
