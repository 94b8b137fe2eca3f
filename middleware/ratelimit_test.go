package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"

	"github.com/resilient-result/resilient/headers"
	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// rlStart is a fake start time aligned on every window the tests use.
var rlStart = time.Unix(1_699_999_200, 0)

// rlCounter is a handler that counts the requests it serves and answers 200.
type rlCounter struct{ n atomic.Int64 }

func (c *rlCounter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.n.Add(1)
	w.WriteHeader(http.StatusOK)
}

// rlServe sends one GET from remote (with header pairs kv) through h.
func rlServe(h http.Handler, remote string, kv ...string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, keyReq(remote, kv...))
	return rec
}

// rlAdmitted serves n requests from remote and returns how many got 200.
func rlAdmitted(h http.Handler, n int, remote string, kv ...string) int {
	ok := 0
	for range n {
		if rlServe(h, remote, kv...).Code == http.StatusOK {
			ok++
		}
	}
	return ok
}

func TestRateLimitAdmitsThenRefuses(t *testing.T) {
	fake := clock.NewFake(rlStart)
	var next rlCounter
	h := RateLimit(policies.RateLimit{Limit: 2, Window: time.Minute, Clock: fake}, nil)(&next)

	// After the first request the bucket is whole in 30s; after the second,
	// with nothing left, t is the time to the next token (30s), not to a
	// whole bucket (60s).
	for i, wantState := range []string{`"default";r=1;t=30`, `"default";r=0;t=30`} {
		rec := rlServe(h, "192.0.2.1:1000")
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, rec.Code)
		}
		if got := rec.Header().Get("RateLimit-Policy"); got != `"default";q=2;w=60` {
			t.Fatalf("RateLimit-Policy = %q", got)
		}
		if st := rec.Header().Get("RateLimit"); st != wantState {
			t.Fatalf("request %d: RateLimit = %q, want %q", i+1, st, wantState)
		}
		if rec.Header().Get("Retry-After") != "" || rec.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("admitted response has Retry-After or legacy fields: %v", rec.Header())
		}
	}

	rec := rlServe(h, "192.0.2.1:1001")
	res := rec.Result()
	defer res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request: status %d, want 429", res.StatusCode)
	}
	if next.n.Load() != 2 {
		t.Fatalf("handler reached %d times, want 2", next.n.Load())
	}
	// One token refills every 30s.
	if got := res.Header.Get("Retry-After"); got != "30" {
		t.Fatalf("Retry-After = %q, want 30", got)
	}
	if got := res.Header.Get("RateLimit"); got != `"default";r=0;t=30` { // the next token, as Retry-After
		t.Fatalf("RateLimit = %q", got)
	}
	if got := res.Header.Get("RateLimit-Policy"); got != `"default";q=2;w=60` {
		t.Fatalf("RateLimit-Policy = %q", got)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var p Problem
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || p.Status != 429 || p.Title != "Too Many Requests" {
		t.Fatalf("problem = %+v, %v", p, err)
	}

	// Another client has its own bucket.
	if rlServe(h, "192.0.2.2:1000").Code != http.StatusOK {
		t.Fatal("another client was refused")
	}
	// After the refill, the first client is admitted again.
	fake.Advance(30 * time.Second)
	if rlServe(h, "192.0.2.1:1000").Code != http.StatusOK {
		t.Fatal("not admitted after the refill")
	}
}

func TestRateLimitRetryAfterWholeSecondsAtLeastOne(t *testing.T) {
	fake := clock.NewFake(rlStart)
	// 10 per second: the next token is 100ms away, announced as 1s.
	h := RateLimit(policies.RateLimit{Limit: 10, Clock: fake}, nil)(&rlCounter{})
	rlAdmitted(h, 10, "192.0.2.1:1")
	rec := rlServe(h, "192.0.2.1:1")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("status %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	// 1 per 90s, asked 1.5s after: 88.5s rounds up to 89.
	h = RateLimit(policies.RateLimit{Limit: 1, Window: 90 * time.Second, Clock: fake}, nil)(&rlCounter{})
	rlServe(h, "192.0.2.1:1")
	fake.Advance(1500 * time.Millisecond)
	if got := rlServe(h, "192.0.2.1:1").Header().Get("Retry-After"); got != "89" {
		t.Fatalf("Retry-After = %q, want 89", got)
	}
}

func TestRateLimitHeadersSetBeforeHandler(t *testing.T) {
	var seen string
	h := RateLimit(policies.RateLimit{Limit: 5, Clock: clock.NewFake(rlStart)}, nil)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = w.Header().Get("RateLimit")
			_, _ = io.WriteString(w, "streamed at once")
		}))
	rec := rlServe(h, "192.0.2.1:1")
	if seen == "" || rec.Header().Get("RateLimit") != `"default";r=4;t=1` {
		t.Fatalf("handler saw RateLimit %q; response has %q", seen, rec.Header().Get("RateLimit"))
	}
}

func TestRateLimitKeyErrorIs400(t *testing.T) {
	var next rlCounter
	h := RateLimit(policies.RateLimit{Limit: 100, Clock: clock.NewFake(rlStart)}, ByHeader("X-Api-Key"))(&next)
	for range 3 {
		rec := rlServe(h, "192.0.2.1:1")
		if rec.Code != http.StatusBadRequest || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		if !strings.Contains(rec.Body.String(), "X-Api-Key") {
			t.Fatalf("body %q should name the missing header", rec.Body.String())
		}
	}
	if next.n.Load() != 0 {
		t.Fatal("handler reached without a key")
	}
	if rlServe(h, "192.0.2.1:1", "X-Api-Key", "k").Code != http.StatusOK {
		t.Fatal("request with a key refused")
	}
}

func TestRateLimitSpoofedXFFSharesOneBucket(t *testing.T) {
	for name, key := range map[string]KeyFunc{
		"ClientIP":                  nil,
		"TrustedProxies, untrusted": TrustedProxies("10.0.0.0/8"),
	} {
		t.Run(name, func(t *testing.T) {
			var next rlCounter
			h := RateLimit(policies.RateLimit{Limit: 10, Window: time.Hour, Clock: clock.NewFake(rlStart)}, key)(&next)
			for i := range 100 {
				xff := "203.0.113." + strconv.Itoa(i)
				rlServe(h, "198.51.100.7:4000", "X-Forwarded-For", xff, "X-Real-IP", xff, "Forwarded", "for="+xff)
			}
			if next.n.Load() != 10 {
				t.Fatalf("admitted %d of 100 spoofed requests, want 10", next.n.Load())
			}
		})
	}
}

func TestRateLimitTrustedProxiesRightmostUntrusted(t *testing.T) {
	var next rlCounter
	h := RateLimit(policies.RateLimit{Limit: 3, Window: time.Hour, Clock: clock.NewFake(rlStart)},
		TrustedProxies("10.0.0.0/8"))(&next)
	// The same client through different proxy paths, with varying spoofed
	// prefixes, is one bucket.
	for i := range 6 {
		xff := "6.6.6." + strconv.Itoa(i) + ", 203.0.113.9, 10.0.0." + strconv.Itoa(i) + ", 10.1.0.1"
		rlServe(h, "10.0.0.254:80", "X-Forwarded-For", xff)
	}
	if next.n.Load() != 3 {
		t.Fatalf("admitted %d, want 3", next.n.Load())
	}
	// Another client behind the same proxies has its own bucket.
	if rlServe(h, "10.0.0.254:80", "X-Forwarded-For", "203.0.113.10, 10.1.0.1").Code != http.StatusOK {
		t.Fatal("another client behind the proxies was refused")
	}
}

func TestRateLimitIPv6GroupedBy64(t *testing.T) {
	h := RateLimit(policies.RateLimit{Limit: 1, Window: time.Hour, Clock: clock.NewFake(rlStart)}, nil)(&rlCounter{})
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"[2001:db8::1]:1", http.StatusOK},
		{"[2001:db8::2]:1", http.StatusTooManyRequests}, // same /64
		{"[2001:db8:0:1::1]:1", http.StatusOK},          // next /64
	} {
		if got := rlServe(h, tc.remote).Code; got != tc.want {
			t.Fatalf("%s: status %d, want %d", tc.remote, got, tc.want)
		}
	}
}

func TestRateLimitCost(t *testing.T) {
	var next rlCounter
	h := RateLimitWith(RateLimitOptions{
		Policy: policies.RateLimit{Limit: 10, Window: time.Minute, Clock: clock.NewFake(rlStart)},
		Cost: func(r *http.Request) int {
			n, _ := strconv.Atoi(r.Header.Get("X-Cost"))
			return n
		},
	})(&next)
	codes := []int{}
	for range 3 {
		codes = append(codes, rlServe(h, "192.0.2.1:1", "X-Cost", "5").Code)
	}
	if want := []int{200, 200, 429}; !equalInts(codes, want) {
		t.Fatalf("codes = %v, want %v", codes, want)
	}
	// A cost below 1 counts as 1; another client.
	for _, c := range []string{"0", "-3"} {
		rec := rlServe(h, "192.0.2.2:1", "X-Cost", c)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("RateLimit"), ";r=") {
			t.Fatalf("cost %s: status %d", c, rec.Code)
		}
	}
	if got := rlServe(h, "192.0.2.2:1", "X-Cost", "1").Header().Get("RateLimit"); got != `"default";r=7;t=18` {
		t.Fatalf("after costs 1,1,1: RateLimit = %q", got)
	}
	// A cost above the capacity can never be admitted: 429 without Retry-After.
	reached := next.n.Load()
	rec := rlServe(h, "192.0.2.3:1", "X-Cost", "11")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "" {
		t.Fatalf("cost 11: status %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec.Header().Get("RateLimit") != `"default";r=10;t=0` || next.n.Load() != reached {
		t.Fatalf("cost 11: RateLimit %q, handler reached", rec.Header().Get("RateLimit"))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRateLimitLegacyAndPolicyName(t *testing.T) {
	h := RateLimitWith(RateLimitOptions{
		Policy:     policies.RateLimit{Limit: 100, Window: time.Hour, Clock: clock.NewFake(rlStart)},
		Legacy:     true,
		PolicyName: "per-client",
	})(&rlCounter{})
	rec := rlServe(h, "192.0.2.1:1")
	for k, want := range map[string]string{
		"RateLimit-Policy":      `"per-client";q=100;w=3600`,
		"RateLimit":             `"per-client";r=99;t=36`,
		"X-RateLimit-Limit":     "100",
		"X-RateLimit-Remaining": "99",
		"X-RateLimit-Reset":     "36",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestRateLimitHeadersRoundTrip(t *testing.T) {
	fake := clock.NewFake(rlStart)
	for _, legacy := range []bool{false, true} {
		h := RateLimitWith(RateLimitOptions{
			Policy: policies.RateLimit{Limit: 5, Window: 10 * time.Second, Clock: fake},
			Legacy: legacy,
		})(&rlCounter{})
		for i := range 6 {
			rec := rlServe(h, "192.0.2.1:1")
			l, ok := headers.Parse(rec.Header(), fake.Now())
			wantRemaining := int64(max(4-i, 0))
			if !ok || l.Quota != 5 || l.Remaining != wantRemaining || l.Window != 10*time.Second || l.Name != "default" {
				t.Fatalf("legacy=%v request %d: Parse = %+v, %v; want Quota 5, Remaining %d", legacy, i+1, l, ok, wantRemaining)
			}
			if i >= 4 { // exhausted: a client waits for the next token, as Retry-After says
				d, ok := headers.Delay(rec.Header(), fake.Now())
				if !ok || d != 2*time.Second {
					t.Fatalf("Delay = %v, %v; want 2s", d, ok)
				}
			}
		}
	}
}

func TestRateLimitSlidingWindow(t *testing.T) {
	fake := clock.NewFake(rlStart)
	var next rlCounter
	h := RateLimit(policies.RateLimit{Limit: 4, Window: time.Minute, Algorithm: policies.SlidingWindow, Burst: 100, Clock: fake}, nil)(&next)
	if got := rlAdmitted(h, 10, "192.0.2.1:1"); got != 4 {
		t.Fatalf("admitted %d, want 4 (Burst is ignored by SlidingWindow)", got)
	}
	// The 5th fits once the 4 counted weigh no more than 3: 15s into the
	// next window.
	rec := rlServe(h, "192.0.2.1:1")
	if rec.Header().Get("Retry-After") != "75" || rec.Header().Get("RateLimit") != `"default";r=0;t=60` {
		t.Fatalf("Retry-After %q RateLimit %q", rec.Header().Get("Retry-After"), rec.Header().Get("RateLimit"))
	}
	// Halfway through the next window half the previous count still weighs.
	fake.Advance(90 * time.Second)
	if got := rlAdmitted(h, 10, "192.0.2.1:1"); got != 2 {
		t.Fatalf("admitted %d halfway through the next window, want 2", got)
	}
}

// rlFailingStore is a Store that cannot decide.
type rlFailingStore struct{}

func (rlFailingStore) Take(context.Context, string, int, policies.Quota, time.Time) (policies.LimitDecision, error) {
	return policies.LimitDecision{}, errors.New("store unreachable")
}

func TestRateLimitStoreErrorIs503(t *testing.T) {
	var next rlCounter
	h := RateLimit(policies.RateLimit{Limit: 5, Store: rlFailingStore{}}, nil)(&next)
	rec := rlServe(h, "192.0.2.1:1")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || next.n.Load() != 0 {
		t.Fatalf("status %d Retry-After %q reached %d", rec.Code, rec.Header().Get("Retry-After"), next.n.Load())
	}
	if strings.Contains(rec.Body.String(), "unreachable") {
		t.Fatalf("body leaks the store's error: %s", rec.Body.String())
	}
}

func TestRateLimitInvalidOptionsPanic(t *testing.T) {
	for _, tc := range []struct {
		want string
		o    RateLimitOptions
	}{
		{"middleware: RateLimit.Limit must be > 0, got 0", RateLimitOptions{}},
		{"middleware: RateLimit.Limit must be > 0, got -1", RateLimitOptions{Policy: policies.RateLimit{Limit: -1}}},
		{"middleware: RateLimit.Window must be >= 0", RateLimitOptions{Policy: policies.RateLimit{Limit: 1, Window: -time.Second}}},
		{"middleware: RateLimit.Burst must be >= 0", RateLimitOptions{Policy: policies.RateLimit{Limit: 1, Burst: -1}}},
		{"middleware: RateLimit.MaxKeys must be >= 0", RateLimitOptions{Policy: policies.RateLimit{Limit: 1, MaxKeys: -1}}},
		{"middleware: RateLimitOptions.PolicyName must be printable ASCII", RateLimitOptions{Policy: policies.RateLimit{Limit: 1}, PolicyName: "caf\u00e9"}},
	} {
		keyMustPanic(t, tc.want, func() { RateLimitWith(tc.o) })
	}
	keyMustPanic(t, "middleware: RateLimit.Limit must be > 0", func() { RateLimit(policies.RateLimit{}, nil) })
}

func TestRateLimitSharedAcrossWrappedHandlers(t *testing.T) {
	mw := RateLimit(policies.RateLimit{Limit: 2, Window: time.Hour, Clock: clock.NewFake(rlStart)}, nil)
	a, b := mw(&rlCounter{}), mw(&rlCounter{})
	codes := []int{rlServe(a, "192.0.2.1:1").Code, rlServe(b, "192.0.2.1:1").Code, rlServe(a, "192.0.2.1:1").Code}
	if !equalInts(codes, []int{200, 200, 429}) {
		t.Fatalf("codes = %v: one middleware value is one limiter", codes)
	}
}

// rlGet sends n GETs to url and returns the responses' codes and the last
// response's header; every body is read and closed.
func rlGet(t *testing.T, c *http.Client, url string, n int) ([]int, http.Header) {
	t.Helper()
	var codes []int
	var last http.Header
	for range n {
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		codes = append(codes, res.StatusCode)
		last = res.Header
	}
	return codes, last
}

// rlCheck429 asserts the codes 200, 200, 429 and the refusal's headers.
func rlCheck429(t *testing.T, codes []int, h http.Header) {
	t.Helper()
	if !equalInts(codes, []int{200, 200, 429}) {
		t.Fatalf("codes = %v, want [200 200 429]", codes)
	}
	for k, want := range map[string]string{
		"Retry-After":      "30",
		"RateLimit-Policy": `"default";q=2;w=60`,
		"RateLimit":        `"default";r=0;t=30`,
		"Content-Type":     "application/problem+json",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestRateLimitChi(t *testing.T) {
	r := chi.NewRouter()
	r.Use(RateLimit(policies.RateLimit{Limit: 2, Window: time.Minute, Clock: clock.NewFake(rlStart)}, nil))
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := httptest.NewServer(r)
	defer srv.Close()
	codes, h := rlGet(t, srv.Client(), srv.URL, 3)
	rlCheck429(t, codes, h)
}

func TestRateLimitChiByRoute(t *testing.T) {
	r := chi.NewRouter()
	mw := RateLimit(policies.RateLimit{Limit: 1, Window: time.Minute, Clock: clock.NewFake(rlStart)}, Compose(ByRoute(), ClientIP()))
	r.With(mw).Get("/items/{id}", func(w http.ResponseWriter, _ *http.Request) {})
	r.With(mw).Get("/users/{id}", func(w http.ResponseWriter, _ *http.Request) {})
	srv := httptest.NewServer(r)
	defer srv.Close()
	var codes []int
	for _, p := range []string{"/items/1", "/items/2", "/users/1"} {
		c, _ := rlGet(t, srv.Client(), srv.URL+p, 1)
		codes = append(codes, c...)
	}
	if !equalInts(codes, []int{200, 429, 200}) {
		t.Fatalf("codes = %v, want one bucket per route pattern", codes)
	}
}

func TestRateLimitEcho(t *testing.T) {
	e := echo.New()
	e.Use(echo.WrapMiddleware(RateLimit(policies.RateLimit{Limit: 2, Window: time.Minute, Clock: clock.NewFake(rlStart)}, nil)))
	e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	srv := httptest.NewServer(e)
	defer srv.Close()
	codes, h := rlGet(t, srv.Client(), srv.URL, 3)
	rlCheck429(t, codes, h)
}

func TestRateLimitStoreHoldsAtMostMaxKeys(t *testing.T) {
	store := policies.NewMemoryStore(1000)
	h := RateLimit(policies.RateLimit{Limit: 1, Window: time.Hour, Store: store, Clock: clock.NewFake(rlStart)}, nil)(&rlCounter{})
	r := keyReq("")
	rec := httptest.NewRecorder()
	for i := range 5000 {
		r.RemoteAddr = rlIP(i)
		clear(rec.HeaderMap)
		h.ServeHTTP(rec, r)
	}
	if n := store.Len(); n > 1000 || n < 900 {
		t.Fatalf("store holds %d keys, want at most MaxKeys 1000 (and close to it)", n)
	}
}

// rlIP returns a distinct IPv4 address for i, with a port.
func rlIP(i int) string {
	return "10." + strconv.Itoa(i>>16&0xff) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) + ":1234"
}

// rlNop is a handler that writes nothing.
var rlNop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

func TestRateLimitMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("300,000 keys")
	}
	const (
		clients = 300_000
		bound   = 64 << 20 // bytes of heap the limiter may hold with its default MaxKeys (100,000)
	)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)

	h := RateLimit(policies.RateLimit{Limit: 10, Window: time.Minute, Clock: clock.NewFake(rlStart)}, nil)(rlNop)
	r := keyReq("")
	rec := httptest.NewRecorder()
	for i := range clients {
		r.RemoteAddr = rlIP(i)
		clear(rec.HeaderMap)
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("client %d refused", i)
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	// The limiter is alive and still knows the latest client (one unit taken).
	r.RemoteAddr = rlIP(clients - 1)
	clear(rec.HeaderMap)
	h.ServeHTTP(rec, r)
	if got := rec.Header().Get("RateLimit"); !strings.HasPrefix(got, `"default";r=8;`) {
		t.Fatalf("latest client's RateLimit = %q, want r=8", got)
	}
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d distinct clients: heap grew by %.1f MiB (bound %d MiB)", clients, float64(grew)/(1<<20), bound>>20)
	if grew > bound {
		t.Fatalf("heap grew by %d bytes, more than the bound %d", grew, bound)
	}
}

func BenchmarkRateLimit(b *testing.B) {
	for _, keys := range []int{1, 10_000} {
		ips := make([]string, keys)
		for i := range ips {
			ips[i] = rlIP(i)
		}
		// Limit high enough that every request is admitted.
		newH := func() http.Handler {
			return RateLimit(policies.RateLimit{Limit: 1 << 30, Window: time.Second}, nil)(rlNop)
		}
		b.Run("keys="+strconv.Itoa(keys)+"/serial", func(b *testing.B) {
			h := newH()
			r := keyReq(ips[0])
			rec := httptest.NewRecorder()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.RemoteAddr = ips[i%keys]
				i++
				clear(rec.HeaderMap)
				h.ServeHTTP(rec, r)
			}
		})
		b.Run("keys="+strconv.Itoa(keys)+"/parallel", func(b *testing.B) {
			h := newH()
			var seq atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := keyReq(ips[0])
				rec := httptest.NewRecorder()
				i := int(seq.Add(1)) * 7919
				for pb.Next() {
					r.RemoteAddr = ips[i%keys]
					i++
					clear(rec.HeaderMap)
					h.ServeHTTP(rec, r)
				}
			})
		})
	}
}

// TestRateLimitNameNeedingEscapes takes the general path.
func TestRateLimitNameNeedingEscapes(t *testing.T) {
	h := RateLimitWith(RateLimitOptions{
		Policy:     policies.RateLimit{Limit: 10, Window: time.Minute, Clock: clock.NewFake(rlStart)},
		PolicyName: `a"b\c`,
	})(&rlCounter{})
	rec := rlServe(h, "192.0.2.1:1")
	if got, want := rec.Header().Get("RateLimit"), `"a\"b\\c";r=9;t=6`; got != want {
		t.Fatalf("RateLimit = %q, want %q", got, want)
	}
}

// TestRateLimitHeaderValuesAreSeparate checks that the two fields, whose
// values share one array, cannot change each other.
func TestRateLimitHeaderValuesAreSeparate(t *testing.T) {
	h := RateLimit(policies.RateLimit{Limit: 10, Window: time.Minute, Clock: clock.NewFake(rlStart)}, nil)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("RateLimit-Policy", `"other";q=1`)
			w.Header()["Ratelimit-Policy"][0] = `"changed";q=2`
		}))
	rec := rlServe(h, "192.0.2.1:1")
	if got := rec.Header().Values("RateLimit"); len(got) != 1 || got[0] != `"default";r=9;t=6` {
		t.Fatalf("RateLimit = %q after the handler changed RateLimit-Policy", got)
	}
	if got := rec.Header().Values("RateLimit-Policy"); len(got) != 2 || got[0] != `"changed";q=2` || got[1] != `"other";q=1` {
		t.Fatalf("RateLimit-Policy = %q", got)
	}
}
