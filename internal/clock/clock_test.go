package clock_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/resilient-result/resilient/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	_ clock.Clock = (*clock.Fake)(nil)
	_ clock.Clock = clock.Real()
)

var start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

var errCause = errors.New("test cause")

// waitCtx bounds a wait in a test so a bug fails the test instead of hanging it.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recv receives from ch or fails the test if nothing arrives in time.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-waitCtx(t).Done():
		t.Fatal("timed out waiting for a value")
		panic("unreachable")
	}
}

// empty fails the test if ch holds a value.
func empty[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: unexpected value %v", what, v)
	default:
	}
}

func TestFakeNowStandsStill(t *testing.T) {
	f := clock.NewFake(start)
	if got := f.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want %v", got, start)
	}
	time.Sleep(2 * time.Millisecond)
	if got := f.Now(); !got.Equal(start) {
		t.Errorf("Now() after a real sleep = %v, want %v: time must stand still", got, start)
	}
	if got := f.Since(start); got != 0 {
		t.Errorf("Since(start) = %v, want 0", got)
	}
	f.Advance(3 * time.Second)
	if got := f.Now(); !got.Equal(start.Add(3 * time.Second)) {
		t.Errorf("Now() after Advance(3s) = %v, want start+3s", got)
	}
	if got := f.Since(start); got != 3*time.Second {
		t.Errorf("Since(start) = %v, want 3s", got)
	}
}

func TestFakeAdvanceFiresDueTimersInDeadlineOrder(t *testing.T) {
	f := clock.NewFake(start)
	deadlines := []time.Duration{3 * time.Second, time.Second, 2 * time.Second, 2 * time.Second, 10 * time.Second}
	timers := make([]clock.Timer, len(deadlines))
	for i, d := range deadlines {
		timers[i] = f.NewTimer(d)
	}
	if n := f.Timers(); n != len(deadlines) {
		t.Fatalf("Timers() = %d, want %d", n, len(deadlines))
	}

	f.Advance(500 * time.Millisecond)
	for i, tm := range timers {
		empty(t, tm.C(), "timer "+deadlines[i].String()+" after Advance(500ms)")
	}

	f.Advance(4500 * time.Millisecond) // now start+5s
	// Each fired timer carries its own deadline: the clock stepped through
	// the deadlines in order. Had a later timer fired first, the clock would
	// already have moved past the earlier ones' deadlines (it never goes
	// backwards) and they would carry the later time.
	for i, d := range deadlines {
		if d > 5*time.Second {
			empty(t, timers[i].C(), "timer 10s")
			continue
		}
		if got := recv(t, timers[i].C()); !got.Equal(start.Add(d)) {
			t.Errorf("timer %v delivered %v, want its deadline %v", d, got, start.Add(d))
		}
	}
	if got := f.Now(); !got.Equal(start.Add(5 * time.Second)) {
		t.Errorf("Now() = %v, want start+5s", got)
	}
	if n := f.Timers(); n != 1 {
		t.Errorf("Timers() = %d, want 1 (the 10s timer)", n)
	}
}

func TestFakeStop(t *testing.T) {
	f := clock.NewFake(start)
	tm := f.NewTimer(time.Second)
	if !tm.Stop() {
		t.Error("Stop() on an armed timer = false, want true")
	}
	if n := f.Timers(); n != 0 {
		t.Errorf("Timers() after Stop = %d, want 0", n)
	}
	f.Advance(2 * time.Second)
	empty(t, tm.C(), "stopped timer after Advance")
	if tm.Stop() {
		t.Error("second Stop() = true, want false")
	}

	// A timer that fired and was received: Stop reports false.
	tm = f.NewTimer(time.Second)
	f.Advance(time.Second)
	recv(t, tm.C())
	if tm.Stop() {
		t.Error("Stop() after the value was received = true, want false")
	}
}

func TestFakeStopAfterUnreceivedFireDrains(t *testing.T) {
	// Like time.Timer since Go 1.23: once Stop returns, no stale value can be
	// received, and Stop reports true when the value had not been received.
	f := clock.NewFake(start)
	tm := f.NewTimer(time.Second)
	f.Advance(time.Second)
	if !tm.Stop() {
		t.Error("Stop() on a fired but unreceived timer = false, want true")
	}
	empty(t, tm.C(), "channel after Stop")
}

func TestFakeReset(t *testing.T) {
	f := clock.NewFake(start)
	tm := f.NewTimer(time.Second)
	f.Advance(500 * time.Millisecond)
	if !tm.Reset(time.Second) { // new deadline start+1.5s
		t.Error("Reset() on an armed timer = false, want true")
	}
	if n := f.Timers(); n != 1 {
		t.Errorf("Timers() after Reset = %d, want 1", n)
	}
	f.Advance(600 * time.Millisecond) // start+1.1s: past the old deadline only
	empty(t, tm.C(), "timer after its old deadline")
	f.Advance(400 * time.Millisecond) // start+1.5s
	if got := recv(t, tm.C()); !got.Equal(start.Add(1500 * time.Millisecond)) {
		t.Errorf("timer delivered %v, want start+1.5s", got)
	}

	// Reset of a fired, received timer re-arms it and reports false.
	if tm.Reset(time.Second) {
		t.Error("Reset() on a fired timer = true, want false")
	}
	f.Advance(time.Second)
	if got := recv(t, tm.C()); !got.Equal(start.Add(2500 * time.Millisecond)) {
		t.Errorf("re-armed timer delivered %v, want start+2.5s", got)
	}

	// Reset of a stopped timer re-arms it.
	tm.Stop()
	if tm.Reset(time.Second) {
		t.Error("Reset() on a stopped timer = true, want false")
	}
	f.Advance(time.Second)
	recv(t, tm.C())

	// Reset(0) fires at once.
	tm.Reset(0)
	if got := recv(t, tm.C()); !got.Equal(f.Now()) {
		t.Errorf("Reset(0) delivered %v, want now %v", got, f.Now())
	}
	if n := f.Timers(); n != 0 {
		t.Errorf("Timers() = %d, want 0", n)
	}
}

func TestFakeResetAfterUnreceivedFireDropsStaleValue(t *testing.T) {
	// Like time.Timer since Go 1.23: after Reset, a receive gets the new
	// deadline's value, never the one from before the Reset.
	f := clock.NewFake(start)
	tm := f.NewTimer(time.Second)
	f.Advance(time.Second) // fires; nobody receives
	tm.Reset(time.Second)
	empty(t, tm.C(), "channel right after Reset")
	f.Advance(time.Second)
	if got := recv(t, tm.C()); !got.Equal(start.Add(2 * time.Second)) {
		t.Errorf("timer delivered %v, want the new deadline start+2s", got)
	}
}

func TestFakeNewTimerZeroFiresAtOnce(t *testing.T) {
	f := clock.NewFake(start)
	for _, d := range []time.Duration{0, -time.Second} {
		tm := f.NewTimer(d)
		if got := recv(t, tm.C()); !got.Equal(start) {
			t.Errorf("NewTimer(%v) delivered %v, want %v", d, got, start)
		}
	}
	if n := f.Timers(); n != 0 {
		t.Errorf("Timers() = %d, want 0", n)
	}
}

func TestFakeAfterFunc(t *testing.T) {
	f := clock.NewFake(start)
	ran := make(chan time.Time, 1)
	tm := f.AfterFunc(time.Second, func() { ran <- f.Now() })
	if tm.C() != nil {
		t.Error("AfterFunc timer C() != nil")
	}
	f.Advance(999 * time.Millisecond)
	empty(t, ran, "AfterFunc before its deadline")
	f.Advance(time.Millisecond)
	if got := recv(t, ran); got.Before(start.Add(time.Second)) {
		t.Errorf("fn saw Now() = %v, want at least start+1s", got)
	}
	if tm.Stop() {
		t.Error("Stop() after fn ran = true, want false")
	}

	// Stop prevents fn from running.
	tm = f.AfterFunc(time.Second, func() { ran <- f.Now() })
	if !tm.Stop() {
		t.Error("Stop() on an armed AfterFunc = false, want true")
	}
	f.Advance(time.Hour)
	empty(t, ran, "stopped AfterFunc")

	// Reset re-arms a stopped AfterFunc.
	tm.Reset(time.Second)
	f.Advance(time.Second)
	recv(t, ran)
}

func TestFakeSleep(t *testing.T) {
	f := clock.NewFake(start)
	done := make(chan error, 1)
	go func() { done <- f.Sleep(context.Background(), time.Second) }()
	if err := f.BlockUntil(waitCtx(t), 1); err != nil {
		t.Fatalf("BlockUntil: %v", err)
	}
	f.Advance(999 * time.Millisecond)
	empty(t, done, "Sleep(1s) after Advance(999ms)")
	f.Advance(time.Millisecond)
	if err := recv(t, done); err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
	if n := f.Timers(); n != 0 {
		t.Errorf("Timers() after Sleep = %d, want 0", n)
	}
}

func TestFakeSleepCancelled(t *testing.T) {
	f := clock.NewFake(start)
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Sleep(ctx, time.Hour) }()
	if err := f.BlockUntil(waitCtx(t), 1); err != nil {
		t.Fatalf("BlockUntil: %v", err)
	}
	cancel(errCause)
	if err := recv(t, done); !errors.Is(err, errCause) {
		t.Errorf("Sleep = %v, want the cause %v", err, errCause)
	}
	if n := f.Timers(); n != 0 {
		t.Errorf("Timers() after a cancelled Sleep = %d, want 0 (its timer stopped)", n)
	}

	// A context that has already ended: no Advance needed.
	if err := f.Sleep(ctx, time.Hour); !errors.Is(err, errCause) {
		t.Errorf("Sleep(ended ctx) = %v, want %v", err, errCause)
	}
	// Without a cause, the cause is ctx.Err().
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := f.Sleep(ctx2, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestFakeSleepNonPositive(t *testing.T) {
	f := clock.NewFake(start)
	for _, d := range []time.Duration{0, -time.Second} {
		if err := f.Sleep(context.Background(), d); err != nil {
			t.Errorf("Sleep(%v) = %v, want nil", d, err)
		}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errCause)
	if err := f.Sleep(ctx, 0); !errors.Is(err, errCause) {
		t.Errorf("Sleep(ended ctx, 0) = %v, want %v", err, errCause)
	}
	if n := f.Timers(); n != 0 {
		t.Errorf("Timers() = %d, want 0", n)
	}
	if !f.Now().Equal(start) {
		t.Errorf("Now() = %v, want %v", f.Now(), start)
	}
}

func TestFakeBlockUntil(t *testing.T) {
	f := clock.NewFake(start)
	if err := f.BlockUntil(context.Background(), 0); err != nil {
		t.Errorf("BlockUntil(0) = %v, want nil", err)
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.BlockUntil(ctx, 1) }()
	cancel(errCause)
	if err := recv(t, done); !errors.Is(err, errCause) {
		t.Errorf("BlockUntil(cancelled) = %v, want %v", err, errCause)
	}

	ctx3, cancel3 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel3()
	if err := f.BlockUntil(ctx3, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("BlockUntil(timeout) = %v, want DeadlineExceeded", err)
	}

	// Wakes when timers are armed.
	go func() { done <- f.BlockUntil(waitCtx(t), 2) }()
	t1 := f.NewTimer(time.Second)
	t2 := f.AfterFunc(time.Second, func() {})
	if err := recv(t, done); err != nil {
		t.Errorf("BlockUntil(2) = %v, want nil", err)
	}
	t1.Stop()
	t2.Stop()
}

func TestFakeSetNeverGoesBackwards(t *testing.T) {
	f := clock.NewFake(start)
	tm := f.NewTimer(time.Second)
	f.Set(start.Add(-time.Hour))
	if !f.Now().Equal(start) {
		t.Errorf("Set(earlier) moved the clock to %v, want %v", f.Now(), start)
	}
	f.Set(start.Add(2 * time.Second))
	if got := recv(t, tm.C()); !got.Equal(start.Add(time.Second)) {
		t.Errorf("timer delivered %v, want start+1s", got)
	}
	if !f.Now().Equal(start.Add(2 * time.Second)) {
		t.Errorf("Now() = %v, want start+2s", f.Now())
	}
	f.Set(start.Add(time.Second))
	if !f.Now().Equal(start.Add(2 * time.Second)) {
		t.Errorf("Set(earlier) moved the clock back to %v", f.Now())
	}
	f.Advance(-time.Second)
	if !f.Now().Equal(start.Add(2 * time.Second)) {
		t.Errorf("Advance(-1s) moved the clock back to %v", f.Now())
	}
}

func TestFakeConcurrentSleepers(t *testing.T) {
	f := clock.NewFake(start)
	const n = 100
	var sleepers sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		sleepers.Go(func() {
			errs <- f.Sleep(context.Background(), time.Duration(i%10+1)*time.Millisecond)
		})
	}
	stop := make(chan struct{})
	var noise sync.WaitGroup
	// Readers run throughout.
	for range 2 {
		noise.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_ = f.Now()
					_ = f.Timers()
				}
			}
		})
	}
	if err := f.BlockUntil(waitCtx(t), n); err != nil {
		t.Fatalf("BlockUntil(%d): %v", n, err)
	}
	// Every sleeper is armed. While the clock advances, other goroutines
	// arm, reset and stop timers of their own (they would have made
	// BlockUntil above return too early, so they start only now).
	for range 4 {
		noise.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tm := f.NewTimer(time.Hour)
				tm.Reset(time.Hour)
				tm.Stop()
				f.AfterFunc(time.Hour, func() {}).Stop()
			}
		})
	}
	for range 10 {
		f.Advance(time.Millisecond)
	}
	for range n {
		if err := recv(t, errs); err != nil {
			t.Errorf("Sleep = %v, want nil", err)
		}
	}
	sleepers.Wait()
	close(stop)
	noise.Wait()
	if got := f.Since(start); got != 10*time.Millisecond {
		t.Errorf("Since(start) = %v, want 10ms", got)
	}
}

func TestFakeConcurrentAdvanceLosesNoTime(t *testing.T) {
	f := clock.NewFake(start)
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { f.Advance(time.Second) })
	}
	wg.Wait()
	if got := f.Since(start); got != n*time.Second {
		t.Errorf("after %d concurrent Advance(1s): Since(start) = %v, want %v", n, got, n*time.Second)
	}
}

func TestRealSleepCancelledReturnsCauseAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errCause)
	done := make(chan error, 1)
	go func() { done <- clock.Real().Sleep(ctx, time.Hour) }()
	if err := recv(t, done); !errors.Is(err, errCause) {
		t.Errorf("Sleep(ended ctx, 1h) = %v, want %v", err, errCause)
	}
	if err := clock.Real().Sleep(ctx, 0); !errors.Is(err, errCause) {
		t.Errorf("Sleep(ended ctx, 0) = %v, want %v", err, errCause)
	}
}

func TestRealSleepCancelledWhileSleeping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(time.Second, func() { cancel(errCause) })
		began := time.Now()
		if err := clock.Real().Sleep(ctx, time.Hour); !errors.Is(err, errCause) {
			t.Errorf("Sleep = %v, want %v", err, errCause)
		}
		if got := time.Since(began); got != time.Second {
			t.Errorf("Sleep returned after %v, want 1s (when ctx ended)", got)
		}
	})
}

func TestRealSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for name, ctx := range map[string]context.Context{"Background": context.Background(), "cancellable": ctx} {
		began := time.Now()
		if err := clock.Real().Sleep(ctx, time.Millisecond); err != nil {
			t.Errorf("%s: Sleep(1ms) = %v, want nil", name, err)
		}
		if got := time.Since(began); got < time.Millisecond {
			t.Errorf("%s: Sleep(1ms) returned after %v", name, got)
		}
	}
	if err := clock.Real().Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0) = %v, want nil", err)
	}
}

func TestRealTimers(t *testing.T) {
	c := clock.Real()
	tm := c.NewTimer(time.Millisecond)
	recv(t, tm.C())
	ran := make(chan struct{})
	af := c.AfterFunc(time.Millisecond, func() { close(ran) })
	if af.C() != nil {
		t.Error("Real AfterFunc timer C() != nil")
	}
	recv(t, ran)
	tm = c.NewTimer(time.Hour)
	if !tm.Stop() {
		t.Error("Stop() on an armed real timer = false, want true")
	}
	if d := c.Since(c.Now().Add(-time.Minute)); d < time.Minute {
		t.Errorf("Since(now-1m) = %v", d)
	}
}

func TestRealAndFakeTimersAgree(t *testing.T) {
	// The same Stop/Reset sequence on the real clock (inside a synctest
	// bubble, so its time is virtual) and on a Fake gives the same answers.
	run := func(c clock.Clock, advance func(time.Duration)) (stopAfterFire, resetAfterFire bool, staleAfterReset bool) {
		tm := c.NewTimer(time.Second)
		advance(time.Second)
		stopAfterFire = tm.Stop()
		tm = c.NewTimer(time.Second)
		advance(time.Second)
		resetAfterFire = tm.Reset(time.Hour)
		select {
		case <-tm.C():
			staleAfterReset = true
		default:
		}
		tm.Stop()
		return
	}
	var onReal [3]bool
	synctest.Test(t, func(t *testing.T) {
		onReal[0], onReal[1], onReal[2] = run(clock.Real(), func(d time.Duration) { time.Sleep(d); synctest.Wait() })
	})
	f := clock.NewFake(start)
	var fake [3]bool
	fake[0], fake[1], fake[2] = run(f, f.Advance)
	if onReal != fake {
		t.Errorf("[Stop after fire, Reset after fire, stale value after Reset]: real %v, fake %v", onReal, fake)
	}
}

func TestOr(t *testing.T) {
	if c := clock.Or(nil); c != clock.Real() {
		t.Errorf("Or(nil) = %#v, want Real()", c)
	}
	f := clock.NewFake(start)
	if c := clock.Or(f); c != f {
		t.Errorf("Or(fake) = %#v, want the fake", c)
	}
}
