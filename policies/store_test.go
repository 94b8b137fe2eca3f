package policies

import (
	"context"
	"math"
	"math/bits"
	"math/rand/v2"
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
		for _, sl := range sh.slots {
			for e := sl.e; e != nil; e = e.next {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// limShardOf returns key's shard in s.
func limShardOf(s *MemoryStore, key string) *limShard {
	sh, _ := s.shard(key)
	return sh
}

// limEntryOf returns key's state in s, or nil.
func limEntryOf(s *MemoryStore, key string) *limEntry {
	sh, h := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.get(key, h)
}

// limSameShard returns n distinct keys that s puts in one shard.
func limSameShard(s *MemoryStore, n int) []string {
	var keys []string
	want, _ := s.shard("k0")
	for i := 0; len(keys) < n; i++ {
		if k := "k" + strconv.Itoa(i); limShardOf(s, k) == want {
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
		limTake(t, s, busy, 1, q, limStart)                        // empty until +10s: busy
		limTake(t, s, idle, 0, q, limStart.Add(time.Second))       // seen later, but nothing taken: idle
		limTake(t, s, newcomer, 1, q, limStart.Add(2*time.Second)) // the shard is full
		if limEntryOf(s, idle) != nil {
			t.Errorf("%v: the idle key was kept", alg)
		}
		if limEntryOf(s, busy) == nil {
			t.Errorf("%v: the busy key was evicted although an idle, more recently seen key was there", alg)
		}
		// With no idle key the least recently seen goes.
		limTake(t, s, last, 1, q, limStart.Add(3*time.Second))
		if limEntryOf(s, busy) != nil {
			t.Errorf("%v: no idle key: the least recently seen key was kept", alg)
		}
		if limEntryOf(s, newcomer) == nil {
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
	e := limEntryOf(s, "k")
	for _, tt := range []struct {
		at   time.Duration
		idle bool
	}{
		{0, false}, {500 * time.Millisecond, false}, {1500 * time.Millisecond, false}, {2 * w, true}, {time.Hour, true},
	} {
		if got := e.idle(limStart.Add(tt.at).UnixNano()); got != tt.idle {
			t.Errorf("sliding window with 1 taken at +100ms: idle at +%v = %v, want %v", tt.at, got, tt.idle)
		}
	}
	q.Algorithm = TokenBucket
	limTake(t, s, "t", 2, q, limStart)
	e = limEntryOf(s, "t")
	for _, tt := range []struct {
		at   time.Duration
		idle bool
	}{
		{0, false}, {999 * time.Millisecond, false}, {w, true},
	} {
		if got := e.idle(limStart.Add(tt.at).UnixNano()); got != tt.idle {
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

// TestLimTable drives a table with random adds and removes, many under few
// hashes (so chains and probe clusters form and wrap around), against a Go
// map.
func TestLimTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tab limTable
	model := map[string]uint64{} // key -> hash
	hashOf := func(i int) uint64 {
		// Few distinct hashes, spread over the whole range; low bit set.
		return uint64(i%97)*0x9e3779b97f4a7c15 | 1
	}
	for step := range 20_000 {
		i := rng.IntN(500)
		key, h := "k"+strconv.Itoa(i), hashOf(i)
		if _, ok := model[key]; ok && rng.IntN(2) == 0 {
			tab.remove(h, tab.get(key, h))
			delete(model, key)
		} else if !ok {
			tab.add(h, &limEntry{key: key})
			model[key] = h
		}
		if step%500 == 0 || step > 19_900 {
			n := 0
			for _, sl := range tab.slots {
				for e := sl.e; e != nil; e = e.next {
					if h, ok := model[e.key]; !ok || h != sl.h {
						t.Fatalf("step %d: the table holds %q under %x, the model %x %v", step, e.key, sl.h, h, ok)
					}
					n++
				}
			}
			if n != len(model) {
				t.Fatalf("step %d: %d keys in the table, %d in the model", step, n, len(model))
			}
			for i := range 500 {
				key, h := "k"+strconv.Itoa(i), hashOf(i)
				_, want := model[key]
				if e := tab.get(key, h); (e != nil) != want || e != nil && e.key != key {
					t.Fatalf("step %d: get(%q) = %v, want present %v", step, key, e, want)
				}
			}
		}
	}
}

// TestLimDivW checks the float estimate and its correction against a
// division.
func TestLimDivW(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		w := uint64(1 + rng.Int64N(int64(rng.IntN(62)+1)<<uint(rng.IntN(2))))
		if rng.IntN(4) == 0 {
			w = uint64(rng.Int64N(1e12) + 1)
		}
		var hi, lo uint64
		switch rng.IntN(4) {
		case 0:
			lo = rng.Uint64() >> uint(rng.IntN(64))
		case 1: // near a multiple of w
			k := rng.Uint64() >> uint(rng.IntN(64))
			var c uint64
			hi, lo = bits.Mul64(k, w)
			lo, c = bits.Add64(lo, uint64(rng.IntN(3)), 0)
			hi += c
			if rng.IntN(2) == 0 && (lo != 0 || hi != 0) {
				lo, c = bits.Sub64(lo, 1, 0)
				hi -= c
			}
		default:
			hi, lo = rng.Uint64()>>uint(rng.IntN(64)), rng.Uint64()
		}
		lq := limResolve(Quota{Limit: 1, Window: time.Duration(w), Burst: 1})
		want := uint64(math.MaxUint64)
		if hi < w {
			want, _ = bits.Div64(hi, lo, w)
		}
		if got := limDivW(hi, lo, lq); got != want {
			t.Fatalf("limDivW(%d:%d, %d) = %d, want %d", hi, lo, w, got, want)
		}
	}
}
