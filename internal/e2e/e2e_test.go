// Package e2e proves that the two adapters speak one language: a client
// built with package transport paces itself against a server built with
// package middleware, reading exactly the headers the server writes. It
// holds only tests, so transport and middleware still never import each
// other.
package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resilient-result/resilient/middleware"
	"github.com/resilient-result/resilient/policies"
	"github.com/resilient-result/resilient/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A client with transport.RateLimit reads the server's RateLimit fields,
// holds itself once the quota is spent, and so is refused at most once
// (here: never) while every request still succeeds.
func TestClientPacesItselfAgainstServer(t *testing.T) {
	var admitted, refused atomic.Int64
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			if rec.status == http.StatusTooManyRequests {
				refused.Add(1)
			} else {
				admitted.Add(1)
			}
		})
	}
	limit := middleware.RateLimit(policies.RateLimit{Limit: 3, Window: time.Second}, nil)
	srv := httptest.NewServer(count(limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))))
	defer srv.Close()

	base := srv.Client().Transport
	client := &http.Client{Transport: transport.Chain(base,
		transport.Retry(policies.Retry{}),
		transport.RateLimit(policies.RateLimit{}),
	)}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 7 // more than two windows' worth of the server's quota
	for i := range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		r := transport.Do(client, req)
		if r.IsErr() {
			t.Fatalf("request %d: %v", i, r.Err())
		}
		resp := r.Value()
		if resp.Header.Get("RateLimit-Policy") == "" || resp.Header.Get("RateLimit") == "" {
			t.Errorf("request %d: response lacks the IETF fields: %v", i, resp.Header)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	if got := admitted.Load(); got != n {
		t.Errorf("server admitted %d requests, want %d", got, n)
	}
	if got := refused.Load(); got > 1 {
		t.Errorf("server refused the pacing client %d times, want at most once", got)
	}
}

// Without transport.RateLimit the same burst is refused by the server: the
// test above would fail if the client ignored the headers.
func TestClientWithoutPacingIsRefused(t *testing.T) {
	limit := middleware.RateLimit(policies.RateLimit{Limit: 3, Window: time.Minute}, nil)
	srv := httptest.NewServer(limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	client := srv.Client()
	refused := 0
	for range 5 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
	}
	if refused != 2 {
		t.Errorf("refused %d of 5 requests, want 2", refused)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}
