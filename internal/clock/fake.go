package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Fake is a manual clock for deterministic tests: time stands still until
// Advance or Set moves it, and then every timer whose deadline has passed
// fires, in deadline order. The zero value is not usable; call NewFake.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever the set of timers changes
}

// NewFake returns a Fake clock that reads start until it is advanced.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now returns the fake's current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since returns the fake time elapsed since t.
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// NewTimer returns a timer that fires when the fake clock reaches now+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// AfterFunc calls fn in its own goroutine when the fake clock reaches now+d.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	t := &fakeTimer{f: f, fn: fn}
	t.Reset(d)
	return t
}

// Sleep waits until the fake clock has been advanced by d, or ctx ends.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := f.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Advance moves the clock forward by d and fires every timer that is due.
// Concurrent calls add up: each moves the clock by its own d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(f.now.Add(d))
}

// Set moves the clock to t (never backwards) and fires every timer that is
// due, in deadline order, with the clock reading each timer's deadline as it
// fires.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(t)
}

// setLocked does Set's work under f.mu, so that a concurrent Advance, Stop or
// Reset sees the whole move or none of it. Firing never blocks: a channel
// timer's send is non-blocking and an AfterFunc's fn runs in its own
// goroutine.
func (f *Fake) setLocked(t time.Time) {
	if t.Before(f.now) {
		return
	}
	for {
		sort.SliceStable(f.timers, func(i, j int) bool { return f.timers[i].when.Before(f.timers[j].when) })
		if len(f.timers) == 0 || f.timers[0].when.After(t) {
			f.now = t
			return
		}
		next := f.timers[0]
		f.timers = f.timers[1:]
		if next.when.After(f.now) {
			f.now = next.when
		}
		f.signalLocked()
		next.fire(f.now)
	}
}

// Timers returns how many timers are armed: a test can wait with BlockUntil
// for a goroutine to start sleeping before it advances the clock.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// BlockUntil waits until at least n timers are armed or ctx ends. It returns
// ctx's cause when ctx ends first.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.timers) >= n {
			f.mu.Unlock()
			return nil
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (f *Fake) signalLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// removeLocked drops t from the armed set; it reports whether t was armed.
func (f *Fake) removeLocked(t *fakeTimer) bool {
	for i, x := range f.timers {
		if x == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			f.signalLocked()
			return true
		}
	}
	return false
}

type fakeTimer struct {
	f    *Fake
	when time.Time
	ch   chan time.Time
	fn   func()
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

// Stop disarms t. Like time.Timer since Go 1.23, a value t fired but nobody
// received is discarded, so no stale value is received after Stop returns,
// and Stop then reports true.
func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	active := t.f.removeLocked(t)
	return t.drainLocked() || active
}

// Reset re-arms t to fire after d. Like time.Timer since Go 1.23, it discards
// a value t fired but nobody received, and then reports true.
func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	active := f.removeLocked(t)
	if t.drainLocked() {
		active = true
	}
	t.when = f.now.Add(d)
	if d <= 0 {
		t.fire(f.now)
	} else {
		f.timers = append(f.timers, t)
		f.signalLocked()
	}
	return active
}

// drainLocked discards an unreceived value from t's channel; it reports
// whether there was one. f.mu must be held, so no fire races with it.
func (t *fakeTimer) drainLocked() bool {
	select {
	case <-t.ch: // a nil ch (AfterFunc) is never ready
		return true
	default:
		return false
	}
}

// fire delivers now on t's channel or starts t's function. It never blocks,
// so it is called with f.mu held.
func (t *fakeTimer) fire(now time.Time) {
	if t.fn != nil {
		go t.fn()
		return
	}
	select {
	case t.ch <- now:
	default:
	}
}
