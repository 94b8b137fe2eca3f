package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// t2Short returns a context whose deadline (1s) is shorter than any hold the
// rate-limit tests announce.
func t2Short(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	t.Cleanup(cancel)
	return ctx
}

// t2WantRateLimited checks the limiter's fail-fast rejection and that the
// request body was closed.
func t2WantRateLimited(t *testing.T, rt http.RoundTripper, url string, wait time.Duration) {
	t.Helper()
	body := newTrackedBody("payload")
	req := mustRequest(t, t2Short(t), http.MethodPut, url, "")
	req.Body = body
	resp, err := rt.RoundTrip(req)
	if resp != nil {
		t.Fatalf("a refused request returned a response: %d", resp.StatusCode)
	}
	if !errors.Is(err, policies.ErrRateLimited) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if got, ok := policies.RetryAfter(err); !ok || got != wait {
		t.Fatalf("RetryAfter = %v, %v; want %v", got, ok, wait)
	}
	if body.Closed() != 1 {
		t.Fatalf("request body closed %d times, want 1", body.Closed())
	}
}

// t2WaitThrough sends a GET to url through rt in a goroutine, checks it
// waits on fake for at least d, advances the clock by d and returns the
// status the request got.
func t2WaitThrough(t *testing.T, rt http.RoundTripper, fake *clock.Fake, url string, d time.Duration) int {
	t.Helper()
	type outcome struct {
		status int
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		resp, err := rt.RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, url, ""))
		if err != nil {
			done <- outcome{err: err}
			return
		}
		_ = resp.Body.Close()
		done <- outcome{status: resp.StatusCode}
	}()
	if err := fake.BlockUntil(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(d - time.Millisecond)
	select {
	case o := <-done:
		t.Fatalf("request went through before the hold ended: %+v", o)
	default:
	}
	fake.Advance(time.Millisecond)
	o := <-done
	if o.err != nil {
		t.Fatalf("waiting request: %v", o.err)
	}
	return o.status
}

func TestRateLimitObeysServerAnnouncements(t *testing.T) {
	cases := []struct {
		name   string
		status int
		set    func(h http.Header)
		hold   time.Duration
	}{
		{"429 Retry-After seconds", 429, func(h http.Header) { h.Set("Retry-After", "2") }, 2 * time.Second},
		{"503 Retry-After seconds", 503, func(h http.Header) { h.Set("Retry-After", "3") }, 3 * time.Second},
		{"IETF RateLimit r=0", 200, func(h http.Header) {
			h.Set("RateLimit-Policy", `"default";q=100;w=60`)
			h.Set("RateLimit", `"default";r=0;t=5`)
		}, 5 * time.Second},
		{"X-RateLimit-Remaining 0", 200, func(h http.Header) {
			h.Set("X-RateLimit-Limit", "60")
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", "7")
		}, 7 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := newServer(t, statusSeq(&hits, func(n int, h http.Header) {
				if n == 1 {
					tc.set(h)
				}
			}, tc.status, 200))
			fake := t2Fake()
			rt := newTestClient(t, RateLimit(policies.RateLimit{Clock: fake})).Transport

			// The announcing response reaches the caller unchanged.
			resp, err := t2Get(t, rt, srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || readAll(t, resp) != http.StatusText(tc.status) {
				t.Fatalf("first response changed: %d", resp.StatusCode)
			}
			// A request whose deadline is shorter than the hold fails fast.
			t2WantRateLimited(t, rt, srv.URL, tc.hold)
			// One that can wait, waits until the hold ends.
			if got := t2WaitThrough(t, rt, fake, srv.URL, tc.hold); got != 200 {
				t.Fatalf("status %d", got)
			}
			if hits.Load() != 2 {
				t.Fatalf("server saw %d requests, want 2", hits.Load())
			}
		})
	}
}

func TestRateLimitIgnoresRetryAfterOnSuccess(t *testing.T) {
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		h := http.Header{}
		h.Set("Retry-After", "30")
		h.Set("X-RateLimit-Remaining", "5")
		h.Set("X-RateLimit-Reset", "30")
		return newResponse(req, 200, h, ""), nil
	}}
	rt := Chain(base, RateLimit(policies.RateLimit{Clock: t2Fake()}))
	for i := 0; i < 3; i++ {
		req := mustRequest(t, t2Short(t), http.MethodGet, "http://a.test/", "")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		readAll(t, resp)
	}
}

func TestRateLimitHoldsArePerHost(t *testing.T) {
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		h := http.Header{}
		if req.URL.Host == "a.test" {
			h.Set("Retry-After", "60")
			return newResponse(req, 429, h, ""), nil
		}
		return newResponse(req, 200, h, ""), nil
	}}
	rt := Chain(base, RateLimit(policies.RateLimit{Clock: t2Fake()}))
	t2Status(t, rt, "http://a.test/")
	t2WantRateLimited(t, rt, "http://a.test/", time.Minute)
	for i := 0; i < 3; i++ {
		if got := t2Status(t, rt, "http://b.test/"); got != 200 {
			t.Fatalf("host b: status %d", got)
		}
	}
}

func TestRateLimitPacesLocally(t *testing.T) {
	base := &countingRT{}
	fake := t2Fake()
	rt := Chain(base, RateLimit(policies.RateLimit{Limit: 1, Window: 2 * time.Second, Clock: fake}))
	t2Status(t, rt, "http://a.test/")
	t2WantRateLimited(t, rt, "http://a.test/", 2*time.Second)
	if got := t2Status(t, rt, "http://b.test/"); got != 200 {
		t.Fatalf("host b: status %d", got)
	}
	if got := t2WaitThrough(t, rt, fake, "http://a.test/", 2*time.Second); got != 200 {
		t.Fatalf("status %d", got)
	}
	if base.Calls() != 3 {
		t.Fatalf("base calls = %d, want 3", base.Calls())
	}
}

func TestRateLimitCallerCancelWhileWaiting(t *testing.T) {
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		h := http.Header{}
		h.Set("Retry-After", "10")
		return newResponse(req, 429, h, ""), nil
	}}
	fake := t2Fake()
	rt := Chain(base, RateLimit(policies.RateLimit{Clock: fake}))
	t2Status(t, rt, "http://a.test/")

	ctx, cancel := context.WithCancel(testCtx(t))
	body := newTrackedBody("x")
	req := mustRequest(t, ctx, http.MethodPut, "http://a.test/", "")
	req.Body = body
	errc := make(chan error, 1)
	go func() {
		_, err := rt.RoundTrip(req)
		errc <- err
	}()
	if err := fake.BlockUntil(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if body.Closed() != 1 || base.Calls() != 1 {
		t.Fatalf("body closed %d times, base calls %d; want 1 and 1", body.Closed(), base.Calls())
	}
}

func TestRateLimitForwardsCloseIdleAndErrors(t *testing.T) {
	errDown := errors.New("down")
	base := &countingRT{respond: func(int, *http.Request) (*http.Response, error) { return nil, errDown }}
	rt := Chain(base, RateLimit(policies.RateLimit{}))
	if _, err := t2Get(t, rt, "http://a.test/"); err != errDown {
		t.Fatalf("err = %v, want the transport's error unchanged", err)
	}
	(&http.Client{Transport: rt}).CloseIdleConnections()
	if base.idleCalls.Load() != 1 {
		t.Fatalf("CloseIdleConnections reached the base %d times, want 1", base.idleCalls.Load())
	}
}

func TestRateLimitInvalidOptionsPanic(t *testing.T) {
	defer func() {
		msg := fmt.Sprint(recover())
		if msg != "transport: RateLimit.Limit must be >= 0, got -1" {
			t.Fatalf("panic = %q, want it to name transport and RateLimit.Limit", msg)
		}
	}()
	RateLimit(policies.RateLimit{Limit: -1})
}

func BenchmarkRateLimitLayer(b *testing.B) {
	for _, limit := range []int{0, 1_000_000_000} {
		b.Run("Limit="+strconv.Itoa(limit), func(b *testing.B) {
			t2Bench(b, Chain(t2OKBase(), RateLimit(policies.RateLimit{Limit: limit})))
		})
	}
}
