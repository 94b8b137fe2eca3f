package policies_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// Do runs any function under policies, the first outermost, and returns a
// Result: here a lookup that fails twice, retried inside a circuit breaker
// and a per-attempt timeout.
func ExampleDo() {
	attempts := 0
	lookup := func(ctx context.Context) (string, error) {
		attempts++
		if attempts < 3 {
			return "", errors.New("connection refused")
		}
		return "ada@example.com", nil
	}
	circuit := policies.NewCircuit(policies.Breaker{Name: "users"})
	r := policies.Do(context.Background(), lookup,
		policies.Retry{Backoff: policies.Constant(time.Millisecond)},
		circuit,
		policies.Timeout{After: time.Second},
	)
	fmt.Println(r, "after", attempts, "attempts; circuit", circuit.State())

	// An error marked Permanent is not retried.
	attempts = 0
	r = policies.Do(context.Background(), func(ctx context.Context) (string, error) {
		attempts++
		return "", policies.Permanent(errors.New("no such user"))
	}, policies.Retry{})
	fmt.Println(r, "after", attempts, "attempt")
	// Output:
	// Ok(ada@example.com) after 3 attempts; circuit closed
	// Err(no such user) after 1 attempt
}
