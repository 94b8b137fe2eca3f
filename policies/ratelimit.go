package policies

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// Algorithm selects how a Limiter counts requests.
type Algorithm uint8

// The algorithms.
const (
	// TokenBucket (the default) refills Limit tokens per Window, evenly, into
	// a bucket of Burst tokens; each request takes one. A quiet key may send
	// Burst requests at once, then Limit per Window. The memory store keeps
	// it as GCRA (the generic cell rate algorithm): one theoretical arrival
	// time per key, in exact integer nanoseconds, with the same semantics.
	// Time counts in whole nanoseconds: a token due within a nanosecond is
	// there during it.
	TokenBucket Algorithm = iota
	// SlidingWindow counts requests in fixed windows aligned on multiples of
	// Window (since the Unix epoch) and admits a request while
	// prev*(1-elapsed/Window) + curr stays within Limit, where prev and curr
	// are the previous and current windows' counts. No aligned window ever
	// admits more than Limit; Burst is ignored.
	SlidingWindow
)

// String returns "token_bucket" or "sliding_window".
func (a Algorithm) String() string {
	switch a {
	case TokenBucket:
		return "token_bucket"
	case SlidingWindow:
		return "sliding_window"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// RateLimit configures a Limiter. Its zero value imposes no local limit: it
// admits everything except keys a server asked to hold (see Limiter.Hold).
type RateLimit struct {
	// Limit is the number of requests admitted per Window. 0 (the default)
	// means no local limit: Allow always admits, but held keys are still
	// refused until their hold ends, so a server's announcements are obeyed.
	Limit int
	// Window is the period Limit applies to; 0 means 1s.
	Window time.Duration
	// Burst is the token bucket's capacity: how many requests a quiet key may
	// send at once. 0 means Limit. SlidingWindow ignores it.
	Burst int
	// Algorithm is TokenBucket (the default) or SlidingWindow.
	Algorithm Algorithm
	// Store keeps the per-key state. nil means an in-memory store of MaxKeys
	// keys (NewMemoryStore), private to the Limiter; pass a shared store (such
	// as a Redis one) to limit across processes.
	Store Store
	// MaxKeys bounds the keys kept in memory: by the default store, and by the
	// Limiter's table of held keys. 0 means 100_000. When full, idle keys
	// (whose state is back to that of a new key) are evicted first, else the
	// least recently seen of a small sample.
	MaxKeys int
	// Name identifies the limiter in events and errors; default "".
	Name string
	// Observer receives EventReject, EventAdmit (after Wait waited; Delay is
	// the wait) and EventHold; nil means none.
	Observer Observer
	// Clock tells the time; nil means the real clock.
	Clock clock.Clock
}

// limDefaultMaxKeys is MaxKeys' default.
const limDefaultMaxKeys = 100_000

// Validate reports the first invalid field, naming it.
func (r RateLimit) Validate() error {
	switch {
	case r.Limit < 0:
		return fmt.Errorf("policies: RateLimit.Limit must be >= 0, got %d", r.Limit)
	case r.Window < 0:
		return fmt.Errorf("policies: RateLimit.Window must be >= 0, got %v", r.Window)
	case r.Burst < 0:
		return fmt.Errorf("policies: RateLimit.Burst must be >= 0, got %d", r.Burst)
	case r.Algorithm > SlidingWindow:
		return fmt.Errorf("policies: RateLimit.Algorithm must be TokenBucket or SlidingWindow, got %v", r.Algorithm)
	case r.MaxKeys < 0:
		return fmt.Errorf("policies: RateLimit.MaxKeys must be >= 0, got %d", r.MaxKeys)
	}
	return nil
}

// Quota is the resolved configuration a Store applies: Limit > 0 requests
// per Window > 0, with a bucket of Burst > 0 tokens for TokenBucket.
type Quota struct {
	Limit     int           // requests admitted per Window
	Window    time.Duration // the period Limit applies to
	Burst     int           // token bucket capacity (TokenBucket only)
	Algorithm Algorithm     // how the Store counts
}

// capacity is the largest n one request may take.
func (q Quota) capacity() int {
	if q.Algorithm == SlidingWindow {
		return q.Limit
	}
	return q.Burst
}

// LimitDecision is one answer of a limiter, with what a server needs for its
// rate-limit headers. It is a plain value: deciding allocates nothing.
type LimitDecision struct {
	// Allowed reports whether the request was admitted (and its units taken).
	Allowed bool
	// Limit is the quota's Limit (requests per Window), for headers; 0 when
	// there is no local limit.
	Limit int
	// Remaining is the number of units left after this decision, >= 0.
	Remaining int
	// Reset is the time until the quota is whole again: for TokenBucket until
	// Remaining == Burst, for SlidingWindow the end of the current window; for
	// a held key the end of the hold.
	Reset time.Duration
	// RetryAfter is, when refused, the time until n units are available (or
	// the hold ends); 0 when allowed.
	RetryAfter time.Duration
}

// Store keeps per-key limiter state. One Take is one atomic decision, so a
// Redis store can implement it with a single Lua call; such a store may
// ignore now and use the server's time, so that many processes agree. Stores
// are safe for concurrent use.
//
// Take takes n units for key under quota q at time now, if they are
// available, and reports the decision. The Limiter calls it only with
// q.Limit > 0 and 0 <= n <= capacity (Burst for TokenBucket, Limit for
// SlidingWindow); n == 0 reports the state without taking anything. A
// refused LimitDecision must carry RetryAfter > 0. An error means no decision was
// made (the store is unreachable, for example).
type Store interface {
	Take(ctx context.Context, key string, n int, q Quota, now time.Time) (LimitDecision, error)
}

// Limiter limits the rate of requests per key: a host on the client side,
// a client on the server side. Build it with NewLimiter; it is safe for
// concurrent use.
//
// It has three entry points. AllowN (and Allow) decide at once and never
// block: a server answers 429 when Allowed is false. Wait blocks until the
// request is admitted, or fails at once with ErrRateLimited when the wait
// would outlive ctx's deadline. Execute, the Policy, waits like Wait under
// the key "" and then runs the operation.
//
// Hold records what a server announced ("no more until t"): until then every
// call for that key is refused (or waits), whatever the local quota says,
// even with no local limit.
//
// Waiters are not queued: each one retries when its RetryAfter has passed,
// so under contention a waiter may wait more than once. Wait does not take
// units in advance, which keeps the Store a single atomic Take.
type Limiter struct {
	cfg atomic.Pointer[limConfig] // resolved options; swapped by Reconfigure

	mu  sync.Mutex   // serialises Reconfigure
	mem *MemoryStore // the default store, kept across Reconfigure

	holdMu sync.RWMutex
	holds  map[string]time.Time // key -> hold end; expired ends dropped lazily
	nholds atomic.Int64         // len(holds): lets calls skip holdMu when 0
}

// limConfig is a Limiter's immutable, resolved configuration.
type limConfig struct {
	q       Quota // q.Limit == 0: no local limit
	maxKeys int
	store   Store
	mem     *MemoryStore // store, when it is one: called directly
	lq      *limQuota    // q resolved by mem, when mem is set and q.Limit > 0
	cap     int          // q.capacity()
	name    string
	obs     Observer
	clk     clock.Clock
	// base is a reading of clk; the time is base plus clk.Since(base),
	// which reads only the monotonic clock: half the cost of Now. It is
	// renewed every limRebase, so the wall time it gives never drifts.
	base   time.Time
	baseNs int64 // base.UnixNano()
}

// limRebase is how long a limConfig's base serves.
const limRebase = time.Second

// now returns the time, and the configuration to decide with: c, or c with
// a new base (made current unless Reconfigure came first).
func (l *Limiter) now(c *limConfig) (*limConfig, time.Duration) {
	el := c.clk.Since(c.base)
	if el <= limRebase {
		return c, el
	}
	n := *c
	n.base = c.clk.Now()
	n.baseNs = n.base.UnixNano()
	l.cfg.CompareAndSwap(c, &n)
	return &n, 0
}

var _ Policy = (*Limiter)(nil)

// NewLimiter returns a Limiter with the options r. It panics with
// r.Validate's message when r is invalid.
func NewLimiter(r RateLimit) *Limiter {
	l := &Limiter{}
	if err := l.Reconfigure(r); err != nil {
		panic(err.Error())
	}
	return l
}

// Reconfigure validates r and, when valid, makes it the Limiter's
// configuration while keeping its state: counts, tokens and holds carry
// over, and a new quota applies to them from now on (switching Algorithm
// starts each key afresh). With r.Store nil the Limiter keeps its own memory
// store, resized to r.MaxKeys (shrinking evicts lazily, as keys arrive); a
// different Store starts from that store's state.
func (l *Limiter) Reconfigure(r RateLimit) error {
	if err := r.Validate(); err != nil {
		return err
	}
	c := &limConfig{
		q: Quota{
			Limit:     r.Limit,
			Window:    r.Window,
			Burst:     r.Burst,
			Algorithm: r.Algorithm,
		},
		maxKeys: r.MaxKeys,
		store:   r.Store,
		name:    r.Name,
		obs:     r.Observer,
		clk:     clock.Or(r.Clock),
	}
	c.base = c.clk.Now()
	c.baseNs = c.base.UnixNano()
	if c.q.Window == 0 {
		c.q.Window = time.Second
	}
	if c.q.Burst == 0 {
		c.q.Burst = c.q.Limit
	}
	if c.maxKeys == 0 {
		c.maxKeys = limDefaultMaxKeys
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.store == nil {
		if l.mem == nil {
			l.mem = NewMemoryStore(c.maxKeys)
		} else {
			l.mem.setMaxKeys(c.maxKeys)
		}
		c.store = l.mem
	}
	c.mem, _ = c.store.(*MemoryStore)
	if c.mem != nil && c.q.Limit > 0 {
		c.lq = c.mem.quota(c.q)
	}
	c.cap = c.q.capacity()
	l.cfg.Store(c)
	return nil
}

// Allow is AllowN(ctx, key, 1).
func (l *Limiter) Allow(ctx context.Context, key string) (LimitDecision, error) {
	return l.AllowN(ctx, key, 1)
}

// AllowN decides at once whether n units may be taken for key now, and
// takes them if so. A held key is refused with RetryAfter the time left in
// its hold. With no local limit (Limit 0) every key that is not held is
// admitted with LimitDecision{Allowed: true} (Limit and Remaining 0). n == 0
// reports the state without taking anything. It emits EventReject when it
// refuses.
//
// The error is the Store's, or one wrapping ErrRateLimited (without a wait)
// when n is negative or can never be admitted (more than Burst, or than
// Limit for SlidingWindow).
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (LimitDecision, error) {
	c, el := l.now(l.cfg.Load())
	var d LimitDecision
	var err error
	if c.lq != nil && uint(n) <= uint(c.cap) && l.nholds.Load() == 0 {
		// The common case: decide's last step, without its checks.
		c.mem.take(&d, key, n, c.lq, c.baseNs+int64(el))
	} else {
		d, err = l.decide(ctx, c, key, n, el)
	}
	if err == nil && !d.Allowed {
		c.rejected(key, d.RetryAfter)
	}
	return d, err
}

// rejected emits EventReject; apart, to keep AllowN's frame small.
//
//go:noinline
func (c *limConfig) rejected(key string, wait time.Duration) {
	emit(c.obs, Event{Kind: KindRateLimit, Name: c.name, Key: key, Type: EventReject, Delay: wait})
}

// decide is AllowN without events, at c.base plus el.
func (l *Limiter) decide(ctx context.Context, c *limConfig, key string, n int, el time.Duration) (LimitDecision, error) {
	if l.nholds.Load() > 0 {
		if left, held := l.holdLeft(key, c.base.Add(el)); held {
			return LimitDecision{Limit: c.q.Limit, Reset: left, RetryAfter: left}, nil
		}
	}
	if n < 0 {
		return LimitDecision{Limit: c.q.Limit}, fmt.Errorf("policies: rate limit n must be >= 0, got %d: %w", n, ErrRateLimited)
	}
	if c.q.Limit == 0 {
		return LimitDecision{Allowed: true}, nil
	}
	if n > c.cap {
		return LimitDecision{Limit: c.q.Limit}, fmt.Errorf("policies: rate limit n=%d exceeds the capacity %d (%v): %w", n, c.cap, c.q.Algorithm, ErrRateLimited)
	}
	if c.lq != nil {
		var d LimitDecision
		c.mem.take(&d, key, n, c.lq, c.baseNs+int64(el))
		return d, nil
	}
	return c.store.Take(ctx, key, n, c.q, c.base.Add(el))
}

// Wait blocks until one unit for key is admitted and taken, sleeping on the
// Clock. When the wait needed would end after ctx's deadline (read against
// the Clock), it fails at once with a *RejectedError wrapping ErrRateLimited
// whose Wait (see RetryAfter) says how long it would have been, and emits
// EventReject: no one sleeps past a deadline. When ctx ends while waiting it
// returns ctx's cause; on a Store error it returns that error. After waiting
// it emits EventAdmit with the time waited.
func (l *Limiter) Wait(ctx context.Context, key string) error {
	var start time.Time
	for waited := false; ; waited = true {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		c, el := l.now(l.cfg.Load())
		now := c.base.Add(el)
		if !waited {
			start = now
		}
		d, err := l.decide(ctx, c, key, 1, el)
		if err != nil {
			return err
		}
		if d.Allowed {
			if waited {
				emit(c.obs, Event{Kind: KindRateLimit, Name: c.name, Key: key, Type: EventAdmit, Delay: now.Sub(start)})
			}
			return nil
		}
		wait := d.RetryAfter
		if wait <= 0 { // a Store breaking its contract: wait for one unit
			wait = max(c.q.Window/time.Duration(max(c.q.Limit, 1)), time.Nanosecond)
		}
		if dl, ok := ctx.Deadline(); ok && now.Add(wait).After(dl) {
			emit(c.obs, Event{Kind: KindRateLimit, Name: c.name, Key: key, Type: EventReject, Delay: wait})
			return &RejectedError{Kind: KindRateLimit, Name: c.name, Key: key, Wait: wait, Err: ErrRateLimited}
		}
		if err := c.clk.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// Execute waits like Wait under the key "" and then runs op. It implements
// Policy.
func (l *Limiter) Execute(ctx context.Context, op func(context.Context) error) error {
	if err := l.Wait(ctx, ""); err != nil {
		return err
	}
	return op(ctx)
}

// Hold refuses every call for key until until, as a server announced (a 429
// with Retry-After, remaining=0 until the reset). A later Hold extends the
// hold, never shortens it; an until not after now does nothing. It emits
// EventHold, with the hold's length as Delay, when the hold is set or
// extended. Held keys are bounded by MaxKeys: when full, expired holds go
// first, else those ending soonest.
func (l *Limiter) Hold(key string, until time.Time) {
	c := l.cfg.Load()
	now := c.clk.Now()
	if !until.After(now) {
		return
	}
	l.holdMu.Lock()
	cur, ok := l.holds[key]
	if ok && !until.After(cur) {
		l.holdMu.Unlock()
		return
	}
	if !ok {
		if l.holds == nil {
			l.holds = make(map[string]time.Time)
		}
		if len(l.holds) >= c.maxKeys {
			l.limEvictHoldLocked(now)
		}
		key = strings.Clone(key)
		l.nholds.Add(1)
	}
	l.holds[key] = until
	l.holdMu.Unlock()
	emit(c.obs, Event{Kind: KindRateLimit, Name: c.name, Key: key, Type: EventHold, Delay: until.Sub(now)})
}

// HeldUntil reports when key's hold ends, and whether key is held now.
func (l *Limiter) HeldUntil(key string) (time.Time, bool) {
	if l.nholds.Load() == 0 {
		return time.Time{}, false
	}
	now := l.cfg.Load().clk.Now()
	left, held := l.holdLeft(key, now)
	if !held {
		return time.Time{}, false
	}
	return now.Add(left), true
}

// holdLeft reports the time left in key's hold at now, dropping an expired
// hold.
func (l *Limiter) holdLeft(key string, now time.Time) (time.Duration, bool) {
	l.holdMu.RLock()
	until, ok := l.holds[key]
	l.holdMu.RUnlock()
	if !ok {
		return 0, false
	}
	if left := until.Sub(now); left > 0 {
		return left, true
	}
	l.holdMu.Lock()
	if cur, ok := l.holds[key]; ok && !cur.After(now) {
		delete(l.holds, key)
		l.nholds.Add(-1)
	}
	l.holdMu.Unlock()
	return 0, false
}

// limHoldSample bounds the work of one eviction from the hold table.
const limHoldSample = 64

// limEvictHoldLocked makes room for one hold: it drops the expired holds
// among a sample (Go's map iteration starts at random), or else the one of
// the sample that ends soonest.
func (l *Limiter) limEvictHoldLocked(now time.Time) {
	var (
		soonest    string
		soonestEnd time.Time
		have       bool
		dropped    bool
		i          int
	)
	for k, until := range l.holds {
		if !until.After(now) {
			delete(l.holds, k)
			l.nholds.Add(-1)
			dropped = true
		} else if !have || until.Before(soonestEnd) {
			soonest, soonestEnd, have = k, until, true
		}
		if i++; i == limHoldSample {
			break
		}
	}
	if !dropped && have {
		delete(l.holds, soonest)
		l.nholds.Add(-1)
	}
}
