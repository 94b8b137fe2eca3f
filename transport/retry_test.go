package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// noWait is a retry policy that never sleeps, for tests about what is
// retried rather than when.
var noWait = policies.Retry{Backoff: policies.Constant(0)}

// newFake returns a fake clock reading the current wall time, truncated to
// the second, so context deadlines (wall time) and fake waits agree.
func newFake() *clock.Fake { return clock.NewFake(time.Now().Truncate(time.Second)) }

// rtResult is the outcome of a RoundTrip run in a goroutine.
type rtResult struct {
	resp *http.Response
	err  error
}

// goRoundTrip runs rt.RoundTrip(req) in a goroutine; the channel delivers
// its outcome.
func goRoundTrip(rt http.RoundTripper, req *http.Request) <-chan rtResult {
	ch := make(chan rtResult, 1)
	go func() {
		resp, err := rt.RoundTrip(req)
		ch <- rtResult{resp, err}
	}()
	return ch
}

func TestRetryRetriesStatusesOnOneConnection(t *testing.T) {
	for _, code := range []int{408, 429, 500, 502, 503, 504} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var calls atomic.Int64
			srv, conns := newCountedServer(t, statusSeq(&calls, nil, code, code, http.StatusOK))
			c := newTestClient(t, Retry(noWait))
			resp, err := c.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, resp); resp.StatusCode != 200 || got != "OK" {
				t.Fatalf("got %d %q, want 200 OK", resp.StatusCode, got)
			}
			if n := calls.Load(); n != 3 {
				t.Fatalf("server saw %d requests, want 3", n)
			}
			if n := conns.NewConns(); n != 1 {
				t.Fatalf("%d connections for 3 attempts, want 1 (discarded responses must be drained)", n)
			}
		})
	}
}

func TestRetryDoesNotRetryOtherStatuses(t *testing.T) {
	for _, code := range []int{200, 201, 301, 400, 401, 403, 404, 409, 422, 501, 505} {
		var calls atomic.Int64
		srv := newServer(t, statusSeq(&calls, nil, code, 200))
		c := newTestClient(t, Retry(noWait))
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != code || calls.Load() != 1 {
			t.Errorf("status %d: got %d after %d requests, want %d after 1", code, resp.StatusCode, calls.Load(), code)
		}
	}
}

func TestRetryReturnsLastResponseWhenAttemptsRunOut(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.WriteHeader(503)
		_, _ = io.WriteString(w, "attempt "+string(rune('0'+n)))
	})
	c := newTestClient(t, Retry(policies.Retry{MaxAttempts: 4, Backoff: policies.Constant(0)}))
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); resp.StatusCode != 503 || got != "attempt 4" {
		t.Fatalf("got %d %q, want the last response: 503 %q", resp.StatusCode, got, "attempt 4")
	}
	if calls.Load() != 4 {
		t.Fatalf("server saw %d requests, want MaxAttempts = 4", calls.Load())
	}
}

func TestRetryMethods(t *testing.T) {
	cases := []struct {
		method string
		key    bool
		want   int64
	}{
		{http.MethodGet, false, 3},
		{http.MethodHead, false, 3},
		{http.MethodOptions, false, 3},
		{http.MethodTrace, false, 3},
		{http.MethodPut, false, 3},
		{http.MethodDelete, false, 3},
		{http.MethodPost, false, 1},
		{http.MethodPatch, false, 1},
		{http.MethodPost, true, 3},
		{http.MethodPatch, true, 3},
	}
	for _, tc := range cases {
		var calls atomic.Int64
		srv := newServer(t, statusSeq(&calls, nil, 503))
		c := newTestClient(t, Retry(noWait))
		req := mustRequest(t, context.Background(), tc.method, srv.URL, "")
		if tc.key {
			req.Header.Set("Idempotency-Key", "k-1")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 503 || calls.Load() != tc.want {
			t.Errorf("%s (Idempotency-Key %v): %d after %d requests, want 503 after %d", tc.method, tc.key, resp.StatusCode, calls.Load(), tc.want)
		}
	}
}

// closedURL returns the URL of a loopback port nobody listens on: dialing
// it fails with connection refused.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	_ = ln.Close()
	return url
}

func TestRetryPostRetriedWhenItNeverLeft(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   string
		base func(t *testing.T) *http.Transport
		url  func(t *testing.T) string
	}{
		{"dial error", "dial", func(*testing.T) *http.Transport { return &http.Transport{} }, closedURL},
		{"proxy connect error", "proxyconnect", func(t *testing.T) *http.Transport {
			proxy, _ := url.Parse(closedURL(t))
			return &http.Transport{Proxy: http.ProxyURL(proxy)}
		}, func(*testing.T) string { return "http://upstream.test/" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.base(t)
			t.Cleanup(base.CloseIdleConnections)
			// counter sits between Retry and the base transport: it counts
			// attempts and records the bodies they carried.
			var attempts atomic.Int64
			var mu sync.Mutex
			var bodies []string
			counter := rtFunc(func(req *http.Request) (*http.Response, error) {
				attempts.Add(1)
				b, _ := io.ReadAll(req.Body)
				_ = req.Body.Close()
				mu.Lock()
				bodies = append(bodies, string(b))
				mu.Unlock()
				req.Body = io.NopCloser(bytes.NewReader(b))
				return base.RoundTrip(req)
			})
			rt := Chain(counter, Retry(noWait))
			resp, err := rt.RoundTrip(mustRequest(t, context.Background(), http.MethodPost, tc.url(t), "payload"))
			if err == nil {
				discard(resp)
				t.Fatal("want a transport error")
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != tc.op {
				t.Fatalf("err = %v, want a *net.OpError with Op %s", err, tc.op)
			}
			if n := attempts.Load(); n != 3 {
				t.Fatalf("POST attempted %d times, want 3: the request never left", n)
			}
			if strings.Join(bodies, ",") != "payload,payload,payload" {
				t.Fatalf("bodies %q, want the payload on every attempt", bodies)
			}
		})
	}
}

func TestRetryPostNotRetriedAfterItLeft(t *testing.T) {
	// The server reads the request, then drops the connection: the request
	// left, so a POST must not be sent again; a GET may.
	for _, tc := range []struct {
		method string
		want   int64
	}{{http.MethodPost, 1}, {http.MethodGet, 3}} {
		var calls atomic.Int64
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		})
		c := newTestClient(t, Retry(noWait))
		resp, err := c.Do(mustRequest(t, context.Background(), tc.method, srv.URL, "x"))
		if err == nil {
			discard(resp)
			t.Fatalf("%s: want a transport error", tc.method)
		}
		if calls.Load() != tc.want {
			t.Errorf("%s: server saw %d requests, want %d", tc.method, calls.Load(), tc.want)
		}
	}
}

func TestRetryReplaysBodyAndLeavesRequestAlone(t *testing.T) {
	rec := &bodyRecorder{codes: []int{503, 502, 200}}
	srv, _ := newCountedServer(t, rec)
	c := newTestClient(t, Retry(noWait))
	req := mustRequest(t, context.Background(), http.MethodPut, srv.URL, `{"n":1}`)
	req.Header.Set("X-Test", "a")
	origBody, origHeader, origURL := req.Body, req.Header.Clone(), req.URL.String()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if got := rec.Bodies(); strings.Join(got, "|") != `{"n":1}|{"n":1}|{"n":1}` {
		t.Fatalf("server bodies %q, want the same body on all 3 attempts", got)
	}
	if req.Body != origBody || req.URL.String() != origURL || len(req.Header) != len(origHeader) || req.Header.Get("X-Test") != "a" {
		t.Fatal("the caller's request was modified")
	}
}

// replayable returns a request with a tracked body and a GetBody that
// hands out tracked bodies too; all returns every body handed out.
func replayable(t *testing.T, method, url, payload string) (req *http.Request, all func() []*trackedBody) {
	t.Helper()
	var mu sync.Mutex
	first := newTrackedBody(payload)
	bodies := []*trackedBody{first}
	req, err := http.NewRequest(method, url, first)
	if err != nil {
		t.Fatal(err)
	}
	req.GetBody = func() (io.ReadCloser, error) {
		b := newTrackedBody(payload)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		return b, nil
	}
	return req, func() []*trackedBody {
		mu.Lock()
		defer mu.Unlock()
		return append([]*trackedBody(nil), bodies...)
	}
}

func TestRetryClosesRequestBodyOnEveryPath(t *testing.T) {
	check := func(t *testing.T, name string, all []*trackedBody, want int) {
		t.Helper()
		if len(all) != want {
			t.Errorf("%s: %d bodies used, want %d", name, len(all), want)
		}
		for i, b := range all {
			if b.Closed() == 0 {
				t.Errorf("%s: body %d never closed", name, i)
			}
		}
	}
	t.Run("retried then success", func(t *testing.T) {
		var calls atomic.Int64
		srv := newServer(t, statusSeq(&calls, nil, 503, 200))
		c := newTestClient(t, Retry(noWait))
		req, all := replayable(t, http.MethodPut, srv.URL, "b")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		check(t, "success", all(), 2)
	})
	t.Run("not retried", func(t *testing.T) {
		var calls atomic.Int64
		srv := newServer(t, statusSeq(&calls, nil, 400))
		c := newTestClient(t, Retry(noWait))
		req, all := replayable(t, http.MethodPut, srv.URL, "b")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		check(t, "400", all(), 1)
	})
	t.Run("no GetBody", func(t *testing.T) {
		var calls atomic.Int64
		srv := newServer(t, statusSeq(&calls, nil, 503))
		c := newTestClient(t, Retry(noWait))
		body := newTrackedBody("once")
		req, _ := http.NewRequest(http.MethodPut, srv.URL, body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 503 || calls.Load() != 1 {
			t.Fatalf("got %d after %d requests: a body without GetBody must be sent once", resp.StatusCode, calls.Load())
		}
		if body.Closed() == 0 {
			t.Fatal("body not closed")
		}
	})
	t.Run("circuit open rejection", func(t *testing.T) {
		// An inner layer that rejects (and, per the contract, closes the body).
		var calls atomic.Int64
		inner := rtFunc(func(req *http.Request) (*http.Response, error) {
			calls.Add(1)
			closeRequestBody(req)
			return nil, &policies.RejectedError{Kind: policies.KindBreaker, Wait: time.Second, Err: policies.ErrCircuitOpen}
		})
		req, all := replayable(t, http.MethodPut, "http://example.invalid/", "b")
		_, err := Chain(inner, Retry(noWait)).RoundTrip(req)
		if !errors.Is(err, policies.ErrCircuitOpen) {
			t.Fatalf("err = %v, want ErrCircuitOpen", err)
		}
		if calls.Load() != 1 {
			t.Fatalf("%d attempts, want 1: an open circuit is not retried", calls.Load())
		}
		check(t, "circuit open", all(), 1)
	})
	t.Run("canceled during the wait", func(t *testing.T) {
		fake := newFake()
		var calls atomic.Int64
		srv := newServer(t, statusSeq(&calls, nil, 503))
		rt := Chain(newTestClient(t).Transport, Retry(policies.Retry{Backoff: policies.Constant(time.Second), Clock: fake}))
		ctx, cancel := context.WithCancel(context.Background())
		req, all := replayable(t, http.MethodPut, srv.URL, "b")
		done := goRoundTrip(rt, req.WithContext(ctx))
		if err := fake.BlockUntil(testCtx(t), 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		r := <-done
		if r.resp != nil || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("got (%v, %v), want (nil, context.Canceled)", r.resp, r.err)
		}
		check(t, "canceled", all(), 2) // the body fetched for attempt 2 is closed too
	})
}

func TestRetryNeverRetriesCallerCancellation(t *testing.T) {
	var calls atomic.Int64
	started := make(chan struct{}, 3)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		started <- struct{}{}
		<-r.Context().Done()
	})
	c := newTestClient(t, Retry(noWait))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	resp, err := c.Do(mustRequest(t, ctx, http.MethodGet, srv.URL, ""))
	if err == nil {
		discard(resp)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("server saw %d requests, want 1: the caller's cancellation is never retried", calls.Load())
	}
}

func TestRetryRetriesInnerTimeout(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done() // the first attempt hangs until cut short
			return
		}
		_, _ = io.WriteString(w, "second")
	})
	c := newTestClient(t, Retry(noWait), Timeout(20*time.Millisecond))
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("err = %v: an attempt cut short by an inner Timeout must be retried", err)
	}
	if got := readAll(t, resp); got != "second" {
		t.Fatalf("body %q, want %q", got, "second")
	}
}

func TestRetryWaitsRetryAfter(t *testing.T) {
	fake := newFake()
	for _, tc := range []struct {
		name  string
		value func() string
	}{
		{"seconds", func() string { return "3" }},
		{"HTTP date", func() string { return fake.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := newServer(t, statusSeq(&calls, func(n int, h http.Header) {
				if n == 1 {
					h.Set("Retry-After", tc.value())
				}
			}, 503, 200))
			rt := Chain(newTestClient(t).Transport, Retry(policies.Retry{Backoff: policies.Constant(time.Millisecond), Clock: fake}))
			done := goRoundTrip(rt, mustRequest(t, context.Background(), http.MethodGet, srv.URL, ""))
			if err := fake.BlockUntil(testCtx(t), 1); err != nil {
				t.Fatal(err)
			}
			fake.Advance(2999 * time.Millisecond)
			if fake.Timers() != 1 || calls.Load() != 1 {
				t.Fatalf("retried before the 3s Retry-After (timers %d, calls %d)", fake.Timers(), calls.Load())
			}
			fake.Advance(time.Millisecond)
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			readAll(t, r.resp)
			if r.resp.StatusCode != 200 || calls.Load() != 2 {
				t.Fatalf("got %d after %d requests, want 200 after 2", r.resp.StatusCode, calls.Load())
			}
		})
	}
}

func TestRetryServerDelayTooLongReturnsLastResponse(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		code       int
		deadline   time.Duration // 0: none
		maxDelay   time.Duration
	}{
		{"beyond the deadline", "10", 503, time.Second, 0},
		{"beyond MaxDelay", "60", 429, 0, 0},
		{"beyond a custom MaxDelay", "3", 429, 0, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake()
			var calls atomic.Int64
			srv := newServer(t, statusSeq(&calls, func(_ int, h http.Header) { h.Set("Retry-After", tc.retryAfter) }, tc.code))
			c := newTestClient(t, Retry(policies.Retry{MaxDelay: tc.maxDelay, Clock: fake}))
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			resp, err := c.Do(mustRequest(t, ctx, http.MethodGet, srv.URL, ""))
			if err != nil {
				t.Fatalf("err = %v, want the last response", err)
			}
			if got := readAll(t, resp); resp.StatusCode != tc.code || got != http.StatusText(tc.code) {
				t.Fatalf("got %d %q, want the server's %d", resp.StatusCode, got, tc.code)
			}
			if calls.Load() != 1 || fake.Timers() != 0 {
				t.Fatalf("%d requests, %d timers armed: want 1 request and no wait", calls.Load(), fake.Timers())
			}
			if el := time.Since(start); el > 500*time.Millisecond {
				t.Fatalf("took %v, want an immediate return", el)
			}
		})
	}
}

func TestRetryHonoursRejectionWait(t *testing.T) {
	fake := newFake()
	var calls atomic.Int64
	inner := rtFunc(func(req *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			closeRequestBody(req)
			return nil, &policies.RejectedError{Kind: policies.KindRateLimit, Wait: 2 * time.Second, Err: policies.ErrRateLimited}
		}
		return newResponse(req, 200, nil, "ok"), nil
	})
	rt := Chain(inner, Retry(policies.Retry{Backoff: policies.Constant(time.Millisecond), Clock: fake}))
	// A POST: a rejection proves the request never left, so it may be retried.
	done := goRoundTrip(rt, mustRequest(t, context.Background(), http.MethodPost, "http://api.test/", "x"))
	if err := fake.BlockUntil(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Second)
	if calls.Load() != 1 {
		t.Fatal("retried before the rejection's 2s wait")
	}
	fake.Advance(time.Second)
	r := <-done
	if r.err != nil || r.resp.StatusCode != 200 {
		t.Fatalf("got (%v, %v), want 200", r.resp, r.err)
	}
	readAll(t, r.resp)
}

func TestRetryEvents(t *testing.T) {
	var mu sync.Mutex
	var got []string
	obs := policies.ObserverFunc(func(e policies.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Key == "" || e.Name != "api" {
			t.Errorf("event %+v: want Name api and Key set to the host", e)
		}
		s := e.Kind.String() + ":" + e.Type.String()
		var se *StatusError
		if errors.As(e.Err, &se) {
			s += ":" + se.Status
		}
		got = append(got, s)
	})
	var calls atomic.Int64
	srv := newServer(t, statusSeq(&calls, nil, 503))
	c := newTestClient(t, Retry(policies.Retry{Backoff: policies.Constant(0), Observer: obs, Name: "api"}))
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	mu.Lock()
	defer mu.Unlock()
	want := "retry:retry:503 Service Unavailable,retry:retry:503 Service Unavailable,retry:retry_stop:503 Service Unavailable"
	if strings.Join(got, ",") != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestRetryBudget(t *testing.T) {
	fake := newFake()
	budget := &policies.Budget{Ratio: 1e-9, MinPerSecond: 1, Window: time.Second, Clock: fake}
	var calls atomic.Int64
	inner := rtFunc(func(req *http.Request) (*http.Response, error) {
		calls.Add(1)
		return newResponse(req, 503, nil, ""), nil
	})
	rt := Chain(inner, Retry(policies.Retry{MaxAttempts: 2, Backoff: policies.Constant(0), Budget: budget, Clock: fake}))
	for i, want := range []int64{2, 1} { // the budget allows one retry a second
		calls.Store(0)
		resp, err := rt.RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://api.test/", ""))
		if err != nil {
			t.Fatal(err)
		}
		discard(resp)
		if calls.Load() != want {
			t.Fatalf("call %d: %d attempts, want %d", i+1, calls.Load(), want)
		}
	}
}

func TestRetryGetBodyErrorReturnsLastResponse(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, statusSeq(&calls, nil, 503))
	c := newTestClient(t, Retry(noWait))
	req := mustRequest(t, context.Background(), http.MethodPut, srv.URL, "b")
	req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 503 || calls.Load() != 1 {
		t.Fatalf("got %d after %d requests, want the 503 after 1", resp.StatusCode, calls.Load())
	}
}

func TestRetryInvalidOptionsPanic(t *testing.T) {
	for _, tc := range []struct {
		p    policies.Retry
		want string
	}{
		{policies.Retry{MaxAttempts: -1}, "transport: Retry.MaxAttempts must be >= 0"},
		{policies.Retry{MaxDelay: -time.Second}, "transport: Retry.MaxDelay must be >= 0"},
		{policies.Retry{Budget: &policies.Budget{Ratio: -1}}, "transport: Retry.Budget"},
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, tc.want) {
					t.Errorf("panic %q, want prefix %q", msg, tc.want)
				}
			}()
			Retry(tc.p)
		}()
	}
}

func TestRetryForwardsCloseIdleConnections(t *testing.T) {
	base := &countingRT{}
	c := &http.Client{Transport: Chain(base, Retry(policies.Retry{}), Timeout(time.Second))}
	c.CloseIdleConnections()
	if base.idleCalls.Load() != 1 {
		t.Fatal("CloseIdleConnections not forwarded through Retry and Timeout")
	}
}

func BenchmarkRetryLayer(b *testing.B) {
	rt := Chain(benchBase(), Retry(policies.Retry{}))
	req, _ := http.NewRequest(http.MethodGet, "http://bench.test/", nil)
	benchRoundTrips(b, rt, req)
}

// benchBase is an in-memory base transport answering every request with the
// same prebuilt 200 response with http.NoBody.
func benchBase() http.RoundTripper {
	resp := &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{}, Body: http.NoBody, ProtoMajor: 1, ProtoMinor: 1}
	return rtFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
}
