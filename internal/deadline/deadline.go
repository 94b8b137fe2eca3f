package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is the context the Timeout layer gives each call: a child of
// parent that ends at own (its own deadline), when parent ends, or when the
// layer releases it. It does the work of context.WithTimeout at a fraction
// of the cost, because most calls end before anybody waits on them:
//
//   - It is lazy. Until somebody asks for Done or registers an AfterFunc
//     (as every context.WithCancel derived from it does) it holds no timer
//     and no link to its parent: Err then asks the parent and the clock.
//     Once armed (see arm) it keeps a timer, taken from a pool and given
//     back when the call ends, and a link to its parent, and Err reads its
//     state alone.
//   - It links to a parent of its own type directly, and to any other
//     parent with context.AfterFunc: never with a goroutine.
//   - It implements AfterFunc, so contexts derived from it with the
//     standard library (net/http derives one per request) attach to it
//     without a goroutine either.
//   - It tells its own deadline apart from its parent's (timedOut) without
//     context.Cause, which falls back to Err for a context of another type.
//
// The zero value is not usable: see init.
type deadlineCtx struct {
	parent context.Context
	own    time.Time // this context's own deadline
	dl     time.Time // the deadline reported: min(parent's, own)
	// governs is whether own is earlier than the parent's deadline: only
	// then can this context end by its own deadline.
	governs bool

	state  atomic.Uint32 // live, or how it ended
	linked atomic.Bool   // told when the parent ends (see arm)
	timed  atomic.Bool   // ends at its own deadline by itself (see arm)
	done   atomic.Value  // chan struct{}, made lazily

	mu      sync.Mutex
	perr    error         // parent's Err, when state is endedParent
	timer   *pooledTimer  // while armed and live, when governs
	entries []*afterEntry // what to run or tell when this context ends
	stop    func() bool   // unlinks from a parent of another type
	lparent *deadlineCtx  // the parent of this type it is registered with
	link    afterEntry    // this context's entry in such a parent
}

// States of a deadlineCtx.
const (
	live          uint32 = iota
	endedDeadline        // own deadline passed
	endedParent          // parent ended first
	endedReleased        // released by the layer
)

// afterEntry is one thing to do when a deadlineCtx ends: run f, or tell
// child (a deadlineCtx of the same type) that its parent ended.
type afterEntry struct {
	f     func()
	child *deadlineCtx
	owner *deadlineCtx // whose entries hold it, for stop
}

// stopFn unregisters e; it reports whether f had not run yet.
func (e *afterEntry) stopFn() bool { return e.owner.remove(e) }

// closedchan is a reusable closed channel for contexts already ended when
// Done is first called.
var closedchan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// init sets c up as a child of parent ending after d, measured from now.
func (c *deadlineCtx) init(parent context.Context, d time.Duration) {
	c.parent = parent
	c.own = time.Now().Add(d)
	c.dl, c.governs = c.own, true
	if pdl, ok := parent.Deadline(); ok && !c.own.Before(pdl) {
		c.dl, c.governs = pdl, false
	}
}

// Deadline reports the earlier of the parent's deadline and its own.
func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.dl, true }

// Value delegates to the parent.
func (c *deadlineCtx) Value(key any) any { return c.parent.Value(key) }

// String names the context, as the standard library's contexts do.
func (c *deadlineCtx) String() string {
	return "transport.Timeout(" + contextString(c.parent) + ").WithDeadline(" + c.own.String() + ")"
}

// contextString names ctx, by its String method when it has one.
func contextString(ctx context.Context) string {
	if s, ok := ctx.(interface{ String() string }); ok {
		return s.String()
	}
	return "context"
}

// Err reports context.DeadlineExceeded after its own deadline, the parent's
// Err when the parent ended first, context.Canceled once released, and nil
// while live.
func (c *deadlineCtx) Err() error {
	switch c.state.Load() {
	case endedDeadline:
		return context.DeadlineExceeded
	case endedParent:
		return c.perr // written before state
	case endedReleased:
		return context.Canceled
	}
	// What is not armed (nobody waits on Done) reports nothing by itself:
	// ask the parent and the clock.
	if !c.linked.Load() {
		if err := c.parent.Err(); err != nil {
			return err
		}
	}
	if c.governs && !c.timed.Load() && !time.Now().Before(c.own) {
		return context.DeadlineExceeded
	}
	return nil
}

// timedOut reports whether this context's own deadline, not the parent's
// end nor a release, has ended it while the parent is still live.
func (c *deadlineCtx) timedOut() bool {
	if !c.governs || c.parent.Err() != nil {
		return false
	}
	switch c.state.Load() {
	case endedDeadline:
		return true
	case live:
		return !time.Now().Before(c.own)
	}
	return false
}

// Done returns a channel closed when the context ends. The first call arms
// the context.
func (c *deadlineCtx) Done() <-chan struct{} {
	if d, ok := c.done.Load().(chan struct{}); ok {
		return d
	}
	c.mu.Lock()
	d, ok := c.done.Load().(chan struct{})
	if !ok {
		if c.state.Load() != live {
			d = closedchan
		} else {
			d = make(chan struct{})
		}
		c.done.Store(d)
	}
	c.mu.Unlock()
	c.arm(true)
	return d
}

// AfterFunc arranges for f to run when the context ends, and returns a stop
// function that cancels it, reporting whether it did. f runs in the
// goroutine that ends the context (the timer's, the parent's, or the
// layer's), or in a goroutine of its own when the context has already ended.
// context.AfterFunc and context.WithCancel use it to attach without a
// goroutine.
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	c.arm(true)
	e := &afterEntry{f: f, owner: c}
	c.mu.Lock()
	if c.state.Load() != live {
		c.mu.Unlock()
		// The caller may hold locks that f takes (context.propagateCancel
		// does): never run f on its goroutine.
		go f()
		return func() bool { return false }
	}
	c.entries = append(c.entries, e)
	c.mu.Unlock()
	return e.stopFn
}

// remove unregisters e, reporting whether it was still registered.
func (c *deadlineCtx) remove(e *afterEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.entries {
		if x == e {
			last := len(c.entries) - 1
			c.entries[i] = c.entries[last]
			c.entries[last] = nil
			c.entries = c.entries[:last]
			return true
		}
	}
	return false
}

// addChild registers child to be told when c ends; it reports false when c
// has already ended.
func (c *deadlineCtx) addChild(child *deadlineCtx) bool {
	c.arm(!child.governs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Load() != live {
		return false
	}
	child.link = afterEntry{child: child, owner: c}
	c.entries = append(c.entries, &child.link)
	return true
}

// arm turns notifications on: from then on the context is told when its
// parent ends (linked) and, when deadline is true, ends at its own deadline
// by itself (timed, with a pooled timer). Each is done once. A child of the
// same type whose own deadline comes first needs only the link: nothing
// can end the parent by a deadline before the child's timer fires.
func (c *deadlineCtx) arm(deadline bool) {
	needTimer := deadline && c.governs
	if c.linked.Load() && (!needTimer || c.timed.Load()) {
		return
	}
	c.mu.Lock()
	if c.state.Load() != live {
		c.mu.Unlock()
		return
	}
	// Until a flag is set, Err asked the clock or the parent: answer the
	// same now, so that Err never goes back to nil.
	if needTimer && !c.timed.Load() {
		c.timed.Store(true)
		if !time.Now().Before(c.own) {
			c.endLocked(endedDeadline, nil, true)
			return
		}
		pt := timerPool.Get().(*pooledTimer)
		pt.c.Store(c)
		c.timer = pt
		pt.t.Reset(time.Until(c.own))
	}
	if c.linked.Load() {
		c.mu.Unlock()
		return
	}
	c.linked.Store(true)
	if err := c.parent.Err(); err != nil {
		c.endLocked(endedParent, err, true)
		return
	}
	c.mu.Unlock()

	// Link to the parent, outside the lock: the parent may end at once.
	switch p := c.parent.(type) {
	case *deadlineCtx:
		if p.addChild(c) {
			c.mu.Lock()
			if c.state.Load() == live {
				c.lparent = p
				c.mu.Unlock()
			} else {
				c.mu.Unlock()
				p.remove(&c.link)
			}
		} else {
			c.endParent(true)
		}
	default:
		if p.Done() == nil {
			return // never ends
		}
		stop := context.AfterFunc(p, c.parentEnded)
		c.mu.Lock()
		if c.state.Load() == live {
			c.stop = stop
			c.mu.Unlock()
		} else {
			c.mu.Unlock()
			stop()
		}
	}
}

// parentEnded ends c because its parent ended.
func (c *deadlineCtx) parentEnded() { c.endParent(false) }

// endParent ends c because its parent ended; see endLocked for async.
func (c *deadlineCtx) endParent(async bool) {
	c.mu.Lock()
	if c.state.Load() != live {
		c.mu.Unlock()
		return
	}
	c.endLocked(endedParent, c.parent.Err(), async)
}

// release ends c on the layer's behalf (the call is over): its timer goes
// back to the pool and whatever waits on it is told, with context.Canceled
// (or with what Err already reported, see below).
func (c *deadlineCtx) release() {
	if c.state.Load() != live {
		return
	}
	c.mu.Lock()
	if c.state.Load() != live {
		c.mu.Unlock()
		return
	}
	// What Err has reported stays, as the context contract asks: before
	// it was armed, the context may have ended by its parent or by its
	// deadline without anybody being told.
	state, perr := endedReleased, error(nil)
	if !c.linked.Load() {
		if err := c.parent.Err(); err != nil {
			state, perr = endedParent, err
		}
	}
	if state == endedReleased && c.governs && !c.timed.Load() && !time.Now().Before(c.own) {
		state = endedDeadline
	}
	c.endLocked(state, perr, false)
}

// expire ends c at its own deadline; pt is the timer that fired.
func (c *deadlineCtx) expire(pt *pooledTimer) {
	c.mu.Lock()
	if c.timer != pt {
		// Released (or ended) meanwhile, by someone whose Stop failed: the
		// timer is dropped, never reused.
		c.mu.Unlock()
		return
	}
	c.timer = nil
	c.endLocked(endedDeadline, nil, false)
	pt.c.Store(nil)
	timerPool.Put(pt) // fired: nothing of it runs any more
}

// endLocked moves c from live to state (perr is the parent's error for
// endedParent), closes Done, stops the timer and unlinks from the parent,
// then runs what was registered: on this goroutine, or on a new one when
// async (arm may run under a lock of a context being attached, which what
// is registered may take). c.mu is held on entry and released.
func (c *deadlineCtx) endLocked(state uint32, perr error, async bool) {
	c.perr = perr
	c.state.Store(state)
	if d, ok := c.done.Load().(chan struct{}); ok {
		close(d)
	} else {
		c.done.Store(closedchan)
	}
	pt, stop, lparent, entries := c.timer, c.stop, c.lparent, c.entries
	c.timer, c.stop, c.lparent, c.entries = nil, nil, nil, nil
	c.mu.Unlock()

	if pt != nil && pt.t.Stop() {
		// Stopped before it fired: its callback never runs.
		pt.c.Store(nil) // keeps nothing alive in the pool
		timerPool.Put(pt)
	}
	if lparent != nil && state != endedParent {
		lparent.remove(&c.link)
	}
	if stop != nil {
		stop()
	}
	if len(entries) == 0 {
		return
	}
	if async {
		go runEntries(entries)
	} else {
		runEntries(entries)
	}
}

// runEntries tells children and runs functions registered with a context
// that ended.
func runEntries(entries []*afterEntry) {
	for _, e := range entries {
		if e.child != nil {
			e.child.parentEnded()
		} else {
			e.f()
		}
	}
}

// pooledTimer is a reusable timer whose callback expires the deadlineCtx
// it is lent to.
type pooledTimer struct {
	t *time.Timer
	c atomic.Pointer[deadlineCtx]
}

// fire is the timer's callback.
func (pt *pooledTimer) fire() { pt.c.Load().expire(pt) }

// timerPool lends stopped timers. A timer is put back only when no
// callback of it can run: stopped before firing, or by its own callback.
var timerPool sync.Pool

func init() { timerPool.New = newPooledTimer }

// newPooledTimer makes a stopped timer for timerPool.
func newPooledTimer() any {
	pt := new(pooledTimer)
	pt.t = time.AfterFunc(time.Hour, pt.fire)
	pt.t.Stop()
	return pt
}
