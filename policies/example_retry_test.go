package policies_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// Do with Retry runs the operation again while it fails, and returns the
// first success or the last error.
func ExampleRetry() {
	attempts := 0
	fetch := func(ctx context.Context) (string, error) {
		attempts++
		if attempts < 3 {
			return "", errors.New("connection reset")
		}
		return "hello", nil
	}
	retry := policies.Retry{MaxAttempts: 3, Backoff: policies.Constant(time.Millisecond)}
	fmt.Println(policies.Do(context.Background(), fetch, retry), "after", attempts, "attempts")

	// Permanent stops retrying at once.
	attempts = 0
	reject := func(ctx context.Context) (string, error) {
		attempts++
		return "", policies.Permanent(errors.New("400 bad request"))
	}
	fmt.Println(policies.Do(context.Background(), reject, retry), "after", attempts, "attempt")
	// Output:
	// Ok(hello) after 3 attempts
	// Err(400 bad request) after 1 attempt
}

// An adapter that classifies outcomes itself asks Next what to do after each
// attempt: the wait is the longer of the backoff and what the callee asked
// for, and a callee asking for longer than MaxDelay ends the retries.
func ExampleRetry_Next() {
	retry := policies.Retry{MaxAttempts: 3, Backoff: policies.Constant(100 * time.Millisecond), MaxDelay: 10 * time.Second}
	ctx := context.Background()

	fmt.Printf("%+v\n", retry.Next(ctx, 1, true, 0))             // a 503 without Retry-After
	fmt.Printf("%+v\n", retry.Next(ctx, 1, true, 2*time.Second)) // a 429 with Retry-After: 2
	fmt.Printf("%+v\n", retry.Next(ctx, 1, true, 5*time.Minute)) // Retry-After: 300
	fmt.Printf("%+v\n", retry.Next(ctx, 1, false, 0))            // a 404
	fmt.Printf("%+v\n", retry.Next(ctx, 3, true, 0))             // the third attempt failed
	fmt.Println(retry.Next(ctx, 3, true, 0).Reason == policies.StopMaxAttempts)
	// Output:
	// {Retry:true Delay:100ms Reason:}
	// {Retry:true Delay:2s Reason:}
	// {Retry:false Delay:5m0s Reason:delay_too_long}
	// {Retry:false Delay:0s Reason:not_retryable}
	// {Retry:false Delay:0s Reason:max_attempts}
	// true
}

// One Budget shared by every Retry that calls the same service caps the extra
// load retries add when that service fails for everyone.
func ExampleBudget() {
	budget := &policies.Budget{Ratio: 0.1, MinPerSecond: 1, Window: 10 * time.Second}
	retry := policies.Retry{MaxAttempts: 5, Backoff: policies.Constant(0), Budget: budget}

	attempts := 0
	down := func(ctx context.Context) (int, error) {
		attempts++
		return 0, errors.New("503 service unavailable")
	}
	for range 100 {
		policies.Do(context.Background(), down, retry)
	}
	// Without the budget: 500 attempts. With it: 100 first attempts and
	// 0.1*100 + 1*10 = 20 retries.
	fmt.Println(attempts, "attempts")
	// Output:
	// 120 attempts
}
