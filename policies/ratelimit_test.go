package policies

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// limStart is where fake clocks start: aligned on every window the tests use,
// and in the future, so a context deadline set from the fake clock does not
// expire in real time.
var limStart = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// limRecorder is an Observer that keeps the events it receives.
type limRecorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *limRecorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *limRecorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// limWaitCtx bounds a test's blocking step so a bug fails instead of hanging.
func limWaitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// limAllow calls l.Allow and fails the test on an error.
func limAllow(t *testing.T, l *Limiter, key string) LimitDecision {
	t.Helper()
	d, err := l.Allow(t.Context(), key)
	if err != nil {
		t.Fatalf("Allow(%q): %v", key, err)
	}
	return d
}

// limAdmitted calls Allow n times and returns how many were admitted.
func limAdmitted(t *testing.T, l *Limiter, key string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		if limAllow(t, l, key).Allowed {
			ok++
		}
	}
	return ok
}

func TestAlgorithmString(t *testing.T) {
	for a, want := range map[Algorithm]string{TokenBucket: "token_bucket", SlidingWindow: "sliding_window", 7: "Algorithm(7)"} {
		if got := a.String(); got != want {
			t.Errorf("Algorithm(%d).String() = %q, want %q", uint8(a), got, want)
		}
	}
}

func TestRateLimitValidate(t *testing.T) {
	tests := []struct {
		r    RateLimit
		want string
	}{
		{RateLimit{Limit: -1}, "policies: RateLimit.Limit must be >= 0, got -1"},
		{RateLimit{Window: -time.Second}, "policies: RateLimit.Window must be >= 0, got -1s"},
		{RateLimit{Burst: -2}, "policies: RateLimit.Burst must be >= 0, got -2"},
		{RateLimit{Algorithm: 2}, "policies: RateLimit.Algorithm must be TokenBucket or SlidingWindow, got Algorithm(2)"},
		{RateLimit{MaxKeys: -3}, "policies: RateLimit.MaxKeys must be >= 0, got -3"},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%+v.Validate() = %v, want %q", tt.r, err, tt.want)
		}
		func() {
			defer func() {
				if got := fmt.Sprint(recover()); got != tt.want {
					t.Errorf("NewLimiter(%+v) panicked with %q, want %q", tt.r, got, tt.want)
				}
			}()
			NewLimiter(tt.r)
		}()
		l := NewLimiter(RateLimit{Limit: 1})
		if err := l.Reconfigure(tt.r); err == nil || err.Error() != tt.want {
			t.Errorf("Reconfigure(%+v) = %v, want %q", tt.r, err, tt.want)
		}
		if q := l.cfg.Load().q; q.Limit != 1 {
			t.Errorf("after a failed Reconfigure the quota is %+v, want the old Limit 1", q)
		}
	}
	valid := RateLimit{Limit: 10, Window: time.Minute, Burst: 3, Algorithm: SlidingWindow, MaxKeys: 5}
	if err := valid.Validate(); err != nil {
		t.Errorf("%+v.Validate() = %v, want nil", valid, err)
	}
	if err := (RateLimit{}).Validate(); err != nil {
		t.Errorf("RateLimit{}.Validate() = %v, want nil", err)
	}
}

func TestRateLimitDefaults(t *testing.T) {
	// The zero value limits nothing.
	l := NewLimiter(RateLimit{})
	for i := range 1000 {
		if d := limAllow(t, l, "k"); d != (LimitDecision{Allowed: true}) {
			t.Fatalf("zero RateLimit, call %d: %+v, want {Allowed: true}", i, d)
		}
	}
	c := l.cfg.Load()
	if c.maxKeys != 100_000 || c.q.Window != time.Second || c.q.Algorithm != TokenBucket {
		t.Errorf("defaults: MaxKeys %d Window %v Algorithm %v, want 100000 1s token_bucket", c.maxKeys, c.q.Window, c.q.Algorithm)
	}
	if c.store != l.mem || l.mem == nil {
		t.Errorf("nil Store: the limiter does not use its own MemoryStore")
	}
	if n := l.mem.maxKeys.Load(); n != 100_000 || len(l.mem.shards) != limMaxShards {
		t.Errorf("default store: %d shards holding %d keys, want %d shards holding 100000", len(l.mem.shards), n, limMaxShards)
	}

	// Window 0 means 1s, Burst 0 means Limit.
	f := clock.NewFake(limStart)
	l = NewLimiter(RateLimit{Limit: 5, Clock: f})
	if got := limAdmitted(t, l, "k", 10); got != 5 {
		t.Errorf("Limit 5, default Burst: %d admitted at once, want 5", got)
	}
	if d := limAllow(t, l, "k"); d.RetryAfter != 200*time.Millisecond || d.Reset != time.Second {
		t.Errorf("Limit 5 per default Window: RetryAfter %v Reset %v, want 200ms and 1s", d.RetryAfter, d.Reset)
	}
}

func TestLimiterTokenBucketBurstThenRate(t *testing.T) {
	f := clock.NewFake(limStart)
	l := NewLimiter(RateLimit{Limit: 10, Window: time.Second, Burst: 20, Clock: f})
	if got := limAdmitted(t, l, "k", 25); got != 20 {
		t.Fatalf("a quiet key: %d admitted at once, want Burst 20", got)
	}
	f.Advance(100 * time.Millisecond)
	if got := limAdmitted(t, l, "k", 5); got != 1 {
		t.Errorf("after 100ms: %d admitted, want 1 (10 per second)", got)
	}
	for sec := range 3 {
		f.Advance(time.Second)
		if got := limAdmitted(t, l, "k", 15); got != 10 {
			t.Errorf("second %d: %d admitted, want Limit 10", sec, got)
		}
	}
	if got := limAdmitted(t, l, "other", 25); got != 20 {
		t.Errorf("keys are independent: another key had %d admitted, want 20", got)
	}
	f.Advance(time.Hour)
	if got := limAdmitted(t, l, "k", 25); got != 20 {
		t.Errorf("after an idle hour: %d admitted, want Burst 20 (never more)", got)
	}
}

func TestLimiterTokenBucketDecision(t *testing.T) {
	f := clock.NewFake(limStart)
	l := NewLimiter(RateLimit{Limit: 10, Window: time.Second, Clock: f})
	want := []LimitDecision{}
	for i := 1; i <= 10; i++ {
		want = append(want, LimitDecision{Allowed: true, Limit: 10, Remaining: 10 - i, Reset: time.Duration(i) * 100 * time.Millisecond})
	}
	for i, w := range want {
		if d := limAllow(t, l, "k"); d != w {
			t.Fatalf("call %d: %+v, want %+v", i+1, d, w)
		}
	}
	refused := LimitDecision{Limit: 10, Remaining: 0, Reset: time.Second, RetryAfter: 100 * time.Millisecond}
	if d := limAllow(t, l, "k"); d != refused {
		t.Fatalf("11th call: %+v, want %+v", d, refused)
	}
	f.Advance(30 * time.Millisecond)
	if d := limAllow(t, l, "k"); d.Allowed || d.RetryAfter != 70*time.Millisecond || d.Reset != 970*time.Millisecond {
		t.Errorf("30ms later: %+v, want refused, RetryAfter 70ms, Reset 970ms", d)
	}
	d, err := l.AllowN(t.Context(), "k", 3)
	if err != nil || d.Allowed || d.RetryAfter != 270*time.Millisecond {
		t.Errorf("AllowN(3) 30ms later: %+v %v, want refused with RetryAfter 270ms", d, err)
	}
	f.Advance(270 * time.Millisecond)
	if d, err := l.AllowN(t.Context(), "k", 3); err != nil || !d.Allowed || d.Remaining != 0 || d.Reset != time.Second {
		t.Errorf("AllowN(3) at its RetryAfter: %+v %v, want admitted, Remaining 0, Reset 1s", d, err)
	}
	// n == 0 peeks: it reports and takes nothing.
	f.Advance(500 * time.Millisecond)
	for range 3 {
		if d, err := l.AllowN(t.Context(), "k", 0); err != nil || !d.Allowed || d.Remaining != 5 || d.Reset != 500*time.Millisecond {
			t.Errorf("AllowN(0): %+v %v, want admitted, Remaining 5, Reset 500ms", d, err)
		}
	}
}

func TestLimiterNOutOfRange(t *testing.T) {
	l := NewLimiter(RateLimit{Limit: 10, Burst: 4, Clock: clock.NewFake(limStart)})
	for _, n := range []int{5, -1} {
		d, err := l.AllowN(t.Context(), "k", n)
		if !errors.Is(err, ErrRateLimited) || d.Allowed {
			t.Errorf("AllowN(n=%d) with Burst 4: %+v %v, want an error wrapping ErrRateLimited", n, d, err)
		}
		if _, ok := RetryAfter(err); ok {
			t.Errorf("AllowN(n=%d): the error carries a wait, but no wait will do", n)
		}
	}
	sw := NewLimiter(RateLimit{Limit: 10, Burst: 4, Algorithm: SlidingWindow, Clock: clock.NewFake(limStart)})
	if d, err := sw.AllowN(t.Context(), "k", 10); err != nil || !d.Allowed {
		t.Errorf("SlidingWindow ignores Burst: AllowN(10) = %+v %v, want admitted", d, err)
	}
	if _, err := sw.AllowN(t.Context(), "k", 11); !errors.Is(err, ErrRateLimited) {
		t.Errorf("SlidingWindow AllowN(11) with Limit 10: %v, want ErrRateLimited", err)
	}
}

func TestLimiterSlidingWindow(t *testing.T) {
	f := clock.NewFake(limStart) // aligned on the 1s windows
	l := NewLimiter(RateLimit{Limit: 10, Window: time.Second, Algorithm: SlidingWindow, Burst: 99, Clock: f})
	for i := 1; i <= 10; i++ {
		want := LimitDecision{Allowed: true, Limit: 10, Remaining: 10 - i, Reset: time.Second}
		if d := limAllow(t, l, "k"); d != want {
			t.Fatalf("call %d: %+v, want %+v", i, d, want)
		}
	}
	// Full: in the next window the 10 weigh 10*(1-el/1s), so one more fits
	// once 10*(1-el) + 1 <= 10, at el = 100ms.
	want := LimitDecision{Limit: 10, Reset: time.Second, RetryAfter: 1100 * time.Millisecond}
	if d := limAllow(t, l, "k"); d != want {
		t.Fatalf("11th call: %+v, want %+v", d, want)
	}
	f.Advance(1100*time.Millisecond - 1)
	if d := limAllow(t, l, "k"); d.Allowed || d.RetryAfter != 1 {
		t.Fatalf("1ns before RetryAfter: %+v, want refused with RetryAfter 1ns", d)
	}
	f.Advance(1)
	if d := limAllow(t, l, "k"); !d.Allowed || d.Remaining != 0 || d.Reset != 900*time.Millisecond {
		t.Fatalf("at RetryAfter: %+v, want admitted, Remaining 0, Reset 900ms", d)
	}
	// Now 10*(1-el) + 1 + 1 <= 10 at el = 200ms.
	if d := limAllow(t, l, "k"); d.Allowed || d.RetryAfter != 100*time.Millisecond {
		t.Fatalf("next: %+v, want refused with RetryAfter 100ms", d)
	}
	// Halfway through the window the previous 10 count as 5: 3 more fit
	// beside the 1 already admitted and the estimate's rounding.
	f.Advance(400 * time.Millisecond) // el = 500ms
	if got := limAdmitted(t, l, "k", 10); got != 4 {
		t.Errorf("at el=500ms with prev=10, curr=1: %d admitted, want 4 (5 + 1 + 4 = 10)", got)
	}
	// Two windows later nothing is remembered.
	f.Advance(2 * time.Second)
	if got := limAdmitted(t, l, "k", 20); got != 10 {
		t.Errorf("after two quiet windows: %d admitted, want 10", got)
	}
}

func TestLimiterWaitSleepsRetryAfter(t *testing.T) {
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		t.Run(alg.String(), func(t *testing.T) {
			f := clock.NewFake(limStart)
			rec := &limRecorder{}
			l := NewLimiter(RateLimit{Limit: 2, Window: time.Second, Algorithm: alg, Name: "api", Observer: rec, Clock: f})
			limAdmitted(t, l, "k", 2)
			retry := limAllow(t, l, "k").RetryAfter
			if retry <= 0 {
				t.Fatalf("RetryAfter %v, want > 0", retry)
			}
			done := make(chan error, 1)
			go func() { done <- l.Wait(t.Context(), "k") }()
			if err := f.BlockUntil(limWaitCtx(t), 1); err != nil {
				t.Fatal(err)
			}
			f.Advance(retry - 1)
			select {
			case err := <-done:
				t.Fatalf("Wait returned %v 1ns before RetryAfter", err)
			case <-time.After(2 * time.Millisecond):
			}
			f.Advance(1)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Wait = %v, want nil", err)
				}
			case <-limWaitCtx(t).Done():
				t.Fatal("Wait did not return after RetryAfter")
			}
			if n := f.Timers(); n != 0 {
				t.Errorf("Wait left %d timers armed: it slept more than once", n)
			}
			if d := limAllow(t, l, "k"); d.Allowed {
				t.Errorf("Wait did not take its unit: the next Allow was admitted")
			}
			evs := rec.all()
			last := evs[len(evs)-2] // before the refusal just made
			if want := (Event{Kind: KindRateLimit, Name: "api", Key: "k", Type: EventAdmit, Delay: retry}); last != want {
				t.Errorf("event after waiting: %+v, want %+v", last, want)
			}
		})
	}
}

func TestLimiterWaitFailsFastPastDeadline(t *testing.T) {
	f := clock.NewFake(limStart)
	rec := &limRecorder{}
	l := NewLimiter(RateLimit{Limit: 1, Window: time.Second, Name: "api", Observer: rec, Clock: f})
	limAllow(t, l, "host")
	ctx, cancel := context.WithDeadline(t.Context(), f.Now().Add(500*time.Millisecond))
	defer cancel()
	err := l.Wait(ctx, "host")
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("Wait with 500ms left for a 1s wait = %v, want ErrRateLimited", err)
	}
	if wait, ok := RetryAfter(err); !ok || wait != time.Second {
		t.Errorf("RetryAfter(err) = %v %v, want 1s true", wait, ok)
	}
	var re *RejectedError
	if !errors.As(err, &re) || re.Kind != KindRateLimit || re.Name != "api" || re.Key != "host" {
		t.Errorf("error %#v, want a *RejectedError of kind ratelimit, name api, key host", err)
	}
	if n := f.Timers(); n != 0 {
		t.Errorf("Wait armed %d timers; it must not sleep", n)
	}
	evs := rec.all()
	if want := (Event{Kind: KindRateLimit, Name: "api", Key: "host", Type: EventReject, Delay: time.Second}); len(evs) != 1 || evs[0] != want {
		t.Errorf("events %+v, want [%+v]", evs, want)
	}
	// A deadline exactly at the end of the wait is enough.
	ctx2, cancel2 := context.WithDeadline(t.Context(), f.Now().Add(time.Second))
	defer cancel2()
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx2, "host") }()
	if err := f.BlockUntil(limWaitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Second)
	if err := <-done; err != nil {
		t.Errorf("Wait with a deadline at the end of the wait = %v, want nil", err)
	}
}

func TestLimiterWaitRealClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(RateLimit{Limit: 1, Window: time.Second})
		start := time.Now()
		for range 3 {
			if err := l.Wait(t.Context(), "k"); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("3 Waits at 1 per second took %v, want 2s", got)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 999*time.Millisecond)
		defer cancel()
		start = time.Now()
		if err := l.Wait(ctx, "k"); !errors.Is(err, ErrRateLimited) {
			t.Errorf("Wait with a deadline short of the wait = %v, want ErrRateLimited", err)
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("failing Wait took %v, want 0", got)
		}
	})
}

func TestLimiterWaitCanceled(t *testing.T) {
	f := clock.NewFake(limStart)
	l := NewLimiter(RateLimit{Limit: 1, Window: time.Minute, Clock: f})
	limAllow(t, l, "k")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, "k") }()
	if err := f.BlockUntil(limWaitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %v, want context.Canceled", err)
	}
	// An ended context takes nothing.
	l2 := NewLimiter(RateLimit{Limit: 1, Clock: f})
	if err := l2.Wait(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with an ended context = %v, want context.Canceled", err)
	}
	if d := limAllow(t, l2, "k"); !d.Allowed {
		t.Errorf("Wait with an ended context took a unit")
	}
}

// limFailStore is a Store that fails, or counts calls and admits.
type limFailStore struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (s *limFailStore) Take(_ context.Context, _ string, _ int, q Quota, _ time.Time) (LimitDecision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return LimitDecision{}, s.err
	}
	return LimitDecision{Allowed: true, Limit: q.Limit}, nil
}

func TestLimiterStoreError(t *testing.T) {
	boom := errors.New("store down")
	rec := &limRecorder{}
	l := NewLimiter(RateLimit{Limit: 5, Store: &limFailStore{err: boom}, Observer: rec, Clock: clock.NewFake(limStart)})
	if _, err := l.Allow(t.Context(), "k"); !errors.Is(err, boom) {
		t.Errorf("Allow = %v, want the store's error", err)
	}
	if err := l.Wait(t.Context(), "k"); !errors.Is(err, boom) {
		t.Errorf("Wait = %v, want the store's error", err)
	}
	ran := false
	if err := l.Execute(t.Context(), func(context.Context) error { ran = true; return nil }); !errors.Is(err, boom) || ran {
		t.Errorf("Execute = %v (op ran: %v), want the store's error and op not run", err, ran)
	}
	if evs := rec.all(); len(evs) != 0 {
		t.Errorf("a store error emitted %+v; it is no rejection", evs)
	}
}

func TestLimiterLimitZero(t *testing.T) {
	f := clock.NewFake(limStart)
	s := &limFailStore{}
	l := NewLimiter(RateLimit{Store: s, Clock: f})
	for range 100 {
		if d := limAllow(t, l, "k"); d != (LimitDecision{Allowed: true}) {
			t.Fatalf("Limit 0: %+v, want {Allowed: true}", d)
		}
		if err := l.Wait(t.Context(), "k"); err != nil {
			t.Fatalf("Limit 0: Wait = %v", err)
		}
	}
	if s.calls != 0 {
		t.Errorf("Limit 0 consulted the store %d times, want 0", s.calls)
	}
	// Held keys still wait.
	l.Hold("k", f.Now().Add(3*time.Second))
	if d := limAllow(t, l, "k"); d.Allowed || d.RetryAfter != 3*time.Second {
		t.Errorf("Limit 0, held key: %+v, want refused with RetryAfter 3s", d)
	}
	done := make(chan error, 1)
	go func() { done <- l.Wait(t.Context(), "k") }()
	if err := f.BlockUntil(limWaitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(3 * time.Second)
	if err := <-done; err != nil {
		t.Errorf("Limit 0: Wait on a held key = %v, want nil after the hold", err)
	}
}

func TestLimiterHold(t *testing.T) {
	f := clock.NewFake(limStart)
	rec := &limRecorder{}
	l := NewLimiter(RateLimit{Limit: 10, Name: "api", Observer: rec, Clock: f})
	if _, held := l.HeldUntil("h"); held {
		t.Fatal("a key is held before any Hold")
	}
	end := f.Now().Add(5 * time.Second)
	l.Hold("h", end)
	if until, held := l.HeldUntil("h"); !held || !until.Equal(end) {
		t.Errorf("HeldUntil = %v %v, want %v true", until, held, end)
	}
	if d := limAllow(t, l, "h"); d != (LimitDecision{Limit: 10, Reset: 5 * time.Second, RetryAfter: 5 * time.Second}) {
		t.Errorf("held key: %+v, want refused with RetryAfter and Reset 5s", d)
	}
	if d := limAllow(t, l, "other"); !d.Allowed {
		t.Errorf("another key is refused while h is held")
	}
	// Shorter holds do not shorten; longer ones extend.
	l.Hold("h", end.Add(-time.Second))
	l.Hold("h", f.Now()) // not in the future: nothing
	if until, _ := l.HeldUntil("h"); !until.Equal(end) {
		t.Errorf("a shorter Hold moved the end to %v, want %v", until, end)
	}
	f.Advance(time.Second)
	l.Hold("h", end.Add(2*time.Second))
	if d := limAllow(t, l, "h"); d.Allowed || d.RetryAfter != 6*time.Second {
		t.Errorf("after extending: %+v, want RetryAfter 6s", d)
	}
	f.Advance(6*time.Second - 1)
	if d := limAllow(t, l, "h"); d.Allowed || d.RetryAfter != 1 {
		t.Errorf("1ns before the hold ends: %+v, want refused with RetryAfter 1ns", d)
	}
	f.Advance(1)
	// The hold took no tokens: the whole burst is there.
	if got := limAdmitted(t, l, "h", 20); got != 10 {
		t.Errorf("after the hold: %d admitted, want 10", got)
	}
	if _, held := l.HeldUntil("h"); held {
		t.Errorf("HeldUntil reports a hold that ended")
	}
	if n := l.nholds.Load(); n != 0 {
		t.Errorf("%d holds left after the only one expired, want 0 (dropped lazily)", n)
	}
	var holds []Event
	for _, e := range rec.all() {
		if e.Type == EventHold {
			holds = append(holds, e)
		}
	}
	want := []Event{
		{Kind: KindRateLimit, Name: "api", Key: "h", Type: EventHold, Delay: 5 * time.Second},
		{Kind: KindRateLimit, Name: "api", Key: "h", Type: EventHold, Delay: 6 * time.Second},
	}
	if fmt.Sprint(holds) != fmt.Sprint(want) {
		t.Errorf("hold events %+v, want %+v (only when a hold is set or extended)", holds, want)
	}
}

func TestLimiterHoldBounded(t *testing.T) {
	f := clock.NewFake(limStart)
	l := NewLimiter(RateLimit{Limit: 1, MaxKeys: 50, Clock: f})
	for i := range 500 {
		l.Hold(strconv.Itoa(i), f.Now().Add(time.Duration(i+1)*time.Second))
	}
	if n := len(l.holds); n > 50 || int64(n) != l.nholds.Load() {
		t.Errorf("%d holds (counted %d) after 500 Holds with MaxKeys 50, want <= 50", n, l.nholds.Load())
	}
	// When the table is full the holds ending soonest go first, so the
	// latest one stays.
	if _, held := l.HeldUntil("499"); !held {
		t.Errorf("the newest hold was evicted")
	}
	// Expired holds make room first.
	f.Advance(time.Hour)
	l.Hold("new", f.Now().Add(time.Second))
	if _, held := l.HeldUntil("new"); !held {
		t.Errorf("a new hold was not kept")
	}
}

func TestLimiterExecute(t *testing.T) {
	f := clock.NewFake(limStart)
	l := NewLimiter(RateLimit{Limit: 1, Window: time.Second, Clock: f})
	boom := errors.New("boom")
	if err := l.Execute(t.Context(), func(context.Context) error { return boom }); err != boom {
		t.Errorf("Execute = %v, want op's error", err)
	}
	ctx, cancel := context.WithDeadline(t.Context(), f.Now().Add(time.Millisecond))
	defer cancel()
	ran := false
	err := l.Execute(ctx, func(context.Context) error { ran = true; return nil })
	if wait, ok := RetryAfter(err); !errors.Is(err, ErrRateLimited) || !ok || wait != time.Second || ran {
		t.Errorf("Execute over the limit with 1ms left = %v (ran %v), want ErrRateLimited with RetryAfter 1s, op not run", err, ran)
	}
	done := make(chan error, 1)
	go func() { done <- Do(t.Context(), func(context.Context) (int, error) { return 7, nil }, l).Err() }()
	if err := f.BlockUntil(limWaitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Second)
	if err := <-done; err != nil {
		t.Errorf("Do through the limiter = %v, want nil after waiting", err)
	}
}

func TestLimiterReconfigureKeepsState(t *testing.T) {
	f := clock.NewFake(limStart)
	rec := &limRecorder{}
	l := NewLimiter(RateLimit{Limit: 10, Window: time.Second, Clock: f})
	limAdmitted(t, l, "k", 10)
	l.Hold("held", f.Now().Add(time.Minute))
	store := l.mem
	if err := l.Reconfigure(RateLimit{Limit: 20, Window: time.Second, Name: "new", Observer: rec, Clock: f}); err != nil {
		t.Fatal(err)
	}
	if l.mem != store || l.cfg.Load().store != store {
		t.Fatal("Reconfigure replaced the memory store")
	}
	// The bucket is still empty; it now refills at 20 per second.
	d := limAllow(t, l, "k")
	if d.Allowed || d.RetryAfter != 50*time.Millisecond || d.Limit != 20 {
		t.Errorf("after Reconfigure: %+v, want refused, RetryAfter 50ms, Limit 20", d)
	}
	if evs := rec.all(); len(evs) != 1 || evs[0].Name != "new" || evs[0].Type != EventReject {
		t.Errorf("events %+v, want one reject named new", evs)
	}
	if _, held := l.HeldUntil("held"); !held {
		t.Errorf("Reconfigure dropped a hold")
	}
	f.Advance(time.Second)
	if got := limAdmitted(t, l, "k", 40); got != 20 {
		t.Errorf("a second later: %d admitted, want the new Burst 20", got)
	}
	// Switching algorithm starts afresh.
	if err := l.Reconfigure(RateLimit{Limit: 5, Algorithm: SlidingWindow, Clock: f}); err != nil {
		t.Fatal(err)
	}
	if got := limAdmitted(t, l, "k", 10); got != 5 {
		t.Errorf("after switching to SlidingWindow: %d admitted, want 5", got)
	}
	// MaxKeys resizes the same store.
	if err := l.Reconfigure(RateLimit{Limit: 5, MaxKeys: 64, Clock: f}); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		limAllow(t, l, strconv.Itoa(i))
	}
	if n := store.Len(); n > 64 {
		t.Errorf("after Reconfigure to MaxKeys 64: %d keys", n)
	}
	// An explicit Store is used.
	s := &limFailStore{}
	if err := l.Reconfigure(RateLimit{Limit: 5, Store: s, Clock: f}); err != nil {
		t.Fatal(err)
	}
	limAllow(t, l, "x")
	if s.calls != 1 {
		t.Errorf("the Store given to Reconfigure was called %d times, want 1", s.calls)
	}
}

// limCheckSpans checks admitted times (ascending) against the bound: no
// span of length w (closed when closed is set, else half-open) holds more
// than max.
func limCheckSpans(t *testing.T, times []time.Time, w time.Duration, closed bool, max int, what string) {
	t.Helper()
	j := 0
	for i := range times {
		for j < len(times) && (times[j].Sub(times[i]) < w || closed && times[j].Sub(times[i]) == w) {
			j++
		}
		if n := j - i; n > max {
			t.Fatalf("%s: %d admitted in the span of %v starting at +%v, bound %d", what, n, w, times[i].Sub(limStart), max)
		}
	}
}

// TestLimiterProperty drives random quotas with random arrivals on a fake
// clock and checks the bound each algorithm promises, and that RetryAfter is
// exact: a request made once RetryAfter has passed is admitted, one made
// just before is not.
//
// Token bucket: the bucket holds at most Burst tokens at the start of any
// closed span of length Window and gains exactly Limit in it, so no such span
// admits more than Burst + Limit.
//
// Sliding window: the estimate is at least the current window's count, so no
// aligned window admits more than Limit. A span of length Window covers the
// tail of one aligned window (at most prev requests) and a head of the next
// of length e < Window, in which at most Limit - prev*(1-e/Window) were
// admitted; so the span holds at most Limit + prev*e/Window < 2*Limit.
func TestLimiterProperty(t *testing.T) {
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		t.Run(alg.String(), func(t *testing.T) {
			for seed := range uint64(60) {
				rng := rand.New(rand.NewPCG(seed, 42))
				limit := 1 + rng.IntN(20)
				burst := 1 + rng.IntN(30)
				window := time.Duration(1+rng.IntN(2000)) * time.Millisecond
				f := clock.NewFake(limStart)
				l := NewLimiter(RateLimit{Limit: limit, Burst: burst, Window: window, Algorithm: alg, Clock: f})
				what := fmt.Sprintf("seed %d: %v limit %d burst %d window %v", seed, alg, limit, burst, window)
				var admitted []time.Time
				mean := window / time.Duration(limit) // arrivals around the limit
				for range 3000 {
					switch rng.IntN(10) {
					case 0: // a quiet spell
						f.Advance(time.Duration(rng.Int64N(int64(3 * window))))
					case 1, 2: // a burst
					default:
						f.Advance(time.Duration(rng.Int64N(int64(2*mean) + 1)))
					}
					d := limAllow(t, l, "k")
					if d.Allowed {
						admitted = append(admitted, f.Now())
						if d.RetryAfter != 0 {
							t.Fatalf("%s: admitted with RetryAfter %v", what, d.RetryAfter)
						}
						continue
					}
					if d.RetryAfter <= 0 || d.Remaining != 0 && alg == TokenBucket {
						t.Fatalf("%s: refused with %+v", what, d)
					}
					if rng.IntN(3) == 0 { // come back exactly when told
						slack := time.Duration(1)
						if alg == TokenBucket {
							slack = time.Microsecond // float tokens
						}
						if d.RetryAfter > slack {
							f.Advance(d.RetryAfter - slack)
							if early := limAllow(t, l, "k"); early.Allowed {
								t.Fatalf("%s: admitted %v before RetryAfter %v", what, slack, d.RetryAfter)
							}
							f.Advance(slack)
						} else {
							f.Advance(d.RetryAfter)
						}
						if again := limAllow(t, l, "k"); !again.Allowed {
							t.Fatalf("%s: refused at RetryAfter %v: %+v", what, d.RetryAfter, again)
						}
						admitted = append(admitted, f.Now())
					}
				}
				if len(admitted) < 100 {
					t.Fatalf("%s: only %d admitted; the test exercises nothing", what, len(admitted))
				}
				if alg == TokenBucket {
					limCheckSpans(t, admitted, window, true, burst+limit, what)
					continue
				}
				limCheckSpans(t, admitted, window, false, 2*limit-1, what)
				perWindow := map[int64]int{}
				for _, at := range admitted {
					w := limWindowStart(at.UnixNano(), int64(window))
					if perWindow[w]++; perWindow[w] > limit {
						t.Fatalf("%s: aligned window at %v admitted more than %d", what, time.Unix(0, w), limit)
					}
				}
			}
		})
	}
}

func TestLimiterConcurrent(t *testing.T) {
	f := clock.NewFake(limStart)
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		l := NewLimiter(RateLimit{Limit: 50, Window: time.Minute, Algorithm: alg, Clock: f})
		keys := []string{"a", "b", "c", "d"}
		var mu sync.Mutex
		admitted := map[string]int{}
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 100 {
					key := keys[(g+i)%len(keys)]
					d, err := l.Allow(context.Background(), key)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						mu.Lock()
						admitted[key]++
						mu.Unlock()
					}
					switch i % 25 {
					case 0:
						l.Hold("held-"+key, f.Now().Add(time.Second))
					case 1:
						l.HeldUntil("held-" + key)
					case 2:
						if err := l.Reconfigure(RateLimit{Limit: 50, Window: time.Minute, Algorithm: alg, Clock: f}); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		for _, k := range keys {
			if admitted[k] != 50 {
				t.Errorf("%v: key %s: %d admitted by 16 goroutines, want exactly 50", alg, k, admitted[k])
			}
		}
	}
}

func TestLimiterAllowAllocatesNothing(t *testing.T) {
	f := clock.NewFake(limStart)
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		l := NewLimiter(RateLimit{Limit: 1000, Algorithm: alg, Observer: &limRecorder{}, Clock: f})
		keys := make([]string, 100)
		for i := range keys {
			keys[i] = "client-" + strconv.Itoa(i)
			limAllow(t, l, keys[i])
		}
		l.Hold("held", f.Now().Add(time.Hour))
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			l.Allow(context.Background(), keys[i%len(keys)])
			i++
		})
		if allocs != 0 {
			t.Errorf("%v: Allow on existing keys allocates %v times per call, want 0", alg, allocs)
		}
	}
}

// limBenchKeys returns n distinct keys.
func limBenchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	return keys
}

func BenchmarkLimiterAllow(b *testing.B) {
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		b.Run(alg.String(), func(b *testing.B) {
			l := NewLimiter(RateLimit{Limit: 1e9, Algorithm: alg})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				l.Allow(ctx, "k")
			}
		})
	}
}

func BenchmarkLimiterAllowParallel(b *testing.B) {
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		b.Run(alg.String(), func(b *testing.B) {
			l := NewLimiter(RateLimit{Limit: 1e9, Algorithm: alg})
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Allow(ctx, "k")
				}
			})
		})
	}
}

func BenchmarkLimiterAllowKeys100k(b *testing.B) {
	keys := limBenchKeys(100_000)
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		b.Run(alg.String(), func(b *testing.B) {
			l := NewLimiter(RateLimit{Limit: 1e9, Algorithm: alg})
			ctx := context.Background()
			for _, k := range keys {
				l.Allow(ctx, k)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Allow(ctx, keys[i])
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	}
}

func BenchmarkLimiterAllowKeys100kParallel(b *testing.B) {
	keys := limBenchKeys(100_000)
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		b.Run(alg.String(), func(b *testing.B) {
			l := NewLimiter(RateLimit{Limit: 1e9, Algorithm: alg})
			ctx := context.Background()
			for _, k := range keys {
				l.Allow(ctx, k)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var next sync.Mutex
			start := 0
			b.RunParallel(func(pb *testing.PB) {
				next.Lock()
				i := start
				start += 7919
				next.Unlock()
				for pb.Next() {
					l.Allow(ctx, keys[i%len(keys)])
					i++
				}
			})
		})
	}
}
