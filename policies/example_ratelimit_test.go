package policies_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// A server limits each client to 3 requests per second, with a burst of 3:
// the fourth request at once is refused, and the decision says when to come
// back, ready for Retry-After and RateLimit headers.
func ExampleLimiter() {
	fake := clock.NewFake(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) // tests drive time; omit Clock in real code
	l := policies.NewLimiter(policies.RateLimit{Limit: 3, Window: time.Second, Clock: fake})
	ctx := context.Background()
	for range 4 {
		d, _ := l.Allow(ctx, "203.0.113.7")
		fmt.Printf("allowed=%v remaining=%d reset=%v retry-after=%v\n", d.Allowed, d.Remaining, d.Reset, d.RetryAfter)
	}
	fake.Advance(time.Second / 3)
	d, _ := l.Allow(ctx, "203.0.113.7")
	fmt.Println("a third of a second later:", d.Allowed)
	// Output:
	// allowed=true remaining=2 reset=333.333333ms retry-after=0s
	// allowed=true remaining=1 reset=666.666667ms retry-after=0s
	// allowed=true remaining=0 reset=1s retry-after=0s
	// allowed=false remaining=0 reset=1s retry-after=333.333333ms
	// a third of a second later: true
}

// A client was told by a server to stop until a time (a 429 with
// Retry-After): the limiter holds that host, even with no local limit, and
// a caller whose deadline comes sooner fails at once instead of sleeping.
func ExampleLimiter_Hold() {
	fake := clock.NewFake(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	l := policies.NewLimiter(policies.RateLimit{Clock: fake}) // no local limit
	l.Hold("api.example.com", fake.Now().Add(30*time.Second))

	ctx, cancel := context.WithDeadline(context.Background(), fake.Now().Add(5*time.Second))
	defer cancel()
	err := l.Wait(ctx, "api.example.com")
	wait, _ := policies.RetryAfter(err)
	fmt.Println(errors.Is(err, policies.ErrRateLimited), wait)

	fake.Advance(30 * time.Second)
	fmt.Println(l.Wait(context.Background(), "api.example.com"))
	// Output:
	// true 30s
	// <nil>
}

// Sliding windows never admit more than Limit in a window aligned on
// multiples of Window, and weigh the previous window's count as it slides
// out.
func ExampleLimiter_slidingWindow() {
	fake := clock.NewFake(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	l := policies.NewLimiter(policies.RateLimit{Limit: 4, Window: time.Minute, Algorithm: policies.SlidingWindow, Clock: fake})
	ctx := context.Background()
	admitted := 0
	for range 10 {
		if d, _ := l.Allow(ctx, "user-1"); d.Allowed {
			admitted++
		}
	}
	fmt.Println("first minute:", admitted)
	fake.Advance(90 * time.Second) // halfway through the next window: the 4 count as 2
	admitted = 0
	for range 10 {
		if d, _ := l.Allow(ctx, "user-1"); d.Allowed {
			admitted++
		}
	}
	fmt.Println("90s later:", admitted)
	// Output:
	// first minute: 4
	// 90s later: 2
}
