package policies

import (
	"math"
	"sync"
	"testing"
	"time"
)

// top is a Rand that always draws the largest value, n-1, so Delay returns
// the top of its window.
func top(n int64) int64 { return n - 1 }

// bottom is a Rand that always draws 0, so Delay returns the bottom of its
// window.
func bottom(int64) int64 { return 0 }

func TestConstant(t *testing.T) {
	b := Constant(250 * time.Millisecond)
	for _, attempt := range []int{0, 1, 2, 10, 1000, math.MaxInt} {
		if got := b.Delay(attempt); got != 250*time.Millisecond {
			t.Errorf("Constant(250ms).Delay(%d) = %v, want 250ms", attempt, got)
		}
	}
	if got := Constant(0).Delay(1); got != 0 {
		t.Errorf("Constant(0).Delay(1) = %v, want 0", got)
	}
}

func TestExponentialWindow(t *testing.T) {
	tests := []struct {
		base, max time.Duration
		attempt   int
		want      time.Duration // top of the window
	}{
		{100 * time.Millisecond, 10 * time.Second, 1, 100 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 2, 200 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 3, 400 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 7, 6400 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 8, 10 * time.Second}, // 12.8s capped
		{100 * time.Millisecond, 10 * time.Second, 0, 100 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, -5, 100 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 62, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second, 63, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second, 64, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second, 1000, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second, math.MaxInt, 10 * time.Second},
		{1, math.MaxInt64, 64, math.MaxInt64 - 1}, // [0, MaxInt64] has one value too many for Int64N
		{1, math.MaxInt64, 63, 1 << 62},
		{time.Second, 500 * time.Millisecond, 1, 500 * time.Millisecond}, // max below base
		{0, 0, 1, 100 * time.Millisecond},                                // defaults
		{0, 0, 1000, 10 * time.Second},                                   // defaults
		{-time.Second, time.Second, 3, 0},                                // negative base waits 0
	}
	for _, tt := range tests {
		hi := ExponentialBackoff{Base: tt.base, Max: tt.max, Rand: top}.Delay(tt.attempt)
		if hi != tt.want {
			t.Errorf("Exponential(%v, %v) attempt %d: top of window %v, want %v", tt.base, tt.max, tt.attempt, hi, tt.want)
		}
		lo := ExponentialBackoff{Base: tt.base, Max: tt.max, Rand: bottom}.Delay(tt.attempt)
		if lo != 0 {
			t.Errorf("Exponential(%v, %v) attempt %d: bottom of window %v, want 0", tt.base, tt.max, tt.attempt, lo)
		}
	}
}

func TestExponentialRandomStaysInWindow(t *testing.T) {
	b := Exponential(100*time.Millisecond, 10*time.Second)
	for attempt := 1; attempt <= 1000; attempt++ {
		hi := 10 * time.Second
		if attempt <= 7 {
			hi = 100 * time.Millisecond << (attempt - 1)
		}
		for range 20 {
			if d := b.Delay(attempt); d < 0 || d > hi {
				t.Fatalf("Delay(%d) = %v, want within [0, %v]", attempt, d, hi)
			}
		}
	}
}

func TestExponentialIsJittered(t *testing.T) {
	b := Exponential(time.Second, time.Minute)
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[b.Delay(5)] = true
	}
	if len(seen) < 50 {
		t.Errorf("100 draws gave %d distinct delays; want full jitter", len(seen))
	}
}

func TestExponentialRandGetsInclusiveBound(t *testing.T) {
	var got []int64
	b := ExponentialBackoff{Base: 10, Max: 1000, Rand: func(n int64) int64 { got = append(got, n); return 0 }}
	b.Delay(1)
	b.Delay(3)
	b.Delay(100)
	want := []int64{11, 41, 1001}
	if len(got) != len(want) {
		t.Fatalf("Rand called with %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Rand called with %v, want %v", got, want)
		}
	}
}

func TestDecorrelatedWindow(t *testing.T) {
	tests := []struct {
		base, max    time.Duration
		attempt      int
		wantLo, want time.Duration
	}{
		{100 * time.Millisecond, 10 * time.Second, 1, 100 * time.Millisecond, 300 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 2, 100 * time.Millisecond, 900 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 4, 100 * time.Millisecond, 8100 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 5, 100 * time.Millisecond, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second, 0, 100 * time.Millisecond, 300 * time.Millisecond},
		{100 * time.Millisecond, 10 * time.Second, 1000, 100 * time.Millisecond, 10 * time.Second},
		{100 * time.Millisecond, 10 * time.Second, math.MaxInt, 100 * time.Millisecond, 10 * time.Second},
		{1, math.MaxInt64, 1000, 1, math.MaxInt64},
		{time.Second, time.Second, 3, time.Second, time.Second},
		{time.Second, 500 * time.Millisecond, 3, 500 * time.Millisecond, 500 * time.Millisecond}, // max below base
		{0, 0, 1, 100 * time.Millisecond, 300 * time.Millisecond},                                // defaults
		{0, 0, 1000, 100 * time.Millisecond, 10 * time.Second},                                   // defaults
	}
	for _, tt := range tests {
		hi := DecorrelatedBackoff{Base: tt.base, Max: tt.max, Rand: top}.Delay(tt.attempt)
		lo := DecorrelatedBackoff{Base: tt.base, Max: tt.max, Rand: bottom}.Delay(tt.attempt)
		if lo != tt.wantLo || hi != tt.want {
			t.Errorf("Decorrelated(%v, %v) attempt %d: window [%v, %v], want [%v, %v]",
				tt.base, tt.max, tt.attempt, lo, hi, tt.wantLo, tt.want)
		}
	}
}

func TestDecorrelatedRandomStaysInWindow(t *testing.T) {
	b := Decorrelated(100*time.Millisecond, 10*time.Second)
	for attempt := 1; attempt <= 1000; attempt++ {
		for range 20 {
			if d := b.Delay(attempt); d < 100*time.Millisecond || d > 10*time.Second {
				t.Fatalf("Delay(%d) = %v, want within [100ms, 10s]", attempt, d)
			}
		}
	}
}

func TestBackoffConcurrentUse(t *testing.T) {
	bs := []Backoff{Constant(time.Millisecond), Exponential(time.Millisecond, time.Second), Decorrelated(time.Millisecond, time.Second)}
	var wg sync.WaitGroup
	for _, b := range bs {
		for range 4 {
			wg.Go(func() {
				for a := range 1000 {
					if d := b.Delay(a); d < 0 || d > time.Second {
						t.Errorf("%T.Delay(%d) = %v", b, a, d)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

func BenchmarkBackoffExponential(b *testing.B) {
	e := Exponential(100*time.Millisecond, 10*time.Second)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Delay(i%20 + 1)
	}
}

func BenchmarkBackoffDecorrelated(b *testing.B) {
	d := Decorrelated(100*time.Millisecond, 10*time.Second)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Delay(i%20 + 1)
	}
}
