package transport

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// newDeadline returns a deadlineCtx child of parent ending after d, and its
// release, as the Timeout layer makes it.
func newDeadline(parent context.Context, d time.Duration) (*deadlineCtx, func()) {
	c := new(deadlineCtx)
	c.init(parent, d)
	return c, c.release
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
		if !c.timedOut() {
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
	if c.timedOut() {
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
	if err := c4.Err(); err != first || err != context.Canceled || c4.timedOut() {
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
		if c.timedOut() {
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
	if inner.timedOut() {
		t.Fatal("the outer deadline is not the inner's timeout")
	}
	if !outer.timedOut() {
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
	if !inner3.timedOut() || outer3.Err() != nil {
		t.Fatalf("inner timedOut=%v, outer Err=%v; want the inner alone timed out", inner3.timedOut(), outer3.Err())
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
	if !inner5.timedOut() {
		t.Fatal("inner did not time out")
	}
	time.Sleep(40 * time.Millisecond)
	if outer5.Err() != context.DeadlineExceeded || !outer5.timedOut() {
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
// Timeout layers, mixing calls that answer at once, calls cut by the inner
// or the outer deadline, and calls the caller cancels, so that pooled
// timers are stopped, fired and reused concurrently (run with -race).
func TestDeadlineCtxPoolRace(t *testing.T) {
	base := rtFunc(func(req *http.Request) (*http.Response, error) {
		ctx := req.Context()
		switch req.Header.Get("X-Mode") {
		case "fast":
			return newResponse(req, 200, nil, "ok"), nil
		case "child": // a derived context, as net/http makes
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			select {
			case <-cctx.Done():
				return nil, cctx.Err()
			case <-time.After(time.Duration(rand.IntN(3)) * time.Millisecond):
				return newResponse(req, 200, nil, "ok"), nil
			}
		default: // slow: waits for the end
			<-ctx.Done()
			return nil, ctx.Err()
		}
	})
	rt := Chain(base, Timeout(8*time.Millisecond), Timeout(3*time.Millisecond))
	modes := []string{"fast", "child", "slow", "cancel"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				mode := modes[(g+i)%len(modes)]
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://t.test/", nil)
				req.Header.Set("X-Mode", mode)
				if mode == "cancel" {
					req.Header.Set("X-Mode", "slow")
					time.AfterFunc(time.Millisecond, cancel)
				}
				resp, err := rt.RoundTrip(req)
				switch {
				case err == nil:
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				case mode == "cancel" && ctx.Err() != nil:
					// The caller's end: whatever the call was cut with
					// (its Canceled, or a timeout that raced with it)
					// comes back unchanged.
				case errors.Is(err, policies.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded):
				default:
					t.Errorf("mode %s: err = %v", mode, err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
}

func TestTimeoutFakeBodyCutByDeadline(t *testing.T) {
	// The body blocks until the request's context ends, as a real
	// transport's does.
	base := rtFunc(func(req *http.Request) (*http.Response, error) {
		resp := newResponse(req, 200, nil, "")
		ctx := req.Context()
		resp.Body = io.NopCloser(readerFunc(func(p []byte) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}))
		return resp, nil
	})
	resp, err := Chain(base, Timeout(20*time.Millisecond)).RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://t.test/", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	var te *policies.TimeoutError
	if !errors.As(err, &te) || te.After != 20*time.Millisecond || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read err = %v, want a *policies.TimeoutError without DeadlineExceeded", err)
	}
}

func TestTimeoutNamedError(t *testing.T) {
	base := rtFunc(func(req *http.Request) (*http.Response, error) {
		<-req.Context().Done()
		return nil, req.Context().Err()
	})
	_, err := Chain(base, TimeoutWith(policies.Timeout{After: 10 * time.Millisecond, Name: "attempt"})).
		RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://t.test/", ""))
	var te *policies.TimeoutError
	if !errors.As(err, &te) || te.Name != "attempt" || te.Err != nil {
		t.Fatalf("err = %#v, want a *policies.TimeoutError named attempt wrapping nothing", err)
	}
}

// readerFunc is an io.Reader made of a function.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
