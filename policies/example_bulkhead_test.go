package policies_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resilient-result/resilient/policies"
)

// A bulkhead with one slot and no queue turns a second, concurrent call away
// at once, telling the caller when to come back.
func ExampleNewBulkhead() {
	db := policies.NewBulkhead(policies.Bulkhead{Name: "db", MaxConcurrent: 1})
	ctx := context.Background()

	_ = db.Execute(ctx, func(ctx context.Context) error {
		// The only slot is ours while this runs.
		err := db.Execute(ctx, func(context.Context) error { return nil })
		wait, _ := policies.RetryAfter(err)
		fmt.Println(errors.Is(err, policies.ErrBulkheadFull), wait)
		fmt.Println(err)
		return nil
	})
	fmt.Println("in flight after:", db.InFlight())
	// Output:
	// true 1s
	// policies: bulkhead is full (db): retry after 1s
	// in flight after: 0
}

// Acquire and Release bracket work that cannot be wrapped in a function;
// Release must run exactly once for every successful Acquire.
func ExampleCompartment_Acquire() {
	bh := policies.NewBulkhead(policies.Bulkhead{MaxConcurrent: 2})
	ctx := context.Background()

	if err := bh.Acquire(ctx); err != nil {
		fmt.Println("rejected:", err)
		return
	}
	defer bh.Release()
	fmt.Println("in flight:", bh.InFlight())
	// Output:
	// in flight: 1
}

// Reconfigure changes the limits of a live bulkhead and keeps its state.
func ExampleCompartment_Reconfigure() {
	bh := policies.NewBulkhead(policies.Bulkhead{MaxConcurrent: 1})
	fmt.Println(bh.TryAcquire(), bh.TryAcquire())

	if err := bh.Reconfigure(policies.Bulkhead{MaxConcurrent: 2}); err != nil {
		fmt.Println(err)
	}
	fmt.Println(bh.TryAcquire(), bh.InFlight())
	bh.Release()
	bh.Release()

	fmt.Println(bh.Reconfigure(policies.Bulkhead{MaxQueue: -1}))
	// Output:
	// true false
	// true 2
	// policies: Bulkhead.MaxQueue must be >= 0, got -1
}
