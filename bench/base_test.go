package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// benchURL is the URL every client benchmark asks for. No network is used:
// the base RoundTripper answers in memory.
const benchURL = "http://bench.invalid/resource"

// memBody is the body of an in-memory response: "ok", then io.EOF.
type memBody struct{ off int }

const memPayload = "ok"

func (b *memBody) Read(p []byte) (int, error) {
	if b.off >= len(memPayload) {
		return 0, io.EOF
	}
	n := copy(p, memPayload[b.off:])
	b.off += n
	return n, nil
}

func (b *memBody) Close() error { return nil }

// memRT is the in-memory base RoundTripper every client pair shares: it
// answers 200 "ok" at once, with a fresh response (as a real transport
// does), and counts its calls so a benchmark can check nothing was retried.
type memRT struct{ calls atomic.Int64 }

func (m *memRT) RoundTrip(req *http.Request) (*http.Response, error) {
	m.calls.Add(1)
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          &memBody{},
		ContentLength: int64(len(memPayload)),
		Request:       req,
	}, nil
}

// newRequest returns a GET for benchURL. Benchmarks reuse it for every
// call: a RoundTripper must not modify its request.
func newRequest(tb testing.TB) *http.Request {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, benchURL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// roundTrip is one client call as a caller makes it: send, read the body,
// close it.
func roundTrip(tb testing.TB, rt http.RoundTripper, req *http.Request) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		tb.Error(err) // not Fatal: this may run in a RunParallel goroutine
		return
	}
	if resp.StatusCode != http.StatusOK {
		tb.Errorf("status %d", resp.StatusCode)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// benchRT runs name (serial) and name-parallel (b.RunParallel), each over a
// fresh stack from build wrapped around a fresh base. It checks that the
// base was called exactly once per call: no stack retried.
func benchRT(b *testing.B, name string, build func(base http.RoundTripper) http.RoundTripper) {
	b.Run(name, func(b *testing.B) {
		base := &memRT{}
		rt := build(base)
		req := newRequest(b)
		roundTrip(b, rt, req) // warm up: lazily built state
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			roundTrip(b, rt, req)
		}
		b.StopTimer()
		checkCalls(b, base)
	})
	b.Run(name+"-parallel", func(b *testing.B) {
		base := &memRT{}
		rt := build(base)
		roundTrip(b, rt, newRequest(b))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			req := newRequest(b)
			for pb.Next() {
				roundTrip(b, rt, req)
			}
		})
		b.StopTimer()
		checkCalls(b, base)
	})
}

func checkCalls(b *testing.B, base *memRT) {
	if got, want := base.calls.Load(), int64(b.N)+1; got != want {
		b.Fatalf("base called %d times for %d calls", got, want)
	}
}

// BenchmarkBase is the bare in-memory base: the cost every client stack
// includes. Overhead of a stack = its ns/op - this ns/op.
func BenchmarkBase(b *testing.B) {
	benchRT(b, "roundtrip", func(base http.RoundTripper) http.RoundTripper { return base })
}

// okHandler is the trivial handler every server pair wraps.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, memPayload)
})

// serve is one server call: a fresh recorder, the handler, a status check.
func serve(tb testing.TB, h http.Handler, req *http.Request) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Errorf("status %d: %s", rec.Code, rec.Body.String()) // not Fatal: may run in a RunParallel goroutine
	}
}

// newServerRequest is an incoming GET as net/http hands it to a handler,
// from client 192.0.2.1.
func newServerRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, benchURL, nil)
	req.RemoteAddr = "192.0.2.1:43210"
	return req
}

// benchHandler runs name (serial) and name-parallel over a fresh handler
// from build wrapped around okHandler.
func benchHandler(b *testing.B, name string, build func(http.Handler) http.Handler) {
	b.Run(name, func(b *testing.B) {
		h := build(okHandler)
		req := newServerRequest()
		serve(b, h, req)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			serve(b, h, req)
		}
	})
	b.Run(name+"-parallel", func(b *testing.B) {
		h := build(okHandler)
		serve(b, h, newServerRequest())
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			req := newServerRequest()
			for pb.Next() {
				serve(b, h, req)
			}
		})
	})
}

// BenchmarkServerBase is the bare handler over httptest.NewRecorder: the
// cost every server stack includes.
func BenchmarkServerBase(b *testing.B) {
	benchHandler(b, "handler", func(h http.Handler) http.Handler { return h })
}
