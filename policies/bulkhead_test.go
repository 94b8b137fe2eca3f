package policies

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// bhRecorder is an Observer that keeps every event.
type bhRecorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *bhRecorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *bhRecorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func (r *bhRecorder) count(t EventType) int {
	n := 0
	for _, e := range r.all() {
		if e.Type == t {
			n++
		}
	}
	return n
}

// bhEventually polls cond for up to a few seconds, for tests on real
// goroutines that cannot use synctest.
func bhEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// bhAcquireAsync calls c.Acquire(ctx) in a goroutine and returns the channel
// its result arrives on.
func bhAcquireAsync(c *Compartment, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.Acquire(ctx) }()
	return done
}

func bhRecvErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire did not return")
		return nil
	}
}

func TestBulkheadDefaults(t *testing.T) {
	c := NewBulkhead(Bulkhead{})
	o := c.Options()
	if o.MaxConcurrent != 100 || o.MaxQueue != 0 || o.QueueTimeout != 0 || o.RetryAfter != time.Second || o.Clock == nil {
		t.Fatalf("resolved defaults = %+v; want MaxConcurrent 100, MaxQueue 0, QueueTimeout 0, RetryAfter 1s, a Clock", o)
	}
	ctx := context.Background()
	for i := range 100 {
		if err := c.Acquire(ctx); err != nil {
			t.Fatalf("Acquire #%d: %v", i+1, err)
		}
	}
	err := c.Acquire(ctx) // no queue by default: turned away at once
	if !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("Acquire #101 = %v; want ErrBulkheadFull", err)
	}
	if wait, ok := RetryAfter(err); !ok || wait != time.Second {
		t.Fatalf("RetryAfter = %v, %v; want 1s, true", wait, ok)
	}
	if c.InFlight() != 100 || c.Queued() != 0 {
		t.Fatalf("InFlight, Queued = %d, %d; want 100, 0", c.InFlight(), c.Queued())
	}
	for range 100 {
		c.Release()
	}
	if c.InFlight() != 0 {
		t.Fatalf("InFlight after releasing all = %d", c.InFlight())
	}
}

func TestBulkheadValidate(t *testing.T) {
	tests := []struct {
		b    Bulkhead
		want string
	}{
		{Bulkhead{MaxConcurrent: -1}, "policies: Bulkhead.MaxConcurrent must be >= 0, got -1"},
		{Bulkhead{MaxQueue: -1}, "policies: Bulkhead.MaxQueue must be >= 0, got -1"},
		{Bulkhead{QueueTimeout: -time.Second}, "policies: Bulkhead.QueueTimeout must be >= 0, got -1s"},
		{Bulkhead{RetryAfter: -time.Millisecond}, "policies: Bulkhead.RetryAfter must be >= 0, got -1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := tt.b.Validate()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate() = %v; want %q", err, tt.want)
			}
			func() {
				defer func() {
					if r := recover(); r != tt.want {
						t.Fatalf("NewBulkhead panicked with %v; want %q", r, tt.want)
					}
				}()
				NewBulkhead(tt.b)
			}()
			c := NewBulkhead(Bulkhead{MaxConcurrent: 3})
			if err := c.Reconfigure(tt.b); err == nil || err.Error() != tt.want {
				t.Fatalf("Reconfigure() = %v; want %q", err, tt.want)
			}
			if got := c.Options().MaxConcurrent; got != 3 {
				t.Fatalf("an invalid Reconfigure changed MaxConcurrent to %d", got)
			}
		})
	}
	if err := (Bulkhead{MaxConcurrent: 1, MaxQueue: 2, QueueTimeout: time.Second, RetryAfter: time.Second}).Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}

func TestBulkheadQueueFullRejectsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &bhRecorder{}
		c := NewBulkhead(Bulkhead{Name: "db", MaxConcurrent: 1, MaxQueue: 1, RetryAfter: 3 * time.Second, Observer: rec})
		ctx := context.Background()
		if err := c.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		waiter := bhAcquireAsync(c, ctx)
		synctest.Wait()
		if c.Queued() != 1 {
			t.Fatalf("Queued = %d; want 1", c.Queued())
		}

		start := time.Now()
		err := c.Acquire(ctx)
		if time.Since(start) != 0 {
			t.Fatalf("rejection took %v; want immediate", time.Since(start))
		}
		var re *RejectedError
		if !errors.As(err, &re) || re.Kind != KindBulkhead || re.Name != "db" || re.Wait != 3*time.Second || !errors.Is(err, ErrBulkheadFull) {
			t.Fatalf("err = %#v; want *RejectedError{KindBulkhead, db, 3s, ErrBulkheadFull}", err)
		}
		if wait, ok := RetryAfter(err); !ok || wait != 3*time.Second {
			t.Fatalf("RetryAfter = %v, %v; want 3s, true", wait, ok)
		}
		if got, want := err.Error(), "policies: bulkhead is full (db): retry after 3s"; got != want {
			t.Fatalf("Error() = %q; want %q", got, want)
		}
		if c.Queued() != 1 || c.InFlight() != 1 {
			t.Fatalf("a rejection changed the state: InFlight %d, Queued %d", c.InFlight(), c.Queued())
		}
		if c.TryAcquire() {
			t.Fatal("TryAcquire succeeded on a full bulkhead")
		}

		c.Release()
		if err := <-waiter; err != nil {
			t.Fatal(err)
		}
		c.Release()

		var types []EventType
		for _, e := range rec.all() {
			if e.Kind != KindBulkhead || e.Name != "db" {
				t.Fatalf("event %+v lacks kind or name", e)
			}
			if e.Type == EventReject && (e.Delay != 3*time.Second || !errors.Is(e.Err, ErrBulkheadFull)) {
				t.Fatalf("reject event %+v; want Delay 3s and ErrBulkheadFull", e)
			}
			types = append(types, e.Type)
		}
		// The waiter's admit may be reported before or after the release that
		// handed it the slot: compare the order up to there, then the counts.
		want := []EventType{EventAdmit, EventReject, EventReject}
		if len(types) != 6 || fmt.Sprint(types[:3]) != fmt.Sprint(want) ||
			rec.count(EventAdmit) != 2 || rec.count(EventRelease) != 2 || types[5] != EventRelease {
			t.Fatalf("events = %v; want admit reject reject, {release, admit}, release", types)
		}
	})
}

func TestBulkheadQueueTimeout(t *testing.T) {
	fake := clock.NewFake(time.Unix(0, 0))
	rec := &bhRecorder{}
	c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: 1, QueueTimeout: 2 * time.Second, Clock: fake, Observer: rec})
	ctx := context.Background()
	if err := c.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	waiter := bhAcquireAsync(c, ctx)
	if err := fake.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(2*time.Second - time.Nanosecond)
	if c.Queued() != 1 {
		t.Fatalf("waiter left the queue before QueueTimeout: Queued = %d", c.Queued())
	}
	fake.Advance(time.Nanosecond)
	err := bhRecvErr(t, waiter)
	if !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("Acquire after QueueTimeout = %v; want ErrBulkheadFull", err)
	}
	if wait, ok := RetryAfter(err); !ok || wait != time.Second {
		t.Fatalf("RetryAfter = %v, %v; want the default 1s", wait, ok)
	}
	if c.Queued() != 0 || c.InFlight() != 1 {
		t.Fatalf("InFlight, Queued = %d, %d; want 1, 0", c.InFlight(), c.Queued())
	}
	if fake.Timers() != 0 {
		t.Fatalf("%d timers left armed", fake.Timers())
	}
	c.Release()
	if c.InFlight() != 0 || rec.count(EventReject) != 1 {
		t.Fatalf("InFlight %d, rejects %d; want 0, 1", c.InFlight(), rec.count(EventReject))
	}
}

func TestBulkheadAdmitReportsQueueDelay(t *testing.T) {
	fake := clock.NewFake(time.Unix(0, 0))
	rec := &bhRecorder{}
	c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: 1, QueueTimeout: 10 * time.Second, Clock: fake, Observer: rec})
	ctx := context.Background()
	if err := c.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	waiter := bhAcquireAsync(c, ctx)
	if err := fake.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(500 * time.Millisecond)
	c.Release()
	if err := bhRecvErr(t, waiter); err != nil {
		t.Fatal(err)
	}
	c.Release()
	var delays []time.Duration
	for _, e := range rec.all() {
		if e.Type == EventAdmit {
			delays = append(delays, e.Delay)
		}
	}
	if fmt.Sprint(delays) != fmt.Sprint([]time.Duration{0, 500 * time.Millisecond}) {
		t.Fatalf("admit delays = %v; want [0s 500ms]", delays)
	}
	if fake.Timers() != 0 {
		t.Fatalf("%d timers left armed", fake.Timers())
	}
}

func TestBulkheadFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 10
		c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: n})
		ctx := context.Background()
		if err := c.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			order []int
			wg    sync.WaitGroup
		)
		for i := range n {
			wg.Go(func() {
				if err := c.Acquire(ctx); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				c.Release()
			})
			synctest.Wait() // waiter i is queued before waiter i+1 starts
		}
		if c.Queued() != n {
			t.Fatalf("Queued = %d; want %d", c.Queued(), n)
		}
		c.Release()
		wg.Wait()
		for i, got := range order {
			if got != i {
				t.Fatalf("admission order = %v; want 0..%d", order, n-1)
			}
		}
		if c.InFlight() != 0 || c.Queued() != 0 {
			t.Fatalf("InFlight, Queued = %d, %d; want 0, 0", c.InFlight(), c.Queued())
		}
	})
}

func TestBulkheadReleaseHandsOffWithoutBarging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: 1})
		ctx := context.Background()
		if err := c.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		waiter := bhAcquireAsync(c, ctx)
		synctest.Wait()
		c.Release()
		// The slot belongs to the waiter from the moment of Release, before
		// it even runs: a newcomer cannot take it.
		if c.InFlight() != 1 || c.Queued() != 0 {
			t.Fatalf("after hand-off InFlight, Queued = %d, %d; want 1, 0", c.InFlight(), c.Queued())
		}
		if c.TryAcquire() {
			t.Fatal("TryAcquire barged ahead of the waiter")
		}
		if err := <-waiter; err != nil {
			t.Fatal(err)
		}
		c.Release()
		if !c.TryAcquire() {
			t.Fatal("TryAcquire failed on an idle bulkhead")
		}
		c.Release()
	})
}

func TestBulkheadContextEndsWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &bhRecorder{}
		c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: 2, Observer: rec})
		if err := c.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}

		errGone := errors.New("client went away")
		ctx, cancel := context.WithCancelCause(context.Background())
		waiter := bhAcquireAsync(c, ctx)
		synctest.Wait()
		if c.Queued() != 1 {
			t.Fatalf("Queued = %d; want 1", c.Queued())
		}
		cancel(errGone)
		if err := <-waiter; err != errGone {
			t.Fatalf("Acquire = %v; want the context's cause", err)
		}
		if c.Queued() != 0 || c.InFlight() != 1 {
			t.Fatalf("InFlight, Queued = %d, %d; want 1, 0", c.InFlight(), c.Queued())
		}

		// A deadline ends the wait the same way, with QueueTimeout 0.
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		start := time.Now()
		err := c.Acquire(dctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute {
			t.Fatalf("Acquire = %v after %v; want DeadlineExceeded after 1m", err, time.Since(start))
		}

		c.Release()
		if c.InFlight() != 0 || rec.count(EventReject) != 0 {
			t.Fatalf("InFlight %d, rejects %d; want 0, 0 (a caller's end is no rejection)", c.InFlight(), rec.count(EventReject))
		}
		if rec.count(EventAdmit) != rec.count(EventRelease) {
			t.Fatalf("admits %d != releases %d", rec.count(EventAdmit), rec.count(EventRelease))
		}
	})
}

func TestBulkheadAcquireWithEndedContext(t *testing.T) {
	c := NewBulkhead(Bulkhead{})
	errGone := errors.New("gone")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errGone)
	if err := c.Acquire(ctx); err != errGone {
		t.Fatalf("Acquire = %v; want the cause", err)
	}
	ran := false
	if err := c.Execute(ctx, func(context.Context) error { ran = true; return nil }); err != errGone || ran {
		t.Fatalf("Execute = %v, ran %v; want the cause and op not run", err, ran)
	}
	if c.InFlight() != 0 {
		t.Fatalf("InFlight = %d; want 0", c.InFlight())
	}
}

// TestBulkheadHandOffCancelRace races Release's hand-off to a waiter with
// that waiter's cancellation: whichever wins, the slot ends with exactly one
// owner and the next waiter is served.
func TestBulkheadHandOffCancelRace(t *testing.T) {
	for i := range 500 {
		c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: 2})
		bg := context.Background()
		if err := c.Acquire(bg); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(bg)
		first := bhAcquireAsync(c, ctx)
		bhEventually(t, "first waiter to queue", func() bool { return c.Queued() == 1 })
		second := bhAcquireAsync(c, bg)
		bhEventually(t, "second waiter to queue", func() bool { return c.Queued() == 2 })

		switch i % 3 {
		case 0: // both before the waiter wakes: it sees the slot and the end at once
			c.Release()
			cancel()
		case 1:
			cancel()
			c.Release()
		default:
			var wg sync.WaitGroup
			wg.Go(c.Release)
			wg.Go(cancel)
			wg.Wait()
		}

		if err := bhRecvErr(t, first); err == nil {
			c.Release() // it won the slot before it saw the cancellation
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("iteration %d: first waiter = %v", i, err)
		}
		if err := bhRecvErr(t, second); err != nil {
			t.Fatalf("iteration %d: second waiter = %v; want the slot", i, err)
		}
		if c.InFlight() != 1 || c.Queued() != 0 {
			t.Fatalf("iteration %d: InFlight, Queued = %d, %d; want 1, 0", i, c.InFlight(), c.Queued())
		}
		c.Release()
		if !c.TryAcquire() {
			t.Fatalf("iteration %d: slot lost", i)
		}
		c.Release()
	}
}

func TestBulkheadPanickingOpReleasesSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: 1})
		ctx := context.Background()
		waiterErr := make(chan error, 1)
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("recovered %v; want the op's panic", r)
				}
			}()
			_ = c.Execute(ctx, func(context.Context) error {
				go func() { waiterErr <- c.Execute(ctx, func(context.Context) error { return nil }) }()
				synctest.Wait()
				panic("boom")
			})
		}()
		if err := <-waiterErr; err != nil {
			t.Fatalf("waiter = %v; want the slot the panicking op released", err)
		}
		if c.InFlight() != 0 || c.Queued() != 0 {
			t.Fatalf("InFlight, Queued = %d, %d; want 0, 0", c.InFlight(), c.Queued())
		}
	})
}

func TestBulkheadReleaseWithoutAcquirePanics(t *testing.T) {
	c := NewBulkhead(Bulkhead{})
	defer func() {
		want := "policies: Compartment.Release called without a matching Acquire"
		if r := recover(); r != want {
			t.Fatalf("recovered %v; want %q", r, want)
		}
		if c.InFlight() != 0 {
			t.Fatalf("InFlight = %d after the panic", c.InFlight())
		}
		c.TryAcquire() // the mutex is not left locked
		c.Release()
	}()
	c.Release()
}

func TestBulkheadExecute(t *testing.T) {
	c := NewBulkhead(Bulkhead{MaxConcurrent: 1})
	ctx := context.Background()
	errOp := errors.New("op failed")
	if err := c.Execute(ctx, func(context.Context) error {
		if c.InFlight() != 1 {
			t.Errorf("InFlight inside op = %d; want 1", c.InFlight())
		}
		ran := false
		err := c.Execute(ctx, func(context.Context) error { ran = true; return nil })
		if !errors.Is(err, ErrBulkheadFull) || ran {
			t.Errorf("nested Execute = %v, ran %v; want ErrBulkheadFull and op not run", err, ran)
		}
		return errOp
	}); err != errOp {
		t.Fatalf("Execute = %v; want op's error", err)
	}
	if c.InFlight() != 0 {
		t.Fatalf("InFlight = %d; want 0", c.InFlight())
	}
	// It composes with Do.
	r := Do(ctx, func(context.Context) (int, error) { return 42, nil }, c)
	if v, err := r.Unwrap(); v != 42 || err != nil {
		t.Fatalf("Do = %v, %v", v, err)
	}
}

func TestBulkheadReconfigureRaisesCapAdmitsWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: 5})
		ctx := context.Background()
		if err := c.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		var waiters []<-chan error
		for range 4 {
			waiters = append(waiters, bhAcquireAsync(c, ctx))
			synctest.Wait()
		}
		if err := c.Reconfigure(Bulkhead{MaxConcurrent: 4, MaxQueue: 5}); err != nil {
			t.Fatal(err)
		}
		if c.InFlight() != 4 || c.Queued() != 1 {
			t.Fatalf("InFlight, Queued = %d, %d; want 4, 1", c.InFlight(), c.Queued())
		}
		for _, w := range waiters[:3] {
			if err := <-w; err != nil {
				t.Fatal(err)
			}
		}
		c.Release()
		if err := <-waiters[3]; err != nil {
			t.Fatal(err)
		}
		for range 4 {
			c.Release()
		}
		if got := c.Options().MaxConcurrent; got != 4 {
			t.Fatalf("MaxConcurrent = %d; want 4", got)
		}
	})
}

func TestBulkheadReconfigureLowersCap(t *testing.T) {
	c := NewBulkhead(Bulkhead{MaxConcurrent: 3})
	for range 3 {
		if !c.TryAcquire() {
			t.Fatal("TryAcquire failed")
		}
	}
	if err := c.Reconfigure(Bulkhead{MaxConcurrent: 1, RetryAfter: 5 * time.Second, Name: "small"}); err != nil {
		t.Fatal(err)
	}
	if c.InFlight() != 3 {
		t.Fatalf("Reconfigure dropped in-flight work: InFlight = %d", c.InFlight())
	}
	c.Release()
	c.Release()
	err := c.Acquire(context.Background())
	var re *RejectedError
	if !errors.As(err, &re) || re.Wait != 5*time.Second || re.Name != "small" {
		t.Fatalf("Acquire over the lowered cap = %v; want a rejection with the new options", err)
	}
	c.Release()
	if !c.TryAcquire() {
		t.Fatal("TryAcquire failed below the lowered cap")
	}
	c.Release()
}

// TestBulkheadContention hammers a bulkhead from 200 goroutines and checks
// that never more than MaxConcurrent operations run at once.
func TestBulkheadContention(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Bulkhead
		rejects bool
	}{
		{"queue for all", Bulkhead{MaxConcurrent: 7, MaxQueue: 200}, false},
		{"small queue", Bulkhead{MaxConcurrent: 3, MaxQueue: 2}, true},
		{"no queue", Bulkhead{MaxConcurrent: 5}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewBulkhead(tc.opts)
			var running, peak, ok, full atomic.Int64
			var wg sync.WaitGroup
			for range 200 {
				wg.Go(func() {
					for range 50 {
						err := c.Execute(context.Background(), func(context.Context) error {
							n := running.Add(1)
							for {
								p := peak.Load()
								if n <= p || peak.CompareAndSwap(p, n) {
									break
								}
							}
							runtime.Gosched()
							running.Add(-1)
							return nil
						})
						switch {
						case err == nil:
							ok.Add(1)
						case errors.Is(err, ErrBulkheadFull) && tc.rejects:
							full.Add(1)
						default:
							t.Errorf("Execute = %v", err)
						}
					}
				})
			}
			wg.Wait()
			if p := peak.Load(); p > int64(tc.opts.MaxConcurrent) || p < 1 {
				t.Fatalf("peak concurrency %d; want 1..%d", p, tc.opts.MaxConcurrent)
			}
			if ok.Load()+full.Load() != 200*50 {
				t.Fatalf("ok %d + full %d != %d", ok.Load(), full.Load(), 200*50)
			}
			if c.InFlight() != 0 || c.Queued() != 0 {
				t.Fatalf("InFlight, Queued = %d, %d; want 0, 0", c.InFlight(), c.Queued())
			}
		})
	}
}

// bhInvariantObserver checks, on every event, that the bulkhead holds no more
// than its limits allow.
type bhInvariantObserver struct {
	t            *testing.T
	c            atomic.Pointer[Compartment]
	maxC, maxQ   int
	admits       atomic.Int64
	queuedAdmits atomic.Int64
	releases     atomic.Int64
	rejects      atomic.Int64
}

func (o *bhInvariantObserver) Observe(e Event) {
	switch e.Type {
	case EventAdmit:
		o.admits.Add(1)
		if e.Delay > 0 {
			o.queuedAdmits.Add(1)
		}
	case EventRelease:
		o.releases.Add(1)
	case EventReject:
		o.rejects.Add(1)
	}
	if c := o.c.Load(); c != nil {
		if n := c.InFlight(); n > o.maxC {
			o.t.Errorf("InFlight %d > MaxConcurrent %d", n, o.maxC)
		}
		if n := c.Queued(); n > o.maxQ {
			o.t.Errorf("Queued %d > MaxQueue %d", n, o.maxQ)
		}
	}
}

// TestBulkheadProperty runs random workloads against random limits and
// checks the invariants at every event, inside every operation and on a
// ticker: InFlight <= MaxConcurrent, Queued <= MaxQueue, and in the end every
// call was admitted exactly once, rejected, or ended by its context, and
// every slot came back.
func TestBulkheadProperty(t *testing.T) {
	// Across the seeds every path must be taken at least once.
	var admitted, queuedAdmitted, rejected, ctxEnded atomic.Int64
	defer func() {
		if t.Failed() {
			return
		}
		if admitted.Load() == 0 || queuedAdmitted.Load() == 0 || rejected.Load() == 0 || ctxEnded.Load() == 0 {
			t.Errorf("paths taken: admitted %d, after queueing %d, rejected %d, context ended %d; want all > 0",
				admitted.Load(), queuedAdmitted.Load(), rejected.Load(), ctxEnded.Load())
		}
	}()
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0xb0c))
				maxC, maxQ := 1+rng.IntN(8), rng.IntN(9)
				var queueTimeout time.Duration
				if rng.IntN(2) == 0 {
					queueTimeout = time.Duration(1+rng.IntN(50)) * time.Millisecond
				}
				obs := &bhInvariantObserver{t: t, maxC: maxC, maxQ: maxQ}
				c := NewBulkhead(Bulkhead{MaxConcurrent: maxC, MaxQueue: maxQ, QueueTimeout: queueTimeout, Observer: obs})
				obs.c.Store(c)

				type call struct {
					startAfter, runFor, ctxTimeout time.Duration
				}
				calls := make([]call, 1+rng.IntN(60))
				for i := range calls {
					calls[i] = call{
						startAfter: time.Duration(rng.IntN(100)) * time.Millisecond,
						runFor:     time.Duration(rng.IntN(30)) * time.Millisecond,
					}
					if rng.IntN(4) == 0 {
						calls[i].ctxTimeout = time.Duration(1+rng.IntN(40)) * time.Millisecond
					}
				}

				var running atomic.Int64
				var okN, fullN, ctxN atomic.Int64
				stop := make(chan struct{})
				var sampler sync.WaitGroup
				sampler.Go(func() {
					tick := time.NewTicker(time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							if n, q := c.InFlight(), c.Queued(); n > maxC || q > maxQ {
								t.Errorf("sampled InFlight %d, Queued %d; limits %d, %d", n, q, maxC, maxQ)
							}
						}
					}
				})

				var wg sync.WaitGroup
				for _, cl := range calls {
					wg.Go(func() {
						time.Sleep(cl.startAfter)
						ctx := context.Background()
						if cl.ctxTimeout > 0 {
							var cancel context.CancelFunc
							ctx, cancel = context.WithTimeout(ctx, cl.ctxTimeout)
							defer cancel()
						}
						err := c.Execute(ctx, func(context.Context) error {
							if n := running.Add(1); n > int64(maxC) {
								t.Errorf("%d ops running; MaxConcurrent %d", n, maxC)
							}
							time.Sleep(cl.runFor)
							running.Add(-1)
							return nil
						})
						switch {
						case err == nil:
							okN.Add(1)
						case errors.Is(err, ErrBulkheadFull):
							fullN.Add(1)
						case errors.Is(err, context.DeadlineExceeded):
							ctxN.Add(1)
						default:
							t.Errorf("Execute = %v", err)
						}
					})
				}
				wg.Wait()
				close(stop)
				sampler.Wait()

				if got := okN.Load() + fullN.Load() + ctxN.Load(); got != int64(len(calls)) {
					t.Fatalf("%d outcomes for %d calls", got, len(calls))
				}
				if obs.admits.Load() != okN.Load() || obs.releases.Load() != okN.Load() || obs.rejects.Load() != fullN.Load() {
					t.Fatalf("events admit %d release %d reject %d; outcomes ok %d full %d",
						obs.admits.Load(), obs.releases.Load(), obs.rejects.Load(), okN.Load(), fullN.Load())
				}
				if c.InFlight() != 0 || c.Queued() != 0 {
					t.Fatalf("InFlight, Queued = %d, %d; want 0, 0", c.InFlight(), c.Queued())
				}
				admitted.Add(okN.Load())
				queuedAdmitted.Add(obs.queuedAdmits.Load())
				rejected.Add(fullN.Load())
				ctxEnded.Add(ctxN.Load())
			})
		})
	}
}

func TestBulkheadFastPathAllocs(t *testing.T) {
	c := NewBulkhead(Bulkhead{})
	ctx := context.Background()
	op := func(context.Context) error { return nil }
	if n := testing.AllocsPerRun(1000, func() {
		if err := c.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		c.Release()
	}); n != 0 {
		t.Fatalf("Acquire+Release allocates %v times; want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = c.Execute(ctx, op) }); n != 0 {
		t.Fatalf("Execute allocates %v times; want 0", n)
	}
}

func BenchmarkBulkheadAcquireRelease(b *testing.B) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		c := NewBulkhead(Bulkhead{})
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Acquire(ctx); err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := NewBulkhead(Bulkhead{MaxConcurrent: 1 << 20})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Acquire(ctx); err != nil {
					b.Fatal(err)
				}
				c.Release()
			}
		})
	})
	b.Run("parallel-queued", func(b *testing.B) {
		// One slot for every goroutine: most calls queue and take a hand-off.
		c := NewBulkhead(Bulkhead{MaxConcurrent: 1, MaxQueue: 1 << 20})
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Acquire(ctx); err != nil {
					b.Fatal(err)
				}
				c.Release()
			}
		})
	})
}
