package policies

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff says how long to wait before the next attempt. attempt is the
// attempt that just failed, counted from 1. Implementations must be safe for
// concurrent use; Retry clamps what they return to [0, Retry.MaxDelay].
type Backoff interface {
	Delay(attempt int) time.Duration
}

// The defaults of ExponentialBackoff and DecorrelatedBackoff, and so of
// Retry.Backoff.
const (
	defaultBackoffBase = 100 * time.Millisecond
	defaultBackoffMax  = 10 * time.Second
)

// ConstantBackoff waits the same time before every retry.
type ConstantBackoff time.Duration

// Constant returns a Backoff that always waits d. Constant(0) retries at once.
func Constant(d time.Duration) Backoff { return ConstantBackoff(d) }

// Delay returns the constant wait.
func (c ConstantBackoff) Delay(int) time.Duration { return time.Duration(c) }

// ExponentialBackoff is exponential backoff with full jitter: after attempt n
// it waits a uniformly random time in [0, min(Max, Base*2^(n-1))]. Jitter
// spreads the retries of many clients that failed together, so they do not
// return together. Its zero value is the default Backoff of Retry.
type ExponentialBackoff struct {
	Base time.Duration // the first window's upper bound; 0 means 100ms
	Max  time.Duration // the cap of the window's growth; 0 means 10s
	// Rand returns a uniform random number in [0, n) for n > 0; nil means
	// math/rand/v2's Int64N. Set it in tests to make the jitter predictable.
	Rand func(n int64) int64
}

// Exponential returns exponential backoff with full jitter: after attempt n
// it waits a uniformly random time in [0, min(max, base*2^(n-1))]. A zero base
// means 100ms and a zero max means 10s.
func Exponential(base, max time.Duration) Backoff {
	return ExponentialBackoff{Base: base, Max: max}
}

// Delay returns a random wait in [0, min(Max, Base*2^(attempt-1))]. It never
// overflows: a huge attempt gives a wait in [0, Max].
func (e ExponentialBackoff) Delay(attempt int) time.Duration {
	base, hi := backoffBounds(e.Base, e.Max)
	if shift := attempt - 1; shift > 0 {
		if shift < 63 && base <= hi>>shift {
			base <<= shift
		} else {
			base = hi
		}
	}
	return time.Duration(uniform(e.Rand, 0, min(base, hi)))
}

// DecorrelatedBackoff is decorrelated jitter in its stateless form: after
// attempt n it waits a uniformly random time in [Base, min(Max, Base*3^n)].
//
// The classic decorrelated jitter (AWS Architecture Blog, "Exponential
// Backoff And Jitter") draws each wait from [Base, 3*previous wait], so it
// needs the previous wait. A Backoff sees only the attempt number and may be
// shared by concurrent calls, so this form grows the window from Base
// instead: its waits are never below Base and grow about as fast, but do not
// depend on the previous draw.
type DecorrelatedBackoff struct {
	Base time.Duration // the shortest wait; 0 means 100ms
	Max  time.Duration // the longest wait; 0 means 10s
	// Rand returns a uniform random number in [0, n) for n > 0; nil means
	// math/rand/v2's Int64N. Set it in tests to make the jitter predictable.
	Rand func(n int64) int64
}

// Decorrelated returns decorrelated jitter in its stateless form (see
// DecorrelatedBackoff): after attempt n it waits a uniformly random time in
// [base, min(max, base*3^n)]. A zero base means 100ms and a zero max means
// 10s.
func Decorrelated(base, max time.Duration) Backoff {
	return DecorrelatedBackoff{Base: base, Max: max}
}

// Delay returns a random wait in [Base, min(Max, Base*3^attempt)]; when Max
// is below Base it returns Max. It never overflows.
func (d DecorrelatedBackoff) Delay(attempt int) time.Duration {
	base, hi := backoffBounds(d.Base, d.Max)
	if base >= hi {
		return time.Duration(hi)
	}
	top := base
	for range max(attempt, 1) {
		if top > hi/3 {
			top = hi
			break
		}
		top *= 3
	}
	return time.Duration(uniform(d.Rand, base, min(top, hi)))
}

// backoffBounds applies the defaults of a jittered backoff's Base and Max and
// treats negative values as 0.
func backoffBounds(base, hi time.Duration) (int64, int64) {
	if base == 0 {
		base = defaultBackoffBase
	}
	if hi == 0 {
		hi = defaultBackoffMax
	}
	return int64(max(base, 0)), int64(max(hi, 0))
}

// uniform returns a random number in [lo, hi], both included, drawn with
// rnd (rand.Int64N when nil). It assumes 0 <= lo <= hi.
func uniform(rnd func(int64) int64, lo, hi int64) int64 {
	span := hi - lo
	if span <= 0 {
		return lo
	}
	if rnd == nil {
		rnd = rand.Int64N
	}
	if span < math.MaxInt64 {
		span++ // include hi
	}
	return lo + rnd(span)
}
