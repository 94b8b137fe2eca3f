package middleware

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resilient-result/resilient/headers"
	"github.com/resilient-result/resilient/policies"
)

// Bulkhead returns a middleware that lets at most p.MaxConcurrent handlers
// run at once (0 means 100), so a burst of slow requests cannot take every
// goroutine, connection and byte of memory the server has. It builds one
// policies.Compartment per call, shared by every handler the returned
// middleware wraps: wrap a whole router once for one server-wide cap, or each
// route separately for a cap per route.
//
// A request that finds every slot taken waits in a first-in, first-out queue
// of at most p.MaxQueue requests (0 means none: it is refused at once), for
// at most p.QueueTimeout (0 means until its context ends). A request that
// finds the queue full, or whose wait runs out, is answered 503 Service
// Unavailable with Retry-After (p.RetryAfter, 0 means 1s) and an
// application/problem+json body; the handler is not called. A request whose
// context ends while it waits (the client went away, the server shuts down)
// leaves the queue and gets no answer: there is no one left to read it.
//
// The slot is released when the handler returns, and also when it panics
// (the panic goes on to net/http).
//
// Bulkhead is not a rate limiter: it bounds how many requests run at once,
// not how many arrive per second; use RateLimit for that. It panics, naming
// the option, when p is invalid.
func Bulkhead(p policies.Bulkhead) func(http.Handler) http.Handler {
	if err := p.Validate(); err != nil {
		panic("middleware: " + strings.TrimPrefix(err.Error(), "policies: "))
	}
	return bhWrap(policies.NewBulkhead(p))
}

// bhWrap returns the middleware that guards handlers with c.
func bhWrap(c *policies.Compartment) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return &bhHandler{c: c, next: next}
	}
}

// bhHandler is one handler behind a bulkhead.
type bhHandler struct {
	c    *policies.Compartment
	next http.Handler
}

var _ http.Handler = (*bhHandler)(nil)

func (b *bhHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := b.c.Acquire(ctx); err != nil {
		if ctx.Err() != nil {
			return // the client is gone (or the server is shutting down)
		}
		wait, ok := policies.RetryAfter(err)
		if !ok {
			wait = time.Second
		}
		headers.WriteRetryAfter(w.Header(), wait)
		writeProblem(w, http.StatusServiceUnavailable,
			"server is at capacity, retry after "+strconv.FormatInt(bhCeilSeconds(wait), 10)+"s")
		return
	}
	defer b.c.Release()
	b.next.ServeHTTP(w, r)
}

// bhCeilSeconds is d in whole seconds, rounded up, as Retry-After writes it.
func bhCeilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return s
}
