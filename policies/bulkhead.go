package policies

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// Bulkhead limits how many operations run at once, so one slow dependency
// cannot take every goroutine, connection or handler with it. Its zero value
// admits 100 operations at once and rejects the 101st at once.
//
// Calls beyond MaxConcurrent wait in a first-in, first-out queue of at most
// MaxQueue callers, for at most QueueTimeout; a call that finds the queue
// full, or whose wait runs out, is rejected with a *RejectedError wrapping
// ErrBulkheadFull that asks the caller to retry after RetryAfter.
//
// Bulkhead holds options only; NewBulkhead builds the runtime Compartment.
// A Bulkhead is not a rate limiter: it bounds concurrency, not the rate of
// calls.
type Bulkhead struct {
	// MaxConcurrent is how many operations may run at once; 0 means 100.
	MaxConcurrent int
	// MaxQueue is how many callers may wait for a slot; 0 means none: a call
	// that finds every slot taken is rejected at once.
	MaxQueue int
	// QueueTimeout is the longest a caller waits in the queue; 0 means until
	// the caller's context ends.
	QueueTimeout time.Duration
	// RetryAfter is the wait a rejection suggests to the caller (an HTTP
	// server sends it as Retry-After); 0 means 1s.
	RetryAfter time.Duration
	// Name names the bulkhead in events and errors; default "".
	Name string
	// Observer receives EventAdmit, EventRelease and EventReject; nil means
	// none.
	Observer Observer
	// Clock times the queue; nil means the real clock.
	Clock clock.Clock
}

// The defaults a zero Bulkhead field stands for.
const (
	bhDefaultMaxConcurrent = 100
	bhDefaultRetryAfter    = time.Second
)

// Validate reports the first negative field, naming it.
func (b Bulkhead) Validate() error {
	switch {
	case b.MaxConcurrent < 0:
		return fmt.Errorf("policies: Bulkhead.MaxConcurrent must be >= 0, got %d", b.MaxConcurrent)
	case b.MaxQueue < 0:
		return fmt.Errorf("policies: Bulkhead.MaxQueue must be >= 0, got %d", b.MaxQueue)
	case b.QueueTimeout < 0:
		return fmt.Errorf("policies: Bulkhead.QueueTimeout must be >= 0, got %v", b.QueueTimeout)
	case b.RetryAfter < 0:
		return fmt.Errorf("policies: Bulkhead.RetryAfter must be >= 0, got %v", b.RetryAfter)
	}
	return nil
}

// bhResolve returns b with every zero field replaced by its default. b must
// be valid.
func bhResolve(b Bulkhead) *Bulkhead {
	if b.MaxConcurrent == 0 {
		b.MaxConcurrent = bhDefaultMaxConcurrent
	}
	if b.RetryAfter == 0 {
		b.RetryAfter = bhDefaultRetryAfter
	}
	b.Clock = clock.Or(b.Clock)
	return &b
}

// Compartment is the runtime bulkhead built by NewBulkhead: a counting
// semaphore with a bounded FIFO queue. It is safe for concurrent use.
//
// Most callers want Execute, which takes a slot, runs the operation and gives
// the slot back, even when the operation panics. Acquire and Release are the
// two halves of it for callers that cannot wrap their work in a function;
// TryAcquire takes a slot only if one is free right now.
//
// A freed slot goes straight to the caller that has waited longest (no
// barging): a new caller never overtakes the queue. Taking a free slot when
// no one waits allocates nothing.
type Compartment struct {
	cfg atomic.Pointer[Bulkhead] // resolved options; swapped by Reconfigure

	mu       sync.Mutex
	inFlight int       // slots held
	queued   int       // waiters in the list
	head     *bhWaiter // longest waiting
	tail     *bhWaiter
}

var _ Policy = (*Compartment)(nil)

// bhWaiter is one caller waiting in a Compartment's queue.
type bhWaiter struct {
	ready      chan struct{} // cap 1; receives once the slot is handed over
	granted    bool          // guarded by mu: the slot is this waiter's
	prev, next *bhWaiter     // guarded by mu
}

// NewBulkhead returns a Compartment with the options b. It panics with
// b.Validate's message when b is invalid.
func NewBulkhead(b Bulkhead) *Compartment {
	if err := b.Validate(); err != nil {
		panic(err.Error())
	}
	c := &Compartment{}
	c.cfg.Store(bhResolve(b))
	return c
}

// Options returns the options in force, with every default filled in.
func (c *Compartment) Options() Bulkhead { return *c.cfg.Load() }

// Reconfigure replaces the options and keeps the state: operations in flight
// and callers in the queue stay. Raising MaxConcurrent admits waiting callers
// at once; lowering it admits no one until enough slots are released;
// lowering MaxQueue turns away only later callers. A waiter keeps the
// QueueTimeout it started with. An invalid b changes nothing and its error is
// returned.
func (c *Compartment) Reconfigure(b Bulkhead) error {
	if err := b.Validate(); err != nil {
		return err
	}
	cfg := bhResolve(b)
	c.mu.Lock() // stored under mu: a waiter is queued only while no slot is free
	c.cfg.Store(cfg)
	c.bhAdmitLocked(cfg.MaxConcurrent)
	c.mu.Unlock()
	return nil
}

// InFlight returns how many slots are held.
func (c *Compartment) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight
}

// Queued returns how many callers wait for a slot.
func (c *Compartment) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// Execute runs op in a slot: it calls Acquire, runs op with ctx and releases
// the slot exactly once when op returns or panics (the panic goes on). It
// returns Acquire's error without running op, or op's error.
func (c *Compartment) Execute(ctx context.Context, op func(context.Context) error) error {
	if err := c.Acquire(ctx); err != nil {
		return err
	}
	defer c.Release()
	return op(ctx)
}

// TryAcquire takes a slot if one is free and no one is waiting, and reports
// whether it did; it never waits. A true result must be paired with Release.
// It emits EventAdmit or EventReject.
func (c *Compartment) TryAcquire() bool {
	c.mu.Lock()
	cfg := c.cfg.Load()
	ok := c.head == nil && c.inFlight < cfg.MaxConcurrent
	if ok {
		c.inFlight++
	}
	c.mu.Unlock()
	if ok {
		emit(cfg.Observer, Event{Kind: KindBulkhead, Name: cfg.Name, Type: EventAdmit})
	} else {
		emit(cfg.Observer, Event{Kind: KindBulkhead, Name: cfg.Name, Type: EventReject, Delay: cfg.RetryAfter, Err: ErrBulkheadFull})
	}
	return ok
}

// Acquire takes a slot, which the caller must give back with Release.
//
// It takes a free slot at once when no one is waiting. Otherwise it joins the
// queue if there is room and waits for a slot, at most QueueTimeout. It
// returns nil with the slot held; a *RejectedError wrapping ErrBulkheadFull
// when the queue is full or the wait ran out; context.Cause(ctx), holding no
// slot, when ctx ends first (or had already ended). It emits EventAdmit, with
// the time spent queued as Delay, or EventReject.
func (c *Compartment) Acquire(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	c.mu.Lock()
	cfg := c.cfg.Load()
	if c.head == nil && c.inFlight < cfg.MaxConcurrent {
		c.inFlight++
		c.mu.Unlock()
		emit(cfg.Observer, Event{Kind: KindBulkhead, Name: cfg.Name, Type: EventAdmit})
		return nil
	}
	if c.queued >= cfg.MaxQueue {
		c.mu.Unlock()
		return c.bhReject(cfg)
	}
	w := &bhWaiter{ready: make(chan struct{}, 1)}
	c.bhPushLocked(w)
	c.mu.Unlock()

	clk := cfg.Clock
	start := clk.Now()
	var expired <-chan time.Time
	if cfg.QueueTimeout > 0 {
		t := clk.NewTimer(cfg.QueueTimeout)
		defer t.Stop()
		expired = t.C()
	}
	select {
	case <-w.ready:
		c.bhAdmitted(clk.Since(start))
		return nil
	case <-expired:
		c.mu.Lock()
		if w.granted {
			// The slot came as the wait ran out: take it rather than turn
			// the caller away with a slot in hand.
			c.mu.Unlock()
			c.bhAdmitted(clk.Since(start))
			return nil
		}
		c.bhRemoveLocked(w)
		c.mu.Unlock()
		return c.bhReject(c.cfg.Load())
	case <-ctx.Done():
		c.mu.Lock()
		if w.granted {
			// The slot was handed over as the caller gave up: pass it on.
			c.bhReleaseLocked()
		} else {
			c.bhRemoveLocked(w)
		}
		c.mu.Unlock()
		return context.Cause(ctx)
	}
}

// Release gives back a slot taken by Acquire, TryAcquire or Execute: to the
// caller that has waited longest, or to the pool when no one waits. It
// panics when no slot is held, a programming error like unlocking an
// unlocked mutex. It emits EventRelease.
func (c *Compartment) Release() {
	c.mu.Lock()
	if c.inFlight == 0 {
		c.mu.Unlock()
		panic("policies: Compartment.Release called without a matching Acquire")
	}
	c.bhReleaseLocked()
	cfg := c.cfg.Load()
	c.mu.Unlock()
	emit(cfg.Observer, Event{Kind: KindBulkhead, Name: cfg.Name, Type: EventRelease})
}

// bhAdmitted reports a queued caller's admission.
func (c *Compartment) bhAdmitted(waited time.Duration) {
	cfg := c.cfg.Load()
	emit(cfg.Observer, Event{Kind: KindBulkhead, Name: cfg.Name, Type: EventAdmit, Delay: waited})
}

// bhReject reports and returns a rejection.
func (c *Compartment) bhReject(cfg *Bulkhead) error {
	emit(cfg.Observer, Event{Kind: KindBulkhead, Name: cfg.Name, Type: EventReject, Delay: cfg.RetryAfter, Err: ErrBulkheadFull})
	return &RejectedError{Kind: KindBulkhead, Name: cfg.Name, Wait: cfg.RetryAfter, Err: ErrBulkheadFull}
}

// bhReleaseLocked frees one held slot and hands free slots to waiters.
func (c *Compartment) bhReleaseLocked() {
	c.inFlight--
	c.bhAdmitLocked(c.cfg.Load().MaxConcurrent)
}

// bhAdmitLocked hands free slots to waiters, longest waiting first, while
// fewer than limit are held.
func (c *Compartment) bhAdmitLocked(limit int) {
	for c.head != nil && c.inFlight < limit {
		w := c.head
		c.bhRemoveLocked(w)
		c.inFlight++
		w.granted = true
		w.ready <- struct{}{} // cap 1, sent once: never blocks
	}
}

// bhPushLocked appends w to the queue.
func (c *Compartment) bhPushLocked(w *bhWaiter) {
	w.prev = c.tail
	if c.tail != nil {
		c.tail.next = w
	} else {
		c.head = w
	}
	c.tail = w
	c.queued++
}

// bhRemoveLocked unlinks w, which must be queued.
func (c *Compartment) bhRemoveLocked(w *bhWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		c.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		c.tail = w.prev
	}
	w.prev, w.next = nil, nil
	c.queued--
}
