package transport

// Shared test helpers for every test file in package transport. Keep the
// names generic and each helper documented; add new helpers rather than
// changing the behaviour of existing ones.

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rtFunc adapts a function to http.RoundTripper: an in-memory base transport.
type rtFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f(req).
func (f rtFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// countingRT is an in-memory base RoundTripper that counts its calls and
// answers each with respond(n, req), n the 1-based call number. It closes
// the request body, as a real transport does, and records what it read
// from it. It is safe for concurrent use.
type countingRT struct {
	respond func(n int, req *http.Request) (*http.Response, error)

	calls     atomic.Int64
	idleCalls atomic.Int64 // CloseIdleConnections calls

	mu     sync.Mutex
	bodies []string // request bodies read, in call order
	reqs   []*http.Request
}

// RoundTrip counts the call, reads and closes the body and returns respond's
// answer (a 200 with an empty body when respond is nil).
func (c *countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	n := int(c.calls.Add(1))
	var body string
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		body = string(b)
	}
	c.mu.Lock()
	c.bodies = append(c.bodies, body)
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	if c.respond == nil {
		return newResponse(req, http.StatusOK, nil, ""), nil
	}
	return c.respond(n, req)
}

// CloseIdleConnections counts the forwarded call.
func (c *countingRT) CloseIdleConnections() { c.idleCalls.Add(1) }

// Calls returns how many requests reached the transport.
func (c *countingRT) Calls() int { return int(c.calls.Load()) }

// Bodies returns a copy of the request bodies seen, in call order.
func (c *countingRT) Bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...)
}

// Requests returns a copy of the requests seen, in call order.
func (c *countingRT) Requests() []*http.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*http.Request(nil), c.reqs...)
}

// newResponse builds an in-memory response to req with status code, header
// h (may be nil) and body, whose Body tracks Close via trackedBody.
func newResponse(req *http.Request, code int, h http.Header, body string) *http.Response {
	if h == nil {
		h = make(http.Header)
	}
	return &http.Response{
		Status:        http.StatusText(code),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// trackedBody is an io.ReadCloser that counts Close calls: use it as a
// request body (to check every path closes it) or a response body.
type trackedBody struct {
	r      io.Reader
	closed atomic.Int32
}

// newTrackedBody returns a trackedBody reading s.
func newTrackedBody(s string) *trackedBody { return &trackedBody{r: strings.NewReader(s)} }

// Read reads from the underlying reader.
func (b *trackedBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// Close counts the call.
func (b *trackedBody) Close() error { b.closed.Add(1); return nil }

// Closed returns how many times Close was called.
func (b *trackedBody) Closed() int { return int(b.closed.Load()) }

// connCounter counts the connections an httptest server accepts, through
// Server.Config.ConnState: a test asserts connection reuse with NewConns.
type connCounter struct{ n atomic.Int64 }

// NewConns returns how many connections the server has accepted.
func (c *connCounter) NewConns() int { return int(c.n.Load()) }

// newCountedServer starts a loopback httptest server running h, whose new
// connections are counted by the returned connCounter. The server is closed
// by t.Cleanup.
func newCountedServer(t testing.TB, h http.Handler) (*httptest.Server, *connCounter) {
	t.Helper()
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cc.n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
}

// newServer starts a loopback httptest server running h, closed by
// t.Cleanup.
func newServer(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newTestClient returns a client over a fresh transport (not the shared
// pool) wrapped in layers; its idle connections are closed by t.Cleanup so
// goleak sees no lingering connection goroutines.
func newTestClient(t testing.TB, layers ...Layer) *http.Client {
	t.Helper()
	base := &http.Transport{MaxIdleConnsPerHost: 10}
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: Chain(base, layers...)}
}

// statusSeq returns a handler that answers the n-th request (1-based) with
// codes[n-1] (the last code once codes run out), calling set(n, w.Header())
// first when set is non-nil, and counting requests in calls.
func statusSeq(calls *atomic.Int64, set func(n int, h http.Header), codes ...int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n := int(calls.Add(1))
		code := codes[len(codes)-1]
		if n <= len(codes) {
			code = codes[n-1]
		}
		if set != nil {
			set(n, w.Header())
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

// bodyRecorder is a handler that records every request body it receives
// and answers codes in turn (as statusSeq).
type bodyRecorder struct {
	mu     sync.Mutex
	bodies []string
	calls  atomic.Int64
	codes  []int
}

// ServeHTTP records the body and answers the next code.
func (b *bodyRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.bodies = append(b.bodies, string(body))
	b.mu.Unlock()
	n := int(b.calls.Add(1))
	code := b.codes[len(b.codes)-1]
	if n <= len(b.codes) {
		code = b.codes[n-1]
	}
	w.WriteHeader(code)
}

// Bodies returns a copy of the bodies received.
func (b *bodyRecorder) Bodies() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bodies...)
}

// testCtx returns a context that ends with the test (or after 10s), for
// BlockUntil and requests that must never hang a test run.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustRequest builds a request or fails the test. A non-empty body is set
// with GetBody (replayable), as http.NewRequest does for a *bytes.Reader.
func mustRequest(t testing.TB, ctx context.Context, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// readAll reads and closes resp's body or fails the test.
func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// benchRoundTrips runs rt over req serially and in parallel, closing every
// response body, reporting allocations.
func benchRoundTrips(b *testing.B, rt http.RoundTripper, req *http.Request) {
	once := func() error {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
		return nil
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := once(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := once(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
