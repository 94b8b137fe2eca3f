package transport

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/resilient-result/resilient/internal/clock"
	"github.com/resilient-result/resilient/policies"
)

// Hedge returns a Layer that cuts tail latency: when a request has had no
// answer delay after it was sent, it sends a second, identical attempt and
// returns whichever good answer (no error and status < 500) comes first.
// The losing attempt's context is cancelled, and its response, if one
// arrives, is drained and closed; the winner's context lives until the
// caller closes the winner's body.
//
// Only requests that are safe to send twice are hedged: idempotent methods
// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or any request carrying an
// Idempotency-Key header, and whose body is absent or replayable through
// GetBody. Other requests pass straight through.
//
// When the first attempt answers before delay, that answer is returned
// whatever it is and no second attempt is sent: Hedge is not Retry. When
// both attempts fail, the outcome that arrived last is returned and the
// other is discarded. At most two attempts are ever sent.
//
// A delay <= 0 panics. Hedge is HedgeWith(delay, HedgeOptions{}).
func Hedge(delay time.Duration) Layer { return HedgeWith(delay, HedgeOptions{}) }

// HedgeOptions names a Hedge layer and lets it be observed. The zero value
// is an unnamed, silent hedge.
type HedgeOptions struct {
	// Name is the layer's name in events; default "".
	Name string
	// Observer receives a policies.EventHedge (Kind KindHedge, Key the
	// request's host, Delay the hedge delay) each time a second attempt is
	// sent; nil means none.
	Observer policies.Observer
}

// HedgeWith is Hedge with options: see Hedge for what it does.
func HedgeWith(delay time.Duration, o HedgeOptions) Layer {
	return hedgeLayer(delay, clock.Real(), o)
}

// hedgeLayer is HedgeWith with the clock that arms the hedge timer.
func hedgeLayer(delay time.Duration, c clock.Clock, o HedgeOptions) Layer {
	if delay <= 0 {
		panic(fmt.Sprintf("transport: Hedge delay must be > 0, got %v", delay))
	}
	c = clock.Or(c)
	return func(next http.RoundTripper) http.RoundTripper {
		return &hedgeRT{next: next, delay: delay, clock: c, o: o}
	}
}

// hedgeRT is the RoundTripper Hedge builds.
type hedgeRT struct {
	next  http.RoundTripper
	delay time.Duration
	clock clock.Clock
	o     HedgeOptions
}

var _ http.RoundTripper = (*hedgeRT)(nil)

// hedgeable reports whether req may be sent twice.
func hedgeable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}

// hedgeResult is one attempt's outcome.
type hedgeResult struct {
	idx    int // which attempt: 0 first, 1 hedge
	resp   *http.Response
	err    error
	cancel context.CancelFunc
}

// good reports whether r may win the race.
func (r hedgeResult) good() bool {
	return r.err == nil && r.resp.StatusCode < http.StatusInternalServerError
}

// drop discards r's response and ends its context.
func (r hedgeResult) drop() {
	discard(r.resp)
	r.cancel()
}

// hedgeCall is the state one hedged RoundTrip shares with its attempts.
type hedgeCall struct {
	mu      sync.Mutex
	decided bool             // the caller has its answer; late outcomes are dropped
	results chan hedgeResult // buffered for both attempts: sends never block
	next    http.RoundTripper
	cancels []context.CancelFunc // each attempt's; touched by RoundTrip's goroutine only
}

// start sends req, whose context cancel ends, in its own goroutine; the
// goroutine ends when the attempt returns.
func (h *hedgeCall) start(req *http.Request, cancel context.CancelFunc) {
	idx := len(h.cancels)
	h.cancels = append(h.cancels, cancel)
	go func() {
		resp, err := h.next.RoundTrip(req)
		r := hedgeResult{idx: idx, resp: resp, err: err, cancel: cancel}
		h.mu.Lock()
		if h.decided {
			h.mu.Unlock()
			r.drop()
			return
		}
		h.results <- r
		h.mu.Unlock()
	}()
}

// finish marks the call decided, cancels every attempt but the winner's
// and drops every outcome already delivered but not taken; later outcomes
// are dropped by their own goroutines.
func (h *hedgeCall) finish(winner int) {
	h.mu.Lock()
	h.decided = true
	h.mu.Unlock()
	for i, cancel := range h.cancels {
		if i != winner {
			cancel()
		}
	}
	for {
		select {
		case r := <-h.results:
			r.drop()
		default:
			return
		}
	}
}

// RoundTrip sends req and, when it is slow, a hedged copy.
func (h *hedgeRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if !hedgeable(req) {
		return h.next.RoundTrip(req)
	}
	ctx := req.Context()
	call := &hedgeCall{results: make(chan hedgeResult, 2), next: h.next}
	ctx1, cancel1 := context.WithCancel(ctx)
	call.start(req.WithContext(ctx1), cancel1)
	pending := 1

	timer := h.clock.NewTimer(h.delay)
	defer timer.Stop()
	timerC := timer.C()

	var last *hedgeResult // a failed outcome kept while the other attempt runs
	for {
		select {
		case <-timerC:
			timerC = nil
			if ctx.Err() != nil {
				continue
			}
			if r2, cancel2, ok := hedgeRequest(req); ok {
				call.start(r2, cancel2)
				pending++
				if h.o.Observer != nil {
					h.o.Observer.Observe(policies.Event{Kind: policies.KindHedge, Name: h.o.Name, Key: hostKey(req), Type: policies.EventHedge, Delay: h.delay})
				}
			}
		case r := <-call.results:
			pending--
			if r.good() || pending == 0 {
				if last != nil {
					last.drop()
				}
				call.finish(r.idx)
				return hedgeDeliver(r)
			}
			last = &r // the hedge is still running: it may yet win
		}
	}
}

// hedgeRequest builds the second attempt: a clone of req with a fresh body
// and its own cancellable context. ok is false when the body cannot be
// obtained again.
func hedgeRequest(req *http.Request) (*http.Request, context.CancelFunc, bool) {
	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		b, err := req.GetBody()
		if err != nil {
			return nil, nil, false
		}
		body = b
	}
	ctx, cancel := context.WithCancel(req.Context())
	r2 := req.Clone(ctx)
	if body != nil {
		r2.Body = body
	}
	return r2, cancel, true
}

// hedgeDeliver hands r to the caller: the attempt's context ends when the
// caller closes the body (or at once when there is none to read).
func hedgeDeliver(r hedgeResult) (*http.Response, error) {
	if r.err != nil || r.resp.Body == nil || r.resp.Body == http.NoBody {
		r.cancel()
		return r.resp, r.err
	}
	if rw, ok := r.resp.Body.(io.ReadWriteCloser); ok {
		r.resp.Body = &hedgeRWBody{hedgeBody{ReadCloser: rw, cancel: r.cancel}, rw}
	} else {
		r.resp.Body = &hedgeBody{ReadCloser: r.resp.Body, cancel: r.cancel}
	}
	return r.resp, nil
}

// hedgeBody ends the winning attempt's context when the body is closed.
type hedgeBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// Close closes the body, then ends the attempt's context.
func (b *hedgeBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// hedgeRWBody keeps a writable body (101 Switching Protocols) writable.
type hedgeRWBody struct {
	hedgeBody
	w io.Writer
}

// Write writes to the upgraded connection.
func (b *hedgeRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// CloseIdleConnections forwards to the wrapped transport.
func (h *hedgeRT) CloseIdleConnections() { forwardCloseIdle(h.next) }
