package policies

import (
	"context"
	"hash/maphash"
	"math"
	"math/bits"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStore is the default Store: per-key limiter state in this process's
// memory, bounded in size. It is safe for concurrent use; keys are spread
// over up to 64 shards, each with its own lock, and deciding for a key
// already present allocates nothing.
//
// A token bucket is one theoretical arrival time per key (GCRA, in exact
// integer arithmetic); a sliding window is two counters. When the store is
// full, a new key evicts an idle key (one whose state is that of a new key:
// a full bucket, empty windows) from a small random sample of its shard, or
// else the least recently seen key of that sample.
// An evicted key that comes back starts afresh, so eviction can only make a
// limiter more lenient, and only for keys not seen lately.
type MemoryStore struct {
	seed    maphash.Seed
	mask    uint64
	shards  []limShard
	count   atomic.Int64 // keys held, all shards together
	maxKeys atomic.Int64

	cur    atomic.Pointer[limQuota] // the quota last used, resolved
	quotaM sync.Mutex               // guards quotas
	quotas []*limQuota              // the quotas lately used, newest last
}

// limShard is one lock's worth of keys, padded to its own cache line.
type limShard struct {
	mu sync.Mutex
	limTable
	_ [16]byte
}

// limTable maps 64-bit key hashes to key states, by open addressing with
// linear probing: a lookup is one probe sequence in one array, with no
// string comparison until the hash matches, where a Go map would walk its
// directory, table and group first. Keys whose hashes collide are chained
// through limEntry.next.
type limTable struct {
	slots []limSlot // len a power of two, or 0
	used  int       // slots in use
	shift uint8     // 64 - log2(len(slots)): a hash's home is h >> shift
}

// limSlot is one slot of a limTable: h == 0 marks it empty.
type limSlot struct {
	h uint64 // the key hash, with its low bit set
	e *limEntry
}

// limEntry is one key's state.
//
// For TokenBucket the state is the key's theoretical arrival time (GCRA):
// tat + frac/Limit nanoseconds since the Unix epoch, the time at which the
// bucket is full again. For SlidingWindow, from is the start of the current
// window (Unix ns), and curr and prev count the current and the previous
// windows.
type limEntry struct {
	key  string
	next *limEntry // the next key with the same hash
	lq   *limQuota // the quota the state follows
	t    int64     // TokenBucket: tat, whole ns; SlidingWindow: from
	u    int64     // TokenBucket: frac, in [0, Limit); SlidingWindow: curr
	prev int64     // SlidingWindow: prev
	seen int64     // last Take, Unix ns, for eviction
}

// limQuota is a Quota with what the token bucket derives from it, in
// nanoseconds plus a fraction in units of 1/Limit ns: the emission interval
// Window/Limit = tn + tf/Limit (the time one token takes to come back) and
// the burst span Burst*Window/Limit = bn + bf/Limit (the time an empty
// bucket takes to fill).
type limQuota struct {
	q      Quota
	tn, tf int64
	bn, bf int64
	invW   float64 // 1/Window, to estimate quotients
}

// limMaxSpan caps the token bucket's spans (about 73 years), so that
// adding one to a time cannot overflow; a bucket that takes longer to
// refill is one that never does.
const limMaxSpan = 1 << 61

// limMaxQuotas is how many quotas a store resolves at once; more only costs
// an allocation when a store shared by limiters switches between them.
const limMaxQuotas = 8

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
	s.setMaxKeys(maxKeys)
	return s
}

// setMaxKeys changes the bound. A shrunk store evicts lazily: two keys for
// each new key until it fits.
func (s *MemoryStore) setMaxKeys(maxKeys int) { s.maxKeys.Store(int64(maxKeys)) }

// Len returns the number of keys the store holds.
func (s *MemoryStore) Len() int { return int(s.count.Load()) }

// shard returns key's shard and hash. The shard comes from the hash's low
// bits, the key's place in the shard's table from its high bits.
func (s *MemoryStore) shard(key string) (*limShard, uint64) {
	h := maphash.String(s.seed, key)
	return &s.shards[h&s.mask], h | 1
}

// find returns the slot holding h, or the empty slot that ends its probe
// sequence; the table must have slots.
func (t *limTable) find(h uint64) *limSlot {
	mask := uint64(len(t.slots) - 1)
	for i := h >> t.shift; ; i = (i + 1) & mask {
		if sl := &t.slots[i]; sl.h == h || sl.h == 0 {
			return sl
		}
	}
}

// get returns key's state, or nil; h is key's hash from shard.
func (t *limTable) get(key string, h uint64) *limEntry {
	if len(t.slots) == 0 {
		return nil
	}
	e := t.find(h).e
	for e != nil && e.key != key {
		e = e.next
	}
	return e
}

// add adds e, a key absent from the table, under its hash h. It grows the
// table to keep it at most 7/8 full: four 16-byte slots share a cache line,
// so the longer probe sequences (about 4.5 slots for a key present, at 7/8)
// mostly stay within a line or two, while a table half the size of a 3/4
// one keeps more of it in cache. With the default 100,000 keys over 64
// shards (about 1,560 each), each shard's table is 2,048 slots instead of
// 4,096: 2 MB in all instead of 4 MB.
func (t *limTable) add(h uint64, e *limEntry) {
	if (t.used+1)*8 > len(t.slots)*7 {
		t.grow()
	}
	sl := t.find(h)
	if sl.h == 0 {
		sl.h = h
		t.used++
	}
	e.next, sl.e = sl.e, e
}

// grow doubles the table (from 8 slots).
func (t *limTable) grow() {
	old := t.slots
	n := max(2*len(old), 8)
	t.slots = make([]limSlot, n)
	t.shift = uint8(64 - bits.TrailingZeros(uint(n)))
	for _, sl := range old {
		if sl.h != 0 {
			*t.find(sl.h) = sl
		}
	}
}

// remove unlinks e, present under its hash h, emptying its slot if e was
// the only key there. It shifts back the slots after it that their probe
// sequences allow, so that no lookup needs tombstones.
func (t *limTable) remove(h uint64, e *limEntry) {
	sl := t.find(h)
	if sl.e != e {
		p := sl.e
		for p.next != e {
			p = p.next
		}
		p.next = e.next
		return
	}
	if sl.e = e.next; sl.e != nil {
		return
	}
	mask := uint64(len(t.slots) - 1)
	i := h >> t.shift
	for t.slots[i].h != h {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; t.slots[j].h != 0; j = (j + 1) & mask {
		// The slot at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		if home := t.slots[j].h >> t.shift; (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = limSlot{}
	t.used--
}

// quota returns q resolved: the one last used, or one of the few before it,
// or a new one.
func (s *MemoryStore) quota(q Quota) *limQuota {
	if lq := s.cur.Load(); lq != nil && lq.q == q {
		return lq
	}
	s.quotaM.Lock()
	defer s.quotaM.Unlock()
	for _, lq := range s.quotas {
		if lq.q == q {
			s.cur.Store(lq)
			return lq
		}
	}
	lq := limResolve(q)
	if len(s.quotas) == limMaxQuotas {
		s.quotas = append(s.quotas[:0], s.quotas[1:]...)
	}
	s.quotas = append(s.quotas, lq)
	s.cur.Store(lq)
	return lq
}

// limResolve derives the token bucket's spans from q.
func limResolve(q Quota) *limQuota {
	lq := &limQuota{q: q, invW: 1 / float64(q.Window)}
	if q.Algorithm == TokenBucket {
		lq.tn, lq.tf = limSpan(1, q)
		lq.bn, lq.bf = limSpan(q.Burst, q)
	}
	return lq
}

// limSpan is n*Window/Limit as whole ns and a fraction in 1/Limit ns,
// capped at limMaxSpan.
func limSpan(n int, q Quota) (ns, frac int64) {
	hi, lo := bits.Mul64(uint64(n), uint64(q.Window))
	if hi >= uint64(q.Limit) {
		return limMaxSpan, 0
	}
	qu, r := bits.Div64(hi, lo, uint64(q.Limit))
	if qu >= limMaxSpan {
		return limMaxSpan, 0
	}
	return int64(qu), int64(r)
}

// Take decides for key at now under q, creating the key's state (a full
// bucket, empty windows) when the store does not hold it. It never fails.
func (s *MemoryStore) Take(_ context.Context, key string, n int, q Quota, now time.Time) (LimitDecision, error) {
	var d LimitDecision
	s.take(&d, key, n, s.quota(q), now.UnixNano())
	return d, nil
}

// take is Take under lq, resolved by s, at now in Unix ns, into d.
func (s *MemoryStore) take(d *LimitDecision, key string, n int, lq *limQuota, now int64) {
	sh, h := s.shard(key)
	sh.mu.Lock()
	e := sh.get(key, h)
	switch {
	case e == nil:
		// The bound is global, so shards fill unevenly without wasting
		// room; the key that overflows it evicts from its own shard.
		c := s.count.Add(1)
		for i := 0; i < 2 && c > s.maxKeys.Load(); i++ {
			if !sh.evictLocked(now) && !s.evictOther(sh, now) {
				break // all else locked or empty: overflow until the next key
			}
			c = s.count.Add(-1)
		}
		e = new(limNewEntry(lq, now))
		e.key = strings.Clone(key)
		sh.add(h, e)
	case e.lq != lq:
		e.requota(lq, now)
	}
	e.seen = now
	if lq.q.Algorithm == SlidingWindow {
		e.swTake(d, n, now)
	} else {
		e.tbTake(d, n, now)
	}
	sh.mu.Unlock()
}

// evictOther evicts one key from a shard other than own (whose lock the
// caller holds), for a key that overflows the bound in an empty shard. It
// only tries locks, so two shards never wait for each other.
func (s *MemoryStore) evictOther(own *limShard, now int64) bool {
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
// first idle key of a sample, else the least recently seen of it. The
// sample starts at a random slot.
func (sh *limShard) evictLocked(now int64) bool {
	if sh.used == 0 {
		return false
	}
	var (
		oldest  *limEntry
		oldestH uint64
		seen    int
	)
	mask := uint64(len(sh.slots) - 1)
	for i, n := rand.Uint64()&mask, 0; n <= int(mask) && seen < limSample; i, n = (i+1)&mask, n+1 {
		sl := &sh.slots[i]
		for e := sl.e; e != nil; e = e.next {
			if e.idle(now) {
				sh.remove(sl.h, e)
				return true
			}
			if seen == 0 || e.seen < oldest.seen {
				oldest, oldestH = e, sl.h
			}
			seen++
		}
	}
	sh.remove(oldestH, oldest)
	return true
}

// limNewEntry returns the state of a key never seen.
func limNewEntry(lq *limQuota, now int64) limEntry {
	e := limEntry{lq: lq}
	if lq.q.Algorithm == TokenBucket {
		e.t = math.MinInt64 // full since ever
	} else {
		e.t = limWindowStart(now, int64(lq.q.Window))
	}
	return e
}

// requota moves the state to a new quota, keeping what it counted: a token
// bucket keeps its tokens (capped at the new Burst), as x/time/rate does,
// and refills at the new rate from now, except that a full bucket stays full
// (an idle key is a new key); windows keep their counts. A change of
// algorithm starts afresh. It is rare, so its float rounding (a fraction of
// a nanosecond) does not matter.
func (e *limEntry) requota(lq *limQuota, now int64) {
	old := e.lq.q
	q := lq.q
	switch {
	case old == q: // the same quota, resolved again
	case q.Algorithm != old.Algorithm:
		key, next := e.key, e.next
		*e = limNewEntry(lq, now)
		e.key, e.next = key, next
		return
	case q.Algorithm == TokenBucket && !e.idle(now):
		// Tokens missing at now, under the old quota: (tat-now)*Limit/Window.
		debt := (float64(e.t-now) + float64(e.u)/float64(old.Limit)) * float64(old.Limit) / float64(old.Window)
		tokens := max(float64(old.Burst)-debt, 0)
		missing := max(float64(q.Burst)-tokens, 0)
		span := min(missing*float64(q.Window)/float64(q.Limit), limMaxSpan) // ns
		whole := math.Floor(span)
		frac := int64(math.Round((span - whole) * float64(q.Limit)))
		if frac >= int64(q.Limit) {
			whole, frac = whole+1, 0
		}
		e.t, e.u = limAddSat(now, int64(whole)), frac
	}
	e.lq = lq
}

// idle reports whether the state at now equals a new key's, so dropping it
// loses nothing.
func (e *limEntry) idle(now int64) bool {
	if e.lq.q.Algorithm == TokenBucket {
		return e.t < now || e.t == now && e.u == 0
	}
	w := int64(e.lq.q.Window)
	return now >= e.t+2*w || (now >= e.t+w && e.u == 0) || (e.prev == 0 && e.u == 0)
}

// limAddSat returns a+b for b >= 0, saturating at math.MaxInt64.
func limAddSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// tbTake is Take for TokenBucket at now (Unix ns), by GCRA: the theoretical
// arrival time tat is when the bucket is full again; n tokens are available
// at now iff max(tat, now) + n*T - Burst*T <= now, with T = Window/Limit,
// which is exactly a bucket of Burst tokens refilled with Limit per Window.
// Time has whole nanoseconds: tokens due at a fractional instant are there
// during the nanosecond it falls in, so RetryAfter is exact in ns.
func (e *limEntry) tbTake(d *LimitDecision, n int, now int64) {
	lq := e.lq
	limit := uint64(lq.q.Limit)
	// from = max(tat, now)
	fn, ff := e.t, e.u
	if fn < now {
		fn, ff = now, 0
	}
	// step = n*T
	var sn, sf int64
	switch n {
	case 0:
	case 1:
		sn, sf = lq.tn, lq.tf
	default:
		sn, sf = limSpan(n, lq.q)
	}
	// next = from + step; next's fractions add up to less than 2*limit.
	nf := uint64(ff) + uint64(sf)
	nn := limAddSat(fn, sn)
	if nf >= limit {
		nf -= limit
		nn = limAddSat(nn, 1)
	}
	// The n tokens are there from floor(next - Burst*T) on.
	at := nn - lq.bn
	if nf < uint64(lq.bf) {
		at--
	}
	ok := at <= now
	if ok {
		e.t, e.u = nn, int64(nf)
	}
	*d = LimitDecision{Allowed: ok, Limit: lq.q.Limit, Remaining: lq.q.Burst}
	if !ok {
		d.RetryAfter = time.Duration(at - now)
	}
	if e.t < now {
		return // full
	}
	// Debt: tat - now = dn + df/limit ns.
	dn, df := uint64(e.t-now), uint64(e.u)
	d.Reset = time.Duration(dn) // rounded to the nearest ns
	if 2*df >= limit {
		d.Reset++
	}
	if dn == 0 {
		return // less than 1ns short of full: the whole burst is there
	}
	// Remaining is the largest m with floor(tat + m*T - Burst*T) <= now,
	// that is m*Window < Burst*Window + Limit - debt*Limit: with
	// e = (dn-1)*Limit + df, m = Burst - 1 - floor(e/Window).
	hi, lo := bits.Mul64(dn-1, limit)
	lo, c := bits.Add64(lo, df, 0)
	hi += c
	k := limDivW(hi, lo, lq)
	if k >= uint64(lq.q.Burst) {
		d.Remaining = 0
	} else {
		d.Remaining = lq.q.Burst - 1 - int(k)
	}
}

// limDivW returns floor((hi*2^64 + lo) / Window), saturating at
// math.MaxUint64. A division takes tens of cycles: it multiplies by
// 1/Window instead, and corrects the estimate (off by at most one or two)
// exactly.
func limDivW(hi, lo uint64, lq *limQuota) uint64 {
	w := uint64(lq.q.Window)
	kf := (float64(hi)*0x1p64 + float64(lo)) * lq.invW
	if kf >= 0x1p50 { // the estimate may be off by more than a few
		if hi >= w {
			return math.MaxUint64
		}
		k, _ := bits.Div64(hi, lo, w)
		return k
	}
	k := uint64(kf)
	for { // k*w > x: one less
		ph, pl := bits.Mul64(k, w)
		if k == 0 || ph < hi || ph == hi && pl <= lo {
			break
		}
		k--
	}
	for { // (k+1)*w <= x: one more
		ph, pl := bits.Mul64(k+1, w)
		if ph > hi || ph == hi && pl > lo {
			break
		}
		k++
	}
	return k
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
func (e *limEntry) swTake(d *LimitDecision, n int, t int64) {
	q := e.lq.q
	w := int64(q.Window)
	limit := int64(q.Limit)
	if t < e.t { // the clock went back: count in the current window
		t = e.t
	}
	if from := limWindowStart(t, w); from != e.t {
		if from-e.t == w {
			e.prev = e.u
		} else {
			e.prev = 0
		}
		e.u, e.t = 0, from
	}
	el := t - e.t
	// spare*w is what the previous window may weigh: the request fits when
	// prev*(w-el) <= spare*w.
	spare := limit - e.u - int64(n)
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
		e.u += int64(n)
	}
	// Remaining = limit - curr - ceil(prev*(w-el)/w).
	used, rem := limMulDiv(uint64(e.prev), uint64(w-el), uint64(w))
	if rem > 0 {
		used++
	}
	*d = LimitDecision{
		Allowed:   ok,
		Limit:     q.Limit,
		Remaining: int(max(limit-e.u-int64(used), 0)),
		Reset:     time.Duration(w - el),
	}
	if ok {
		return
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
		if next < e.u {
			fit, _ := limMulDiv(uint64(next), uint64(w), uint64(e.u))
			after = w - int64(fit)
		}
		d.RetryAfter = time.Duration(w - el + after)
	}
}
