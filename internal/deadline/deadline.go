// Package deadline provides Ctx, a cheap context with a deadline for the
// resilience layers: lazy (no timer until somebody waits on it), with pooled
// timers, linked to its parent without goroutines, and able to tell its own
// deadline apart from its parent's. The middleware can also have its timer
// run a hook at the deadline (ArmWith), so that one timer per request both
// ends the handler's context and answers for it.
package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Ctx is the context the Timeout layers give each call: a child of
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
//   - It tells its own deadline apart from its parent's (TimedOut) without
//     context.Cause, which falls back to Err for a context of another type
//     (unless SetCause gave it a cause to report).
//   - ArmWith starts its timer at once and has it run a hook after the
//     context ended by its own deadline: one timer for both.
//
// The zero value is not usable: see Init and New.
type Ctx struct {
	parent context.Context
	own    time.Time     // this context's own deadline
	d      time.Duration // own, as a duration from Init
	dl     time.Time     // the deadline reported: min(parent's, own)
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
	lparent *Ctx          // the parent of this type it is registered with
	link    afterEntry    // this context's entry in such a parent
	hook    func()        // run by the timer at its own deadline (see ArmWith)

	cause  *Cause     // what context.Cause reports after its own deadline
	hooked bool       // ArmWith set a hook: Release waits for it
	hookMu sync.Mutex // held by the timer while it runs the hook
}

// States of a Ctx.
const (
	live          uint32 = iota
	endedDeadline        // own deadline passed
	endedParent          // parent ended first
	endedReleased        // released by the layer
)

// afterEntry is one thing to do when a Ctx ends: run f, or tell
// child (a Ctx of the same type) that its parent ended.
type afterEntry struct {
	f     func()
	child *Ctx
	owner *Ctx // whose entries hold it, for stop
}

// stopFn unregisters e; it reports whether f had not run yet.
func (e *afterEntry) stopFn() bool { return e.owner.remove(e) }

// closedchan is a reusable closed channel for contexts already ended when
// Done is first called.
var closedchan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// New returns a Ctx child of parent ending after d, measured from now.
func New(parent context.Context, d time.Duration) *Ctx {
	c := new(Ctx)
	c.Init(parent, d)
	return c
}

// Init sets c up as a child of parent ending after d, measured from now,
// for callers that allocate c within a larger value. It must be called once,
// before c is used.
func (c *Ctx) Init(parent context.Context, d time.Duration) {
	c.parent = parent
	c.d = d
	c.own = time.Now().Add(d)
	c.dl, c.governs = c.own, true
	if pdl, ok := parent.Deadline(); ok && !c.own.Before(pdl) {
		c.dl, c.governs = pdl, false
	}
}

// Deadline reports the earlier of the parent's deadline and its own.
func (c *Ctx) Deadline() (time.Time, bool) { return c.dl, true }

// Value delegates to the parent, except that it lets context.Cause find the
// cause set by SetCause once its own deadline has ended it.
func (c *Ctx) Value(key any) any {
	if c.cause != nil && key == causeKey && c.endedByOwnDeadline() {
		return c.cause.v
	}
	return c.parent.Value(key)
}

// endedByOwnDeadline reports whether Err reports this context's own
// deadline (not the parent's end nor a release).
func (c *Ctx) endedByOwnDeadline() bool {
	switch c.state.Load() {
	case endedDeadline:
		return true
	case live:
		return c.Err() == context.DeadlineExceeded && c.parent.Err() == nil
	}
	return false
}

// SetCause makes context.Cause report cause's error, instead of
// context.DeadlineExceeded, for c and the contexts derived from it once c's
// own deadline has ended it. It must be called before c is shared.
func (c *Ctx) SetCause(cause *Cause) { c.cause = cause }

// Cause carries an error for context.Cause to report (see SetCause). Made
// once (see NewCause), it serves any number of contexts.
type Cause struct{ v any }

// NewCause returns a Cause reporting err. context.Cause only looks for a
// cause in the standard library's own cancelable contexts, which it finds
// through Value with a private key: a Cause holds such a context, canceled
// with err, and Ctx.Value answers the key with it.
func NewCause(err error) *Cause {
	if causeKey == nil || err == nil {
		return nil
	}
	cc, cancel := context.WithCancelCause(context.Background())
	cancel(err)
	v := cc.Value(causeKey)
	if v == nil {
		return nil
	}
	return &Cause{v: v}
}

// causeKey is the key context.Cause passes to Value to find the nearest
// cancelable context (nil if it passes none).
var causeKey = func() any {
	p := &keyProbe{Context: context.Background()}
	_ = context.Cause(p)
	return p.key
}()

// keyProbe is an ended context that records the key Value is first asked.
type keyProbe struct {
	context.Context
	key any
}

// Err reports the probe as ended, so that context.Cause looks for a cause.
func (p *keyProbe) Err() error { return context.Canceled }

// Value records key.
func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

// String names the context, as the standard library's contexts do.
func (c *Ctx) String() string {
	return "deadline.Ctx(" + contextString(c.parent) + ").WithDeadline(" + c.own.String() + ")"
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
func (c *Ctx) Err() error {
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

// TimedOut reports whether this context's own deadline, not the parent's
// end nor a release, has ended it while the parent is still live.
func (c *Ctx) TimedOut() bool {
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
func (c *Ctx) Done() <-chan struct{} {
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
func (c *Ctx) AfterFunc(f func()) (stop func() bool) {
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
func (c *Ctx) remove(e *afterEntry) bool {
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
func (c *Ctx) addChild(child *Ctx) bool {
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
func (c *Ctx) arm(deadline bool) {
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
	case *Ctx:
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
func (c *Ctx) parentEnded() { c.endParent(false) }

// endParent ends c because its parent ended; see endLocked for async.
func (c *Ctx) endParent(async bool) {
	c.mu.Lock()
	if c.state.Load() != live {
		c.mu.Unlock()
		return
	}
	c.endLocked(endedParent, c.parent.Err(), async)
}

// Release ends c on the layer's behalf (the call is over): its timer goes
// back to the pool and whatever waits on it is told, with context.Canceled
// (or with what Err already reported, see below). When a hook set by
// ArmWith is running, Release returns once it has finished; after Release,
// the hook never runs.
func (c *Ctx) Release() {
	c.release()
	if c.hooked {
		// The timer locks hookMu before it ends c: if c ended by the
		// timer, this waits for the hook.
		c.hookMu.Lock()
		c.hookMu.Unlock() //nolint:staticcheck // an empty critical section: a wait
	}
}

// release is Release without the wait for the hook.
func (c *Ctx) release() {
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
func (c *Ctx) expire(pt *pooledTimer) {
	c.mu.Lock()
	if c.timer != pt {
		// Released (or ended) meanwhile, by someone whose Stop failed: the
		// timer is dropped, never reused.
		c.mu.Unlock()
		return
	}
	c.timer = nil
	state, perr, hook := endedDeadline, error(nil), c.hook
	if !c.linked.Load() {
		// Armed by ArmWith alone: Err has been asking the parent, whose
		// end, if first, stays the answer; the hook is for our deadline.
		if err := c.parent.Err(); err != nil {
			state, perr, hook = endedParent, err, nil
		}
	}
	if hook != nil {
		c.hookMu.Lock() // before the state changes: see Release
	}
	c.endLocked(state, perr, false)
	pt.c.Store(nil)
	timerPool.Put(pt) // fired: nothing of it runs any more
	if hook != nil {
		defer c.hookMu.Unlock()
		hook()
	}
}

// ArmWith starts c's timer now, whether or not anybody waits on c, and has
// it call onExpire when c's own deadline ends it: on the timer's goroutine,
// after c has ended and what was registered with it has run. onExpire is
// not called when c ends otherwise (its parent ended first, or Release);
// it is called at once, on this goroutine, when Init was given d <= 0; and
// never at all when the parent's deadline comes first. The timer runs d
// from ArmWith, so ArmWith should follow Init closely. Release
// waits for a running onExpire. ArmWith must be called at most once, after
// Init (and SetCause) and before c is shared.
func (c *Ctx) ArmWith(onExpire func()) {
	if !c.governs {
		return // the parent ends first: c never ends by its own deadline
	}
	c.hooked = true
	c.mu.Lock()
	c.timed.Store(true)
	// d from Init, not time.Until(own): a clock read less, and the timer
	// fires no earlier than own.
	if c.d <= 0 {
		if err := c.parent.Err(); err != nil {
			c.endLocked(endedParent, err, false)
			return
		}
		c.endLocked(endedDeadline, nil, false)
		onExpire()
		return
	}
	pt := timerPool.Get().(*pooledTimer)
	pt.c.Store(c)
	c.timer, c.hook = pt, onExpire
	pt.t.Reset(c.d)
	c.mu.Unlock()
}

// endLocked moves c from live to state (perr is the parent's error for
// endedParent), closes Done, stops the timer and unlinks from the parent,
// then runs what was registered: on this goroutine, or on a new one when
// async (arm may run under a lock of a context being attached, which what
// is registered may take). c.mu is held on entry and released.
func (c *Ctx) endLocked(state uint32, perr error, async bool) {
	c.perr = perr
	c.state.Store(state)
	if d, ok := c.done.Load().(chan struct{}); ok {
		close(d)
	} else {
		c.done.Store(closedchan)
	}
	pt, stop, lparent, entries := c.timer, c.stop, c.lparent, c.entries
	c.timer, c.stop, c.lparent, c.entries, c.hook = nil, nil, nil, nil, nil
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

// pooledTimer is a reusable timer whose callback expires the Ctx
// it is lent to.
type pooledTimer struct {
	t *time.Timer
	c atomic.Pointer[Ctx]
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
