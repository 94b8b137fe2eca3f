package transport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/resilient-result/resilient/policies"
	"github.com/resilient-result/resilient/transport"
)

// A client with the recommended stack, and Do to see the outcome as a
// Result.
func ExampleStandard() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	client := &http.Client{Transport: transport.Chain(nil, transport.Standard()...)}
	defer client.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	r := transport.Do(client, req)
	if r.IsErr() {
		fmt.Println("error:", r.Err())
		return
	}
	resp := r.Value()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello
}

// Retry sends the request again on 503 and waits what Retry-After asks.
func ExampleRetry() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "finally")
	}))
	defer srv.Close()

	client := &http.Client{Transport: transport.Chain(nil,
		transport.Retry(policies.Retry{MaxAttempts: 4, Backoff: policies.Constant(time.Millisecond)}),
	)}
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", calls.Load(), "attempts")
	// Output: 200 finally after 3 attempts
}

// A Timeout inside Retry bounds each attempt; an attempt it cuts short is
// retried, and the last one's timeout is reported as policies.ErrTimeout,
// not as the caller's context.DeadlineExceeded.
func ExampleTimeout() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()

	client := &http.Client{Transport: transport.Chain(nil,
		transport.Retry(policies.Retry{MaxAttempts: 2, Backoff: policies.Constant(time.Millisecond)}),
		transport.Timeout(10*time.Millisecond),
	)}
	defer client.CloseIdleConnections()

	_, err := client.Get(srv.URL)
	fmt.Println(errors.Is(err, policies.ErrTimeout), errors.Is(err, context.DeadlineExceeded))
	// Output: true false
}

// Do makes a status >= 400 an error carrying the status, headers and the
// start of the body; the response is already closed.
func ExampleDo() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such user", http.StatusNotFound)
	}))
	defer srv.Close()
	client := &http.Client{}
	defer client.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/users/42", nil)
	r := transport.Do(client, req)
	var se *transport.StatusError
	if errors.As(r.Err(), &se) {
		fmt.Printf("%d %q\n", se.StatusCode, se.Body)
	}
	// Output: 404 "no such user\n"
}

// DoJSON decodes a successful response's JSON body.
func ExampleDoJSON() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id": 42, "name": "Ada"}`)
	}))
	defer srv.Close()
	client := &http.Client{Transport: transport.Chain(nil, transport.Internal()...)}
	defer client.CloseIdleConnections()

	type user struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/users/42", nil)
	u := transport.DoJSON[user](client, req)
	fmt.Printf("%+v %v\n", u.Value(), u.Err())
	// Output: {ID:42 Name:Ada} <nil>
}

// Chain stacks layers over a base transport, the first outermost: here a
// Retry that tries a flaky upstream again, inside a Timeout that bounds the
// whole call.
func ExampleChain() {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "recovered")
	}))
	defer srv.Close()

	rt := transport.Chain(srv.Client().Transport,
		transport.Timeout(5*time.Second),
		transport.Retry(policies.Retry{Backoff: policies.Constant(time.Millisecond)}),
	)
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", calls.Load(), "calls")
	// Output: 200 recovered after 2 calls
}
