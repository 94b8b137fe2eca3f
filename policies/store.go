package policies

import (
	"context"
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// MemoryStore is the default Store: per-key limiter state in this process's
// memory, bounded in size. It is safe for concurrent use; keys are spread
// over up to 64 shards, each with its own lock, and deciding for a key
// already present allocates nothing.
//
// A token bucket is a *rate.Limiter from golang.org/x/time/rate; a sliding
// window is two counters. When the store is full, a new key evicts an idle
// key (one whose state is that of a new key: a full bucket, empty windows)
// from a small random sample of its shard, or else the least recently seen
// key of that sample.
// An evicted key that comes back starts afresh, so eviction can only make a
// limiter more lenient, and only for keys not seen lately.
type MemoryStore struct {
	seed    maphash.Seed
	mask    uint64
	shards  []limShard
	count   atomic.Int64 // keys held, all shards together
	maxKeys atomic.Int64
}

// limShard is one lock's worth of keys, padded to its own cache line.
type limShard struct {
	mu sync.Mutex
	m  map[string]*limEntry
	_  [48]byte
}

// limEntry is one key's state.
type limEntry struct {
	tb   *rate.Limiter // TokenBucket state; nil for SlidingWindow
	q    Quota         // the quota the state follows
	prev int64         // SlidingWindow: count of the window before start
	curr int64         // SlidingWindow: count of the window at start
	from int64         // SlidingWindow: start of the current window, Unix ns
	seen int64         // last Take, Unix ns, for eviction
}

// limMaxShards is the most shards a MemoryStore uses.
const limMaxShards = 64

// limSample is how many keys an eviction looks at.
const limSample = 8

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store that keeps at most maxKeys keys;
// maxKeys <= 0 means 100_000.
func NewMemoryStore(maxKeys int) *MemoryStore {
	if maxKeys <= 0 {
		maxKeys = limDefaultMaxKeys
	}
	n := 1
	for n*2 <= min(maxKeys, limMaxShards) {
		n *= 2
	}
	s := &MemoryStore{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]limShard, n)}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*limEntry)
	}
	s.setMaxKeys(maxKeys)
	return s
}

// setMaxKeys changes the bound. A shrunk store evicts lazily: two keys for
// each new key until it fits.
func (s *MemoryStore) setMaxKeys(maxKeys int) { s.maxKeys.Store(int64(maxKeys)) }

// Len returns the number of keys the store holds.
func (s *MemoryStore) Len() int { return int(s.count.Load()) }

// shard returns key's shard.
func (s *MemoryStore) shard(key string) *limShard {
	return &s.shards[maphash.String(s.seed, key)&s.mask]
}

// Take decides for key at now under q, creating the key's state (a full
// bucket, empty windows) when the store does not hold it. It never fails.
func (s *MemoryStore) Take(_ context.Context, key string, n int, q Quota, now time.Time) (LimitDecision, error) {
	sh := s.shard(key)
	sh.mu.Lock()
	e := sh.m[key]
	switch {
	case e == nil:
		// The bound is global, so shards fill unevenly without wasting
		// room; the key that overflows it evicts from its own shard.
		n := s.count.Add(1)
		for i := 0; i < 2 && n > s.maxKeys.Load(); i++ {
			if !sh.evictLocked(now) && !s.evictOther(sh, now) {
				break // all else locked or empty: overflow until the next key
			}
			n = s.count.Add(-1)
		}
		e = limNewEntry(q, now)
		sh.m[strings.Clone(key)] = e
	case e.q != q:
		e.requota(q, now)
	}
	e.seen = now.UnixNano()
	var d LimitDecision
	if q.Algorithm == SlidingWindow {
		d = e.swTake(n, now.UnixNano())
	} else {
		d = e.tbTake(n, now)
	}
	sh.mu.Unlock()
	return d, nil
}

// evictOther evicts one key from a shard other than own (whose lock the
// caller holds), for a key that overflows the bound in an empty shard. It
// only tries locks, so two shards never wait for each other.
func (s *MemoryStore) evictOther(own *limShard, now time.Time) bool {
	for i := range s.shards {
		sh := &s.shards[i]
		if sh == own || !sh.mu.TryLock() {
			continue
		}
		ok := sh.evictLocked(now)
		sh.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// evictLocked removes one key, reporting whether the shard had one: the
// first idle key of a sample, else the least recently seen of it. Go's map
// iteration starts at a random place.
func (sh *limShard) evictLocked(now time.Time) bool {
	var (
		oldest  string
		oldestT int64
		i       int
	)
	for k, e := range sh.m {
		if e.idle(now) {
			delete(sh.m, k)
			return true
		}
		if i == 0 || e.seen < oldestT {
			oldest, oldestT = k, e.seen
		}
		if i++; i == limSample {
			break
		}
	}
	if i > 0 {
		delete(sh.m, oldest)
	}
	return i > 0
}

// limNewEntry returns the state of a key never seen.
func limNewEntry(q Quota, now time.Time) *limEntry {
	e := &limEntry{q: q}
	if q.Algorithm == TokenBucket {
		e.tb = rate.NewLimiter(limRate(q), q.Burst)
	} else {
		e.from = limWindowStart(now.UnixNano(), int64(q.Window))
	}
	return e
}

// requota moves the state to a new quota, keeping what it counted; a change
// of algorithm starts afresh.
func (e *limEntry) requota(q Quota, now time.Time) {
	switch {
	case q.Algorithm != e.q.Algorithm:
		*e = *limNewEntry(q, now)
	case q.Algorithm == TokenBucket:
		e.tb.SetLimitAt(now, limRate(q))
		e.tb.SetBurstAt(now, q.Burst)
	}
	e.q = q
}

// idle reports whether the state at now equals a new key's, so dropping it
// loses nothing.
func (e *limEntry) idle(now time.Time) bool {
	if e.tb != nil {
		return e.tb.TokensAt(now) >= float64(e.q.Burst)
	}
	w := int64(e.q.Window)
	t := now.UnixNano()
	return t >= e.from+2*w || (t >= e.from+w && e.curr == 0) || (e.prev == 0 && e.curr == 0)
}

// limRate is q's refill rate in tokens per second.
func limRate(q Quota) rate.Limit {
	return rate.Limit(float64(q.Limit) / q.Window.Seconds())
}

// limDuration rounds a number of nanoseconds to a Duration >= 0.
func limDuration(ns float64) time.Duration {
	switch {
	case ns <= 0:
		return 0
	case ns >= math.MaxInt64:
		return math.MaxInt64
	}
	return time.Duration(math.Round(ns))
}

// tbTake is Take for TokenBucket.
func (e *limEntry) tbTake(n int, now time.Time) LimitDecision {
	q := e.q
	ok := e.tb.AllowN(now, n)
	tokens := e.tb.TokensAt(now)
	perToken := float64(q.Window) / float64(q.Limit) // ns
	d := LimitDecision{
		Allowed:   ok,
		Limit:     q.Limit,
		Remaining: max(int(tokens), 0),
		Reset:     limDuration((float64(q.Burst) - tokens) * perToken),
	}
	if !ok {
		d.RetryAfter = max(limDuration((float64(n)-tokens)*perToken), 1)
		// Float rounding may leave a hair short of n tokens at RetryAfter:
		// promise a time at which AllowN succeeds.
		for i := 0; i < 16 && !e.tbAdmits(n, now.Add(d.RetryAfter)); i++ {
			d.RetryAfter++
		}
	}
	return d
}

// tbAdmits reports whether AllowN(t, n) would succeed, as rate.Limiter
// decides: when the tokens missing would take less than 1ns to come.
func (e *limEntry) tbAdmits(n int, t time.Time) bool {
	missing := float64(n) - e.tb.TokensAt(t)
	return missing <= 0 || time.Duration(float64(time.Second)*(missing/float64(e.tb.Limit()))) <= 0
}

// limWindowStart is the start of the window of length w holding t (Unix ns).
func limWindowStart(t, w int64) int64 {
	m := t % w
	if m < 0 {
		m += w
	}
	return t - m
}

// limMulDiv returns a*b/c and its remainder, for a*b/c < 2^64.
func limMulDiv(a, b, c uint64) (q, r uint64) {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64, 0
	}
	return bits.Div64(hi, lo, c)
}

// swTake is Take for SlidingWindow at t (Unix ns). The estimate
// prev*(w-el)/w + curr is compared in exact integer arithmetic.
func (e *limEntry) swTake(n int, t int64) LimitDecision {
	w := int64(e.q.Window)
	limit := int64(e.q.Limit)
	if t < e.from { // the clock went back: count in the current window
		t = e.from
	}
	if from := limWindowStart(t, w); from != e.from {
		if from-e.from == w {
			e.prev = e.curr
		} else {
			e.prev = 0
		}
		e.curr, e.from = 0, from
	}
	el := t - e.from
	// spare*w is what the previous window may weigh: the request fits when
	// prev*(w-el) <= spare*w.
	spare := limit - e.curr - int64(n)
	ok := n == 0
	if !ok && spare >= 0 {
		if uint64(spare) >= uint64(e.prev) {
			ok = true
		} else {
			hi1, lo1 := bits.Mul64(uint64(e.prev), uint64(w-el))
			hi2, lo2 := bits.Mul64(uint64(spare), uint64(w))
			ok = hi1 < hi2 || (hi1 == hi2 && lo1 <= lo2)
		}
	}
	if ok {
		e.curr += int64(n)
	}
	// Remaining = limit - curr - ceil(prev*(w-el)/w).
	used, rem := limMulDiv(uint64(e.prev), uint64(w-el), uint64(w))
	if rem > 0 {
		used++
	}
	d := LimitDecision{
		Allowed:   ok,
		Limit:     e.q.Limit,
		Remaining: int(max(limit-e.curr-int64(used), 0)),
		Reset:     time.Duration(w - el),
	}
	if ok {
		return d
	}
	if spare >= 0 {
		// Later in this window: the earliest el' with prev*(w-el') <= spare*w
		// is w - floor(spare*w/prev) (spare < prev here, so it fits).
		fit, _ := limMulDiv(uint64(spare), uint64(w), uint64(e.prev))
		d.RetryAfter = time.Duration(w - int64(fit) - el)
	} else {
		// In the next window, where curr becomes prev and spare is limit-n.
		next := limit - int64(n)
		after := int64(0)
		if next < e.curr {
			fit, _ := limMulDiv(uint64(next), uint64(w), uint64(e.curr))
			after = w - int64(fit)
		}
		d.RetryAfter = time.Duration(w - el + after)
	}
	return d
}
