package policies

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// Breaker configures a circuit breaker; NewCircuit builds one. The zero value
// is ready to use: the circuit opens after 5 consecutive failures, stays open
// for 5s, then admits one probe call; a failed probe doubles the cool-down (up
// to 2m), a successful one closes the circuit.
//
// Setting FailureRatio switches to ratio mode: the circuit opens when, over
// the last Window, at least MinCalls calls were recorded and the share of
// failures among them reaches FailureRatio.
//
// Setting HealthCheck replaces live probes: when the cool-down ends the
// circuit calls HealthCheck in one goroutine and keeps rejecting traffic until
// it answers.
type Breaker struct {
	// Failures is the number of consecutive failures that opens a closed
	// circuit; a success resets the count. Ignored in ratio mode. 0 means 5.
	Failures int
	// OpenFor is the first cool-down: how long an opened circuit rejects
	// calls before it turns half-open. Each failed probe doubles it, up to
	// MaxOpenFor; closing the circuit brings it back to OpenFor. 0 means 5s,
	// or MaxOpenFor when that is set and shorter.
	OpenFor time.Duration
	// MaxOpenFor caps the doubling of the cool-down. 0 means 2m, or OpenFor
	// when that is longer.
	MaxOpenFor time.Duration
	// HalfOpenProbes is how many probe calls a half-open circuit admits at
	// once; the others are rejected. The first probe that succeeds closes the
	// circuit; the first that fails opens it again. 0 means 1.
	HalfOpenProbes int
	// FailureRatio, when > 0, selects ratio mode: a closed circuit opens when
	// a failure brings failures/calls over Window to FailureRatio or more
	// with at least MinCalls calls recorded (Failures is then ignored). It
	// must lie in [0, 1]. 0 means consecutive mode.
	FailureRatio float64
	// Window is the sliding window of ratio mode, counted in 10 buckets of
	// Window/10: a call leaves the window between 9/10 and 10/10 of Window
	// after it was recorded. 0 means 10s.
	Window time.Duration
	// MinCalls is the number of calls ratio mode needs in Window before it
	// may open the circuit. 0 means 10.
	MinCalls int
	// HealthCheck, when set, tests recovery instead of live probes: the first
	// Allow after the cool-down turns the circuit half-open and starts one
	// goroutine that calls HealthCheck with a context that ends after
	// OpenFor. Calls are rejected until it returns; nil closes the circuit,
	// an error opens it again with a doubled cool-down. HealthCheck should
	// return once its context ends. nil means live probes.
	HealthCheck func(context.Context) error
	// IsFailure tells Execute which errors count as failures; an error it
	// rejects counts as a success (the callee answered). Whatever it says,
	// an error returned after the caller's context ended is not counted.
	// nil means every error.
	IsFailure func(error) bool
	// Name identifies the circuit in events and errors. Default "".
	Name string
	// Observer receives EventStateChange and EventReject. nil means none.
	Observer Observer
	// Clock is the time source. nil means the real clock.
	Clock clock.Clock
}

// Validate reports the first invalid field of b, naming it.
func (b Breaker) Validate() error {
	switch {
	case b.Failures < 0:
		return fmt.Errorf("policies: Breaker.Failures must be >= 0, got %d", b.Failures)
	case b.OpenFor < 0:
		return fmt.Errorf("policies: Breaker.OpenFor must be >= 0, got %v", b.OpenFor)
	case b.MaxOpenFor < 0:
		return fmt.Errorf("policies: Breaker.MaxOpenFor must be >= 0, got %v", b.MaxOpenFor)
	case b.OpenFor > 0 && b.MaxOpenFor > 0 && b.MaxOpenFor < b.OpenFor:
		return fmt.Errorf("policies: Breaker.MaxOpenFor must be >= OpenFor (%v), got %v", b.OpenFor, b.MaxOpenFor)
	case b.HalfOpenProbes < 0:
		return fmt.Errorf("policies: Breaker.HalfOpenProbes must be >= 0, got %d", b.HalfOpenProbes)
	case !(b.FailureRatio >= 0 && b.FailureRatio <= 1):
		return fmt.Errorf("policies: Breaker.FailureRatio must be in [0, 1], got %v", b.FailureRatio)
	case b.Window < 0:
		return fmt.Errorf("policies: Breaker.Window must be >= 0, got %v", b.Window)
	case b.MinCalls < 0:
		return fmt.Errorf("policies: Breaker.MinCalls must be >= 0, got %d", b.MinCalls)
	}
	return nil
}

// Defaults of Breaker's zero fields.
const (
	cbDefaultFailures   = 5
	cbDefaultOpenFor    = 5 * time.Second
	cbDefaultMaxOpenFor = 2 * time.Minute
	cbDefaultWindow     = 10 * time.Second
	cbDefaultMinCalls   = 10
	cbBuckets           = 10
)

// cbConfig is a Breaker with its defaults resolved. It is immutable.
type cbConfig struct {
	failures    uint64
	openFor     time.Duration
	maxOpenFor  time.Duration
	probes      int
	ratio       float64 // > 0: ratio mode
	window      time.Duration
	minCalls    int
	healthCheck func(context.Context) error
	isFailure   func(error) bool
	name        string
	observer    Observer
	clock       clock.Clock
}

func cbResolve(b Breaker) *cbConfig {
	cfg := &cbConfig{
		failures:    uint64(b.Failures),
		openFor:     b.OpenFor,
		maxOpenFor:  b.MaxOpenFor,
		probes:      b.HalfOpenProbes,
		ratio:       b.FailureRatio,
		window:      b.Window,
		minCalls:    b.MinCalls,
		healthCheck: b.HealthCheck,
		isFailure:   b.IsFailure,
		name:        b.Name,
		observer:    b.Observer,
		clock:       clock.Or(b.Clock),
	}
	if cfg.failures == 0 {
		cfg.failures = cbDefaultFailures
	}
	cfg.failures = min(cfg.failures, cbMaxCount)
	if cfg.openFor == 0 {
		cfg.openFor = cbDefaultOpenFor
		if cfg.maxOpenFor > 0 {
			cfg.openFor = min(cfg.openFor, cfg.maxOpenFor)
		}
	}
	if cfg.maxOpenFor == 0 {
		cfg.maxOpenFor = max(cbDefaultMaxOpenFor, cfg.openFor)
	}
	if cfg.probes == 0 {
		cfg.probes = 1
	}
	if cfg.window == 0 {
		cfg.window = cbDefaultWindow
	}
	if cfg.minCalls == 0 {
		cfg.minCalls = cbDefaultMinCalls
	}
	return cfg
}

// The circuit's state word packs, from the low bits up, the State (2 bits),
// the consecutive failure count of consecutive mode (30 bits) and the
// generation (32 bits, wrapping), so that the closed-state hot path reads and
// updates all three with single atomic operations and no lock.
const (
	cbStateMask  = 1<<2 - 1
	cbCountShift = 2
	cbCountOne   = 1 << cbCountShift
	cbMaxCount   = 1<<30 - 1
	cbCountMask  = cbMaxCount << cbCountShift
	cbGenShift   = 32
)

func cbPack(gen uint64, s State) uint64 { return gen<<cbGenShift | uint64(s) }
func cbStateOf(v uint64) State          { return State(v & cbStateMask) }
func cbCountOf(v uint64) uint64         { return v & cbCountMask >> cbCountShift }
func cbGenOf(v uint64) uint64           { return v >> cbGenShift }

// cbBucket counts the calls of one slice of ratio mode's window.
type cbBucket struct {
	idx             int64 // which slice of time: UnixNano / width
	calls, failures int
}

// Circuit is a circuit breaker built from a Breaker. It is safe for
// concurrent use.
//
// A closed circuit admits every call and counts failures; once they reach the
// threshold it opens. An open circuit rejects calls with a *RejectedError
// wrapping ErrCircuitOpen whose Wait is the time left in the cool-down. The
// first Allow after the cool-down turns it half-open (no timer runs in the
// background): it then admits up to HalfOpenProbes probe calls and rejects the
// others; the first probe to succeed closes the circuit, the first to fail
// opens it again for twice the previous cool-down, up to MaxOpenFor.
//
// Every state change starts a new generation. Outcomes of calls admitted in
// an earlier generation are ignored, so a slow call admitted while closed
// cannot count as a failed probe.
//
// Execute runs a function under the circuit. Adapters that cannot wrap a
// function use the two-step form: Allow, then Record on the returned Ticket.
// In consecutive mode, Allow and Record on a closed circuit take no lock and
// allocate nothing.
type Circuit struct {
	cfg  atomic.Pointer[cbConfig]
	word atomic.Uint64 // state, failure count and generation: see cbPack
	// openUntil is when the cool-down ends (UnixNano of the Clock). Written
	// under mu before the state word turns open.
	openUntil atomic.Int64

	mu          sync.Mutex
	coolDown    time.Duration // the current cool-down, doubled by failed probes
	probes      []uint64      // ids of the probes in flight (half-open)
	probeSeq    uint64        // last probe id given
	hcRunning   bool          // a HealthCheck goroutine is running
	bucketWidth int64         // ratio mode: nanoseconds per bucket
	buckets     [cbBuckets]cbBucket
}

var _ Policy = (*Circuit)(nil)

// NewCircuit returns a closed circuit configured by b. It panics with
// b.Validate()'s error when b is invalid.
func NewCircuit(b Breaker) *Circuit {
	if err := b.Validate(); err != nil {
		panic(err.Error())
	}
	c := &Circuit{}
	cfg := cbResolve(b)
	c.cfg.Store(cfg)
	c.coolDown = cfg.openFor
	return c
}

// Reconfigure replaces the circuit's configuration and keeps its state: the
// current state, failure count, ratio window, cool-down under way and probes
// in flight carry over, and the new settings apply from the next call (a
// lower Failures opens the circuit at the next failure if the count already
// reaches it). Changing Window empties ratio mode's window. It returns
// b.Validate()'s error, and then changes nothing, when b is invalid.
func (c *Circuit) Reconfigure(b Breaker) error {
	if err := b.Validate(); err != nil {
		return err
	}
	c.cfg.Store(cbResolve(b))
	return nil
}

// Name returns the circuit's name.
func (c *Circuit) Name() string { return c.cfg.Load().name }

// State returns the circuit's current state. An open circuit whose cool-down
// has ended still reports StateOpen until the next Allow turns it half-open.
func (c *Circuit) State() State { return cbStateOf(c.word.Load()) }

// Outcome is what became of a call admitted by a circuit.
type Outcome uint8

// The outcomes.
const (
	// OutcomeSuccess: the callee answered; it resets the failure count and
	// a successful probe closes the circuit.
	OutcomeSuccess Outcome = iota
	// OutcomeFailure: the callee failed; it counts toward opening the
	// circuit and a failed probe opens it again.
	OutcomeFailure
	// OutcomeIgnore: the outcome says nothing about the callee (for example
	// the caller cancelled). It is not counted, but it frees a probe slot.
	OutcomeIgnore
)

// String returns "success", "failure" or "ignore".
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeFailure:
		return "failure"
	case OutcomeIgnore:
		return "ignore"
	}
	return "unknown"
}

// Ticket is a circuit's permission for one call, returned by Allow. Report
// the call's outcome with Record. The zero Ticket records nothing.
type Ticket struct {
	c   *Circuit
	gen uint64 // generation the call was admitted in
	id  uint64 // probe id; 0 when not a probe
}

// Allow asks the circuit for permission to make one call. When the circuit
// admits it, Allow returns a Ticket whose Record must be called once the
// call's outcome is known; a probe's slot stays taken until then. Otherwise
// it returns a *RejectedError wrapping ErrCircuitOpen, with Wait the time
// left in the cool-down (0 in half-open), and emits EventReject.
func (c *Circuit) Allow() (Ticket, error) {
	v := c.word.Load()
	if cbStateOf(v) == StateClosed {
		return Ticket{c: c, gen: cbGenOf(v)}, nil
	}
	return c.cbAllowSlow(v)
}

func (c *Circuit) cbAllowSlow(v uint64) (Ticket, error) {
	cfg := c.cfg.Load()
	now := cfg.clock.Now().UnixNano()
	if cbStateOf(v) == StateOpen {
		if until := c.openUntil.Load(); now < until {
			return Ticket{}, c.cbReject(cfg, time.Duration(until-now))
		}
	}

	c.mu.Lock()
	v = c.word.Load()
	var ev Event
	switch cbStateOf(v) {
	case StateClosed:
		c.mu.Unlock()
		return Ticket{c: c, gen: cbGenOf(v)}, nil
	case StateOpen:
		if until := c.openUntil.Load(); now < until {
			c.mu.Unlock()
			return Ticket{}, c.cbReject(cfg, time.Duration(until-now))
		}
		ev = c.cbSetLocked(cfg, StateHalfOpen)
		v = c.word.Load()
	}

	// Half-open.
	if hc := cfg.healthCheck; hc != nil {
		if !c.hcRunning {
			c.hcRunning = true
			go c.cbHealthCheck(hc, cfg.clock, cfg.openFor, cbGenOf(v))
		}
		c.mu.Unlock()
		cbEmit(cfg.observer, ev)
		return Ticket{}, c.cbReject(cfg, 0)
	}
	if len(c.probes) >= cfg.probes {
		c.mu.Unlock()
		cbEmit(cfg.observer, ev)
		return Ticket{}, c.cbReject(cfg, 0)
	}
	c.probeSeq++
	id := c.probeSeq
	c.probes = append(c.probes, id)
	c.mu.Unlock()
	cbEmit(cfg.observer, ev)
	return Ticket{c: c, gen: cbGenOf(v), id: id}, nil
}

// cbEmit emits ev unless it is the zero Event (no state change happened).
func cbEmit(o Observer, ev Event) {
	if ev.Type != 0 {
		emit(o, ev)
	}
}

// cbReject emits EventReject and returns the rejection.
func (c *Circuit) cbReject(cfg *cbConfig, wait time.Duration) error {
	emit(cfg.observer, Event{Kind: KindBreaker, Name: cfg.name, Type: EventReject, Delay: wait, Err: ErrCircuitOpen})
	return &RejectedError{Kind: KindBreaker, Name: cfg.name, Wait: wait, Err: ErrCircuitOpen}
}

// cbSetLocked is the one place the state changes: it moves the circuit to
// the state to, starting a new generation, and returns the EventStateChange
// to emit once c.mu is released. c.mu must be held.
func (c *Circuit) cbSetLocked(cfg *cbConfig, to State) Event {
	v := c.word.Load()
	from := cbStateOf(v)
	ev := Event{Kind: KindBreaker, Name: cfg.name, Type: EventStateChange, From: from, To: to}
	switch to {
	case StateOpen:
		if from == StateHalfOpen {
			d := max(c.coolDown, cfg.openFor)
			if d > cfg.maxOpenFor/2 {
				d = cfg.maxOpenFor
			} else {
				d *= 2
			}
			c.coolDown = d
		} else {
			c.coolDown = cfg.openFor
		}
		c.openUntil.Store(cfg.clock.Now().Add(c.coolDown).UnixNano())
		ev.Delay = c.coolDown
	case StateClosed:
		c.coolDown = cfg.openFor
		c.buckets = [cbBuckets]cbBucket{}
	}
	c.probes = c.probes[:0]
	c.word.Store(cbPack(cbGenOf(v)+1, to))
	return ev
}

// cbTransition moves the circuit to the state to if it is still in
// generation gen, and emits the state change.
func (c *Circuit) cbTransition(gen uint64, to State) {
	cfg := c.cfg.Load()
	c.mu.Lock()
	if cbGenOf(c.word.Load()) != gen {
		c.mu.Unlock()
		return
	}
	ev := c.cbSetLocked(cfg, to)
	c.mu.Unlock()
	emit(cfg.observer, ev)
}

// cbHealthCheck runs hc once, bounded by bound on clk, and closes or reopens
// the circuit if it is still in generation gen.
func (c *Circuit) cbHealthCheck(hc func(context.Context) error, clk clock.Clock, bound time.Duration, gen uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	t := clk.AfterFunc(bound, cancel)
	err := hc(ctx)
	t.Stop()
	cancel()

	cfg := c.cfg.Load()
	c.mu.Lock()
	c.hcRunning = false
	v := c.word.Load()
	if cbGenOf(v) != gen || cbStateOf(v) != StateHalfOpen {
		c.mu.Unlock()
		return
	}
	to := StateClosed
	if err != nil {
		to = StateOpen
	}
	ev := c.cbSetLocked(cfg, to)
	c.mu.Unlock()
	emit(cfg.observer, ev)
}

// Record reports the outcome of the call the ticket admitted. Call it once:
// a probe's further records are ignored, and so is every record made after
// the circuit changed state since the ticket was given.
func (t Ticket) Record(o Outcome) {
	c := t.c
	if c == nil {
		return
	}
	if t.id != 0 {
		c.cbRecordProbe(t, o)
		return
	}
	cfg := c.cfg.Load()
	if cfg.ratio > 0 {
		c.cbRecordRatio(cfg, t.gen, o)
		return
	}
	switch o {
	case OutcomeSuccess:
		for {
			v := c.word.Load()
			// A matching generation means the circuit is still closed.
			if cbGenOf(v) != t.gen || v&cbCountMask == 0 {
				return
			}
			if c.word.CompareAndSwap(v, v&^cbCountMask) {
				return
			}
		}
	case OutcomeFailure:
		for {
			v := c.word.Load()
			if cbGenOf(v) != t.gen {
				return
			}
			if cbCountOf(v)+1 >= cfg.failures {
				c.cbTransition(t.gen, StateOpen)
				return
			}
			if c.word.CompareAndSwap(v, v+cbCountOne) {
				return
			}
		}
	}
}

// cbRecordProbe records a probe's outcome.
func (c *Circuit) cbRecordProbe(t Ticket, o Outcome) {
	cfg := c.cfg.Load()
	c.mu.Lock()
	if cbGenOf(c.word.Load()) != t.gen || !c.cbReleaseProbeLocked(t.id) {
		c.mu.Unlock()
		return
	}
	var ev Event
	switch o {
	case OutcomeSuccess:
		ev = c.cbSetLocked(cfg, StateClosed)
	case OutcomeFailure:
		ev = c.cbSetLocked(cfg, StateOpen)
	}
	c.mu.Unlock()
	cbEmit(cfg.observer, ev)
}

// cbReleaseProbeLocked frees probe id's slot; it reports whether the probe
// was in flight.
func (c *Circuit) cbReleaseProbeLocked(id uint64) bool {
	for i, p := range c.probes {
		if p == id {
			last := len(c.probes) - 1
			c.probes[i] = c.probes[last]
			c.probes = c.probes[:last]
			return true
		}
	}
	return false
}

// cbRecordRatio records a closed-state outcome in ratio mode and opens the
// circuit when a failure brings the window's ratio to the threshold.
func (c *Circuit) cbRecordRatio(cfg *cbConfig, gen uint64, o Outcome) {
	if o == OutcomeIgnore {
		return
	}
	failed := o == OutcomeFailure
	c.mu.Lock()
	if cbGenOf(c.word.Load()) != gen {
		c.mu.Unlock()
		return
	}
	width := max(int64(cfg.window/cbBuckets), 1)
	if width != c.bucketWidth {
		c.buckets = [cbBuckets]cbBucket{}
		c.bucketWidth = width
	}
	cur := cfg.clock.Now().UnixNano() / width
	b := &c.buckets[cur%cbBuckets]
	if b.idx != cur {
		*b = cbBucket{idx: cur}
	}
	b.calls++
	if failed {
		b.failures++
	}
	if !failed {
		c.mu.Unlock()
		return
	}
	calls, failures := 0, 0
	for i := range c.buckets {
		if b := &c.buckets[i]; b.idx > cur-cbBuckets && b.idx <= cur {
			calls += b.calls
			failures += b.failures
		}
	}
	if calls < cfg.minCalls || float64(failures) < cfg.ratio*float64(calls) {
		c.mu.Unlock()
		return
	}
	ev := c.cbSetLocked(cfg, StateOpen)
	c.mu.Unlock()
	emit(cfg.observer, ev)
}

// Execute runs op if the circuit admits it and records its outcome: nil is a
// success; an error returned after ctx ended is ignored (the caller gave up,
// the callee may be fine); any other error is a failure if IsFailure says so
// (every error when IsFailure is nil) and a success otherwise. A panic in op
// counts as a failure and is propagated. Execute returns op's error
// unchanged, or the circuit's *RejectedError without calling op.
func (c *Circuit) Execute(ctx context.Context, op func(context.Context) error) error {
	t, err := c.Allow()
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			t.Record(OutcomeFailure)
		}
	}()
	err = op(ctx)
	done = true
	t.Record(c.cbClassify(ctx, err))
	return err
}

// cbClassify turns op's error into an Outcome.
func (c *Circuit) cbClassify(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return OutcomeSuccess
	case CallerDone(ctx):
		return OutcomeIgnore
	}
	if f := c.cfg.Load().isFailure; f != nil && !f(err) {
		return OutcomeSuccess
	}
	return OutcomeFailure
}
