package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// t2Fake returns a fake clock starting at the wall clock's time, so request
// deadlines (read by the limiter against its Clock) mean what they say.
func t2Fake() *clock.Fake { return clock.NewFake(time.Now()) }

// t2Get sends a GET to url through rt and returns the outcome.
func t2Get(t *testing.T, rt http.RoundTripper, url string) (*http.Response, error) {
	t.Helper()
	return rt.RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, url, ""))
}

// t2Status sends a GET through rt, expects a response and returns its
// status, the body drained and closed.
func t2Status(t *testing.T, rt http.RoundTripper, url string) int {
	t.Helper()
	resp, err := t2Get(t, rt, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	readAll(t, resp)
	return resp.StatusCode
}

// t2WantOpen checks that err is the circuit's fail-fast rejection for host.
func t2WantOpen(t *testing.T, resp *http.Response, err error, host string, wait time.Duration) {
	t.Helper()
	if resp != nil {
		t.Fatalf("open circuit returned a response: %d", resp.StatusCode)
	}
	if !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("err = %v, want ErrCircuitOpen", err)
	}
	var re *policies.RejectedError
	if !errors.As(err, &re) || re.Key != host {
		t.Fatalf("err = %#v, want a *RejectedError with Key %q", err, host)
	}
	if got, ok := policies.RetryAfter(err); !ok || got != wait {
		t.Fatalf("RetryAfter = %v, %v; want %v", got, ok, wait)
	}
}

func TestBreakerOpensOn5xxAndFailsFast(t *testing.T) {
	var hits atomic.Int64
	srv := newServer(t, statusSeq(&hits, nil, 500))
	fake := t2Fake()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	rt := Chain(base, Breaker(policies.Breaker{Failures: 2, OpenFor: 5 * time.Second, Clock: fake}))

	for i := 0; i < 2; i++ {
		if got := t2Status(t, rt, srv.URL); got != 500 {
			t.Fatalf("call %d: status %d, want the 500 itself", i+1, got)
		}
	}
	fake.Advance(time.Second)
	body := newTrackedBody("payload")
	req := mustRequest(t, testCtx(t), http.MethodPost, srv.URL, "")
	req.Body = body
	resp, err := rt.RoundTrip(req)
	t2WantOpen(t, resp, err, req.URL.Host, 4*time.Second)
	if body.Closed() != 1 {
		t.Fatalf("request body closed %d times, want 1", body.Closed())
	}
	if hits.Load() != 2 {
		t.Fatalf("server saw %d requests, want 2 (the third failed fast)", hits.Load())
	}

	// Through an http.Client the rejection is still matchable.
	c := &http.Client{Transport: rt}
	_, err = c.Get(srv.URL)
	if !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("client err = %v, want ErrCircuitOpen", err)
	}
}

func TestBreaker4xxIsSuccess(t *testing.T) {
	var hits atomic.Int64
	srv := newServer(t, statusSeq(&hits, nil, 404, 429, 400, 404, 404))
	rt := newTestClient(t, Breaker(policies.Breaker{Failures: 1})).Transport
	for i := 0; i < 5; i++ {
		if got := t2Status(t, rt, srv.URL); got >= 500 {
			t.Fatalf("call %d: status %d", i+1, got)
		}
	}
	if hits.Load() != 5 {
		t.Fatalf("server saw %d requests, want 5: 4xx must not open the circuit", hits.Load())
	}
}

func TestBreakerTransportErrorIsFailure(t *testing.T) {
	base := &countingRT{respond: func(int, *http.Request) (*http.Response, error) {
		return nil, errors.New("dial tcp: connection refused")
	}}
	rt := Chain(base, Breaker(policies.Breaker{Failures: 2, Clock: t2Fake()}))
	for i := 0; i < 2; i++ {
		if _, err := t2Get(t, rt, "http://down.test/"); err == nil || errors.Is(err, policies.ErrCircuitOpen) {
			t.Fatalf("call %d: err = %v, want the transport error", i+1, err)
		}
	}
	resp, err := t2Get(t, rt, "http://down.test/")
	t2WantOpen(t, resp, err, "down.test", 5*time.Second)
	if base.Calls() != 2 {
		t.Fatalf("base calls = %d, want 2", base.Calls())
	}
}

func TestBreakerIsFailureFiltersTransportErrors(t *testing.T) {
	errBenign := errors.New("benign")
	base := &countingRT{respond: func(int, *http.Request) (*http.Response, error) { return nil, errBenign }}
	rt := Chain(base, Breaker(policies.Breaker{Failures: 1, IsFailure: func(err error) bool { return !errors.Is(err, errBenign) }}))
	for i := 0; i < 3; i++ {
		if _, err := t2Get(t, rt, "http://a.test/"); !errors.Is(err, errBenign) {
			t.Fatalf("call %d: err = %v", i+1, err)
		}
	}
}

func TestBreakerIgnoresCallerCancellationAndInnerRejections(t *testing.T) {
	rejected := &policies.RejectedError{Kind: policies.KindRateLimit, Err: policies.ErrRateLimited}
	base := &countingRT{respond: func(n int, req *http.Request) (*http.Response, error) {
		if n == 1 {
			return nil, context.Cause(req.Context())
		}
		if n == 2 {
			return nil, rejected
		}
		return newResponse(req, 200, nil, ""), nil
	}}
	rt := Chain(base, Breaker(policies.Breaker{Failures: 1}))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rt.RoundTrip(mustRequest(t, ctx, http.MethodGet, "http://a.test/", "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: err = %v", err)
	}
	if _, err := t2Get(t, rt, "http://a.test/"); err != rejected {
		t.Fatalf("inner rejection: err = %v", err)
	}
	if got := t2Status(t, rt, "http://a.test/"); got != 200 {
		t.Fatalf("status %d: neither the cancellation nor the inner rejection may open the circuit", got)
	}
}

func TestBreakerHalfOpenAdmitsOneProbeUnderConcurrency(t *testing.T) {
	var (
		failing atomic.Bool
		hits    atomic.Int64
		arrived = make(chan struct{}, 20)
		release = make(chan struct{})
	)
	failing.Store(true)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if failing.Load() {
			w.WriteHeader(500)
			return
		}
		arrived <- struct{}{}
		<-release
		w.WriteHeader(200)
	})
	fake := t2Fake()
	rt := newTestClient(t, Breaker(policies.Breaker{Failures: 1, HalfOpenProbes: 1, OpenFor: time.Second, Clock: fake})).Transport

	if got := t2Status(t, rt, srv.URL); got != 500 {
		t.Fatalf("status %d", got)
	}
	failing.Store(false)
	fake.Advance(time.Second) // the cool-down is over: the circuit may turn half-open

	type outcome struct {
		status int
		err    error
	}
	results := make(chan outcome, 20)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := rt.RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, srv.URL, ""))
			if err != nil {
				results <- outcome{err: err}
				return
			}
			_ = resp.Body.Close()
			results <- outcome{status: resp.StatusCode}
		}()
	}
	// 19 callers are refused at once while the probe is held by the server.
	for i := 0; i < 19; i++ {
		o := <-results
		if !errors.Is(o.err, policies.ErrCircuitOpen) {
			t.Fatalf("result %d: status %d err %v, want ErrCircuitOpen", i, o.status, o.err)
		}
	}
	<-arrived
	if got := hits.Load(); got != 2 {
		t.Fatalf("server saw %d requests, want 2 (one failure, one probe)", got)
	}
	close(release)
	if o := <-results; o.err != nil || o.status != 200 {
		t.Fatalf("probe: status %d err %v", o.status, o.err)
	}
	wg.Wait()
	if got := t2Status(t, rt, srv.URL); got != 200 {
		t.Fatalf("after a good probe the circuit must be closed: status %d", got)
	}
}

func TestBreakerFailedProbeDoublesCoolDown(t *testing.T) {
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		return newResponse(req, 503, nil, "down"), nil
	}}
	fake := t2Fake()
	rt := Chain(base, Breaker(policies.Breaker{Failures: 1, OpenFor: time.Second, Clock: fake}))
	t2Status(t, rt, "http://a.test/")
	fake.Advance(time.Second)
	if got := t2Status(t, rt, "http://a.test/"); got != 503 {
		t.Fatalf("probe status %d", got)
	}
	resp, err := t2Get(t, rt, "http://a.test/")
	t2WantOpen(t, resp, err, "a.test", 2*time.Second)
}

func TestBreakerCircuitsArePerHost(t *testing.T) {
	var hitsA, hitsB atomic.Int64
	a := newServer(t, statusSeq(&hitsA, nil, 500))
	b := newServer(t, statusSeq(&hitsB, nil, 200))
	rt := newTestClient(t, Breaker(policies.Breaker{Failures: 1})).Transport

	t2Status(t, rt, a.URL)
	if _, err := t2Get(t, rt, a.URL); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("host a: err = %v, want ErrCircuitOpen", err)
	}
	for i := 0; i < 3; i++ {
		if got := t2Status(t, rt, b.URL); got != 200 {
			t.Fatalf("host b: status %d", got)
		}
	}
	if hitsA.Load() != 1 || hitsB.Load() != 3 {
		t.Fatalf("hits a=%d b=%d, want 1 and 3", hitsA.Load(), hitsB.Load())
	}
}

func TestBreakerEventsCarryNameAndHost(t *testing.T) {
	var mu sync.Mutex
	var events []policies.Event
	obs := policies.ObserverFunc(func(e policies.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		return newResponse(req, 500, nil, ""), nil
	}}
	rt := Chain(base, Breaker(policies.Breaker{Failures: 1, Name: "api", Observer: obs}))
	t2Status(t, rt, "http://a.test/")
	_, _ = t2Get(t, rt, "http://a.test/")

	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 {
		t.Fatalf("events = %+v, want a state change and a rejection", events)
	}
	if e := events[0]; e.Type != policies.EventStateChange || e.To != policies.StateOpen || e.Name != "api" || e.Key != "a.test" {
		t.Fatalf("first event = %+v", e)
	}
	if e := events[1]; e.Type != policies.EventReject || e.Name != "api" || e.Key != "a.test" {
		t.Fatalf("second event = %+v", e)
	}
}

func TestBreakerRegistryIsBoundedAndKeepsOpenCircuits(t *testing.T) {
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		if req.URL.Host == "bad.test" {
			return newResponse(req, 500, nil, ""), nil
		}
		return newResponse(req, 200, nil, ""), nil
	}}
	layer := Breaker(policies.Breaker{Failures: 1})
	rt := layer(base).(*breakerRT)
	t2Status(t, rt, "http://bad.test/")
	for i := 0; i < breakerMaxHosts+100; i++ {
		t2Status(t, rt, fmt.Sprintf("http://h%d.test/", i))
	}
	rt.mu.RLock()
	n := len(rt.circuits)
	rt.mu.RUnlock()
	if n > breakerMaxHosts {
		t.Fatalf("%d circuits kept, want at most %d", n, breakerMaxHosts)
	}
	if _, err := t2Get(t, rt, "http://bad.test/"); !errors.Is(err, policies.ErrCircuitOpen) {
		t.Fatalf("the open circuit was evicted: err = %v", err)
	}
}

func TestBreakerForwardsCloseIdleAndKeepsRequest(t *testing.T) {
	base := &countingRT{}
	rt := Chain(base, Breaker(policies.Breaker{}))
	req := mustRequest(t, testCtx(t), http.MethodGet, "http://a.test/x", "")
	before := *req
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if req.URL != before.URL || req.Method != before.Method || req.Header == nil || len(req.Header) != 0 {
		t.Fatal("the caller's request was modified")
	}
	(&http.Client{Transport: rt}).CloseIdleConnections()
	if base.idleCalls.Load() != 1 {
		t.Fatalf("CloseIdleConnections reached the base %d times, want 1", base.idleCalls.Load())
	}
}

func TestBreakerInvalidOptionsPanic(t *testing.T) {
	defer func() {
		msg := fmt.Sprint(recover())
		if msg != "transport: Breaker.Failures must be >= 0, got -1" {
			t.Fatalf("panic = %q, want it to name transport and Breaker.Failures", msg)
		}
	}()
	Breaker(policies.Breaker{Failures: -1})
}

// t2OKRT is the benchmarks' base: it answers every request with one
// prebuilt 200 whose body is http.NoBody.
type t2OKRT struct{ resp *http.Response }

func (o t2OKRT) RoundTrip(*http.Request) (*http.Response, error) { return o.resp, nil }

// t2Bench runs rt over a prebuilt GET, serially and in parallel.
func t2Bench(b *testing.B, rt http.RoundTripper) {
	req, err := http.NewRequest(http.MethodGet, "http://bench.test/", nil)
	if err != nil {
		b.Fatal(err)
	}
	benchRoundTrips(b, rt, req)
}

// t2OKBase returns the benchmarks' in-memory base.
func t2OKBase() http.RoundTripper {
	return t2OKRT{resp: &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}}
}

func BenchmarkBreakerLayer(b *testing.B) {
	t2Bench(b, Chain(t2OKBase(), Breaker(policies.Breaker{})))
}
