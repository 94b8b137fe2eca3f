package policies

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// Budget is a retry budget, as in Envoy and Finagle: it caps retries at a
// fraction of recent traffic, so when a callee fails for everyone retries add
// at most Ratio more load instead of multiplying it by Retry.MaxAttempts.
//
// Over the last Window it allows
//
//	Ratio*requests + MinPerSecond*Window.Seconds()
//
// retries, where requests counts first attempts (Request) and retries counts
// the retries it allowed (AllowRetry). The MinPerSecond floor lets a quiet
// client still retry. Time is counted in whole seconds: the window covers the
// current second and the ceil(Window/1s)-1 before it, and keeps 16 bytes per
// second of Window.
//
// One *Budget is meant to be shared by every Retry that calls the same
// callee; it is safe for concurrent use. Its zero value is ready to use with
// the defaults; its fields must not change once it is in use. A nil *Budget
// allows every retry.
type Budget struct {
	Ratio        float64       // retries allowed as a fraction of requests in Window; 0 means 0.2
	MinPerSecond int           // retries always allowed per second regardless of traffic; 0 means 10
	Window       time.Duration // how far back requests and retries are counted; 0 means 10s
	Clock        clock.Clock   // nil means the wall clock

	mu       sync.Mutex
	buckets  []budgetBucket // a ring of one-second buckets; nil until first use
	head     int64          // the second (Unix time) of the newest bucket
	requests int64          // requests in the ring
	retries  int64          // retries in the ring
	ratio    float64        // Ratio with its default, fixed at first use
	floor    float64        // MinPerSecond*Window.Seconds(), fixed at first use
}

// budgetBucket counts one second.
type budgetBucket struct{ requests, retries int64 }

// Validate reports a negative or non-finite Ratio, a negative MinPerSecond
// or a negative Window. A nil *Budget is valid.
func (b *Budget) Validate() error {
	switch {
	case b == nil:
		return nil
	case b.Ratio < 0 || math.IsNaN(b.Ratio) || math.IsInf(b.Ratio, 0):
		return fmt.Errorf("policies: Budget.Ratio must be a finite number >= 0, got %v", b.Ratio)
	case b.MinPerSecond < 0:
		return fmt.Errorf("policies: Budget.MinPerSecond must be >= 0, got %d", b.MinPerSecond)
	case b.Window < 0:
		return fmt.Errorf("policies: Budget.Window must be >= 0, got %v", b.Window)
	}
	return nil
}

// Request records one request: a first attempt, which earns Ratio retries.
// Call it once per call, not per attempt. It does nothing on a nil *Budget.
func (b *Budget) Request() {
	if b == nil {
		return
	}
	now := clock.Or(b.Clock).Now()
	b.mu.Lock()
	b.advanceLocked(now)
	b.requests++
	b.buckets[b.slot(b.head)].requests++
	b.mu.Unlock()
}

// AllowRetry reports whether one more retry fits in the budget and, if it
// does, records it: it allows the retry when retries+1 <= Ratio*requests +
// MinPerSecond*Window.Seconds() over the window. A nil *Budget allows every
// retry.
func (b *Budget) AllowRetry() bool {
	if b == nil {
		return true
	}
	now := clock.Or(b.Clock).Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advanceLocked(now)
	if float64(b.retries+1) > b.ratio*float64(b.requests)+b.floor {
		return false
	}
	b.retries++
	b.buckets[b.slot(b.head)].retries++
	return true
}

// advanceLocked initialises the ring on first use and moves it forward to the
// second now falls in, dropping the seconds that left the window. A clock that
// steps back is counted in the newest bucket.
func (b *Budget) advanceLocked(now time.Time) {
	sec := now.Unix()
	if b.buckets == nil {
		b.initLocked(sec)
		return
	}
	n := int64(len(b.buckets))
	if sec <= b.head {
		return
	}
	if sec-b.head >= n {
		clear(b.buckets)
		b.requests, b.retries = 0, 0
	} else {
		for s := b.head + 1; s <= sec; s++ {
			old := &b.buckets[b.slot(s)]
			b.requests -= old.requests
			b.retries -= old.retries
			*old = budgetBucket{}
		}
	}
	b.head = sec
}

// initLocked fixes the configuration with its defaults and makes the ring.
func (b *Budget) initLocked(sec int64) {
	b.ratio = b.Ratio
	if b.ratio == 0 {
		b.ratio = 0.2
	}
	perSecond := b.MinPerSecond
	if perSecond == 0 {
		perSecond = 10
	}
	window := b.Window
	if window == 0 {
		window = 10 * time.Second
	}
	b.floor = float64(perSecond) * window.Seconds()
	n := window / time.Second
	if window%time.Second > 0 {
		n++
	}
	b.buckets = make([]budgetBucket, max(n, 1))
	b.head = sec
}

// slot returns the ring index of second sec.
func (b *Budget) slot(sec int64) int {
	n := int64(len(b.buckets))
	return int(((sec % n) + n) % n)
}
