package result_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/resilient-result/resilient/result"
)

func ExampleOf() {
	n := result.Of(strconv.Atoi("42"))
	fmt.Println(n, n.Or(0))

	bad := result.Of(strconv.Atoi("forty-two"))
	fmt.Println(bad.IsErr(), bad.Or(0))

	// Back to plain Go.
	v, err := n.Unwrap()
	fmt.Println(v, err)
	// Output:
	// Ok(42) 42
	// true 0
	// 42 <nil>
}

func ExampleMap() {
	double := func(n int) int { return n * 2 }
	fmt.Println(result.Map(result.Ok(21), double))
	fmt.Println(result.Map(result.Err[int](errors.New("boom")), double))
	// Output:
	// Ok(42)
	// Err(boom)
}

func ExampleThen() {
	parse := func(s string) result.Result[int] { return result.Of(strconv.Atoi(s)) }
	positive := func(n int) result.Result[int] {
		if n <= 0 {
			return result.Err[int](fmt.Errorf("%d is not positive", n))
		}
		return result.Ok(n)
	}

	fmt.Println(result.Then(result.Then(result.Ok("42"), parse), positive))
	fmt.Println(result.Then(result.Then(result.Ok("-1"), parse), positive))
	// Output:
	// Ok(42)
	// Err(-1 is not positive)
}

func ExampleCollect() {
	fmt.Println(result.Collect(result.Ok(1), result.Ok(2), result.Ok(3)))

	errA, errB := errors.New("a failed"), errors.New("b failed")
	r := result.Collect(result.Ok(1), result.Err[int](errA), result.Err[int](errB))
	fmt.Println(errors.Is(r.Err(), errA), errors.Is(r.Err(), errB))
	fmt.Println(r.Err())
	// Output:
	// Ok([1 2 3])
	// true true
	// a failed
	// b failed
}

func ExampleAll() {
	fetch := func(name string) func(context.Context) result.Result[string] {
		return func(ctx context.Context) result.Result[string] {
			return result.Ok("hello " + name)
		}
	}
	fmt.Println(result.All(context.Background(), fetch("a"), fetch("b"), fetch("c")).Value())

	// One failure cancels the others and is the error All returns.
	r := result.All(context.Background(),
		func(ctx context.Context) result.Result[string] {
			<-ctx.Done() // a slow call, stopped early
			return result.Err[string](ctx.Err())
		},
		func(ctx context.Context) result.Result[string] {
			return result.Err[string](errors.New("b: connection refused"))
		},
	)
	fmt.Println(r)
	// Output:
	// [hello a hello b hello c]
	// Err(b: connection refused)
}

func ExampleErr() {
	// A forgotten error never looks like success.
	r := result.Err[int](nil)
	fmt.Println(r.IsOk(), errors.Is(r.Err(), result.ErrNoValue))

	var zero result.Result[int]
	fmt.Println(zero)
	// Output:
	// false true
	// Err(result: Err with a nil error)
}
