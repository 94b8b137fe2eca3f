package middleware

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// bhWaitFor polls cond every millisecond until it holds, failing the test
// after 5s. It waits on other goroutines' progress, never on a timer.
func bhWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// bhGet sends a GET to url and reports the status on codes (-1 on error),
// closing the body.
func bhGet(ctx context.Context, c *http.Client, url string, codes chan<- int) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := c.Do(req)
	if err != nil {
		codes <- -1
		return
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	codes <- res.StatusCode
}

// bhCheck503 asserts a bulkhead refusal: 503, Retry-After, problem+json.
func bhCheck503(t *testing.T, res *http.Response, retryAfter string) {
	t.Helper()
	defer res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", res.StatusCode)
	}
	if got := res.Header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After = %q, want %q", got, retryAfter)
	}
	if got := res.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Fatalf("Content-Type = %q", got)
	}
	var p Problem
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("body: %v", err)
	}
	if p.Status != http.StatusServiceUnavailable || p.Title != "Service Unavailable" || p.Detail == "" {
		t.Fatalf("problem = %+v", p)
	}
}

func TestBulkheadNeverExceedsMaxConcurrent(t *testing.T) {
	c := policies.NewBulkhead(policies.Bulkhead{MaxConcurrent: 2, MaxQueue: 10})
	var cur, peak atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(bhWrap(c)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		cur.Add(-1)
		_, _ = io.WriteString(w, "ok")
	})))
	defer srv.Close()

	const n = 6
	codes := make(chan int, n)
	for range n {
		go bhGet(context.Background(), srv.Client(), srv.URL, codes)
	}
	bhWaitFor(t, "2 in flight and 4 queued", func() bool { return c.InFlight() == 2 && c.Queued() == n-2 })
	close(release)
	for range n {
		if code := <-codes; code != http.StatusOK {
			t.Fatalf("status = %d, want 200", code)
		}
	}
	if got := peak.Load(); got != 2 {
		t.Fatalf("peak concurrency = %d, want 2", got)
	}
	if c.InFlight() != 0 || c.Queued() != 0 {
		t.Fatalf("in flight %d, queued %d after all returned", c.InFlight(), c.Queued())
	}
}

func TestBulkheadQueueIsFIFO(t *testing.T) {
	c := policies.NewBulkhead(policies.Bulkhead{MaxConcurrent: 1, MaxQueue: 3})
	order := make(chan string, 4)
	release := make(chan struct{})
	srv := httptest.NewServer(bhWrap(c)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		order <- r.URL.Path
		<-release
	})))
	defer srv.Close()

	codes := make(chan int, 4)
	for i, p := range []string{"/first", "/a", "/b", "/c"} {
		go bhGet(context.Background(), srv.Client(), srv.URL+p, codes)
		if i == 0 {
			bhWaitFor(t, "first in flight", func() bool { return c.InFlight() == 1 })
		} else {
			bhWaitFor(t, p+" queued", func() bool { return c.Queued() == i })
		}
	}
	for _, want := range []string{"/first", "/a", "/b", "/c"} {
		if got := <-order; got != want {
			t.Fatalf("admitted %s, want %s", got, want)
		}
		release <- struct{}{}
	}
	for range 4 {
		if code := <-codes; code != http.StatusOK {
			t.Fatalf("status = %d", code)
		}
	}
}

func TestBulkheadFullAnswers503WithRetryAfter(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	h := Bulkhead(policies.Bulkhead{MaxConcurrent: 1, RetryAfter: 2500 * time.Millisecond})
	srv := httptest.NewServer(h(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
	})))
	defer srv.Close()

	codes := make(chan int, 1)
	go bhGet(context.Background(), srv.Client(), srv.URL, codes)
	bhWaitFor(t, "first in flight", func() bool { return calls.Load() == 1 })

	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	bhCheck503(t, res, "3") // whole seconds, rounded up
	close(release)
	if code := <-codes; code != http.StatusOK {
		t.Fatalf("first status = %d", code)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1: a refused request must not reach it", calls.Load())
	}
}

func TestBulkheadQueueTimeout(t *testing.T) {
	fake := clock.NewFake(time.Unix(1_700_000_000, 0))
	c := policies.NewBulkhead(policies.Bulkhead{MaxConcurrent: 1, MaxQueue: 1, QueueTimeout: 5 * time.Second, Clock: fake})
	release := make(chan struct{})
	srv := httptest.NewServer(bhWrap(c)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	})))
	defer srv.Close()

	codes := make(chan int, 1)
	go bhGet(context.Background(), srv.Client(), srv.URL, codes)
	bhWaitFor(t, "first in flight", func() bool { return c.InFlight() == 1 })

	type result struct {
		res *http.Response
		err error
	}
	second := make(chan result, 1)
	go func() {
		res, err := srv.Client().Get(srv.URL)
		second <- result{res, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fake.BlockUntil(ctx, 1); err != nil { // the queue timer is armed
		t.Fatal(err)
	}
	fake.Advance(5*time.Second - time.Nanosecond)
	if c.Queued() != 1 {
		t.Fatalf("queued = %d before QueueTimeout", c.Queued())
	}
	fake.Advance(time.Nanosecond)
	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	bhCheck503(t, r.res, "1") // RetryAfter 0 means 1s
	if c.Queued() != 0 || c.InFlight() != 1 {
		t.Fatalf("queued %d, in flight %d", c.Queued(), c.InFlight())
	}
	close(release)
	if code := <-codes; code != http.StatusOK {
		t.Fatalf("first status = %d", code)
	}
}

func TestBulkheadClientCancelLeavesQueue(t *testing.T) {
	c := policies.NewBulkhead(policies.Bulkhead{MaxConcurrent: 1, MaxQueue: 1})
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(bhWrap(c)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
	})))
	defer srv.Close()

	first := make(chan int, 1)
	go bhGet(context.Background(), srv.Client(), srv.URL, first)
	bhWaitFor(t, "first in flight", func() bool { return c.InFlight() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan int, 1)
	go bhGet(ctx, srv.Client(), srv.URL, second)
	bhWaitFor(t, "second queued", func() bool { return c.Queued() == 1 })
	cancel()
	if code := <-second; code != -1 {
		t.Fatalf("canceled request got status %d", code)
	}
	bhWaitFor(t, "the canceled request to leave the queue", func() bool { return c.Queued() == 0 })

	// Its place is free again: the next request queues and is served.
	third := make(chan int, 1)
	go bhGet(context.Background(), srv.Client(), srv.URL, third)
	bhWaitFor(t, "third queued", func() bool { return c.Queued() == 1 })
	close(release)
	if a, b := <-first, <-third; a != http.StatusOK || b != http.StatusOK {
		t.Fatalf("statuses %d, %d", a, b)
	}
	if calls.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2", calls.Load())
	}
}

func TestBulkheadGoneClientGetsNoAnswer(t *testing.T) {
	c := policies.NewBulkhead(policies.Bulkhead{MaxConcurrent: 1, MaxQueue: 1})
	if err := c.Acquire(context.Background()); err != nil { // the only slot
		t.Fatal(err)
	}
	h := bhWrap(c)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("handler called for a request that left the queue")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	}()
	bhWaitFor(t, "queued", func() bool { return c.Queued() == 1 })
	cancel()
	<-done
	if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Fatalf("wrote an answer to a gone client: headers %v body %q", rec.Header(), rec.Body)
	}
	if c.Queued() != 0 || c.InFlight() != 1 {
		t.Fatalf("queued %d, in flight %d", c.Queued(), c.InFlight())
	}
	c.Release()
}

func TestBulkheadPanicReleasesSlot(t *testing.T) {
	c := policies.NewBulkhead(policies.Bulkhead{MaxConcurrent: 1})
	mw := bhWrap(c)
	panicky := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	fine := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))

	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Fatalf("recovered %v, want the handler's panic", v)
			}
		}()
		panicky.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	if c.InFlight() != 0 {
		t.Fatalf("in flight = %d after a panic, want 0", c.InFlight())
	}
	rec := httptest.NewRecorder()
	fine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Fatalf("next request: %d %q", rec.Code, rec.Body)
	}
}

func TestBulkheadSharedAcrossWrappedHandlers(t *testing.T) {
	mw := Bulkhead(policies.Bulkhead{MaxConcurrent: 1})
	entered, release := make(chan struct{}), make(chan struct{})
	a := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(entered); <-release }))
	b := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("b ran while a held the only slot") }))
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/a", nil))
	}()
	<-entered
	rec := httptest.NewRecorder()
	b.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/b", nil))
	bhCheck503(t, rec.Result(), "1")
	close(release)
	<-done
}

func TestBulkheadInvalidOptionsPanic(t *testing.T) {
	for _, tc := range []struct {
		p     policies.Bulkhead
		field string
	}{
		{policies.Bulkhead{MaxConcurrent: -1}, "MaxConcurrent"},
		{policies.Bulkhead{MaxQueue: -1}, "MaxQueue"},
		{policies.Bulkhead{QueueTimeout: -1}, "QueueTimeout"},
		{policies.Bulkhead{RetryAfter: -1}, "RetryAfter"},
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "middleware: ") || !strings.Contains(msg, tc.field) {
					t.Fatalf("panic %q, want a middleware: message naming %s", msg, tc.field)
				}
			}()
			Bulkhead(tc.p)
		}()
	}
}

func BenchmarkBulkhead(b *testing.B) {
	h := Bulkhead(policies.Bulkhead{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	benchHandler(b, h, http.StatusNoContent)
}
