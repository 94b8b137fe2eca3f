package middleware_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/resilient-result/resilient/middleware"
	"github.com/resilient-result/resilient/policies"
)

// A bulkhead with one slot and no queue: while one request runs, the next is
// refused with 503 and Retry-After.
func ExampleBulkhead() {
	entered, release := make(chan struct{}), make(chan struct{})
	h := middleware.Bulkhead(policies.Bulkhead{MaxConcurrent: 1})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))

	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	<-entered // the only slot is taken

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Code, "Retry-After:", rec.Header().Get("Retry-After"), rec.Header().Get("Content-Type"))

	close(release)
	<-done
	// Output: 503 Retry-After: 1 application/problem+json
}

// A handler that runs past its deadline: the client gets one 503, and the
// handler's late write fails instead of corrupting the answer.
func ExampleTimeout() {
	h := middleware.Timeout(10 * time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // too slow
		_, err := io.WriteString(w, "late")
		fmt.Println("handler:", err)
	}))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output:
	// handler: http: Handler timeout
	// 503 application/problem+json
}

// The recommended stack around a whole ServeMux: rate limit per client IP,
// then bulkhead, then timeout.
func ExampleStandard() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})
	h := middleware.Standard()(mux)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hello", nil))
	fmt.Println(rec.Code, rec.Body)
	fmt.Println("RateLimit-Policy:", rec.Header().Get("RateLimit-Policy"))
	fmt.Println("RateLimit:", rec.Header().Get("RateLimit"))
	// Output:
	// 200 hello
	// RateLimit-Policy: "default";q=100;w=1
	// RateLimit: "default";r=99;t=1
}
