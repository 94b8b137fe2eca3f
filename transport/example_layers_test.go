package transport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/resilient-result/resilient/policies"
	"github.com/resilient-result/resilient/transport"
)

// exampleBody reads and closes resp's body.
func exampleBody(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return string(b)
}

// A host that keeps failing is cut off: after Failures 5xx answers, its
// requests fail fast without reaching it.
func ExampleBreaker() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	client := &http.Client{Transport: transport.Chain(base,
		transport.Breaker(policies.Breaker{Failures: 2, OpenFor: 30 * time.Second}),
	)}
	for i := 1; i <= 3; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			wait, _ := policies.RetryAfter(err)
			fmt.Printf("call %d: circuit open: %v, retry in about %v\n", i, errors.Is(err, policies.ErrCircuitOpen), wait.Round(time.Second))
			continue
		}
		exampleBody(resp)
		fmt.Printf("call %d: %d\n", i, resp.StatusCode)
	}
	// Output:
	// call 1: 500
	// call 2: 500
	// call 3: circuit open: true, retry in about 30s
}

// A 429 with Retry-After holds the host: a later request whose deadline is
// too short for the wait fails at once instead of hammering the server.
func ExampleRateLimit() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	client := &http.Client{Transport: transport.Chain(base, transport.RateLimit(policies.RateLimit{}))}
	resp, err := client.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	exampleBody(resp)
	fmt.Println("first:", resp.StatusCode)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	_, err = client.Do(req)
	wait, _ := policies.RetryAfter(err)
	fmt.Printf("second: rate limited: %v, retry in about %v\n", errors.Is(err, policies.ErrRateLimited), wait.Round(time.Minute))
	// Output:
	// first: 429
	// second: rate limited: true, retry in about 2m0s
}

// When the primary answers 5xx (or fails, or is refused by a policy), a
// canned answer replaces it.
func ExampleFallback() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	stale := transport.StaticResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(`{"items":[]}`))
	client := &http.Client{Transport: transport.Chain(base, transport.Fallback(stale))}
	resp, err := client.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, exampleBody(resp))
	// Output:
	// 200 {"items":[]}
}

// A slow answer is hedged: after the delay a second request goes out and
// the first good answer wins; the slow one is cancelled.
func ExampleHedge() {
	var first = make(chan struct{}, 1)
	first <- struct{}{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-first: // the first request stalls until it is given up on
			<-r.Context().Done()
		default:
			_, _ = io.WriteString(w, "from the hedge")
		}
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	client := &http.Client{Transport: transport.Chain(base, transport.Hedge(10*time.Millisecond))}
	resp, err := client.Get(srv.URL)
	if err != nil {
		panic(err)
	}
	fmt.Println(exampleBody(resp))
	// Output:
	// from the hedge
}
