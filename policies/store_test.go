package policies

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// limTake calls s.Take and fails the test on an error.
func limTake(t *testing.T, s *MemoryStore, key string, n int, q Quota, now time.Time) LimitDecision {
	t.Helper()
	d, err := s.Take(t.Context(), key, n, q, now)
	if err != nil {
		t.Fatalf("Take(%q): %v", key, err)
	}
	return d
}

// limCountKeys counts the keys in s's shards.
func limCountKeys(s *MemoryStore) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// limSameShard returns n distinct keys that s puts in one shard.
func limSameShard(s *MemoryStore, n int) []string {
	var keys []string
	want := s.shard("k0")
	for i := 0; len(keys) < n; i++ {
		if k := "k" + strconv.Itoa(i); s.shard(k) == want {
			keys = append(keys, k)
		}
	}
	return keys
}

func TestMemoryStoreShards(t *testing.T) {
	for _, tt := range []struct{ maxKeys, shards int }{
		{0, 64}, {-5, 64}, {1, 1}, {10, 8}, {64, 64}, {100, 64}, {100_000, 64},
	} {
		s := NewMemoryStore(tt.maxKeys)
		want := tt.maxKeys
		if want <= 0 {
			want = 100_000
		}
		if len(s.shards) != tt.shards || s.maxKeys.Load() != int64(want) {
			t.Errorf("NewMemoryStore(%d): %d shards holding %d keys, want %d holding %d", tt.maxKeys, len(s.shards), s.maxKeys.Load(), tt.shards, want)
		}
	}
}

func TestMemoryStoreMaxKeys(t *testing.T) {
	q := Quota{Limit: 5, Window: time.Second, Burst: 5}
	for _, maxKeys := range []int{1, 10, 100, 1000} {
		for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
			q.Algorithm = alg
			s := NewMemoryStore(maxKeys)
			now := limStart
			for i := range 10 * maxKeys {
				now = now.Add(time.Millisecond)
				limTake(t, s, "key-"+strconv.Itoa(i), 1, q, now)
				if n := limCountKeys(s); n > maxKeys || n != s.Len() {
					t.Fatalf("%v, MaxKeys %d: %d keys (Len %d) after %d inserts", alg, maxKeys, n, s.Len(), i+1)
				}
			}
			if n := s.Len(); n != maxKeys {
				t.Errorf("%v, MaxKeys %d: %d keys kept, want the store full", alg, maxKeys, n)
			}
		}
	}
}

func TestMemoryStoreEvictionPrefersIdle(t *testing.T) {
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		q := Quota{Limit: 1, Window: 10 * time.Second, Burst: 1, Algorithm: alg}
		s := NewMemoryStore(2) // full with 2 keys in one shard
		keys := limSameShard(s, 4)
		busy, idle, newcomer, last := keys[0], keys[1], keys[2], keys[3]
		sh := s.shard(busy)
		limTake(t, s, busy, 1, q, limStart)                        // empty until +10s: busy
		limTake(t, s, idle, 0, q, limStart.Add(time.Second))       // seen later, but nothing taken: idle
		limTake(t, s, newcomer, 1, q, limStart.Add(2*time.Second)) // the shard is full
		if _, ok := sh.m[idle]; ok {
			t.Errorf("%v: the idle key was kept", alg)
		}
		if _, ok := sh.m[busy]; !ok {
			t.Errorf("%v: the busy key was evicted although an idle, more recently seen key was there", alg)
		}
		// With no idle key the least recently seen goes.
		limTake(t, s, last, 1, q, limStart.Add(3*time.Second))
		if _, ok := sh.m[busy]; ok {
			t.Errorf("%v: no idle key: the least recently seen key was kept", alg)
		}
		if _, ok := sh.m[newcomer]; !ok {
			t.Errorf("%v: no idle key: the more recently seen key was evicted", alg)
		}
		// An evicted key starts afresh.
		if d := limTake(t, s, busy, 1, q, limStart.Add(4*time.Second)); !d.Allowed {
			t.Errorf("%v: an evicted key came back with its old state: %+v", alg, d)
		}
	}
}

func TestMemoryStoreIdle(t *testing.T) {
	w := time.Second
	q := Quota{Limit: 2, Window: w, Burst: 2, Algorithm: SlidingWindow}
	s := NewMemoryStore(10)
	limTake(t, s, "k", 1, q, limStart.Add(100*time.Millisecond))
	e := s.shard("k").m["k"]
	for _, tt := range []struct {
		at   time.Duration
		idle bool
	}{
		{0, false}, {500 * time.Millisecond, false}, {1500 * time.Millisecond, false}, {2 * w, true}, {time.Hour, true},
	} {
		if got := e.idle(limStart.Add(tt.at)); got != tt.idle {
			t.Errorf("sliding window with 1 taken at +100ms: idle at +%v = %v, want %v", tt.at, got, tt.idle)
		}
	}
	q.Algorithm = TokenBucket
	limTake(t, s, "t", 2, q, limStart)
	e = s.shard("t").m["t"]
	for _, tt := range []struct {
		at   time.Duration
		idle bool
	}{
		{0, false}, {999 * time.Millisecond, false}, {w, true},
	} {
		if got := e.idle(limStart.Add(tt.at)); got != tt.idle {
			t.Errorf("token bucket emptied at 0: idle at +%v = %v, want %v", tt.at, got, tt.idle)
		}
	}
}

func TestMemoryStoreClockGoesBack(t *testing.T) {
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		q := Quota{Limit: 2, Window: time.Second, Burst: 2, Algorithm: alg}
		s := NewMemoryStore(10)
		limTake(t, s, "k", 2, q, limStart.Add(5*time.Second))
		d := limTake(t, s, "k", 1, q, limStart)
		if d.Allowed || d.RetryAfter <= 0 || d.Remaining < 0 || d.Reset < 0 {
			t.Errorf("%v: a Take an hour back: %+v, want a sane refusal", alg, d)
		}
	}
}

func TestMemoryStoreConcurrent(t *testing.T) {
	s := NewMemoryStore(16) // small: evictions race with decisions
	q := Quota{Limit: 3, Window: time.Second, Burst: 3}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				q := q
				if i%2 == 0 {
					q.Algorithm = SlidingWindow
				}
				now := limStart.Add(time.Duration(i) * time.Millisecond)
				if _, err := s.Take(context.Background(), strconv.Itoa((g*31+i)%40), 1, q, now); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := limCountKeys(s); n > 16 || n != s.Len() {
		t.Errorf("%d keys (Len %d), want <= 16", n, s.Len())
	}
}

// limBytesPerKey fills a store with n keys and returns the heap it grew by,
// per key: the map slot, the key's copy and the state.
func limBytesPerKey(keys []string, alg Algorithm) float64 {
	q := Quota{Limit: 100, Window: time.Second, Burst: 100, Algorithm: alg}
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewMemoryStore(len(keys))
	for _, k := range keys {
		s.Take(ctx, k, 1, q, limStart)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(len(keys))
}

func TestMemoryStoreBytesPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store with 100,000 keys")
	}
	keys := limBenchKeys(100_000)
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		perKey := limBytesPerKey(keys, alg)
		t.Logf("%v: %.0f B/key", alg, perKey)
		if perKey > 400 {
			t.Errorf("%v: %.0f bytes per key, want <= 400", alg, perKey)
		}
	}
}

func BenchmarkMemoryPerKey(b *testing.B) {
	keys := limBenchKeys(100_000)
	for _, alg := range []Algorithm{TokenBucket, SlidingWindow} {
		b.Run(alg.String(), func(b *testing.B) {
			var perKey float64
			for b.Loop() {
				perKey = limBytesPerKey(keys, alg)
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}

func TestMemoryStoreShrinks(t *testing.T) {
	q := Quota{Limit: 5, Window: time.Second, Burst: 5}
	s := NewMemoryStore(1000)
	for i := range 1000 {
		limTake(t, s, "old-"+strconv.Itoa(i), 1, q, limStart)
	}
	s.setMaxKeys(100)
	for i := range 900 {
		limTake(t, s, "new-"+strconv.Itoa(i), 1, q, limStart)
	}
	if n := limCountKeys(s); n > 100 || n != s.Len() {
		t.Errorf("shrunk to 100 keys: %d keys (Len %d) after 900 new keys", n, s.Len())
	}
}
