package policies

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
)

// epoch is a fake clock's start on a whole second, so tests know which
// second bucket each moment falls in.
var epoch = time.Unix(1_700_000_000, 0)

// allowN calls AllowRetry until it refuses (at most limit times) and returns
// how many retries it allowed.
func allowN(b *Budget, limit int) int {
	for n := range limit {
		if !b.AllowRetry() {
			return n
		}
	}
	return limit
}

func requestN(b *Budget, n int) {
	for range n {
		b.Request()
	}
}

func TestBudgetValidate(t *testing.T) {
	tests := []struct {
		b    *Budget
		want string // "" for valid
	}{
		{nil, ""},
		{&Budget{}, ""},
		{&Budget{Ratio: 3, MinPerSecond: 1, Window: time.Minute}, ""},
		{&Budget{Ratio: -0.1}, "Budget.Ratio"},
		{&Budget{Ratio: math.NaN()}, "Budget.Ratio"},
		{&Budget{Ratio: math.Inf(1)}, "Budget.Ratio"},
		{&Budget{MinPerSecond: -1}, "Budget.MinPerSecond"},
		{&Budget{Window: -time.Second}, "Budget.Window"},
	}
	for _, tt := range tests {
		err := tt.b.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v.Validate() = %v, want nil", tt.b, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "policies: ")):
			t.Errorf("%+v.Validate() = %v, want an error naming %s", tt.b, err, tt.want)
		}
	}
}

func TestBudgetNilAllowsEverything(t *testing.T) {
	var b *Budget
	b.Request()
	for range 1000 {
		if !b.AllowRetry() {
			t.Fatal("a nil *Budget refused a retry")
		}
	}
}

func TestBudgetDefaults(t *testing.T) {
	// No traffic: only the floor, 10 per second over 10s.
	b := &Budget{Clock: clock.NewFake(epoch)}
	if got := allowN(b, 1000); got != 100 {
		t.Errorf("zero Budget with no requests allowed %d retries, want 10/s * 10s = 100", got)
	}
	// Ratio 0.2: 50 requests earn 10 more.
	requestN(b, 50)
	if got := allowN(b, 1000); got != 10 {
		t.Errorf("after 50 requests the zero Budget allowed %d more retries, want 0.2 * 50 = 10", got)
	}
}

func TestBudgetRatioAndFloor(t *testing.T) {
	b := &Budget{Ratio: 0.5, MinPerSecond: 1, Window: 2 * time.Second, Clock: clock.NewFake(epoch)}
	requestN(b, 10)
	if got := allowN(b, 1000); got != 7 {
		t.Errorf("allowed %d retries, want 0.5*10 + 1*2 = 7", got)
	}
	b.Request()
	if b.AllowRetry() {
		t.Error("one more request earned a whole retry at ratio 0.5")
	}
	b.Request()
	if !b.AllowRetry() {
		t.Error("two more requests did not earn a retry at ratio 0.5")
	}
}

func TestBudgetSubSecondWindow(t *testing.T) {
	b := &Budget{Ratio: 0.1, MinPerSecond: 4, Window: 500 * time.Millisecond, Clock: clock.NewFake(epoch)}
	if got := allowN(b, 100); got != 2 {
		t.Errorf("allowed %d retries, want 4/s * 0.5s = 2", got)
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	fake := clock.NewFake(epoch)
	b := &Budget{Ratio: 1, MinPerSecond: 1, Window: 10 * time.Second, Clock: fake}

	requestN(b, 20) // second 0
	if got := allowN(b, 1000); got != 30 {
		t.Fatalf("second 0: allowed %d retries, want 1*20 + 1*10 = 30", got)
	}

	fake.Advance(5 * time.Second) // second 5: second 0 still counts
	requestN(b, 4)
	if got := allowN(b, 1000); got != 4 {
		t.Fatalf("second 5: allowed %d retries, want the 4 the new requests earned", got)
	}

	fake.Advance(4*time.Second + 999*time.Millisecond) // second 9.999: still inside
	if b.AllowRetry() {
		t.Fatal("second 9.999: allowed a retry while second 0's retries are still in the window")
	}

	fake.Advance(time.Millisecond) // second 10: second 0 (20 requests, 30 retries) leaves
	// Left: 4 requests and 4 retries from second 5; allowed 4 + 10 - 4 = 10.
	if got := allowN(b, 1000); got != 10 {
		t.Fatalf("second 10: allowed %d retries, want 4 + 10 - 4 = 10", got)
	}

	fake.Advance(5 * time.Second) // second 15: second 5 leaves; 10 retries of second 10 remain
	if got := allowN(b, 1000); got != 0 {
		t.Fatalf("second 15: allowed %d retries, want 0 (the floor is spent by second 10)", got)
	}

	fake.Advance(time.Hour) // everything leaves at once
	if got := allowN(b, 1000); got != 10 {
		t.Fatalf("an hour later: allowed %d retries, want the floor, 10", got)
	}
}

func TestBudgetClockSteppingBack(t *testing.T) {
	c := &shiftClock{Fake: clock.NewFake(time.Unix(-100, 0))} // before 1970: negative seconds
	b := &Budget{Ratio: 1, MinPerSecond: 1, Window: 3 * time.Second, Clock: c}
	requestN(b, 2)
	c.Advance(2 * time.Second)
	requestN(b, 2)
	if got := allowN(b, 100); got != 4+3 {
		t.Fatalf("allowed %d retries, want 4 + 3 = 7", got)
	}
	// A clock that steps back a minute counts in the newest second, so the
	// window neither resets nor loses what it holds.
	c.off.Store(int64(-time.Minute))
	if b.AllowRetry() {
		t.Fatal("stepping the clock back reset the window")
	}
	b.Request()
	if !b.AllowRetry() {
		t.Fatal("a request made while the clock stepped back was not counted")
	}
	c.off.Store(0)
	c.Advance(2 * time.Second) // second -98, where all of that was counted, is still inside
	if b.AllowRetry() {
		t.Fatal("second -96: allowed a retry while second -98's are in the window")
	}
	c.Advance(time.Second) // second -98 leaves
	requestN(b, 2)
	if got := allowN(b, 100); got != 2+3 {
		t.Fatalf("second -95: allowed %d retries, want 2 + 3 = 5", got)
	}
}

// shiftClock reads its Fake shifted by off nanoseconds.
type shiftClock struct {
	*clock.Fake
	off atomic.Int64
}

func (s *shiftClock) Now() time.Time { return s.Fake.Now().Add(time.Duration(s.off.Load())) }

// TestBudgetFleet drives many failing calls through one shared Budget: however
// many attempts Retry would make, the fleet retries at most
// Ratio*calls + MinPerSecond*Window.
func TestBudgetFleet(t *testing.T) {
	const calls = 1000
	fake := clock.NewFake(epoch)
	b := &Budget{Ratio: 0.1, MinPerSecond: 2, Window: 5 * time.Second, Clock: fake}
	r := Retry{MaxAttempts: 5, Backoff: Constant(0), Budget: b, Clock: fake}
	var attempts atomic.Int64
	fail := errors.New("down")
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range calls / 10 {
				err := r.Execute(context.Background(), func(context.Context) error {
					attempts.Add(1)
					return fail
				})
				if !errors.Is(err, fail) {
					t.Errorf("Execute = %v, want the last attempt's error", err)
				}
			}
		})
	}
	wg.Wait()
	retries := attempts.Load() - calls
	limit := int64(0.1*calls + 2*5)
	if retries > limit {
		t.Errorf("fleet of %d failing calls made %d retries, want at most 0.1*%d + 2*5 = %d", calls, retries, calls, limit)
	}
	// Without the budget the fleet would have made 4 retries per call; with it
	// the budget is spent, to within the ratio's earnings of a few calls that
	// were still starting when it ran out.
	if retries < limit-5 {
		t.Errorf("fleet made %d retries, want close to the budget %d", retries, limit)
	}
}

func TestBudgetConcurrent(t *testing.T) {
	b := &Budget{Ratio: 0.5, MinPerSecond: 1, Window: time.Second, Clock: clock.NewFake(epoch)}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				b.Request()
				if b.AllowRetry() {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got, limit := allowed.Load(), int64(0.5*4000+1); got > limit || got < limit-1 {
		t.Errorf("allowed %d retries concurrently, want %d", got, limit)
	}
}

func BenchmarkBudgetAllowRetry(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		budget := &Budget{}
		b.ReportAllocs()
		for b.Loop() {
			budget.Request()
			budget.AllowRetry()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		budget := &Budget{}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				budget.Request()
				budget.AllowRetry()
			}
		})
	})
}
