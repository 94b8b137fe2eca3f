package clock_test

import (
	"context"
	"fmt"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// A test drives time with a Fake: it waits until the code under test is
// sleeping, then advances the clock instead of waiting.
func ExampleFake() {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)

	done := make(chan error)
	go func() {
		// The code under test: wait 5s between attempts.
		done <- fake.Sleep(context.Background(), 5*time.Second)
	}()

	_ = fake.BlockUntil(context.Background(), 1) // the sleeper's timer is armed
	fake.Advance(5 * time.Second)

	fmt.Println("slept:", <-done == nil)
	fmt.Println("elapsed:", fake.Since(start))
	// Output:
	// slept: true
	// elapsed: 5s
}
