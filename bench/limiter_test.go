package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/sethvargo/go-limiter/memorystore"
	uberrate "go.uber.org/ratelimit"
	"golang.org/x/time/rate"

	"github.com/resilient-result/resilient/policies"
)

// BenchmarkLimiter is one admitted request through a single limiter whose
// rate is never reached: ours (policies.Limiter.Allow, one key), x/time/rate
// (Allow), uber-go/ratelimit (Take, WithoutSlack) and, for reference,
// failsafe-go's bursty rate limiter (TryAcquirePermit).
func BenchmarkLimiter(b *testing.B) {
	ctx := context.Background()
	benchOp(b, "resilient", func(b *testing.B) (func(), func()) {
		l := policies.NewLimiter(policies.RateLimit{Limit: hugeRate, Window: time.Second})
		return func() {
			d, err := l.Allow(ctx, "k")
			if err != nil || !d.Allowed {
				b.Errorf("refused: %+v %v", d, err)
			}
		}, nil
	})
	benchOp(b, "xrate", func(b *testing.B) (func(), func()) {
		l := rate.NewLimiter(rate.Limit(hugeRate), hugeRate)
		return func() {
			if !l.Allow() {
				b.Error("x/time/rate refused")
			}
		}, nil
	})
	benchOp(b, "uber", func(b *testing.B) (func(), func()) {
		l := uberrate.New(hugeRate, uberrate.WithoutSlack)
		return func() { l.Take() }, nil
	})
	benchOp(b, "failsafe", func(b *testing.B) (func(), func()) {
		l := ratelimiter.NewBursty[any](hugeRate, time.Second)
		return func() {
			if !l.TryAcquirePermit() {
				b.Error("failsafe refused")
			}
		}, nil
	})
}

// keyedSizes are the numbers of distinct keys BenchmarkKeyedLimiter cycles
// through.
var keyedSizes = []int{1, 1_000, 100_000}

// makeKeys returns n distinct client keys, built before any timing.
func makeKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("198.51.%d.%d", i/256, i%256)
	}
	return keys
}

// keyedOp returns an operation that takes one unit for the next key of keys
// with take; each parallel goroutine starts at a different key. Every key is
// taken once first (untimed), so that the timed loop sees known keys on
// both sides.
func keyedOp(keys []string, take func(key string)) func() {
	for _, k := range keys {
		take(k)
	}
	var next atomic.Uint64
	return func() {
		i := next.Add(1)
		take(keys[i%uint64(len(keys))])
	}
}

// BenchmarkKeyedLimiter is one admitted request for one key among 1, 1,000
// or 100,000: ours (policies.Limiter, default memory store and MaxKeys) vs
// sethvargo/go-limiter's memorystore (Take). Keys are prebuilt and the
// limit is never reached.
//
// Both sides get hugeRate tokens per hour, not per second: go-limiter
// refills delta*interval/tokens tokens per elapsed interval (capped at
// tokens), which rounds to 0 once tokens exceeds interval in nanoseconds,
// so with a per-second window it would start refusing after the first
// second. Per hour, its first bucket outlasts any benchmark run.
func BenchmarkKeyedLimiter(b *testing.B) {
	ctx := context.Background()
	for _, n := range keyedSizes {
		keys := makeKeys(n)
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			benchOp(b, "resilient", func(b *testing.B) (func(), func()) {
				l := policies.NewLimiter(policies.RateLimit{Limit: hugeRate, Window: time.Hour})
				return keyedOp(keys, func(key string) {
					d, err := l.Allow(ctx, key)
					if err != nil || !d.Allowed {
						b.Errorf("refused: %+v %v", d, err)
					}
				}), nil
			})
			benchOp(b, "golimiter", func(b *testing.B) (func(), func()) {
				s, err := memorystore.New(&memorystore.Config{Tokens: hugeRate, Interval: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				return keyedOp(keys, func(key string) {
						_, _, _, ok, err := s.Take(ctx, key)
						if err != nil || !ok {
							b.Errorf("go-limiter refused: %v", err)
						}
					}), func() {
						_ = s.Close(ctx)
					}
			})
		})
	}
}
