package deadline

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// newDeadline returns a Ctx child of parent ending after d, and its
// release, as the Timeout layer makes it.
func newDeadline(parent context.Context, d time.Duration) (*Ctx, func()) {
	c := new(Ctx)
	c.Init(parent, d)
	return c, c.Release
}

// waitDone fails t unless ch is closed within a second.
func waitDone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatalf("%s: not done within 1s", what)
	}
}

// notDone fails t if ch is closed.
func notDone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: done too early", what)
	default:
	}
}

func TestDeadlineCtxDeadline(t *testing.T) {
	before := time.Now()
	c, release := newDeadline(context.Background(), time.Minute)
	defer release()
	dl, ok := c.Deadline()
	if !ok || dl.Before(before.Add(time.Minute)) || dl.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Deadline() = %v, %v; want about now+1m", dl, ok)
	}

	// A parent deadline earlier than its own is reported, and does not
	// count as its own timeout.
	pctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pdl, _ := pctx.Deadline()
	c2, release2 := newDeadline(pctx, time.Minute)
	defer release2()
	if dl, _ := c2.Deadline(); !dl.Equal(pdl) {
		t.Fatalf("Deadline() = %v, want the parent's %v", dl, pdl)
	}
	if c2.governs {
		t.Fatal("own deadline later than the parent's must not govern")
	}

	// Nested: the inner reports the earlier of the two.
	outer, release3 := newDeadline(context.Background(), time.Second)
	defer release3()
	inner, release4 := newDeadline(outer, time.Minute)
	defer release4()
	odl, _ := outer.Deadline()
	if idl, _ := inner.Deadline(); !idl.Equal(odl) {
		t.Fatalf("inner Deadline() = %v, want the outer's %v", idl, odl)
	}
	if v := inner.Value(ctxKey{}); v != nil {
		t.Fatalf("Value = %v, want nil", v)
	}
}

type ctxKey struct{}

func TestDeadlineCtxValueDelegates(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	c, release := newDeadline(parent, time.Minute)
	defer release()
	if c.Value(ctxKey{}) != "v" {
		t.Fatal("Value does not reach the parent")
	}
	if s := c.String(); s == "" {
		t.Fatal("empty String")
	}
}

func TestDeadlineCtxExpires(t *testing.T) {
	for _, armed := range []bool{false, true} {
		c, release := newDeadline(context.Background(), 20*time.Millisecond)
		if err := c.Err(); err != nil {
			t.Fatalf("armed=%v: Err() = %v before the deadline", armed, err)
		}
		if armed {
			d := c.Done()
			notDone(t, d, "fresh context")
			waitDone(t, d, "deadline")
		} else {
			time.Sleep(30 * time.Millisecond)
		}
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Fatalf("armed=%v: Err() = %v, want DeadlineExceeded", armed, err)
		}
		if !c.TimedOut() {
			t.Fatalf("armed=%v: timedOut() = false after its own deadline", armed)
		}
		waitDone(t, c.Done(), "Done after the deadline")
		release() // after the end: no change
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Fatalf("armed=%v: Err() = %v after release, want DeadlineExceeded", armed, err)
		}
	}
}

func TestDeadlineCtxRelease(t *testing.T) {
	c, release := newDeadline(context.Background(), time.Minute)
	d := c.Done()
	release()
	waitDone(t, d, "released")
	if err := c.Err(); err != context.Canceled {
		t.Fatalf("Err() = %v, want Canceled", err)
	}
	if c.TimedOut() {
		t.Fatal("a released context did not time out")
	}
	release() // twice is fine

	// Err never changes once it reported an end, even for a context that
	// nobody watched: released after its deadline, or after its parent.
	c3, release3 := newDeadline(context.Background(), time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if err := c3.Err(); err != context.DeadlineExceeded {
		t.Fatalf("Err() = %v, want DeadlineExceeded", err)
	}
	release3()
	if err := c3.Err(); err != context.DeadlineExceeded {
		t.Fatalf("Err() = %v after release, want DeadlineExceeded still", err)
	}
	parent, cancel := context.WithCancelCause(context.Background())
	c4, release4 := newDeadline(parent, time.Minute)
	cancel(errors.New("mine"))
	first := c4.Err()
	release4()
	if err := c4.Err(); err != first || err != context.Canceled || c4.TimedOut() {
		t.Fatalf("Err() = %v after release, want the parent's %v still", err, first)
	}

	// Released before Done was ever asked: Done is closed at once.
	c2, release2 := newDeadline(context.Background(), time.Minute)
	release2()
	waitDone(t, c2.Done(), "released, then Done")
}

func TestDeadlineCtxStdParentPropagates(t *testing.T) {
	for _, armed := range []bool{false, true} {
		parent, cancel := context.WithCancelCause(context.Background())
		c, release := newDeadline(parent, time.Minute)
		var d <-chan struct{}
		if armed {
			d = c.Done()
		}
		boom := errors.New("boom")
		cancel(boom)
		if armed {
			waitDone(t, d, "parent canceled")
		}
		if err := c.Err(); err != context.Canceled {
			t.Fatalf("armed=%v: Err() = %v, want the parent's Canceled", armed, err)
		}
		if got := context.Cause(c); got != boom {
			t.Fatalf("armed=%v: Cause = %v, want the parent's cause", armed, got)
		}
		if c.TimedOut() {
			t.Fatalf("armed=%v: the parent's end is not our timeout", armed)
		}
		waitDone(t, c.Done(), "Done after the parent ended")
		release()
	}

	// A parent that already ended when Done is first called.
	parent, cancel := context.WithCancel(context.Background())
	c, release := newDeadline(parent, time.Minute)
	defer release()
	cancel()
	waitDone(t, c.Done(), "parent ended before Done")
}

func TestDeadlineCtxNestedPropagates(t *testing.T) {
	// The outer ends by its own deadline: the inner reports the outer's
	// error, and is not timed out itself.
	outer, releaseOuter := newDeadline(context.Background(), 20*time.Millisecond)
	defer releaseOuter()
	inner, releaseInner := newDeadline(outer, time.Minute)
	defer releaseInner()
	waitDone(t, inner.Done(), "outer deadline")
	if err := inner.Err(); err != context.DeadlineExceeded {
		t.Fatalf("inner Err() = %v, want DeadlineExceeded", err)
	}
	if inner.TimedOut() {
		t.Fatal("the outer deadline is not the inner's timeout")
	}
	if !outer.TimedOut() {
		t.Fatal("the outer timed out")
	}

	// The outer released: the inner ends with Canceled.
	outer2, release2 := newDeadline(context.Background(), time.Minute)
	inner2, releaseInner2 := newDeadline(outer2, time.Minute)
	defer releaseInner2()
	d := inner2.Done()
	release2()
	waitDone(t, d, "outer released")
	if err := inner2.Err(); err != context.Canceled {
		t.Fatalf("inner Err() = %v, want Canceled", err)
	}

	// The inner's own, earlier deadline ends the inner only.
	outer3, release3 := newDeadline(context.Background(), time.Minute)
	defer release3()
	inner3, releaseInner3 := newDeadline(outer3, 10*time.Millisecond)
	defer releaseInner3()
	waitDone(t, inner3.Done(), "inner deadline")
	if !inner3.TimedOut() || outer3.Err() != nil {
		t.Fatalf("inner timedOut=%v, outer Err=%v; want the inner alone timed out", inner3.TimedOut(), outer3.Err())
	}

	// An inner whose own deadline comes first links to the outer without
	// making it start a timer; the outer still ends by its deadline, as
	// Err (asking the clock) and a later Done report.
	outer5, release5 := newDeadline(context.Background(), 30*time.Millisecond)
	defer release5()
	inner5, releaseInner5 := newDeadline(outer5, 10*time.Millisecond)
	defer releaseInner5()
	inner5.Done()
	outer5.mu.Lock()
	timer, entries := outer5.timer, len(outer5.entries)
	outer5.mu.Unlock()
	if timer != nil || entries != 1 || !outer5.linked.Load() || outer5.timed.Load() {
		t.Fatalf("outer timer %v, %d entries, linked %v, timed %v; want linked alone", timer, entries, outer5.linked.Load(), outer5.timed.Load())
	}
	waitDone(t, inner5.Done(), "inner deadline")
	if !inner5.TimedOut() {
		t.Fatal("inner did not time out")
	}
	time.Sleep(40 * time.Millisecond)
	if outer5.Err() != context.DeadlineExceeded || !outer5.TimedOut() {
		t.Fatalf("outer Err() = %v after its deadline, want DeadlineExceeded", outer5.Err())
	}
	waitDone(t, outer5.Done(), "outer Done after its deadline")

	// An inner released first unregisters from the outer.
	outer4, release4 := newDeadline(context.Background(), time.Minute)
	defer release4()
	inner4, releaseInner4 := newDeadline(outer4, time.Minute)
	inner4.Done()
	releaseInner4()
	outer4.mu.Lock()
	n := len(outer4.entries)
	outer4.mu.Unlock()
	if n != 0 {
		t.Fatalf("outer keeps %d entries after the inner was released", n)
	}
}

func TestDeadlineCtxStdChildrenNoGoroutine(t *testing.T) {
	c, release := newDeadline(context.Background(), 50*time.Millisecond)
	defer release()
	before := runtime.NumGoroutine()
	const n = 100
	children := make([]context.Context, 0, 2*n)
	cancels := make([]context.CancelFunc, 0, 2*n)
	for range n {
		ctx, cancel := context.WithCancel(c)
		children = append(children, ctx)
		cancels = append(cancels, cancel)
		ctx, cancel = context.WithTimeout(c, time.Minute)
		children = append(children, ctx)
		cancels = append(cancels, cancel)
	}
	if after := runtime.NumGoroutine(); after-before >= n/2 {
		t.Fatalf("%d goroutines for %d children: they must attach without one", after-before, 2*n)
	}
	c.mu.Lock()
	registered := len(c.entries)
	c.mu.Unlock()
	if registered != 2*n {
		t.Fatalf("%d children registered through AfterFunc, want %d", registered, 2*n)
	}
	for i, ctx := range children {
		waitDone(t, ctx.Done(), "child")
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("child %d Err() = %v, want DeadlineExceeded", i, ctx.Err())
		}
	}
	for _, cancel := range cancels {
		cancel()
	}

	// A child canceled first detaches: the parent forgets it.
	c2, release2 := newDeadline(context.Background(), time.Minute)
	defer release2()
	_, cancel := context.WithCancel(c2)
	cancel()
	c2.mu.Lock()
	left := len(c2.entries)
	c2.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d entries left after the child was canceled", left)
	}

	// context.AfterFunc on it runs once it ends.
	c3, release3 := newDeadline(context.Background(), time.Minute)
	ran := make(chan struct{})
	context.AfterFunc(c3, func() { close(ran) })
	release3()
	waitDone(t, ran, "context.AfterFunc")
}

func TestDeadlineCtxAfterFuncStop(t *testing.T) {
	c, release := newDeadline(context.Background(), time.Minute)
	var ran atomic.Int32
	stop := c.AfterFunc(func() { ran.Add(1) })
	keep := c.AfterFunc(func() { ran.Add(10) })
	_ = keep
	if !stop() {
		t.Fatal("first stop must report true")
	}
	if stop() {
		t.Fatal("second stop must report false")
	}
	release()
	if got := ran.Load(); got != 10 {
		t.Fatalf("ran = %d, want only the kept func (10)", got)
	}
	if keep() {
		t.Fatal("stop after the func ran must report false")
	}

	// Registered after the end: runs at once, on its own goroutine.
	done := make(chan struct{})
	stop = c.AfterFunc(func() { close(done) })
	waitDone(t, done, "AfterFunc on an ended context")
	if stop() {
		t.Fatal("stop of a func that ran must report false")
	}
}

// TestDeadlineCtxPoolRace drives many concurrent calls through two nested

func TestArmWithRunsHookAtDeadline(t *testing.T) {
	c := New(context.Background(), 5*time.Millisecond)
	var ended error
	hooked := make(chan struct{})
	c.ArmWith(func() {
		ended = c.Err() // the context has ended before the hook runs
		close(hooked)
	})
	if !c.timed.Load() || c.linked.Load() {
		t.Fatalf("timed %v, linked %v: ArmWith arms the timer alone", c.timed.Load(), c.linked.Load())
	}
	waitDone(t, hooked, "hook")
	if ended != context.DeadlineExceeded {
		t.Fatalf("Err() in the hook = %v, want DeadlineExceeded", ended)
	}
	c.Release()
	if c.Err() != context.DeadlineExceeded {
		t.Fatalf("Err() after Release = %v, want DeadlineExceeded", c.Err())
	}

	// Released first: the hook never runs.
	c2 := New(context.Background(), time.Minute)
	var ran atomic.Bool
	c2.ArmWith(func() { ran.Store(true) })
	c2.Release()
	if ran.Load() || c2.Err() != context.Canceled {
		t.Fatalf("hook ran %v, Err() %v; want no hook and Canceled", ran.Load(), c2.Err())
	}

	// No time at all: the hook runs at once.
	c3 := New(context.Background(), 0)
	ran.Store(false)
	c3.ArmWith(func() { ran.Store(true) })
	if !ran.Load() || c3.Err() != context.DeadlineExceeded {
		t.Fatalf("hook ran %v, Err() %v; want the hook and DeadlineExceeded", ran.Load(), c3.Err())
	}
	c3.Release()
}

func TestArmWithParentEndsFirst(t *testing.T) {
	// The parent ends while nobody watches c: its error stays the answer
	// and the hook does not run.
	parent, cancel := context.WithCancel(context.Background())
	c := New(parent, 5*time.Millisecond)
	var ran atomic.Bool
	c.ArmWith(func() { ran.Store(true) })
	cancel()
	if c.Err() != context.Canceled {
		t.Fatalf("Err() = %v, want the parent's Canceled", c.Err())
	}
	time.Sleep(20 * time.Millisecond)
	if ran.Load() || c.Err() != context.Canceled {
		t.Fatalf("hook ran %v, Err() %v; want no hook and Canceled", ran.Load(), c.Err())
	}
	c.Release()

	// The parent's deadline comes first: no timer, no hook.
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer pcancel()
	c2 := New(pctx, time.Minute)
	c2.ArmWith(func() { ran.Store(true) })
	waitDone(t, c2.Done(), "child of a parent past its deadline")
	if ran.Load() || c2.hooked || c2.timed.Load() {
		t.Fatal("a context its parent's deadline governs must have no timer nor hook")
	}
	c2.Release()
}

func TestArmWithReleaseWaitsForHook(t *testing.T) {
	c := New(context.Background(), time.Millisecond)
	entered, finished := make(chan struct{}), make(chan struct{})
	var done atomic.Bool
	c.ArmWith(func() {
		close(entered)
		time.Sleep(20 * time.Millisecond)
		done.Store(true)
		close(finished)
	})
	waitDone(t, entered, "hook")
	c.Release()
	if !done.Load() {
		t.Fatal("Release returned while the hook was running")
	}
	<-finished
}

func TestArmWithRace(t *testing.T) {
	// Releases racing the timer: the hook runs at most once, never after
	// Release returned, and exactly when Err reports the deadline.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 300 {
				c := New(context.Background(), time.Duration(i%4)*50*time.Microsecond)
				var calls atomic.Int32
				released := false
				var mu sync.Mutex
				c.ArmWith(func() {
					mu.Lock()
					defer mu.Unlock()
					if released {
						t.Error("hook ran after Release returned")
					}
					calls.Add(1)
				})
				if i%3 == 0 {
					child, cancel := context.WithCancel(c)
					_ = child.Err()
					defer cancel()
				}
				time.Sleep(time.Duration(i%5) * 40 * time.Microsecond)
				c.Release()
				mu.Lock()
				released = true
				mu.Unlock()
				want := int32(0)
				if c.Err() == context.DeadlineExceeded {
					want = 1
				}
				if got := calls.Load(); got != want {
					t.Errorf("hook ran %d times with Err() %v", got, c.Err())
				}
			}
		})
	}
	wg.Wait()
}

type testCause struct{}

func (testCause) Error() string { return "test cause" }

func TestCause(t *testing.T) {
	cause := NewCause(testCause{})
	if cause == nil {
		t.Fatal("NewCause = nil: context.Cause can no longer be given a cause")
	}
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	c := New(parent, 5*time.Millisecond)
	c.SetCause(cause)
	child, cancel := context.WithCancel(c)
	defer cancel()
	if got := context.Cause(c); got != nil {
		t.Fatalf("Cause while live = %v, want nil", got)
	}
	waitDone(t, child.Done(), "child")
	if got := context.Cause(c); got != (testCause{}) {
		t.Fatalf("Cause = %v, want the cause set", got)
	}
	if got := context.Cause(child); got != (testCause{}) {
		t.Fatalf("child's Cause = %v, want the cause set", got)
	}
	if c.Err() != context.DeadlineExceeded || child.Err() != context.DeadlineExceeded {
		t.Fatalf("Err() = %v, child %v; want DeadlineExceeded", c.Err(), child.Err())
	}
	if c.Value(ctxKey{}) != "v" {
		t.Fatal("Value must still delegate")
	}
	c.Release()

	// Released, or ended by the parent: the cause is not ours.
	c2 := New(context.Background(), time.Minute)
	c2.SetCause(cause)
	c2.Release()
	if got := context.Cause(c2); got != context.Canceled {
		t.Fatalf("Cause after Release = %v, want Canceled", got)
	}
	pctx, pcancel := context.WithCancelCause(context.Background())
	c3 := New(pctx, time.Minute)
	c3.SetCause(cause)
	c3.ArmWith(func() {})
	perr := errors.New("parent's")
	pcancel(perr)
	if got := context.Cause(c3); got != perr {
		t.Fatalf("Cause after the parent ended = %v, want the parent's", got)
	}
	c3.Release()
}

// TestMain fails the package's tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
