// Package result gives every outcome an explicit shape: a Result[T] is either
// Ok with a value or Err with an error, never both and never neither.
//
// Results come from plain Go pairs with Of, from the resilience policies
// (policies.Do, transport.Do), or directly from Ok and Err; Unwrap goes back to
// plain Go:
//
//	r := result.Of(strconv.Atoi("42"))
//	n := r.Or(0)
//
// The zero Result[T] is Err with ErrNoValue: a Result nobody filled in never
// looks like a success.
package result

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrNoValue is the error of a Result that was never given one: the zero
// Result[T], and Err(nil). Callers may match it with errors.Is.
var ErrNoValue = errors.New("result: Err with a nil error")

// Result holds either a value (Ok) or an error (Err). Its zero value is Err
// with ErrNoValue. A Result is an immutable value: copy it freely.
type Result[T any] struct {
	v  T
	e  error
	ok bool
}

// Ok returns a successful Result holding v.
func Ok[T any](v T) Result[T] { return Result[T]{v: v, ok: true} }

// Err returns a failed Result holding err. Err(nil) does not make an Ok: it
// returns an Err holding ErrNoValue, so a forgotten error is never mistaken
// for success.
func Err[T any](err error) Result[T] {
	if err == nil {
		err = ErrNoValue
	}
	return Result[T]{e: err}
}

// Of converts Go's (value, error) pair: Err(err) when err is non-nil, Ok(v)
// otherwise. The value that comes with a non-nil error is dropped, as Go
// convention says it is meaningless.
func Of[T any](v T, err error) Result[T] {
	if err != nil {
		return Result[T]{e: err}
	}
	return Ok(v)
}

// IsOk reports whether r holds a value.
func (r Result[T]) IsOk() bool { return r.ok }

// IsErr reports whether r holds an error.
func (r Result[T]) IsErr() bool { return !r.ok }

// Value returns r's value, or T's zero value when r is Err.
func (r Result[T]) Value() T { return r.v }

// Err returns r's error, or nil when r is Ok. The zero Result returns
// ErrNoValue.
func (r Result[T]) Err() error {
	if r.ok {
		return nil
	}
	if r.e == nil {
		return ErrNoValue
	}
	return r.e
}

// Unwrap returns r as Go's (value, error) pair.
func (r Result[T]) Unwrap() (T, error) { return r.v, r.Err() }

// Or returns r's value when r is Ok and fallback otherwise.
func (r Result[T]) Or(fallback T) T {
	if r.ok {
		return r.v
	}
	return fallback
}

// String shows r as Ok(value) or Err(error).
func (r Result[T]) String() string {
	if r.ok {
		return fmt.Sprintf("Ok(%v)", r.v)
	}
	return fmt.Sprintf("Err(%v)", r.Err())
}

// Map applies f to r's value when r is Ok; an Err passes through unchanged.
func Map[T, U any](r Result[T], f func(T) U) Result[U] {
	if !r.ok {
		return Result[U]{e: r.Err()}
	}
	return Ok(f(r.v))
}

// Then chains a step that may fail: it returns f(value) when r is Ok, so the
// nested Result is flattened, and r's error otherwise.
func Then[T, U any](r Result[T], f func(T) Result[U]) Result[U] {
	if !r.ok {
		return Result[U]{e: r.Err()}
	}
	return f(r.v)
}

// Collect returns Ok with every value, in order, when all rs are Ok.
// Otherwise it returns Err with every error joined in order (errors.Join), so
// each stays reachable with errors.Is and errors.As. Collect of nothing is Ok
// with an empty slice.
func Collect[T any](rs ...Result[T]) Result[[]T] {
	var errs []error
	for _, r := range rs {
		if !r.ok {
			errs = append(errs, r.Err())
		}
	}
	if len(errs) > 0 {
		return Result[[]T]{e: errors.Join(errs...)}
	}
	vs := make([]T, len(rs))
	for i, r := range rs {
		vs[i] = r.v
	}
	return Ok(vs)
}

// All runs fns concurrently, each in its own goroutine, and returns their
// values in the order of fns. As soon as one fails, the context the others
// see is cancelled so they can stop early; the result is then Err with the
// first failure's error followed by the errors of the others that failed for
// reasons of their own, in the order of fns (an error that only reports the
// cancellation All caused is left out). All returns only after every function
// has returned, so no goroutine outlives it.
func All[T any](ctx context.Context, fns ...func(context.Context) Result[T]) Result[[]T] {
	inner, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rs := make([]Result[T], len(fns))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first = -1
	)
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := fn(inner)
			rs[i] = r
			if !r.ok {
				mu.Lock()
				if first < 0 {
					first = i
				}
				mu.Unlock()
				cancel(errSibling)
			}
		}()
	}
	wg.Wait()
	if first < 0 {
		vs := make([]T, len(rs))
		for i, r := range rs {
			vs[i] = r.v
		}
		return Ok(vs)
	}
	errs := []error{rs[first].Err()}
	for i, r := range rs {
		if r.ok || i == first {
			continue
		}
		err := r.Err()
		if ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, errSibling)) {
			continue // stopped because a sibling failed: not news
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return Result[[]T]{e: errs[0]}
	}
	return Result[[]T]{e: errors.Join(errs...)}
}

// errSibling is the cause of the context All cancels when one function fails.
var errSibling = errors.New("result: All cancelled: another function failed")
