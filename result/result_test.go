package result_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"

	"github.com/resilient-result/resilient/result"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	errBoom  = errors.New("boom")
	errOther = errors.New("other")
)

func TestOk(t *testing.T) {
	r := result.Ok(42)
	if !r.IsOk() || r.IsErr() {
		t.Fatalf("Ok(42): IsOk=%v IsErr=%v, want true false", r.IsOk(), r.IsErr())
	}
	if r.Value() != 42 {
		t.Errorf("Value() = %d, want 42", r.Value())
	}
	if r.Err() != nil {
		t.Errorf("Err() = %v, want nil", r.Err())
	}
	if v, err := r.Unwrap(); v != 42 || err != nil {
		t.Errorf("Unwrap() = %d, %v; want 42, nil", v, err)
	}
}

func TestOkOfZeroValueIsStillOk(t *testing.T) {
	r := result.Ok(0)
	if !r.IsOk() || r.Err() != nil {
		t.Fatalf("Ok(0) = %v, want an Ok", r)
	}
	var p *int
	if rp := result.Ok(p); !rp.IsOk() {
		t.Fatalf("Ok(nil pointer) = %v, want an Ok", rp)
	}
}

func TestErr(t *testing.T) {
	r := result.Err[int](errBoom)
	if r.IsOk() || !r.IsErr() {
		t.Fatalf("Err(boom): IsOk=%v IsErr=%v, want false true", r.IsOk(), r.IsErr())
	}
	if r.Err() != errBoom {
		t.Errorf("Err() = %v, want %v", r.Err(), errBoom)
	}
	if r.Value() != 0 {
		t.Errorf("Value() = %d, want the zero value", r.Value())
	}
	if v, err := r.Unwrap(); v != 0 || err != errBoom {
		t.Errorf("Unwrap() = %d, %v; want 0, boom", v, err)
	}
}

func TestErrNilAndZeroResultAreErrNoValue(t *testing.T) {
	for name, r := range map[string]result.Result[string]{
		"Err(nil)":    result.Err[string](nil),
		"zero Result": {},
	} {
		t.Run(name, func(t *testing.T) {
			if r.IsOk() || !r.IsErr() {
				t.Fatalf("IsOk=%v IsErr=%v, want false true", r.IsOk(), r.IsErr())
			}
			if !errors.Is(r.Err(), result.ErrNoValue) {
				t.Errorf("Err() = %v, want ErrNoValue", r.Err())
			}
			if _, err := r.Unwrap(); !errors.Is(err, result.ErrNoValue) {
				t.Errorf("Unwrap() error = %v, want ErrNoValue", err)
			}
			if got := r.Or("fallback"); got != "fallback" {
				t.Errorf("Or = %q, want the fallback", got)
			}
		})
	}
}

func TestOf(t *testing.T) {
	r := result.Of(strconv.Atoi("42"))
	if !r.IsOk() || r.Value() != 42 {
		t.Errorf("Of(Atoi(42)) = %v, want Ok(42)", r)
	}

	r = result.Of(strconv.Atoi("x"))
	var numErr *strconv.NumError
	if !r.IsErr() || !errors.As(r.Err(), &numErr) {
		t.Errorf("Of(Atoi(x)) = %v, want Err with a *strconv.NumError", r)
	}

	// The value that comes with an error is dropped.
	r = result.Of(7, errBoom)
	if r.IsOk() || r.Err() != errBoom || r.Value() != 0 {
		t.Errorf("Of(7, boom) = %v (value %d), want Err(boom) with zero value", r, r.Value())
	}

	// A nil error makes an Ok even for a zero value.
	r = result.Of(0, nil)
	if !r.IsOk() {
		t.Errorf("Of(0, nil) = %v, want Ok(0)", r)
	}
}

func TestOr(t *testing.T) {
	if got := result.Ok(1).Or(9); got != 1 {
		t.Errorf("Ok(1).Or(9) = %d, want 1", got)
	}
	if got := result.Ok(0).Or(9); got != 0 {
		t.Errorf("Ok(0).Or(9) = %d, want 0: an Ok zero value is not replaced", got)
	}
	if got := result.Err[int](errBoom).Or(9); got != 9 {
		t.Errorf("Err(boom).Or(9) = %d, want 9", got)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		r    fmt.Stringer
		want string
	}{
		{result.Ok(42), "Ok(42)"},
		{result.Ok("hi"), "Ok(hi)"},
		{result.Err[int](errBoom), "Err(boom)"},
		{result.Err[int](nil), "Err(" + result.ErrNoValue.Error() + ")"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if got := fmt.Sprint(tt.r); got != tt.want {
			t.Errorf("fmt.Sprint = %q, want %q", got, tt.want)
		}
	}
}

func TestMap(t *testing.T) {
	r := result.Map(result.Ok(21), func(n int) string { return strconv.Itoa(n * 2) })
	if !r.IsOk() || r.Value() != "42" {
		t.Errorf("Map(Ok(21)) = %v, want Ok(42)", r)
	}

	called := false
	r = result.Map(result.Err[int](errBoom), func(int) string { called = true; return "x" })
	if called {
		t.Error("Map called f on an Err")
	}
	if !r.IsErr() || r.Err() != errBoom {
		t.Errorf("Map(Err(boom)) = %v, want Err(boom)", r)
	}

	r = result.Map(result.Result[int]{}, func(int) string { called = true; return "x" })
	if called || !errors.Is(r.Err(), result.ErrNoValue) {
		t.Errorf("Map(zero) = %v (called %v), want Err(ErrNoValue) without calling f", r, called)
	}
}

func TestThen(t *testing.T) {
	parse := func(s string) result.Result[int] { return result.Of(strconv.Atoi(s)) }

	r := result.Then(result.Ok("42"), parse)
	if !r.IsOk() || r.Value() != 42 {
		t.Errorf("Then(Ok(42), parse) = %v, want Ok(42)", r)
	}

	// Then flattens: f's Err becomes the Err, not an Ok holding an Err.
	r = result.Then(result.Ok("x"), parse)
	var numErr *strconv.NumError
	if !r.IsErr() || !errors.As(r.Err(), &numErr) {
		t.Errorf("Then(Ok(x), parse) = %v, want f's Err", r)
	}

	called := false
	r = result.Then(result.Err[string](errBoom), func(string) result.Result[int] {
		called = true
		return result.Ok(1)
	})
	if called {
		t.Error("Then called f on an Err")
	}
	if !r.IsErr() || r.Err() != errBoom {
		t.Errorf("Then(Err(boom)) = %v, want Err(boom)", r)
	}
}

func TestCollectAllOk(t *testing.T) {
	r := result.Collect(result.Ok(1), result.Ok(2), result.Ok(3))
	if !r.IsOk() || !slices.Equal(r.Value(), []int{1, 2, 3}) {
		t.Errorf("Collect = %v, want Ok([1 2 3])", r)
	}
}

func TestCollectEmpty(t *testing.T) {
	r := result.Collect[int]()
	if !r.IsOk() {
		t.Fatalf("Collect() = %v, want Ok", r)
	}
	if r.Value() == nil || len(r.Value()) != 0 {
		t.Errorf("Collect().Value() = %#v, want an empty, non-nil slice", r.Value())
	}
}

func TestCollectJoinsEveryError(t *testing.T) {
	errThird := errors.New("third")
	r := result.Collect(
		result.Ok(1),
		result.Err[int](errBoom),
		result.Ok(2),
		result.Err[int](errOther),
		result.Err[int](errThird),
		result.Result[int]{},
	)
	if r.IsOk() {
		t.Fatalf("Collect = %v, want Err", r)
	}
	if r.Value() != nil {
		t.Errorf("Value() = %v, want nil for an Err", r.Value())
	}
	for _, want := range []error{errBoom, errOther, errThird, result.ErrNoValue} {
		if !errors.Is(r.Err(), want) {
			t.Errorf("errors.Is(%v, %v) = false", r.Err(), want)
		}
	}
	want := strings.Join([]string{"boom", "other", "third", result.ErrNoValue.Error()}, "\n")
	if got := r.Err().Error(); got != want {
		t.Errorf("Err().Error() = %q, want %q (errors in order)", got, want)
	}
}

func TestCollectSingleError(t *testing.T) {
	r := result.Collect(result.Ok(1), result.Err[int](errBoom))
	if !errors.Is(r.Err(), errBoom) || r.Err().Error() != "boom" {
		t.Errorf("Collect = %v, want Err(boom)", r)
	}
}

func TestAllValuesInOrder(t *testing.T) {
	// Each function waits for the next one to finish, so they finish in
	// reverse order; the values must still come back in the order of fns.
	const n = 5
	finished := make([]chan struct{}, n+1)
	for i := range finished {
		finished[i] = make(chan struct{})
	}
	close(finished[n])
	fns := make([]func(context.Context) result.Result[int], n)
	for i := range fns {
		fns[i] = func(ctx context.Context) result.Result[int] {
			defer close(finished[i])
			select {
			case <-finished[i+1]:
			case <-ctx.Done():
				return result.Err[int](ctx.Err())
			}
			return result.Ok(i * 10)
		}
	}
	r := result.All(context.Background(), fns...)
	if !r.IsOk() || !slices.Equal(r.Value(), []int{0, 10, 20, 30, 40}) {
		t.Errorf("All = %v, want Ok([0 10 20 30 40])", r)
	}
}

func TestAllEmpty(t *testing.T) {
	r := result.All[int](context.Background())
	if !r.IsOk() || r.Value() == nil || len(r.Value()) != 0 {
		t.Errorf("All() = %#v, want Ok with an empty, non-nil slice", r)
	}
}

func TestAllFailureCancelsSiblings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sibling func(ctx context.Context) error // what the blocked sibling returns
	}{
		{"ctx.Err", func(ctx context.Context) error { return ctx.Err() }},
		{"context.Cause", context.Cause},
		{"wrapped ctx.Err", func(ctx context.Context) error { return fmt.Errorf("fetch: %w", ctx.Err()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sawCancel := make(chan struct{})
			r := result.All(context.Background(),
				func(ctx context.Context) result.Result[int] {
					<-ctx.Done() // blocks until All cancels it
					close(sawCancel)
					return result.Err[int](tc.sibling(ctx))
				},
				func(context.Context) result.Result[int] {
					return result.Err[int](errBoom)
				},
				func(context.Context) result.Result[int] { return result.Ok(3) },
			)
			select {
			case <-sawCancel:
			default:
				t.Fatal("All returned before the blocked sibling returned")
			}
			if r.IsOk() {
				t.Fatalf("All = %v, want Err", r)
			}
			if r.Err() != errBoom {
				t.Errorf("All error = %q, want exactly the failing function's error %q", r.Err(), errBoom)
			}
			if errors.Is(r.Err(), context.Canceled) {
				t.Errorf("All error %q contains the sibling's context.Canceled", r.Err())
			}
		})
	}
}

func TestAllKeepsSiblingsOwnErrorsInOrder(t *testing.T) {
	// fn 2 fails first; fns 0 and 1 then fail for reasons of their own and
	// fn 3 reports only the cancellation. The error is the first failure,
	// then the others in the order of fns, without the cancellation.
	errZero, errOne, errFirst := errors.New("zero"), errors.New("one"), errors.New("first")
	failOnCancel := func(err error) func(context.Context) result.Result[string] {
		return func(ctx context.Context) result.Result[string] {
			<-ctx.Done()
			return result.Err[string](err)
		}
	}
	r := result.All(context.Background(),
		failOnCancel(errZero),
		failOnCancel(errOne),
		func(context.Context) result.Result[string] { return result.Err[string](errFirst) },
		func(ctx context.Context) result.Result[string] {
			<-ctx.Done()
			return result.Err[string](ctx.Err())
		},
	)
	for _, want := range []error{errFirst, errZero, errOne} {
		if !errors.Is(r.Err(), want) {
			t.Errorf("errors.Is(%q, %v) = false", r.Err(), want)
		}
	}
	if errors.Is(r.Err(), context.Canceled) {
		t.Errorf("All error %q contains context.Canceled", r.Err())
	}
	if got, want := r.Err().Error(), "first\nzero\none"; got != want {
		t.Errorf("All error = %q, want %q", got, want)
	}
}

func TestAllWaitsForEveryFunction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		done := make(chan result.Result[[]int])
		go func() {
			done <- result.All(context.Background(),
				func(context.Context) result.Result[int] { return result.Err[int](errBoom) },
				func(context.Context) result.Result[int] {
					<-release // ignores ctx on purpose
					return result.Ok(2)
				},
			)
		}()
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("All returned %v while a function was still running", r)
		default:
		}
		close(release)
		if r := <-done; r.Err() != errBoom {
			t.Errorf("All = %v, want Err(boom)", r)
		}
	})
}

func TestAllParentCancellationShowsUp(t *testing.T) {
	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{}, 2)
		go func() {
			<-started
			<-started
			cancel()
		}()
		wait := func(ctx context.Context) result.Result[int] {
			started <- struct{}{}
			<-ctx.Done()
			return result.Err[int](ctx.Err())
		}
		r := result.All(ctx, wait, wait)
		if r.IsOk() || !errors.Is(r.Err(), context.Canceled) {
			t.Errorf("All = %v, want Err with context.Canceled", r)
		}
	})
	t.Run("cause", func(t *testing.T) {
		errShutdown := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errShutdown) // already ended before All starts
		r := result.All(ctx,
			func(ctx context.Context) result.Result[int] {
				<-ctx.Done()
				return result.Err[int](context.Cause(ctx))
			},
			func(ctx context.Context) result.Result[int] {
				<-ctx.Done()
				return result.Err[int](ctx.Err())
			},
		)
		if !errors.Is(r.Err(), errShutdown) {
			t.Errorf("All = %v, want Err with the parent's cause %v", r, errShutdown)
		}
		if !errors.Is(r.Err(), context.Canceled) {
			t.Errorf("All = %v, want context.Canceled kept: the parent was cancelled", r)
		}
	})
}

func TestAllRunsConcurrently(t *testing.T) {
	// Every function waits until all have started: this only completes
	// when they run at the same time.
	const n = 8
	started := make(chan struct{})
	var count = make(chan int, 1)
	count <- 0
	fns := make([]func(context.Context) result.Result[int], n)
	for i := range fns {
		fns[i] = func(ctx context.Context) result.Result[int] {
			c := <-count + 1
			if c == n {
				close(started)
			}
			count <- c
			select {
			case <-started:
				return result.Ok(i)
			case <-ctx.Done():
				return result.Err[int](ctx.Err())
			}
		}
	}
	r := result.All(context.Background(), fns...)
	if !r.IsOk() || len(r.Value()) != n {
		t.Errorf("All = %v, want Ok with %d values", r, n)
	}
}
