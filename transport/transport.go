// Package transport makes an http.Client survive a hostile network: each
// Layer wraps an http.RoundTripper with one resilience policy (retry, circuit
// breaker, rate limit, timeout, fallback, hedging), and Chain stacks them
// over a pooled base transport.
//
//	client := &http.Client{Transport: transport.Chain(nil, transport.Standard()...)}
//
// Every layer follows the http.RoundTripper contract literally: it never
// modifies the caller's request (it clones one per attempt), it closes the
// request body on every path, and it returns (resp, nil) for any response
// obtained, whatever its status. Responses a layer does not hand to the
// caller are drained (up to 64 KiB) and closed so their connections return
// to the pool. Every layer forwards CloseIdleConnections.
//
// Do turns a call into a result.Result, Err for transport errors and for
// statuses >= 400.
package transport

import (
	"io"
	"net/http"
	"sync"

	"github.com/resilient-result/resilient/policies"

	"github.com/hashicorp/go-cleanhttp"
)

// Layer wraps a RoundTripper with one policy. Layers are applied by Chain,
// the first outermost.
type Layer func(http.RoundTripper) http.RoundTripper

// Chain returns base wrapped in layers, the first layer outermost: the
// request passes through layers[0] first. A nil base means a pooled transport
// from go-cleanhttp shared by every Chain with a nil base (no global
// http.DefaultTransport state is touched); nil layers are skipped.
func Chain(base http.RoundTripper, layers ...Layer) http.RoundTripper {
	if base == nil {
		base = sharedPool()
	}
	rt := base
	for i := len(layers) - 1; i >= 0; i-- {
		if layers[i] != nil {
			rt = layers[i](rt)
		}
	}
	return rt
}

// sharedPool is the default base: one pooled transport for the process, so
// connections are reused across Chains and never torn down by a layer.
var sharedPool = sync.OnceValue(func() http.RoundTripper { return cleanhttp.DefaultPooledTransport() })

// drainLimit is how much of an unwanted response body is read before it is
// closed, so the connection can be reused; beyond it closing is cheaper.
const drainLimit = 64 << 10

// discard drains (up to drainLimit) and closes the body of a response the
// caller will never see, so its connection returns to the pool.
func discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	_ = resp.Body.Close()
}

// closeRequestBody closes req's body on a path where it is not handed to a
// base transport, as the RoundTripper contract requires.
func closeRequestBody(req *http.Request) {
	if req != nil && req.Body != nil && req.Body != http.NoBody {
		_ = req.Body.Close()
	}
}

// closeIdler is what http.Client's CloseIdleConnections looks for.
type closeIdler interface{ CloseIdleConnections() }

// forwardCloseIdle calls CloseIdleConnections on next when it has one.
func forwardCloseIdle(next http.RoundTripper) {
	if c, ok := next.(closeIdler); ok {
		c.CloseIdleConnections()
	}
}

// hostKey is the key per-host policies use: the request URL's host[:port].
func hostKey(req *http.Request) string {
	if req.URL == nil {
		return req.Host
	}
	return req.URL.Host
}

// keyObserver stamps the events of a per-host policy with the host as Key.
type keyObserver struct {
	o   policies.Observer
	key string
}

// Observe forwards e with Key set.
func (k keyObserver) Observe(e policies.Event) {
	if e.Key == "" {
		e.Key = k.key
	}
	k.o.Observe(e)
}
